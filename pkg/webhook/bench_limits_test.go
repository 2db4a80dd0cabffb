package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dynamo"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/lineage"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/logging"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refresh"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refreshmap"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/remote"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/secrets"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau/tableautest"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/webhook"
)

// manyTargetsRun is one dbt run mapped to many targets on a Tableau Cloud
// site: the simulator with 50 ms per call and Tableau Cloud's limit of 20
// refreshes in flight per site, answered 429 with Retry-After: 1 beyond it.
type manyTargetsRun struct {
	handler *webhook.DBTHandler
	ref     *refresh.Refresher
	tab     *tableautest.Server
	store   state.Deferrals
	ids     []string
}

func newManyTargetsRun(tb testing.TB, targets, concurrency int, inMoto bool) *manyTargetsRun {
	tb.Helper()
	ctx := context.Background()
	tab := tableautest.NewServer(tableautest.WithJobTimings(0, 0), tableautest.WithConcurrencyLimit(20, time.Second))
	tb.Cleanup(tab.Close)
	tab.AddPAT(patName, patSecret)
	r := &manyTargetsRun{tab: tab}
	var entries []string
	for i := range targets {
		// Half by name, half by LUID, as real maps mix them: a name costs a
		// search the first time.
		name := fmt.Sprintf("Workbook %04d", i)
		id := tab.AddWorkbook(name, "Finance")
		r.ids = append(r.ids, id)
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
	secretName := fmt.Sprintf("many-targets-secret-%d-%d", n, time.Now().UnixNano())
	secretJSON := fmt.Sprintf(`{"dbt_webhook_secret":%q,"tableau_pat_name":%q,"tableau_pat_secret":%q}`, webhookSecret, patName, patSecret)
	if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: &secretName, SecretString: &secretJSON}); err != nil {
		tb.Fatal(err)
	}
	mem := state.NewMemory()
	var store interface {
		state.Idempotency
		state.TableauJobs
		state.Deferrals
	} = mem
	var sessions tableau.SessionStore = tableau.NewMemorySessionStore()
	if inMoto {
		table := fmt.Sprintf("many-targets-%d", n)
		if err := dynamo.CreateTable(ctx, db, table); err != nil {
			tb.Fatal(err)
		}
		cfg, err := moto.AWSConfig(ctx)
		if err != nil {
			tb.Fatal(err)
		}
		tbl, err := dynamo.New(dynamo.NewClient(cfg), table)
		if err != nil {
			tb.Fatal(err)
		}
		store, sessions = tbl, tbl
	}
	r.store = store
	logger := logging.New(io.Discard, slog.LevelInfo)
	// The deployed retry policy: Retry-After honoured up to 10 s.
	client, err := tableau.NewClient(tab.URL(), tableau.WithPAT(patName, patSecret), tableau.WithSessionStore(sessions),
		tableau.WithLogger(logger), tableau.WithRetryPolicy(remote.DefaultPolicy()))
	if err != nil {
		tb.Fatal(err)
	}
	if err := client.SignIn(ctx); err != nil { // a warm instance
		tb.Fatal(err)
	}
	r.ref = refresh.New(store, client, refresh.WithJobs(store), refresh.WithDeferrals(store), refresh.WithConcurrency(concurrency), refresh.WithLogger(logger))
	src := secrets.NewCache(sm, secretName, secrets.WithLogger(logger))
	if r.handler, err = webhook.NewDBT(src, r.ref, lineage.MapOnly(m), webhook.WithLogger(logger)); err != nil {
		tb.Fatal(err)
	}
	tab.SetLatency(50 * time.Millisecond)
	return r
}

// deliver is dbt's delivery of run, in a Lambda with 12 s to live.
func (r *manyTargetsRun) deliver(tb testing.TB, run string) (int, webhook.DBTReply, time.Duration) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Second)
	defer cancel()
	start := time.Now()
	resp, err := r.handler.Handle(ctx, request(success(run)))
	took := time.Since(start)
	if err != nil {
		tb.Fatal(err)
	}
	var reply webhook.DBTReply
	if err := json.Unmarshal([]byte(resp.Body), &reply); err != nil {
		tb.Fatal(err)
	}
	return resp.StatusCode, reply, took
}

// BenchmarkManyTargets is one dbt run mapped to 1,000 targets on one Tableau
// Cloud site (50 ms a call; 429 with Retry-After beyond 20 refreshes in
// flight): the webhook's reply time, the 429s the site sent, the targets
// deferred, the follow-ups (back to back here; five minutes apart when
// deployed) and dbt redeliveries it took to queue every target, and
// refreshes per target, which must be exactly 1. TABLEAU_CONCURRENCY is 10
// (the default) or 30 (more than the site takes); state is in memory, or in
// moto_server through the SDK (slower than DynamoDB: a moto round trip is
// milliseconds, one at a time).
//
//	go test -run '^$' -bench ManyTargets -benchtime 1x ./pkg/webhook/
func BenchmarkManyTargets(b *testing.B) {
	const targets = 1000
	for _, c := range []struct {
		state       string
		concurrency int
	}{{"memory", 10}, {"memory", 30}, {"memory", 100}, {"moto", 10}} {
		b.Run(fmt.Sprintf("state=%s/concurrency=%d", c.state, c.concurrency), func(b *testing.B) {
			var reply, deferred, followUps, redeliveries, throttled, peak float64
			for range b.N {
				b.StopTimer()
				r := newManyTargetsRun(b, targets, c.concurrency, c.state == "moto")
				run := fmt.Sprint(benchRun.Add(1))
				b.StartTimer()
				status, rep, took := r.deliver(b, run)
				b.StopTimer()
				reply += took.Seconds()
				for _, o := range rep.Targets {
					if o.Result == state.OutcomeDeferred {
						deferred++
					}
				}
				// dbt redelivers a 503 (a target failed retryably); the
				// follow-ups queue what was deferred.
				for i := 0; status != http.StatusOK; i++ {
					if i == 5 {
						b.Fatalf("still %d after 5 redeliveries: %s", status, rep.Message)
					}
					redeliveries++
					status, rep, _ = r.deliver(b, run)
				}
				for i := 0; ; i++ {
					ds, err := r.store.DeferredTargets(context.Background())
					if err != nil {
						b.Fatal(err)
					}
					if len(ds) == 0 {
						break
					}
					if i == 10 {
						b.Fatalf("%d targets still deferred after 10 follow-ups", len(ds))
					}
					followUps++
					ctx, cancel := context.WithTimeout(context.Background(), 14*time.Minute)
					if _, err := r.ref.QueueDeferred(ctx, time.Now().Add(15*time.Minute)); err != nil {
						b.Fatal(err)
					}
					cancel()
				}
				for i, id := range r.ids {
					if n := r.tab.RefreshCount(id); n != 1 {
						b.Fatalf("target %d refreshed %d times, want exactly 1", i, n)
					}
				}
				throttled += float64(r.tab.Throttled())
				peak = max(peak, float64(r.tab.PeakInFlight()))
			}
			n := float64(b.N)
			b.ReportMetric(reply/n, "reply-s")
			b.ReportMetric(throttled/n, "429s")
			b.ReportMetric(deferred/n, "deferred")
			b.ReportMetric(followUps/n, "follow-ups")
			b.ReportMetric(redeliveries/n, "redeliveries")
			b.ReportMetric(peak, "peak-in-flight")
			b.ReportMetric(1, "refreshes/target") // checked above: exactly one each
		})
	}
}
