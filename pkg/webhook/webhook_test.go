package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/app"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/config"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/demo"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/logging"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refreshmap"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau/tableautest"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/webhook"
)

func TestRejectedBeforeAnythingHappens(t *testing.T) {
	w := newWorld(t)
	body := success("1001")
	tests := []struct {
		name       string
		req        func() events.APIGatewayV2HTTPRequest
		wantStatus int
		wantMsg    string
	}{
		{"missing signature", func() events.APIGatewayV2HTTPRequest { return request(body, "authorization", "") }, 401, "invalid signature"},
		{"wrong secret", func() events.APIGatewayV2HTTPRequest {
			return request(body, "authorization", fmt.Sprintf("%x", []byte(strings.Repeat("x", 32))))
		}, 401, "invalid signature"},
		{"tampered body", func() events.APIGatewayV2HTTPRequest {
			r := request(body)
			r.Body = strings.Replace(r.Body, `"123"`, `"456"`, 1)
			return r
		}, 401, "invalid signature"},
		{"signature over another body", func() events.APIGatewayV2HTTPRequest {
			return request(body, "authorization", request(success("1002")).Headers["authorization"])
		}, 401, "invalid signature"},
		{"too large", func() events.APIGatewayV2HTTPRequest {
			big := append([]byte(`{"pad":"`), make([]byte, webhook.MaxBodyBytes)...)
			return request(big)
		}, 413, "larger than"},
		{"too large base64", func() events.APIGatewayV2HTTPRequest {
			return base64Request(make([]byte, webhook.MaxBodyBytes+10))
		}, 413, "larger than"},
		{"bad base64", func() events.APIGatewayV2HTTPRequest {
			r := request(body)
			r.IsBase64Encoded = true
			r.Body = "%%%"
			return r
		}, 400, "not valid base64"},
		{"GET", func() events.APIGatewayV2HTTPRequest {
			r := request(body)
			r.RequestContext.HTTP.Method = http.MethodGet
			return r
		}, 405, "not allowed"},
		{"malformed JSON, signed", func() events.APIGatewayV2HTTPRequest { return request([]byte(`{"eventType":`)) }, 400, "not valid JSON"},
		{"missing runId, signed", func() events.APIGatewayV2HTTPRequest {
			return request([]byte(`{"eventType":"job.run.completed","data":{"jobId":"123","runStatus":"Success","runStatusCode":10}}`))
		}, 400, "missing data.runId"},
		{"runId as number, signed", func() events.APIGatewayV2HTTPRequest {
			return request([]byte(`{"eventType":"job.run.completed","data":{"jobId":"123","runId":5}}`))
		}, 400, `"data.runId" must be a string`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, reply := w.deliver(tt.req())
			if status != tt.wantStatus || !strings.Contains(reply.Message, tt.wantMsg) {
				t.Fatalf("got %d %q, want %d containing %q", status, reply.Message, tt.wantStatus, tt.wantMsg)
			}
		})
	}
	if n := w.totalRefreshes(); n != 0 {
		t.Errorf("rejected deliveries caused %d refreshes", n)
	}
	if n := len(w.tab.Requests()); n != 0 {
		t.Errorf("rejected deliveries reached Tableau %d times", n)
	}
}

func TestAcceptedSignatureForms(t *testing.T) {
	w := newWorld(t)
	tests := []struct {
		name string
		req  func(body []byte) events.APIGatewayV2HTTPRequest
	}{
		{"lowercase header name", func(b []byte) events.APIGatewayV2HTTPRequest { return request(b) }},
		{"Authorization capitalised", func(b []byte) events.APIGatewayV2HTTPRequest {
			r := request(b)
			r.Headers["Authorization"] = r.Headers["authorization"]
			delete(r.Headers, "authorization")
			return r
		}},
		{"uppercase hex", func(b []byte) events.APIGatewayV2HTTPRequest {
			r := request(b)
			r.Headers["authorization"] = strings.ToUpper(r.Headers["authorization"])
			return r
		}},
		{"base64 body", func(b []byte) events.APIGatewayV2HTTPRequest { return base64Request(b) }},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := payload(fmt.Sprint(2000+i), "999", "Success", 10, time.Now()) // unmapped job: verified, then nothing to do
			status, reply := w.deliver(tt.req(body))
			if status != 200 || !strings.Contains(reply.Message, "no Tableau targets are mapped to dbt job 999") {
				t.Fatalf("got %d %q", status, reply.Message)
			}
		})
	}
}

func TestNothingToDo(t *testing.T) {
	w := newWorld(t, func(env map[string]string) { env["WEBHOOK_MAX_EVENT_AGE"] = "1h" })
	tests := []struct {
		name, want string
		body       []byte
	}{
		{"errored run", "run status \"Errored\" (20)", payload("3001", jobID, "Errored", 20, time.Now())},
		{"cancelled run", "run status \"Cancelled\" (30)", payload("3002", jobID, "Cancelled", 30, time.Now())},
		{"started event", "job.run.started", []byte(strings.Replace(string(success("3003")), "job.run.completed", "job.run.started", 1))},
		{"errored event", "job.run.errored", []byte(strings.Replace(string(success("3004")), "job.run.completed", "job.run.errored", 1))},
		{"stale replay", "ignored as a replay", payload("3005", jobID, "Success", 10, time.Now().Add(-2*time.Hour))},
		{"unmapped job", "no Tableau targets are mapped to dbt job 4242", payload("3006", "4242", "Success", 10, time.Now())},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, reply := w.deliver(request(tt.body))
			if status != 200 || !strings.Contains(reply.Message, tt.want) || len(reply.Targets) != 0 {
				t.Fatalf("got %d %+v, want 200 with %q", status, reply, tt.want)
			}
		})
	}
	if n := w.totalRefreshes(); n != 0 {
		t.Errorf("%d refreshes for events that need none", n)
	}
}

// The replay guard rejects old events; a signed event dated far ahead would
// pass it for as long, and one without a date cannot be judged at all. Both
// are refused with the reason, and refresh nothing; dbt's "Test endpoint"
// delivery, which is no successful run, still gets its 200.
func TestEventDates(t *testing.T) {
	w := newWorld(t)
	undated := func(b []byte) []byte {
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		delete(m, "timestamp")
		out, _ := json.Marshal(m)
		return out
	}
	tests := []struct {
		name, want string
		status     int
		body       []byte
		refreshed  int
	}{
		{"dated 2099", "ahead of this function's clock", 400, payload("6001", jobID, "Success", 10, time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)), 0},
		{"an hour ahead", "ahead of this function's clock (more than the 5m0s allowed)", 400, payload("6002", jobID, "Success", 10, time.Now().Add(time.Hour)), 0},
		{"no timestamp", "event has no timestamp", 400, undated(success("6003")), 0},
		{"a minute ahead (clock skew)", "3 targets settled", 200, payload("6004", jobID, "Success", 10, time.Now().Add(time.Minute)), 3},
		{"test delivery without a timestamp", "nothing to do", 200, undated(payload("6005", jobID, "Running", 3, time.Now())), 0},
		{"test delivery dated ahead", "nothing to do", 200, []byte(strings.Replace(string(payload("6006", jobID, "Success", 10, time.Now().Add(time.Hour))), "job.run.completed", "job.run.started", 1)), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := w.totalRefreshes()
			status, reply := w.deliver(request(tt.body))
			if status != tt.status || !strings.Contains(reply.Message, tt.want) {
				t.Fatalf("got %d %q, want %d with %q", status, reply.Message, tt.status, tt.want)
			}
			if n := w.totalRefreshes() - before; n != tt.refreshed {
				t.Errorf("%d refreshes, want %d", n, tt.refreshed)
			}
		})
	}
}

func TestRefreshesEveryTargetOnce(t *testing.T) {
	w := newWorld(t)
	status, reply := w.deliver(request(success("5001")))
	if status != 200 || results(reply) != "refreshed,refreshed,refreshed" {
		t.Fatalf("first delivery: %d %+v", status, reply)
	}
	for _, o := range reply.Targets {
		if o.JobID == "" {
			t.Errorf("target %s has no Tableau job id", o.Name)
		}
	}
	if reply.RunID != "5001" || reply.JobID != jobID {
		t.Errorf("reply names run %q job %q", reply.RunID, reply.JobID)
	}
	// A redelivery after success does nothing, and says so.
	status, again := w.deliver(request(success("5001")))
	if status != 200 || results(again) != "duplicate,duplicate,duplicate" {
		t.Fatalf("redelivery: %d %+v", status, again)
	}
	for i, o := range again.Targets {
		if o.JobID != reply.Targets[i].JobID {
			t.Errorf("duplicate of %s reports job %q, want %q", o.Name, o.JobID, reply.Targets[i].JobID)
		}
	}
	for _, name := range []string{"Sales Overview", "Orders", "Customers"} {
		if n := w.refreshes(name); n != 1 {
			t.Errorf("%s refreshed %d times, want 1", name, n)
		}
	}
	// A new run of the same job refreshes again; Tableau still has the first
	// jobs queued, so it answers 409093: counted as already queued, not failed.
	status, next := w.deliver(request(success("5002")))
	if status != 200 || results(next) != "already_queued,already_queued,already_queued" {
		t.Fatalf("second run: %d %+v", status, next)
	}
}

func TestConcurrentDeliveriesRefreshOnce(t *testing.T) {
	w := newWorld(t)
	body := success("6001")
	var wg sync.WaitGroup
	statuses := make([]int, 20)
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i], _ = w.deliver(request(body))
		}()
	}
	wg.Wait()
	for _, name := range []string{"Sales Overview", "Orders", "Customers"} {
		if n := w.refreshes(name); n != 1 {
			t.Errorf("%s refreshed %d times by 20 concurrent deliveries, want 1", name, n)
		}
	}
	for _, s := range statuses {
		// 503 is a delivery that met another's claim in progress: it asks
		// dbt to retry rather than risk dropping the target.
		if s != 200 && s != 503 {
			t.Errorf("unexpected status %d", s)
		}
	}
	// After the dust settles every delivery would be answered 200 duplicate.
	if status, reply := w.deliver(request(body)); status != 200 || results(reply) != "duplicate,duplicate,duplicate" {
		t.Errorf("after concurrent deliveries: %d %+v", status, reply)
	}
}

func TestRetryRefreshesOnlyFailedTargets(t *testing.T) {
	w := newWorld(t)
	w.tab.Inject(tableautest.Fault{Method: "POST", Path: w.ids["Orders"] + "/refresh", Status: 503})
	status, reply := w.deliver(request(success("7001")))
	if status != 503 || results(reply) != "refreshed,failed,refreshed" || !reply.Targets[1].Retryable {
		t.Fatalf("with Orders failing: %d %+v", status, reply)
	}
	if !strings.Contains(reply.Targets[1].Error, "503") {
		t.Errorf("failure reason %q does not name the 503", reply.Targets[1].Error)
	}
	w.tab.ClearFaults()
	status, reply = w.deliver(request(success("7001")))
	if status != 200 || results(reply) != "duplicate,refreshed,duplicate" {
		t.Fatalf("retry: %d %+v", status, reply)
	}
	for _, name := range []string{"Sales Overview", "Orders", "Customers"} {
		if n := w.refreshes(name); n != 1 {
			t.Errorf("%s refreshed %d times, want 1", name, n)
		}
	}
}

func TestPermanentFailuresAnswer200(t *testing.T) {
	w := newWorld(t, func(env map[string]string) {
		env["REFRESH_MAP"] = `{"jobs":{"123":[{"workbook":"Static"},{"workbook":"Nope","project":"Finance"},{"workbook":"Sales Overview"},{"datasource":"Orders"}]}}`
	})
	status, reply := w.deliver(request(success("8001")))
	if status != 200 || results(reply) != "failed,failed,failed,refreshed" {
		t.Fatalf("got %d %+v", status, reply)
	}
	for i, want := range []string{"no extract", `"Nope"`, `"Finance", "Sandbox"`} {
		o := reply.Targets[i]
		if o.Retryable || !strings.Contains(strings.ToLower(o.Error), strings.ToLower(want)) {
			t.Errorf("target %s: error %q retryable=%v, want a permanent error mentioning %q", o.Name, o.Error, o.Retryable, want)
		}
	}
	if !strings.Contains(w.logs.String(), `"level":"ERROR"`) {
		t.Error("permanent failures were not logged at error level")
	}
}

func TestCrashAfterClaimIsRetriedAfterExpiry(t *testing.T) {
	w := newWorld(t, func(env map[string]string) {
		env["REFRESH_MAP"] = `{"jobs":{"123":[{"datasource":"Orders"}]}}`
	})
	// An invocation with one second left claimed the target and died.
	hold := time.Now().Add(time.Second)
	key := state.Key{RunID: "9001", Target: refreshmap.Target{Kind: refreshmap.Datasource, Name: "Orders"}.Key()}
	if err := w.app.Store.Begin(context.Background(), state.Claim{Key: key, Owner: "crashed", HoldUntil: hold, Retention: time.Hour}); err != nil {
		t.Fatal(err)
	}
	status, reply := w.deliver(request(success("9001")))
	if status != 503 || results(reply) != "in_progress" {
		t.Fatalf("while the claim holds: %d %+v", status, reply)
	}
	time.Sleep(time.Until(hold) + 10*time.Millisecond)
	status, reply = w.deliver(request(success("9001")))
	if status != 200 || results(reply) != "refreshed" || w.refreshes("Orders") != 1 {
		t.Fatalf("after the claim lapsed: %d %+v, %d refreshes", status, reply, w.refreshes("Orders"))
	}
}

func TestSecretsUnavailable(t *testing.T) {
	w := newWorld(t, func(env map[string]string) { env["SECRET_ID"] = "no-such-secret" })
	status, reply := w.deliver(request(success("9101")))
	if status != 503 || !strings.Contains(reply.Message, "credentials unavailable") {
		t.Fatalf("got %d %+v", status, reply)
	}
}

func TestLogsHoldNoSecrets(t *testing.T) {
	w := newWorld(t)
	req := request(success("9201"))
	w.deliver(req)
	w.tab.ExpireSessions() // force a second sign-in, so its token is in play too
	w.deliver(request(success("9202")))
	w.deliver(request(success("9201"), "authorization", "deadbeef"))
	logs := w.logs.String()
	if !strings.Contains(logs, `"dbt_run_id":"9201"`) || !strings.Contains(logs, "tableau_job_id") ||
		!strings.Contains(logs, `"request_id":"`+req.RequestContext.RequestID+`"`) {
		t.Fatalf("logs lack run and job ids:\n%s", logs)
	}
	forbidden := map[string]string{
		"dbt webhook secret": webhookSecret, "PAT secret": patSecret, "signature": req.Headers["authorization"],
	}
	for _, r := range w.tab.Requests() {
		if tok := r.Header.Get("X-Tableau-Auth"); tok != "" {
			forbidden["session token "+tok[:4]] = tok
		}
	}
	for what, s := range forbidden {
		if strings.Contains(logs, s) {
			t.Errorf("logs contain the %s", what)
		}
	}
}

func TestNewRequiresDependencies(t *testing.T) {
	if _, err := webhook.NewDBT(nil, nil, nil); err == nil {
		t.Error("New without dependencies succeeded")
	}
}

// The sample events in events/ are the documented way to try the function;
// each must give the answer the README promises.
func TestSampleEvents(t *testing.T) {
	d := demo.Start()
	defer d.Close()
	env := map[string]string{"WEBHOOK_MAX_EVENT_AGE": "876000h", "IDEMPOTENCY_RETENTION": "876001h"}
	for k, v := range d.Env {
		env[k] = v
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	cfg, err := config.FromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.Build(context.Background(), cfg, logging.New(io.Discard, slog.LevelInfo))
	if err != nil {
		t.Fatal(err)
	}
	h, err := a.WebhookRouter()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		file    string
		status  int
		results string
	}{
		// The demo: one target from the map, five found by lineage.
		{"dbt-run-succeeded.json", 200, "refreshed,refreshed,refreshed,refreshed,refreshed,refreshed"},
		{"dbt-run-errored.json", 200, ""},
		{"dbt-bad-signature.json", 401, ""},
		// Another run of the same job while the first refreshes are queued.
		{"dbt-run-succeeded-base64.json", 200, "already_queued,already_queued,already_queued,already_queued,already_queued,already_queued"},
		{"tableau-refresh-failed.json", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("..", "..", "events", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			var req events.APIGatewayV2HTTPRequest
			if err := json.Unmarshal(data, &req); err != nil {
				t.Fatal(err)
			}
			resp, err := h.Handle(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			var reply webhook.DBTReply
			if err := json.Unmarshal([]byte(resp.Body), &reply); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.status || results(reply) != tt.results {
				t.Fatalf("got %d %+v, want %d %q", resp.StatusCode, reply, tt.status, tt.results)
			}
		})
	}
}

// A revoked or mistyped PAT is the bridge's own problem, not the targets':
// every delivery answers 503 so that dbt redelivers, one notification says
// what to fix and where, and the first delivery after the fix refreshes.
func TestTableauRejectsTheBridgesCredentials(t *testing.T) {
	ctx := context.Background()
	topic, err := sn.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(fmt.Sprintf("failures-%d", seq.Add(1)))})
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, func(env map[string]string) {
		env["NOTIFY_TOPIC_ARN"] = *topic.TopicArn
		env["SECRET_CACHE_TTL"] = "1ms" // the fix is read at once
	})
	w.tab.RevokePAT(patName)

	for i := range 2 {
		status, reply := w.deliver(request(success("9001")))
		if status != http.StatusServiceUnavailable {
			t.Fatalf("delivery %d with a revoked PAT: %d %+v, want 503 so that dbt redelivers", i+1, status, reply)
		}
		if !strings.Contains(reply.Message, `personal access token "refresh-bot"`) || !strings.Contains(reply.Message, "401001") {
			t.Errorf("delivery %d: message %q should name the PAT and Tableau's code", i+1, reply.Message)
		}
		for _, o := range reply.Targets {
			if o.Result != state.OutcomeFailed || !o.Retryable {
				t.Errorf("delivery %d: target %s: %+v, want failed and retryable", i+1, o.Name, o)
			}
		}
	}
	if n := w.totalRefreshes(); n != 0 {
		t.Fatalf("%d refreshes with a revoked PAT", n)
	}
	msgs, err := moto.SNSMessages(ctx, *topic.TopicArn)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 {
		t.Fatalf("%d notifications over two deliveries, want 1: %+v", len(msgs), msgs)
	}
	for _, want := range []string{"Tableau rejected the bridge's credentials", `personal access token "refresh-bot"`, "Secrets Manager secret " + w.secret} {
		if !strings.Contains(msgs[0].Message, want) {
			t.Errorf("notification %q does not say %q", msgs[0].Message, want)
		}
	}

	// The operator puts a new PAT in the secret; dbt's next redelivery
	// refreshes.
	w.tab.AddPAT("refresh-bot-2", "new-pat-secret-never-logged")
	fixed := fmt.Sprintf(`{"dbt_webhook_secret":%q,"tableau_pat_name":"refresh-bot-2","tableau_pat_secret":"new-pat-secret-never-logged"}`, webhookSecret)
	if _, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: &w.secret, SecretString: &fixed}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond) // past the cache's 1ms
	status, reply := w.deliver(request(success("9001")))
	if status != http.StatusOK || results(reply) != "refreshed,refreshed,refreshed" {
		t.Fatalf("delivery after the fix: %d %+v, want every target refreshed", status, reply)
	}
	if strings.Contains(w.logs.String(), "never-logged") || strings.Contains(msgs[0].Message, "never-logged") {
		t.Error("a secret reached the logs or the notification")
	}
}

// An event that is no HTTP API request (a scheduled event sent to the wrong
// function, say) gets a 404 and a log line that says why; a path, which may
// carry the Tableau route's token, is not logged.
func TestRouterLogsUnroutedEvents(t *testing.T) {
	logs := &syncBuffer{}
	called := false
	h := webhook.NewRouter(map[string]webhook.HTTPHandler{webhook.DBTRoute: func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		called = true
		return events.APIGatewayV2HTTPResponse{StatusCode: 200}, nil
	}}, logging.New(logs, slog.LevelInfo))
	var scheduled events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal([]byte(`{"follow": true}`), &scheduled); err != nil {
		t.Fatal(err)
	}
	wrongRoute := events.APIGatewayV2HTTPRequest{Version: "2.0", RouteKey: "POST /tableau/webhook/{token}", RawPath: "/tableau/webhook/secret-token-never-logged"}
	for _, req := range []events.APIGatewayV2HTTPRequest{scheduled, wrongRoute} {
		resp, err := h.Handle(context.Background(), req)
		if err != nil || resp.StatusCode != http.StatusNotFound {
			t.Fatalf("route %q: %d, %v; want 404", req.RouteKey, resp.StatusCode, err)
		}
	}
	if called {
		t.Error("an unrouted event reached a handler")
	}
	if n := strings.Count(logs.String(), "matches no route"); n != 2 {
		t.Errorf("%d log lines for two unrouted events:\n%s", n, logs)
	}
	if strings.Contains(logs.String(), "never-logged") {
		t.Error("the raw path reached the log")
	}
}
