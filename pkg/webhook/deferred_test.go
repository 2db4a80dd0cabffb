package webhook_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/logging"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refresh"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refreshmap"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/scheduler"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau/tableautest"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/webhook"
)

// TestDeliveryDefersWhatTableauCannotTake: with TABLEAU_CONCURRENCY=1 and
// that one place taken by another run's refresh, which Tableau holds, a
// delivery cannot queue its three targets in its time. The reply is a 200
// that lists them deferred; a redelivery meanwhile does not queue them
// twice; the five-minute follow-up (the deployed scheduler's handler)
// queues each once, and a later redelivery finds them done.
func TestDeliveryDefersWhatTableauCannotTake(t *testing.T) {
	w := newWorld(t, func(env map[string]string) { env["TABLEAU_CONCURRENCY"] = "1" })
	logger := logging.New(w.logs, slog.LevelDebug)
	// A short time to queue in, so that the test does not wait dbt's 8 s.
	h, err := webhook.NewDBT(w.app.Secrets, w.app.Refresher, w.app.Planner, webhook.WithLogger(logger), webhook.WithRefreshTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	deliver := func(run string) (int, webhook.DBTReply) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 12*time.Second)
		defer cancel()
		resp, err := h.Handle(ctx, request(success(run)))
		if err != nil {
			t.Fatal(err)
		}
		var reply webhook.DBTReply
		if err := json.Unmarshal([]byte(resp.Body), &reply); err != nil {
			t.Fatalf("reply is not JSON: %q", resp.Body)
		}
		return resp.StatusCode, reply
	}

	// Another run's refresh takes the one place and stays with Tableau.
	held := w.tab.AddWorkbook("Held", "Finance")
	w.tab.Inject(tableautest.Fault{Path: held, Latency: time.Hour})
	ctx, release := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.app.Refresher.Refresh(ctx, refresh.Run{RunID: "other", DBTJobID: "999"},
			refresh.MapTargets([]refreshmap.Target{{Kind: refreshmap.Workbook, ID: held}}, "999"), time.Now().Add(time.Minute))
	}()
	eventually(t, "the place taken", func() bool { return w.tab.PeakInFlight() == 1 })

	status, reply := deliver("8001")
	if status != 200 || results(reply) != "deferred,deferred,deferred" {
		t.Fatalf("delivery: %d %+v", status, reply)
	}
	if !strings.Contains(reply.Message, "3 deferred") || !strings.Contains(reply.Message, "follow-up") {
		t.Errorf("message %q does not say the targets were deferred", reply.Message)
	}
	for _, o := range reply.Targets {
		if o.Retryable || !strings.Contains(o.Error, "1 refreshes at a time") {
			t.Errorf("deferred %s: %+v", o.Name, o)
		}
	}
	// dbt redelivers (a lost reply, say) while they are deferred: still no
	// place, still deferred, still a 200.
	if status, again := deliver("8001"); status != 200 || results(again) != "deferred,deferred,deferred" {
		t.Fatalf("redelivery while deferred: %d %+v", status, again)
	}
	release()
	<-done
	if n := w.totalRefreshes(); n != 0 {
		t.Fatalf("%d refreshes before the follow-up, want 0", n)
	}

	sched, err := w.app.Scheduler()
	if err != nil {
		t.Fatal(err)
	}
	res, err := sched.Handle(context.Background(), scheduler.Event{Follow: true})
	if err != nil || res.Deferred == nil || *res.Deferred != (refresh.DeferredResult{Found: 3, Queued: 3}) {
		t.Fatalf("follow-up: %+v, %v; want the 3 queued", res.Deferred, err)
	}
	for _, name := range []string{"Sales Overview", "Orders", "Customers"} {
		if n := w.refreshes(name); n != 1 {
			t.Errorf("%s refreshed %d times, want 1", name, n)
		}
	}
	if status, later := deliver("8001"); status != 200 || results(later) != "duplicate,duplicate,duplicate" {
		t.Errorf("redelivery after the follow-up: %d %+v", status, later)
	}
	if res, err := sched.Handle(context.Background(), scheduler.Event{Follow: true}); err != nil || res.Deferred != nil {
		t.Errorf("second follow-up: %+v, %v; want nothing deferred", res.Deferred, err)
	}
	ds, err := w.app.Deferred.DeferredTargets(context.Background())
	if err != nil || len(ds) != 0 {
		t.Errorf("deferred targets left: %+v, %v", ds, err)
	}
	sum, err := w.app.Jobs.RunSummary(context.Background(), "8001")
	if err != nil || len(sum) != 3 {
		t.Fatalf("run summary: %+v, %v", sum, err)
	}
	for _, s := range sum {
		if s.Status != state.StatusCompleted || s.Outcome != state.OutcomeRefreshed || s.JobID == "" || s.Source != string(refresh.SourceMap) {
			t.Errorf("record %+v: want COMPLETED, refreshed, with its job and source", s.Record)
		}
	}
}

// eventually polls cond until it holds; the deadline is generous because the
// machine may be busy. Nothing asserts how long it took.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
