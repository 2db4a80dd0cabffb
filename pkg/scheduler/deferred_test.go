package scheduler_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dbtcloud/dbtcloudtest"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/lineage"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/logging"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refresh"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refreshmap"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/remote"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/scheduler"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
)

// TestDeferredTargetsQueuedOnce: a run maps to more targets than a slow
// Tableau site takes in a delivery's time, with room for two refreshes at a
// time. The delivery defers the rest; then three follow-ups and two
// redeliveries of the run race over them, against moto_server (whose
// conditional writes pkg/motoserver makes atomic), with room for two more
// each. Follow-ups run until none is left: every target is refreshed exactly
// once, by whichever invocation claimed it, and nothing stays deferred.
func TestDeferredTargetsQueuedOnce(t *testing.T) {
	const targets, places = 40, 2
	w := newWorld(t, func(*dbtcloudtest.Server) {})
	tc, err := tableau.NewClient(w.tab.URL(), tableau.WithPAT("bot", "pat-secret"), tableau.WithSessionStore(w.table),
		tableau.WithRetryPolicy(remote.Policy{MaxAttempts: 2, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	var ts []refreshmap.Target
	var ids []string
	for i := range targets {
		name := fmt.Sprintf("Deferred %02d", i)
		id := w.tab.AddWorkbook(name, "Finance")
		ids = append(ids, id)
		// Half by name: found while holding a place.
		if i%2 == 0 {
			ts = append(ts, refreshmap.Target{Kind: refreshmap.Workbook, Name: name, Project: "Finance"})
		} else {
			ts = append(ts, refreshmap.Target{Kind: refreshmap.Workbook, ID: id})
		}
	}
	run := refresh.Run{RunID: "990001", DBTJobID: "123"}
	planned := refresh.MapTargets(ts, run.DBTJobID)
	// Each refresh takes Tableau 100 ms: two at a time, a delivery's
	// 1.5 s cannot queue all 40 (which takes at least 2 s).
	w.tab.SetLatency(100 * time.Millisecond)
	ref := refresh.New(w.table, tc, refresh.WithJobs(w.table), refresh.WithDeferrals(w.table), refresh.WithClock(w.clock.Now),
		refresh.WithConcurrency(places))
	deliver := func() []refresh.Outcome {
		ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		defer cancel()
		return ref.Refresh(ctx, run, planned, w.clock.Now().Add(time.Minute))
	}
	sched, err := scheduler.New(nil, w.table.Runs(), ref, lineage.MapOnly(w.cfg.Map),
		scheduler.WithLogger(logging.New(io.Discard, slog.LevelDebug)), scheduler.WithClock(w.clock.Now, w.cfg.Sleep),
		scheduler.WithDeadline(func(context.Context) (time.Time, bool) { return w.clock.Now().Add(14 * time.Minute), true }))
	if err != nil {
		t.Fatal(err)
	}
	followUp := func() scheduler.Result {
		res, err := sched.Handle(context.Background(), scheduler.Event{Follow: true})
		if err != nil {
			t.Error(err)
		}
		return res
	}

	first := deliver()
	tally := map[state.Outcome]int{}
	for _, o := range first {
		tally[o.Result]++
	}
	if tally[state.OutcomeDeferred] == 0 || tally[state.OutcomeDeferred]+tally[state.OutcomeRefreshed] != targets {
		t.Fatalf("first delivery: %v; want some deferred, the rest refreshed", tally)
	}
	t.Logf("first delivery: %v", tally)

	// The race: three follow-ups, two redeliveries.
	var wg sync.WaitGroup
	var mu sync.Mutex
	queued := tally[state.OutcomeRefreshed]
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if res := followUp(); res.Deferred != nil {
				mu.Lock()
				queued += res.Deferred.Queued
				mu.Unlock()
			}
		}()
	}
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, o := range deliver() {
				if o.Result == state.OutcomeRefreshed {
					mu.Lock()
					queued++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()

	// Follow-ups until nothing is deferred; each has room for all by now.
	for i := 0; ; i++ {
		res := followUp()
		if res.Deferred == nil {
			break
		}
		queued += res.Deferred.Queued
		if i == 10 {
			t.Fatalf("still deferred after %d more follow-ups: %+v", i+1, *res.Deferred)
		}
	}
	if ds, err := w.table.DeferredTargets(context.Background()); err != nil || len(ds) != 0 {
		t.Fatalf("deferred targets left: %d, %v", len(ds), err)
	}
	for i, id := range ids {
		if n := w.tab.RefreshCount(id); n != 1 {
			t.Errorf("target %d (%s) refreshed %d times, want exactly 1", i, ts[i], n)
		}
		rec, err := w.table.Get(context.Background(), state.Key{RunID: run.RunID, Target: ts[i].Key()})
		if err != nil || rec == nil || rec.Status != state.StatusCompleted || rec.Outcome != state.OutcomeRefreshed {
			t.Errorf("target %d: record %+v, %v; want COMPLETED, refreshed", i, rec, err)
		}
	}
	if queued != targets {
		t.Errorf("the invocations report %d refreshes queued, want %d", queued, targets)
	}
}
