package refresh_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refresh"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refreshmap"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/remote"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau/tableautest"
)

func TestPlanRide(t *testing.T) {
	finished := time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC)
	job := func(started time.Time) *tableau.Job {
		return &tableau.Job{ID: "j-1", StartedAt: tableau.Timestamp{Time: started}}
	}
	tests := []struct {
		name    string
		job     *tableau.Job
		err     error
		run     time.Time
		requeue bool
		detail  string
	}{
		{"queued, not started", job(time.Time{}), nil, finished, false, "rides on Tableau job j-1, queued and not started yet"},
		{"started before the run finished", job(finished.Add(-time.Minute)), nil, finished, true, "started at 2026-11-30T05:59:00Z, before the dbt run finished at 2026-11-30T06:00:00Z: one more refresh"},
		{"started after", job(finished.Add(time.Second)), nil, finished, false, "started after the dbt run finished"},
		{"started as it finished", job(finished), nil, finished, false, "started after"},
		{"run's end unknown", job(finished), nil, time.Time{}, true, "perhaps before the dbt run finished"},
		{"not found", nil, nil, finished, true, "no such job was found"},
		{"the search failed", nil, errors.New("tableau: GET jobs: 403"), finished, true, "could not be looked up (tableau: GET jobs: 403)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rd := refresh.PlanRide(tt.job, tt.err, tt.run)
			if rd.Requeue != tt.requeue || !strings.Contains(rd.Detail, tt.detail) {
				t.Errorf("PlanRide = %+v, want requeue %t and %q", rd, tt.requeue, tt.detail)
			}
			if (rd.Job == nil) != (tt.job == nil) || (rd.Job != nil && rd.JobID() != "j-1") {
				t.Errorf("job = %+v", rd.Job)
			}
		})
	}
}

// simRefresher is a refresher that follows rides, against the simulator and
// the memory store.
func simRefresher(t *testing.T, srv *tableautest.Server, pat string, opts ...tableau.Option) (*refresh.Refresher, *state.Memory) {
	t.Helper()
	tc, err := tableau.NewClient(srv.URL(), append([]tableau.Option{tableau.WithPAT(pat, pat+"-secret"),
		tableau.WithRetryPolicy(remote.Policy{MaxAttempts: 1})}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	mem := state.NewMemory()
	return refresh.New(mem, tc, refresh.WithJobs(mem), refresh.WithRides(tc)), mem
}

// TestRides: a refresh Tableau answers 409093 rides on the job Tableau has
// for the item, named in the reply, followed like one of ours, with one
// more refresh due when it may have read the old data.
func TestRides(t *testing.T) {
	tests := []struct {
		name string
		// start the job Tableau queued itself before (-1), after (1) the
		// run finished, or not at all (0).
		start   int
		pat     string // "admin", or "creator": not allowed to query jobs
		found   bool
		requeue bool
		detail  string
	}{
		{"queued, not started", 0, "admin", true, false, "queued and not started yet"},
		{"started before the run finished", -1, "admin", true, true, "before the dbt run finished"},
		{"started after the run finished", 1, "admin", true, false, "started after the dbt run finished"},
		{"not for a non-administrator to find", -1, "creator", false, true, "could not be looked up"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := tableautest.NewServer(tableautest.WithJobTimings(-1, -1))
			t.Cleanup(srv.Close)
			srv.AddPAT("admin", "admin-secret")
			srv.AddPATWithRole("creator", "creator-secret", tableautest.RoleCreator)
			ds := srv.AddDatasource("Orders", "Finance")
			theirs, err := srv.QueueRefresh(ds)
			if err != nil {
				t.Fatal(err)
			}
			finished := time.Now()
			switch tt.start {
			case -1:
				finished = finished.Add(time.Hour) // the job starts now, before
			case 1:
				finished = finished.Add(-time.Hour)
			}
			if tt.start != 0 {
				if err := srv.StartJob(theirs); err != nil {
					t.Fatal(err)
				}
			}
			r, mem := simRefresher(t, srv, tt.pat)
			target := refreshmap.Target{Kind: refreshmap.Datasource, Name: "Orders", Project: "Finance"}
			run := refresh.Run{RunID: "71001", DBTJobID: "123", FinishedAt: finished}
			out := r.Refresh(context.Background(), run, refresh.MapTargets([]refreshmap.Target{target}, "123"), time.Now().Add(time.Minute))
			o := out[0]
			wantJob := ""
			if tt.found {
				wantJob = theirs
			}
			if o.Result != state.OutcomeAlreadyQueued || o.JobID != wantJob || !strings.Contains(o.Detail, tt.detail) || !o.Settled() {
				t.Fatalf("outcome = %+v; want already_queued on %q, %q", o, wantJob, tt.detail)
			}
			open, err := mem.OpenJobs(context.Background())
			if err != nil || len(open) != 1 {
				t.Fatalf("open jobs = %+v, %v", open, err)
			}
			j := open[0]
			if j.JobID != wantJob || j.Requeue != tt.requeue || j.Outcome != state.OutcomeAlreadyQueued || j.ItemID != ds || !j.DBTFinishedAt.Equal(finished) {
				t.Errorf("open job = %+v", j)
			}
			if n := srv.RefreshCount(ds); n != 1 {
				t.Errorf("%d refresh jobs, want Tableau's own only", n)
			}
		})
	}
}

// TestIncrementalRefresh: an entry asking for an incremental refresh gets
// one from REST API 3.25, and a full one before, with a warning and a
// detail in the reply.
func TestIncrementalRefresh(t *testing.T) {
	tests := []struct {
		version     string
		incremental bool
		detail      string
	}{
		{"3.24", false, "predates them (3.25): refreshed in full"},
		{"3.25", true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.version, func(t *testing.T) {
			srv := tableautest.NewServer(tableautest.WithAPIVersion(tt.version), tableautest.WithJobTimings(-1, -1))
			t.Cleanup(srv.Close)
			srv.AddPAT("admin", "admin-secret")
			ds := srv.AddDatasource("Orders", "Finance")
			wb := srv.AddWorkbook("Sales", "Finance")
			r, _ := simRefresher(t, srv, "admin")
			targets := []refreshmap.Target{
				{Kind: refreshmap.Datasource, Name: "Orders", Incremental: true},
				{Kind: refreshmap.Workbook, ID: wb},
			}
			out := r.Refresh(context.Background(), refresh.Run{RunID: "71002", DBTJobID: "123"}, refresh.MapTargets(targets, "123"), time.Now().Add(time.Minute))
			if out[0].Result != state.OutcomeRefreshed || out[0].Incremental != tt.incremental || out[0].Detail != "" && !strings.Contains(out[0].Detail, tt.detail) ||
				(tt.detail == "") != (out[0].Detail == "") {
				t.Errorf("incremental entry: %+v", out[0])
			}
			if out[1].Result != state.OutcomeRefreshed || out[1].Incremental || out[1].Detail != "" {
				t.Errorf("full entry: %+v", out[1])
			}
			for _, j := range srv.Jobs() {
				if want := tt.incremental && j.ItemID == ds; j.Incremental != want {
					t.Errorf("job of %s: incremental %t, want %t", j.ItemName, j.Incremental, want)
				}
			}
		})
	}
}

// TestDeferredTargetRidesWithTheRunsFinish: a target deferred to the
// follow-up keeps its run's finish, so that when the follow-up finds a
// refresh Tableau already has, it still tells one that started after the
// run finished (it read the run's data: nothing more) from one that may
// not have.
func TestDeferredTargetRidesWithTheRunsFinish(t *testing.T) {
	srv := tableautest.NewServer(tableautest.WithJobTimings(-1, -1))
	t.Cleanup(srv.Close)
	srv.AddPAT("admin", "admin-secret")
	ds := srv.AddDatasource("Orders", "Finance")
	tc, err := tableau.NewClient(srv.URL(), tableau.WithPAT("admin", "admin-secret"), tableau.WithRetryPolicy(remote.Policy{MaxAttempts: 1}))
	if err != nil {
		t.Fatal(err)
	}
	mem := state.NewMemory()
	r := refresh.New(mem, tc, refresh.WithJobs(mem), refresh.WithRides(tc), refresh.WithDeferrals(mem), refresh.WithConcurrency(1))
	run := refresh.Run{RunID: "71002", DBTJobID: "123", FinishedAt: time.Now().Add(-time.Hour)}
	targets := refresh.MapTargets([]refreshmap.Target{{Kind: refreshmap.Datasource, Name: "Orders", Project: "Finance"}}, "123")

	// Another run's refresh holds the one place until the end of the test.
	held := srv.AddDatasource("Held", "Finance")
	srv.Inject(tableautest.Fault{Path: held, Latency: time.Hour})
	hctx, hcancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Refresh(hctx, refresh.Run{RunID: "71003", DBTJobID: "123"},
			refresh.MapTargets([]refreshmap.Target{{Kind: refreshmap.Datasource, ID: held}}, "123"), time.Now().Add(time.Minute))
	}()
	eventually(t, "the place taken", func() bool { return srv.PeakInFlight() >= 1 })
	ctx, cancel := context.WithTimeout(context.Background(), refresh.DeferReserve+200*time.Millisecond)
	out := r.Refresh(ctx, run, targets, time.Now().Add(time.Minute))
	cancel()
	hcancel()
	<-done
	if out[0].Result != state.OutcomeDeferred {
		t.Fatalf("outcome = %+v, want deferred", out[0])
	}
	// Meanwhile Tableau started a refresh of its own, after the run finished.
	theirs, err := srv.QueueRefresh(ds)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.StartJob(theirs); err != nil {
		t.Fatal(err)
	}
	res, err := r.QueueDeferred(context.Background(), time.Now().Add(time.Minute))
	if err != nil || res.Queued != 1 {
		t.Fatalf("QueueDeferred = %+v, %v; want the target queued", res, err)
	}
	open, err := mem.OpenJobs(context.Background())
	if err != nil || len(open) != 1 {
		t.Fatalf("open jobs = %+v, %v", open, err)
	}
	if j := open[0]; j.JobID != theirs || j.Requeue || !j.DBTFinishedAt.Equal(run.FinishedAt) {
		t.Errorf("open job = %+v; want a ride on %s with the run's finish and no refresh more", j, theirs)
	}
}
