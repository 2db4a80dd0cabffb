package webhook_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dynamo"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/lineage"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/logging"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refresh"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refreshmap"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/secrets"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/status"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau/tableautest"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/webhook"
)

// countingDB counts DynamoDB requests on their way to moto_server.
type countingDB struct {
	*dynamodb.Client
	n atomic.Int64
}

func (c *countingDB) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	c.n.Add(1)
	return c.Client.PutItem(ctx, in, o...)
}
func (c *countingDB) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	c.n.Add(1)
	return c.Client.GetItem(ctx, in, o...)
}
func (c *countingDB) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	c.n.Add(1)
	return c.Client.UpdateItem(ctx, in, o...)
}
func (c *countingDB) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	c.n.Add(1)
	return c.Client.DeleteItem(ctx, in, o...)
}
func (c *countingDB) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	c.n.Add(1)
	return c.Client.Query(ctx, in, o...)
}

type countingSM struct {
	n atomic.Int64
}

func (c *countingSM) GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, o ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	c.n.Add(1)
	return sm.GetSecretValue(ctx, in, o...)
}

// benchDeployment is the webhook function wired as in production — the real
// SDK against moto_server, the Tableau client against the simulator — with
// every external request counted.
type benchDeployment struct {
	handler *webhook.DBTHandler
	tab     *tableautest.Server
	db      *countingDB
	sm      *countingSM
}

func newBenchDeployment(tb testing.TB, targets int, latency time.Duration, memoryState bool) *benchDeployment {
	tb.Helper()
	ctx := context.Background()
	tab := tableautest.NewServer(tableautest.WithJobTimings(0, 0))
	tb.Cleanup(tab.Close)
	tab.AddPAT(patName, patSecret)
	var entries []string
	for i := range targets {
		// Half by name, half by LUID, as real maps mix them.
		name := fmt.Sprintf("Workbook %02d", i)
		id := tab.AddWorkbook(name, "Finance")
		if i%2 == 0 {
			entries = append(entries, fmt.Sprintf(`{"workbook":%q,"project":"Finance"}`, name))
		} else {
			entries = append(entries, fmt.Sprintf(`{"workbook_id":%q}`, id))
		}
	}
	m, err := refreshmap.Parse([]byte(`{"jobs":{"123":[` + strings.Join(entries, ",") + `]}}`))
	if err != nil {
		tb.Fatal(err)
	}
	n := seq.Add(1)
	d := &benchDeployment{tab: tab, db: &countingDB{Client: db}, sm: &countingSM{}}
	secretName := fmt.Sprintf("bench-secret-%d-%d", n, time.Now().UnixNano())
	secretJSON := fmt.Sprintf(`{"dbt_webhook_secret":%q,"tableau_pat_name":%q,"tableau_pat_secret":%q}`, webhookSecret, patName, patSecret)
	if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: &secretName, SecretString: &secretJSON}); err != nil {
		tb.Fatal(err)
	}
	table := fmt.Sprintf("bench-%d", n)
	if err := dynamo.CreateTable(ctx, db, table); err != nil {
		tb.Fatal(err)
	}
	tbl, err := dynamo.New(d.db, table)
	if err != nil {
		tb.Fatal(err)
	}
	var store state.Idempotency = tbl
	var jobs state.TableauJobs = tbl
	var statuses state.TargetStatuses = tbl
	if memoryState {
		mem := state.NewMemory()
		store, jobs, statuses = mem, mem, mem
	}
	logger := logging.New(io.Discard, slog.LevelInfo)
	client, err := tableau.NewClient(tab.URL(), tableau.WithPAT(patName, patSecret), tableau.WithSessionStore(tbl), tableau.WithLogger(logger))
	if err != nil {
		tb.Fatal(err)
	}
	src := secrets.NewCache(d.sm, secretName, secrets.WithLogger(logger))
	// The status page's Recorder as in production: a queued refresh must
	// cost it no request.
	ref := refresh.New(store, client, refresh.WithJobs(jobs), refresh.WithLogger(logger), refresh.WithStatus(status.NewRecorder(statuses)))
	if d.handler, err = webhook.NewDBT(src, ref, lineage.MapOnly(m), webhook.WithLogger(logger)); err != nil {
		tb.Fatal(err)
	}
	tab.SetLatency(latency)
	return d
}

func (d *benchDeployment) deliver(tb testing.TB, runID int) events.APIGatewayV2HTTPResponse {
	resp, err := d.handler.Handle(context.Background(), request(success(fmt.Sprint(runID))))
	if err != nil || resp.StatusCode != 200 || strings.Contains(resp.Body, `"failed"`) {
		tb.Fatalf("delivery %d: %d %s %v", runID, resp.StatusCode, resp.Body, err)
	}
	return resp
}

var benchRun atomic.Int64

// BenchmarkWarmWebhook is one warm delivery of a successful run, in process:
// signature, parse, claims, refreshes and records. State is in memory so
// that the figure is this code and Tableau's latency, not moto_server's.
//
//	go test -run '^$' -bench WarmWebhook ./pkg/webhook/
func BenchmarkWarmWebhook(b *testing.B) {
	for _, latency := range []time.Duration{0, 50 * time.Millisecond} {
		for _, targets := range []int{1, 10} {
			b.Run(fmt.Sprintf("tableau-latency=%dms/targets=%d", latency.Milliseconds(), targets), func(b *testing.B) {
				d := newBenchDeployment(b, targets, latency, true)
				d.deliver(b, int(benchRun.Add(1))) // cold: sign in, search, read the secret
				lat := make([]time.Duration, 0, b.N)
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					start := time.Now()
					d.deliver(b, int(benchRun.Add(1)))
					lat = append(lat, time.Since(start))
				}
				b.StopTimer()
				if extra := len(d.tab.Requests()) - (b.N+1)*targets; extra > 0 {
					b.Logf("%d Tableau requests beyond one refresh per target (cold start, retries)", extra)
				}
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			})
		}
	}
}

// BenchmarkWebhookRequests counts the external requests of a webhook with
// one mapped target, against the real SDK and moto_server: the cold first
// delivery, then warm deliveries. Goals: one Tableau request (the refresh),
// two DynamoDB requests per target (claim; complete with the job to
// follow), at most one Secrets Manager read per cache period.
//
//	go test -run '^$' -bench WebhookRequests -benchtime 1000x ./pkg/webhook/
func BenchmarkWebhookRequests(b *testing.B) {
	d := newBenchDeployment(b, 1, 0, false)
	d.deliver(b, int(benchRun.Add(1)))
	cold := []float64{float64(len(d.tab.Requests())), float64(d.db.n.Load()), float64(d.sm.n.Load())}
	d.tab.ResetRequests()
	d.db.n.Store(0)
	d.sm.n.Store(0)
	b.ResetTimer()
	for range b.N {
		d.deliver(b, int(benchRun.Add(1)))
	}
	b.StopTimer()
	b.ReportMetric(float64(len(d.tab.Requests()))/float64(b.N), "tableau-req/op")
	b.ReportMetric(float64(d.db.n.Load())/float64(b.N), "dynamodb-req/op")
	b.ReportMetric(float64(d.sm.n.Load())*1000/float64(b.N), "secrets-req/1000op")
	// Reported last: ResetTimer drops metrics reported before it.
	b.ReportMetric(cold[0], "cold-tableau-req")
	b.ReportMetric(cold[1], "cold-dynamodb-req")
	b.ReportMetric(cold[2], "cold-secrets-req")
}

// TestWarmWebhookRequests pins the request budget the benchmark reports.
func TestWarmWebhookRequests(t *testing.T) {
	d := newBenchDeployment(t, 1, 0, false)
	d.deliver(t, int(benchRun.Add(1)))
	d.tab.ResetRequests()
	d.db.n.Store(0)
	d.sm.n.Store(0)
	const n = 20
	for range n {
		d.deliver(t, int(benchRun.Add(1)))
	}
	reqs := d.tab.Requests()
	if len(reqs) != n || !strings.HasSuffix(reqs[0].Path, "/refresh") {
		t.Errorf("%d Tableau requests for %d warm deliveries, want only the %d refreshes", len(reqs), n, n)
	}
	// Claim, then complete with the job to follow.
	if got := d.db.n.Load(); got != 2*n {
		t.Errorf("%d DynamoDB requests for %d warm deliveries of one target, want %d", got, n, 2*n)
	}
	if got := d.sm.n.Load(); got != 0 {
		t.Errorf("%d Secrets Manager reads while the cache is fresh, want 0", got)
	}
}
