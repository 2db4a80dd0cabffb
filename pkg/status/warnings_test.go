package status_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refreshmap"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/remote"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/status"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau/tableautest"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type warningsEnv struct {
	srv    *tableautest.Server
	client *tableau.Client
	mem    *state.Memory
	rec    *status.Recorder
	clock  *clock
	orders state.StatusTarget
	sales  state.StatusTarget
	theirs string // a person's warning on Orders
}

func newWarningsEnv(t *testing.T, on bool) *warningsEnv {
	t.Helper()
	srv := tableautest.NewServer(tableautest.WithSite("demo"))
	t.Cleanup(srv.Close)
	srv.AddPAT("bot", "secret")
	c, err := tableau.NewClient(srv.URL(), tableau.WithSite("demo"), tableau.WithPAT("bot", "secret"),
		tableau.WithRetryPolicy(remote.Policy{MaxAttempts: 2, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	e := &warningsEnv{srv: srv, client: c, clock: &clock{t: now}}
	ds := srv.AddDatasource("Orders", "Finance")
	wb := srv.AddWorkbook("Sales Overview", "Finance")
	e.theirs = srv.AddDataQualityWarning(ds, "DEPRECATED", "Use Orders v2 from January")
	e.orders = state.StatusTarget{Key: key(refreshmap.Datasource, "Orders", ""), Kind: "datasource", Name: "Orders", ItemID: ds}
	e.sales = state.StatusTarget{Key: key(refreshmap.Workbook, "Sales Overview", "Finance"), Kind: "workbook", Name: "Sales Overview", ItemID: wb}
	e.mem = state.NewMemory(state.WithClock(e.clock.Now))
	opts := []status.Option{status.WithFreshnessSLA(24 * time.Hour), status.WithClock(e.clock.Now)}
	if on {
		opts = append(opts, status.WithQualityWarnings(c))
	}
	e.rec = status.NewRecorder(e.mem, opts...)
	return e
}

// settle records a run's end and tells it, as the tracker does.
func (e *warningsEnv) settle(t *testing.T, target state.StatusTarget, run string, result state.Outcome, notes string) {
	t.Helper()
	r := state.TargetRun{
		RunID: run, DBTJobID: "123", DBTRunURL: "https://cloud.getdbt.com/deploy/1/projects/2/runs/" + run,
		At: e.clock.Now(), QueuedAt: e.clock.Now(), FinishedAt: e.clock.Now(), JobID: "job-" + run, Result: result, Notes: notes,
	}
	if err := e.rec.Record(context.Background(), target, r); err != nil {
		t.Fatal(err)
	}
	e.rec.Settled(context.Background(), target, r)
}

// ours returns the warnings on Orders that carry the bridge's prefix.
func (e *warningsEnv) ours() []tableautest.DataQualityWarningInfo {
	var out []tableautest.DataQualityWarningInfo
	for _, w := range e.srv.DataQualityWarnings(e.orders.ItemID) {
		if strings.HasPrefix(w.Message, status.MessagePrefix) {
			out = append(out, w)
		}
	}
	return out
}

func (e *warningsEnv) recorded(t *testing.T, k string) state.QualityWarning {
	t.Helper()
	all, err := e.mem.TargetStatuses(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range all {
		if s.Key == k {
			return s.Warning
		}
	}
	return state.QualityWarning{}
}

func (e *warningsEnv) theirsIntact(t *testing.T) {
	t.Helper()
	for _, w := range e.srv.DataQualityWarnings(e.orders.ItemID) {
		if w.ID == e.theirs {
			if w.Message != "Use Orders v2 from January" || w.Type != "DEPRECATED" {
				t.Errorf("the person's warning was changed: %+v", w)
			}
			return
		}
	}
	t.Error("the person's warning is gone")
}

func TestQualityWarningsFollowRefreshes(t *testing.T) {
	e := newWarningsEnv(t, true)
	ctx := context.Background()

	// A failure puts one warning, naming the run and Tableau's notes.
	e.settle(t, e.orders, "9001", state.OutcomeFailed, "Database login failed for user 'etl'")
	ours := e.ours()
	if len(ours) != 1 || ours[0].Type != "WARNING" || !ours[0].IsSevere || !ours[0].IsActive ||
		!strings.Contains(ours[0].Message, "dbt run 9001 (job 123) failed: Database login failed for user 'etl'") ||
		!strings.Contains(ours[0].Message, "https://cloud.getdbt.com/deploy/1/projects/2/runs/9001") {
		t.Fatalf("after a failure: %+v", ours)
	}
	if w := e.recorded(t, e.orders.Key); w.ID != ours[0].ID || w.Reason != state.OutcomeFailed || w.RunID != "9001" {
		t.Errorf("recorded warning = %+v", w)
	}
	// A second failure changes it in place.
	e.settle(t, e.orders, "9002", state.OutcomeCancelled, "")
	if again := e.ours(); len(again) != 1 || again[0].ID != ours[0].ID || !strings.Contains(again[0].Message, "dbt run 9002") {
		t.Fatalf("after a second failure: %+v", again)
	}
	// A success takes it off, and leaves the person's.
	e.settle(t, e.orders, "9003", state.OutcomeSucceeded, "")
	if left := e.ours(); len(left) != 0 {
		t.Fatalf("after a success: %+v", left)
	}
	if w := e.recorded(t, e.orders.Key); w != (state.QualityWarning{}) {
		t.Errorf("recorded warning after a success = %+v", w)
	}
	e.theirsIntact(t)

	// Stale: the sweep puts a STALE warning once the objective passes, once.
	if err := e.rec.Sweep(ctx); err != nil || len(e.ours()) != 0 {
		t.Fatalf("sweep while fresh: %v, %+v", err, e.ours())
	}
	e.clock.Advance(25 * time.Hour)
	for range 2 {
		if err := e.rec.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
	}
	ours = e.ours()
	if len(ours) != 1 || ours[0].Type != "STALE" || ours[0].IsSevere || !strings.Contains(ours[0].Message, "Stale: no refresh succeeded within the freshness objective of 1d.") ||
		!strings.Contains(ours[0].Message, "after dbt run 9003 (job 123)") {
		t.Fatalf("after the objective passed: %+v", ours)
	}
	if w := e.recorded(t, e.orders.Key); w.Reason != state.OutcomeStale || w.ID != ours[0].ID {
		t.Errorf("recorded warning = %+v", w)
	}
	e.settle(t, e.orders, "9004", state.OutcomeSucceeded, "")
	if left := e.ours(); len(left) != 0 {
		t.Fatalf("after a success: %+v", left)
	}
	e.theirsIntact(t)
}

func TestQualityWarningsTouchOnlyTheBridges(t *testing.T) {
	t.Run("workbook: none", func(t *testing.T) {
		e := newWarningsEnv(t, true)
		before := len(e.srv.Requests())
		e.settle(t, e.sales, "9001", state.OutcomeFailed, "boom")
		for _, r := range e.srv.Requests()[before:] {
			if strings.Contains(r.Path, "dataQualityWarnings") {
				t.Errorf("asked Tableau %s %s for a workbook", r.Method, r.Path)
			}
		}
	})
	t.Run("an id lost: found by its prefix", func(t *testing.T) {
		e := newWarningsEnv(t, true)
		w, err := e.client.AddDataQualityWarning(context.Background(), "datasource", e.orders.ItemID,
			&tableau.DataQualityWarning{Type: "WARNING", Message: status.MessagePrefix + " from an earlier failure", IsActive: true})
		if err != nil {
			t.Fatal(err)
		}
		e.settle(t, e.orders, "9001", state.OutcomeFailed, "boom")
		if ours := e.ours(); len(ours) != 1 || ours[0].ID != w.ID || !strings.Contains(ours[0].Message, "dbt run 9001") {
			t.Fatalf("ours = %+v", ours)
		}
		e.theirsIntact(t)
	})
	t.Run("a person's warning of the same type: left alone", func(t *testing.T) {
		e := newWarningsEnv(t, true)
		person := e.srv.AddDataQualityWarning(e.orders.ItemID, "WARNING", "Known issue with EMEA orders")
		e.settle(t, e.orders, "9001", state.OutcomeFailed, "boom")
		if ours := e.ours(); len(ours) != 0 {
			t.Fatalf("ours = %+v", ours)
		}
		if w := e.recorded(t, e.orders.Key); w.ID != "" {
			t.Errorf("recorded %+v", w)
		}
		e.settle(t, e.orders, "9002", state.OutcomeSucceeded, "")
		found := false
		for _, w := range e.srv.DataQualityWarnings(e.orders.ItemID) {
			found = found || (w.ID == person && w.Message == "Known issue with EMEA orders")
		}
		if !found {
			t.Error("a success removed a person's warning")
		}
		e.theirsIntact(t)
	})
	t.Run("off: Tableau is not asked", func(t *testing.T) {
		e := newWarningsEnv(t, false)
		e.settle(t, e.orders, "9001", state.OutcomeFailed, "boom")
		e.clock.Advance(48 * time.Hour)
		if err := e.rec.Sweep(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n := len(e.srv.Requests()); n != 0 {
			t.Errorf("%d requests to Tableau with warnings off", n)
		}
	})
}

// TestSiteWarnings: a failed refresh of a data source on another site puts
// the warning there, with that site's client, and a success takes it off.
func TestSiteWarnings(t *testing.T) {
	e := newWarningsEnv(t, true)
	emea := e.srv.AddSite("emea")
	emea.AddPAT("emea-bot", "emea-secret")
	ds := emea.AddDatasource("Orders", "Finance")
	ec, err := tableau.NewClient(e.srv.URL(), tableau.WithSite("emea"), tableau.WithPAT("emea-bot", "emea-secret"))
	if err != nil {
		t.Fatal(err)
	}
	rec := status.NewRecorder(e.mem, status.WithQualityWarnings(e.client), status.WithClock(e.clock.Now),
		status.WithSiteWarnings(func(site string) (status.Warnings, error) { return ec, nil }))
	target := state.StatusTarget{Key: refreshmap.Target{Kind: refreshmap.Datasource, Name: "Orders", Site: "emea"}.Key(), Kind: "datasource", Name: "Orders", ItemID: ds, Site: "emea"}
	for _, tt := range []struct {
		result state.Outcome
		want   int
	}{{state.OutcomeFailed, 1}, {state.OutcomeSucceeded, 0}} {
		r := state.TargetRun{RunID: "r-" + string(tt.result), DBTJobID: "1", At: e.clock.Now(), FinishedAt: e.clock.Now(), Result: tt.result}
		if err := rec.Record(context.Background(), target, r); err != nil {
			t.Fatal(err)
		}
		rec.Settled(context.Background(), target, r)
		if got := len(emea.DataQualityWarnings(ds)); got != tt.want {
			t.Errorf("after a %s refresh: %d warnings on emea's data source, want %d", tt.result, got, tt.want)
		}
	}
	if n := e.srv.Count("", "/dataQualityWarnings/datasource/"+ds); n != 0 {
		t.Errorf("the default site was asked %d times about emea's data source", n)
	}
}
