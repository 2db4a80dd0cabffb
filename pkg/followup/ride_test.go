package followup_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/followup"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refresh"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refreshmap"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/remote"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau/tableautest"
)

// rider is a refresher that follows rides, signed in with the PAT named.
func (w *world) rider(pat, secret string) *refresh.Refresher {
	w.t.Helper()
	tc, err := tableau.NewClient(w.tab.URL(), tableau.WithPAT(pat, secret), tableau.WithSessionStore(w.table),
		tableau.WithRetryPolicy(remote.Policy{MaxAttempts: 2, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond}))
	if err != nil {
		w.t.Fatal(err)
	}
	return refresh.New(w.table, tc, refresh.WithJobs(w.table), refresh.WithRides(tc), refresh.WithAlerts(w.alerts))
}

// openJob is the target's open job, or nil.
func (w *world) openJob(runID string) *state.TableauJob {
	w.t.Helper()
	open, err := w.table.OpenJobs(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	for _, j := range open {
		if j.Run.RunID == runID {
			return &j
		}
	}
	return nil
}

// TestRideThenOneMoreRefresh: an already queued target rides on Tableau's
// job, which is followed like one of ours; when it started before the dbt
// run finished (or cannot be found) exactly one more refresh follows it
// once it ends, whoever sees the end first — the follow-up, Tableau's
// webhook, or both at once.
func TestRideThenOneMoreRefresh(t *testing.T) {
	tests := []struct {
		name string
		// start Tableau's job before (-1) or after (1) the run finished,
		// or leave it queued (0).
		start   int
		end     int    // its finish code
		via     string // who sees it end: "follow-up", "webhook", "both"
		pat     string // the refresher's: "bot" (an administrator) or "creator"
		requeue bool
		slack   []string // what the messages say
	}{
		{name: "queued: rides, nothing more", start: 0, end: tableautest.FinishSucceeded, via: "follow-up", pat: "bot"},
		{name: "started after: rides, nothing more", start: 1, end: tableautest.FinishSucceeded, via: "follow-up", pat: "bot"},
		{name: "started before: one more", start: -1, end: tableautest.FinishSucceeded, via: "follow-up", pat: "bot", requeue: true},
		{name: "started before and failed: told, one more", start: -1, end: tableautest.FinishFailed, via: "follow-up", pat: "bot", requeue: true,
			slack: []string{"Database login failed", "one more refresh of the item is queued"}},
		{name: "queued and failed: told, nothing more", start: 0, end: tableautest.FinishFailed, via: "follow-up", pat: "bot",
			slack: []string{"Database login failed"}},
		{name: "started before, seen by the webhook", start: -1, end: tableautest.FinishSucceeded, via: "webhook", pat: "bot", requeue: true},
		{name: "started before, seen by both at once", start: -1, end: tableautest.FinishSucceeded, via: "both", pat: "bot", requeue: true},
		{name: "not found (not an administrator): one more", start: -1, end: tableautest.FinishSucceeded, via: "follow-up", pat: "creator", requeue: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			w := newWorld(t)
			if tt.via == "follow-up" {
				w.dropTableauWebhooks()
			}
			w.tab.SetJobTimings(-1, -1)
			w.tab.AddPATWithRole("creator", "creator-secret", tableautest.RoleCreator)
			item := w.ids["Sales"]
			theirs, err := w.tab.QueueRefresh(item)
			if err != nil {
				t.Fatal(err)
			}
			finished := time.Now()
			switch tt.start {
			case -1:
				finished = finished.Add(time.Hour)
			case 1:
				finished = finished.Add(-time.Hour)
			}
			if tt.start != 0 {
				if err := w.tab.StartJob(theirs); err != nil {
					t.Fatal(err)
				}
			}
			run := refresh.Run{RunID: "72001", DBTJobID: "123", FinishedAt: finished}
			out := w.rider(tt.pat, map[string]string{"bot": "pat-secret", "creator": "creator-secret"}[tt.pat]).
				Refresh(ctx, run, refresh.MapTargets([]refreshmap.Target{sales}, "123"), time.Now().Add(10*time.Second))
			found := tt.pat == "bot"
			if o := out[0]; o.Result != state.OutcomeAlreadyQueued || (o.JobID == theirs) != found || (o.JobID == "") == found {
				t.Fatalf("outcome = %+v", o)
			}

			// While Tableau's job runs, nothing more happens.
			if res, err := w.tracker.Follow(ctx); err != nil || res.Open != 1 || res.Requeued != 0 {
				t.Fatalf("follow-up while it runs: %+v, %v", res, err)
			}
			if n := w.tab.RefreshCount(item); n != 1 {
				t.Fatalf("%d refresh jobs while it runs, want Tableau's own", n)
			}

			if err := w.tab.FinishJob(theirs, tt.end, map[bool]string{true: "Database login failed"}[tt.end == tableautest.FinishFailed]); err != nil {
				t.Fatal(err)
			}
			switch tt.via {
			case "both":
				var wg sync.WaitGroup
				for range 3 {
					wg.Add(1)
					go func() { defer wg.Done(); w.tracker.Follow(ctx) }()
				}
				wg.Wait()
				fallthrough
			case "webhook":
				eventually(t, "the ride's end", func() bool {
					j := w.openJob("72001")
					return j == nil || (j.JobID != theirs && !j.Requeue)
				})
			default:
				res, err := w.tracker.Follow(ctx)
				if err != nil || (res.Requeued == 1) != tt.requeue {
					t.Fatalf("follow-up after the end: %+v, %v", res, err)
				}
			}

			j := w.openJob("72001")
			if !tt.requeue {
				if j != nil {
					t.Fatalf("still open after the ride ended: %+v", j)
				}
				if n := w.tab.RefreshCount(item); n != 1 {
					t.Errorf("%d refresh jobs, want Tableau's own only", n)
				}
			} else {
				if j == nil || j.JobID == theirs || j.JobID == "" || j.Requeue || j.Outcome != state.OutcomeAlreadyQueued {
					t.Fatalf("open after the ride ended: %+v", j)
				}
				if err := w.tab.FinishJob(j.JobID, tableautest.FinishSucceeded, ""); err != nil {
					t.Fatal(err)
				}
				eventually(t, "the one more refresh's end", func() bool {
					w.tracker.Follow(ctx)
					return w.openJob("72001") == nil
				})
			}
			// More follow-ups and a redelivery of the run change nothing.
			for range 2 {
				if _, err := w.tracker.Follow(ctx); err != nil {
					t.Fatal(err)
				}
			}
			again := w.rider("bot", "pat-secret").Refresh(ctx, run, refresh.MapTargets([]refreshmap.Target{sales}, "123"), time.Now().Add(10*time.Second))
			if again[0].Result != state.OutcomeDuplicate {
				t.Errorf("redelivery: %+v", again[0])
			}
			want := 1
			if tt.requeue {
				want = 2
			}
			if n := w.tab.RefreshCount(item); n != want {
				t.Errorf("%d refresh jobs of the item, want %d", n, want)
			}

			sum, err := w.table.RunSummary(ctx, "72001")
			if err != nil || len(sum) != 1 {
				t.Fatalf("summary = %+v, %v", sum, err)
			}
			s := sum[0]
			wantState := state.OutcomeSucceeded
			if !tt.requeue && tt.end == tableautest.FinishFailed {
				wantState = state.OutcomeFailed
			}
			if s.Outcome != state.OutcomeAlreadyQueued || s.RefreshState != wantState {
				t.Errorf("summary = %+v", s)
			}
			switch {
			case tt.requeue && found && !strings.Contains(s.RodeOn, "job "+theirs+" ("):
				t.Errorf("rode on = %q, want job %s", s.RodeOn, theirs)
			case tt.requeue && !found && !strings.Contains(s.RodeOn, "could not be found"):
				t.Errorf("rode on = %q", s.RodeOn)
			case !tt.requeue && s.RodeOn != "":
				t.Errorf("rode on = %q for a ride without one more", s.RodeOn)
			}

			msgs := w.slack.received()
			if len(msgs) != min(len(tt.slack), 1) {
				t.Fatalf("Slack messages = %q, want %d", msgs, min(len(tt.slack), 1))
			}
			for _, want := range tt.slack {
				if !strings.Contains(msgs[0], want) || !strings.Contains(msgs[0], theirs) {
					t.Errorf("message lacks %q or the job: %s", want, msgs[0])
				}
			}
		})
	}
}

// TestOneMoreRefreshWaitsForTableau: while Tableau keeps an earlier refresh
// of the item queued, the one more refresh waits for the next follow-up;
// past the job limit it is reported as stuck.
func TestOneMoreRefreshWaitsForTableau(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	w.dropTableauWebhooks()
	w.tab.SetJobTimings(-1, -1)
	item := w.ids["Sales"]
	theirs, err := w.tab.QueueRefresh(item)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.tab.StartJob(theirs); err != nil {
		t.Fatal(err)
	}
	run := refresh.Run{RunID: "72002", DBTJobID: "123", FinishedAt: time.Now().Add(time.Hour)}
	w.rider("bot", "pat-secret").Refresh(ctx, run, refresh.MapTargets([]refreshmap.Target{sales}, "123"), time.Now().Add(10*time.Second))
	// Tableau's job ends, but another that started before the run finished
	// (a schedule) holds the item at once.
	if err := w.tab.FinishJob(theirs, tableautest.FinishSucceeded, ""); err != nil {
		t.Fatal(err)
	}
	blocker, err := w.tab.QueueRefresh(item)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.tab.StartJob(blocker); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		res, err := w.tracker.Follow(ctx)
		if err != nil || res.Requeued != 0 || res.Open != 1 {
			t.Fatalf("follow-up while the item is held: %+v, %v", res, err)
		}
	}
	if j := w.openJob("72002"); j == nil || j.JobID != theirs || !j.Requeue {
		t.Fatalf("open = %+v", j)
	}
	// Past the job limit it is given up on, and told.
	tc, err := tableau.NewClient(w.tab.URL(), tableau.WithPAT("bot", "pat-secret"), tableau.WithSessionStore(w.table))
	if err != nil {
		t.Fatal(err)
	}
	late := followupTracker(w, tc, 2*time.Hour)
	if _, err := late.Follow(ctx); err != nil {
		t.Fatal(err)
	}
	if j := w.openJob("72002"); j != nil {
		t.Fatalf("still open past the limit: %+v", j)
	}
	if msgs := w.slack.received(); len(msgs) != 1 || !strings.Contains(msgs[0], "already queued") {
		t.Fatalf("messages = %q", msgs)
	}
	if n := w.tab.RefreshCount(item); n != 2 {
		t.Errorf("%d refresh jobs, want Tableau's two", n)
	}
}

// followupTracker is a tracker whose clock runs ahead by ahead, with a job
// limit of an hour.
func followupTracker(w *world, tc *tableau.Client, ahead time.Duration) *followup.Tracker {
	return followup.NewTracker(w.table, tc, w.alerts, followup.WithJobLimit(time.Hour),
		followup.WithClock(func() time.Time { return time.Now().Add(ahead) }))
}
