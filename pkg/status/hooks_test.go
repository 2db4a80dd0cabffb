package status_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/followup"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refresh"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refreshmap"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/remote"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/status"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau/tableautest"
)

// TestStatusFollowsRefreshes runs the bridge's own refresher and tracker
// with the Recorder against the Tableau simulator, and reads the page's
// report as they go: refreshes queued show running (no status write on
// that path), one Tableau already had queued and one that cannot be
// queued are recorded at once, the jobs' ends when the follow-up sees them
// (with the content's name, project and link from Tableau), and the data
// quality warning follows the data source's failure and later success.
func TestStatusFollowsRefreshes(t *testing.T) {
	ctx := context.Background()
	tab := tableautest.NewServer(tableautest.WithSite("demo"), tableautest.WithJobTimings(5*time.Millisecond, 10*time.Millisecond))
	defer tab.Close()
	tab.AddPAT("bot", "secret")
	orders := tab.AddDatasource("Orders", "Finance")
	tab.AddWorkbook("Sales", "Finance")
	tab.AddWorkbook("Static", "Finance", tableautest.NoExtract())
	busy := tab.AddDatasource("Busy", "Ops")
	tc, err := tableau.NewClient(tab.URL(), tableau.WithSite("demo"), tableau.WithPAT("bot", "secret"),
		tableau.WithRetryPolicy(remote.Policy{MaxAttempts: 2, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	m, err := refreshmap.Parse([]byte(`{"jobs":{"42":[{"datasource":"Orders"},{"workbook":"Sales"},{"workbook":"Static"},{"datasource":"Busy"}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	mem := state.NewMemory()
	rec := status.NewRecorder(mem, status.WithMap(m), status.WithQualityWarnings(tc))
	ref := refresh.New(mem, tc, refresh.WithJobs(mem), refresh.WithStatus(rec))
	tracker := followup.NewTracker(mem, tc, followup.NewAlerts(mem, nil), followup.WithStatus(rec))
	page, err := status.New(withPassword(password), mem, mem, status.WithMap(m), status.WithSite("demo"))
	if err != nil {
		t.Fatal(err)
	}
	report := func() map[string]status.Target {
		t.Helper()
		rep, err := page.Report(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]status.Target{}
		for _, tg := range rep.Targets {
			out[tg.Name] = tg
		}
		return out
	}
	follow := func() {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			res, err := tracker.Follow(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if res.Open == res.Succeeded+res.Failed+res.Stuck {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("jobs still open: %+v", res)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	// Someone else's refresh of Busy is queued; Orders' next refresh fails.
	if _, err := tc.RefreshDatasource(ctx, busy); err != nil {
		t.Fatal(err)
	}
	tab.FailNextRefresh(orders, "Database login failed for user 'etl'")
	run := refresh.Run{RunID: "500", DBTJobID: "42", FinishedAt: time.Now().Add(-time.Minute), URL: "https://cloud.getdbt.com/deploy/1/projects/2/runs/500"}
	out := ref.Refresh(ctx, run, refresh.MapTargets(m.Targets("42"), "42"), time.Now().Add(time.Minute))
	if got := []state.Outcome{out[0].Result, out[1].Result, out[2].Result, out[3].Result}; got[0] != state.OutcomeRefreshed || got[2] != state.OutcomeFailed || got[3] != state.OutcomeAlreadyQueued {
		t.Fatalf("refresh outcomes = %v", got)
	}
	r := report()
	for name, want := range map[string]struct {
		result state.Outcome
		state  status.State
	}{
		"Orders": {state.OutcomeRunning, status.StateRunning}, "Sales": {state.OutcomeRunning, status.StateRunning},
		"Static": {state.OutcomeFailed, status.StateFailing}, "Busy": {state.OutcomeAlreadyQueued, status.StateStale},
	} {
		if r[name].Result != want.result || r[name].State != want.state {
			t.Errorf("%s before the jobs end: %s, %s; want %s, %s", name, r[name].Result, r[name].State, want.result, want.state)
		}
	}
	if n := r["Static"].Notes; n == nil || !strings.Contains(*n, "409090") && !strings.Contains(*n, "extract") {
		t.Errorf("Static's notes = %v, want Tableau's refusal", n)
	}
	if u := r["Orders"].DBTRunURL; u == nil || *u != run.URL {
		t.Errorf("running Orders' dbt run URL = %v", u)
	}

	follow()
	r = report()
	if o := r["Orders"]; o.Result != state.OutcomeFailed || o.Notes == nil || *o.Notes != "Database login failed for user 'etl'" || o.State != status.StateFailing {
		t.Errorf("Orders after its job failed: %+v", o)
	}
	s := r["Sales"]
	if s.Result != state.OutcomeSucceeded || s.State != status.StateFresh || s.Project == nil || *s.Project != "Finance" || s.URL == nil ||
		s.LagSeconds == nil || *s.LagSeconds < 60 || s.DBTFinishedAt == nil {
		t.Errorf("Sales after its job succeeded: %+v", s)
	}
	warned := func() []string {
		var out []string
		for _, w := range tab.DataQualityWarnings(orders) {
			out = append(out, w.Message)
		}
		return out
	}
	if w := warned(); len(w) != 1 || !strings.Contains(w[0], "dbt run 500 (job 42) failed: Database login failed") {
		t.Errorf("warnings on Orders = %q", w)
	}

	// The next run succeeds: the warning comes off, the history grows.
	out = ref.Refresh(ctx, refresh.Run{RunID: "501", DBTJobID: "42", FinishedAt: time.Now()}, refresh.MapTargets(m.Targets("42")[:1], "42"), time.Now().Add(time.Minute))
	if out[0].Result != state.OutcomeRefreshed {
		t.Fatalf("second refresh = %+v", out[0])
	}
	follow()
	r = report()
	if o := r["Orders"]; o.Result != state.OutcomeSucceeded || len(o.History) != 2 || o.State != status.StateFresh {
		t.Errorf("Orders after a success: %+v", o)
	}
	if w := warned(); len(w) != 0 {
		t.Errorf("warnings on Orders after a success = %q", w)
	}
}
