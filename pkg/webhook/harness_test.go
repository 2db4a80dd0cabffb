package webhook_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/bridge"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dbtcloud"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dynamo"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/logging"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/motoserver"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau/tableautest"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/webhook"
)

// The tests run the whole path the Lambda runs: configuration from
// environment variables, the real SDK against moto_server (reached through
// AWS_ENDPOINT_URL), the Tableau client against the simulator.

var (
	db   *dynamodb.Client
	sm   *secretsmanager.Client
	moto *motoserver.Server
)

func TestMain(m *testing.M) {
	os.Exit(motoserver.Main(m, func(s *motoserver.Server) {
		s.SetEnv(func(k, v string) { os.Setenv(k, v) })
		cfg, err := s.AWSConfig(context.Background())
		if err != nil {
			panic(err)
		}
		db, sm, moto = dynamodb.NewFromConfig(cfg), secretsmanager.NewFromConfig(cfg), s
	}))
}

const (
	webhookSecret = "whsec-Zq81-never-logged"
	patName       = "refresh-bot"
	patSecret     = "pat-secret-Yx72-never-logged"
	jobID         = "123"
)

// world is one deployment: a state table, a secret, a Tableau site.
type world struct {
	t       *testing.T
	tab     *tableautest.Server
	handler *webhook.Handler
	deps    *bridge.Deps
	logs    *syncBuffer
	ids     map[string]string // target name -> LUID
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

var seq atomic.Int64

type option func(env map[string]string)

// productionRetries, set in a world's env, gives its Tableau client the
// default retry policy. bridge.FromEnv ignores the key.
const productionRetries = "test:production-retries"

func newWorld(t *testing.T, opts ...option) *world {
	t.Helper()
	ctx := context.Background()
	n := seq.Add(1)
	table := fmt.Sprintf("webhook-state-%d", n)
	if err := dynamo.CreateTable(ctx, db, table); err != nil {
		t.Fatal(err)
	}
	secretName := fmt.Sprintf("webhook-secret-%d-%d", n, time.Now().UnixNano())
	secretJSON := fmt.Sprintf(`{"dbt_webhook_secret":%q,"tableau_pat_name":%q,"tableau_pat_secret":%q}`, webhookSecret, patName, patSecret)
	if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: &secretName, SecretString: &secretJSON}); err != nil {
		t.Fatal(err)
	}

	tab := tableautest.NewServer(tableautest.WithSite("analytics"), tableautest.WithJobTimings(time.Hour, time.Hour))
	t.Cleanup(tab.Close)
	tab.AddPAT(patName, patSecret)
	w := &world{t: t, tab: tab, logs: &syncBuffer{}, ids: map[string]string{}}
	w.ids["Sales Overview"] = tab.AddWorkbook("Sales Overview", "Finance")
	tab.AddWorkbook("Sales Overview", "Sandbox")
	w.ids["Orders"] = tab.AddDatasource("Orders", "Finance")
	w.ids["Customers"] = tab.AddDatasource("Customers", "Finance")
	w.ids["Static"] = tab.AddWorkbook("Static", "Finance", tableautest.NoExtract())

	env := map[string]string{
		"TABLEAU_SERVER_URL": tab.URL(),
		"TABLEAU_SITE":       "analytics",
		"SECRET_ID":          secretName,
		"STATE_TABLE":        table,
		"REFRESH_MAP": `{"jobs":{"123":[{"workbook":"Sales Overview","project":"Finance"},{"datasource":"Orders"},{"datasource_id":"` +
			w.ids["Customers"] + `"}],"456":[{"workbook":"Static"}],"789":[{"workbook":"Sales Overview"}]}}`,
	}
	for _, o := range opts {
		o(env)
	}
	cfg, err := bridge.FromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	logger := logging.New(w.logs, slog.LevelDebug)
	// Fast retries keep the tests quick; tests of behaviour under faults
	// ask for the production policy, which honours Retry-After.
	retry := tableau.RetryPolicy{MaxAttempts: 2, BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond}
	if env[productionRetries] != "" {
		retry = tableau.DefaultRetryPolicy()
	}
	w.deps, err = bridge.Build(ctx, cfg, logger, tableau.WithRetryPolicy(retry))
	if err != nil {
		t.Fatal(err)
	}
	w.handler, err = webhook.New(w.deps.Secrets, w.deps.Refresher, webhook.Config{Map: cfg.Map, MaxEventAge: cfg.MaxEventAge, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// payload is a job.run.completed body for a run of job.
func payload(runID, job, status string, code int, ts time.Time) []byte {
	return []byte(fmt.Sprintf(`{"accountId":1,"webhookId":"wsu_1","eventId":"wev_%[1]s","timestamp":%[5]q,"eventType":"job.run.completed","webhookName":"t",`+
		`"data":{"jobId":%[2]q,"jobName":"Daily","runId":%[1]q,"environmentId":"1","environmentName":"Prod","dbtVersion":"1.8","projectName":"A","projectId":"1",`+
		`"runStatus":%[3]q,"runStatusCode":%[4]d,"runStatusMessage":"None","runReason":"r","runStartedAt":"x","runFinishedAt":"y"}}`,
		runID, job, status, code, ts.UTC().Format(time.RFC3339Nano)))
}

func success(runID string) []byte { return payload(runID, jobID, "Success", 10, time.Now()) }

// request wraps body the way an HTTP API does, signed unless sig is given.
func request(body []byte, headers ...string) events.APIGatewayV2HTTPRequest {
	h := map[string]string{"content-type": "application/json", "authorization": dbtcloud.SignatureHeader(body, webhookSecret)}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			delete(h, headers[i])
			continue
		}
		h[headers[i]] = headers[i+1]
	}
	req := events.APIGatewayV2HTTPRequest{Version: "2.0", RouteKey: webhook.Route, RawPath: "/dbt/webhook", Headers: h, Body: string(body)}
	req.RequestContext.HTTP.Method = http.MethodPost
	req.RequestContext.RequestID = fmt.Sprintf("req-%d", seq.Add(1))
	return req
}

func base64Request(body []byte) events.APIGatewayV2HTTPRequest {
	req := request(body)
	req.Body, req.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
	return req
}

// deliver invokes the handler with a Lambda-like deadline.
func (w *world) deliver(req events.APIGatewayV2HTTPRequest) (int, webhook.Reply) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Second)
	defer cancel()
	resp, err := w.handler.Handle(ctx, req)
	if err != nil {
		w.t.Fatalf("Handle returned an error: %v", err)
	}
	var reply webhook.Reply
	if err := json.Unmarshal([]byte(resp.Body), &reply); err != nil {
		w.t.Fatalf("reply is not JSON: %q", resp.Body)
	}
	return resp.StatusCode, reply
}

func (w *world) refreshes(name string) int { return w.tab.RefreshCount(w.ids[name]) }

func (w *world) totalRefreshes() int {
	return w.refreshes("Sales Overview") + w.refreshes("Orders") + w.refreshes("Customers") + w.refreshes("Static")
}

func results(r webhook.Reply) string {
	var parts []string
	for _, o := range r.Targets {
		parts = append(parts, o.Result)
	}
	return strings.Join(parts, ",")
}
