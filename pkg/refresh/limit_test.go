package refresh_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refresh"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refreshmap"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/remote"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state/statetest"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau/tableautest"
)

// The refresher against the Tableau simulator with Tableau Cloud's limit of
// concurrent refresh requests per site, the real client, and the in-memory
// store. Nothing is timed: where a case needs the site (or the refresher's
// own places) taken, requests are held in flight by a fault's latency until
// the test lets them go.

// limitWorld is one site with n workbooks mapped to one run.
type limitWorld struct {
	t       *testing.T
	tab     *tableautest.Server
	clock   *statetest.Clock
	mem     *state.Memory
	al      *alerts
	ref     *refresh.Refresher
	ids     []string
	targets []refresh.Target
}

type limitSetup struct {
	targets      int
	concurrency  int           // the refresher's bound
	siteLimit    int           // the simulator's; 0 for none
	retryAfter   time.Duration // the simulator's Retry-After with its 429s
	latency      time.Duration // of every Tableau call
	noDeferrals  bool          // build the refresher without WithDeferrals
	clientPolicy remote.Policy // zero: 4 attempts, Retry-After up to 10 s
}

func newLimitWorld(t *testing.T, s limitSetup) *limitWorld {
	t.Helper()
	tab := tableautest.NewServer(tableautest.WithJobTimings(time.Hour, time.Hour), tableautest.WithConcurrencyLimit(s.siteLimit, s.retryAfter))
	t.Cleanup(tab.Close)
	tab.AddPAT("bot", "pat-secret")
	policy := s.clientPolicy
	if policy.MaxAttempts == 0 {
		policy = remote.Policy{MaxAttempts: 4, BaseDelay: 10 * time.Millisecond, MaxDelay: 10 * time.Second}
	}
	tc, err := tableau.NewClient(tab.URL(), tableau.WithPAT("bot", "pat-secret"), tableau.WithRetryPolicy(policy))
	if err != nil {
		t.Fatal(err)
	}
	clock := statetest.NewClock()
	w := &limitWorld{t: t, tab: tab, clock: clock, mem: state.NewMemory(state.WithClock(clock.Now)), al: &alerts{}}
	opts := []refresh.Option{refresh.WithJobs(w.mem), refresh.WithAlerts(w.al), refresh.WithClock(clock.Now), refresh.WithConcurrency(s.concurrency), refresh.WithSite("")}
	if !s.noDeferrals {
		opts = append(opts, refresh.WithDeferrals(w.mem))
	}
	w.ref = refresh.New(w.mem, tc, opts...)
	var ts []refreshmap.Target
	for i := range s.targets {
		id := tab.AddWorkbook(fmt.Sprintf("Workbook %03d", i), "Finance")
		w.ids = append(w.ids, id)
		ts = append(ts, refreshmap.Target{Kind: refreshmap.Workbook, ID: id})
	}
	w.targets = refresh.MapTargets(ts, dbtJob)
	tab.SetLatency(s.latency)
	return w
}

// refresh runs one delivery of run with budget to queue in.
func (w *limitWorld) refresh(run string, budget time.Duration) []refresh.Outcome {
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	return w.ref.Refresh(ctx, refresh.Run{RunID: run, DBTJobID: dbtJob}, w.targets, w.clock.Now().Add(time.Minute))
}

// followUp is one follow-up's QueueDeferred.
func (w *limitWorld) followUp() refresh.DeferredResult {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := w.ref.QueueDeferred(ctx, w.clock.Now().Add(time.Minute))
	if err != nil {
		w.t.Fatal(err)
	}
	return res
}

// holdSite takes k of the site's places with refresh requests of workbooks
// of their own, which stay in flight until the returned function is called.
func (w *limitWorld) holdSite(k int) (release func()) {
	w.t.Helper()
	tc, err := tableau.NewClient(w.tab.URL(), tableau.WithPAT("bot", "pat-secret"),
		tableau.WithRetryPolicy(remote.Policy{MaxAttempts: 1}))
	if err != nil {
		w.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := tc.SignIn(ctx); err != nil {
		w.t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range k {
		id := w.tab.AddWorkbook(fmt.Sprintf("Held %d", i), "Finance")
		w.tab.Inject(tableautest.Fault{Path: id, Latency: time.Hour})
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = tc.RefreshWorkbook(ctx, id)
		}()
	}
	eventually(w.t, "the site's places taken", func() bool { return w.tab.PeakInFlight() >= k })
	return func() { cancel(); wg.Wait() }
}

// counts tallies outcomes by result.
func counts(out []refresh.Outcome) map[state.Outcome]int {
	m := map[state.Outcome]int{}
	for _, o := range out {
		m[o.Result]++
	}
	return m
}

// refreshedOnce checks that Tableau refreshed each of the world's workbooks
// exactly once.
func (w *limitWorld) refreshedOnce() {
	w.t.Helper()
	for i, id := range w.ids {
		if n := w.tab.RefreshCount(id); n != 1 {
			w.t.Errorf("workbook %d refreshed %d times, want 1", i, n)
		}
	}
}

func TestConcurrencyAndDeferral(t *testing.T) {
	tests := []struct {
		name  string
		setup limitSetup
		// holdSite takes that many of the site's places for the delivery;
		// holdOwn takes the refresher's own, with a delivery of another run.
		holdSite, holdOwn int
		budget            time.Duration
		// releaseAfter429 lets the held requests go once the site has
		// turned a request away.
		releaseAfter429 bool
		want            map[state.Outcome]int
		// What the site saw: the most refreshes at once (at most), and
		// whether it turned any away.
		wantPeak      int
		wantThrottled bool
		// After the delivery, with the site free: one follow-up.
		wantFollowUp refresh.DeferredResult
	}{
		{
			name:     "bounded: never more than the bound at Tableau at once",
			setup:    limitSetup{targets: 24, concurrency: 4, siteLimit: 20, retryAfter: time.Second, latency: 20 * time.Millisecond},
			budget:   30 * time.Second,
			want:     map[state.Outcome]int{state.OutcomeRefreshed: 24},
			wantPeak: 4,
		},
		{
			name:            "the site is full: its 429s are honoured (Retry-After) within the time",
			setup:           limitSetup{targets: 6, concurrency: 10, siteLimit: 2, retryAfter: time.Second},
			holdSite:        2,
			releaseAfter429: true,
			budget:          30 * time.Second,
			want:            map[state.Outcome]int{state.OutcomeRefreshed: 6},
			wantPeak:        8, wantThrottled: true,
		},
		{
			name:         "no place on the site in time: deferred, and the follow-up queues them",
			setup:        limitSetup{targets: 5, concurrency: 1, siteLimit: 20},
			holdOwn:      1,
			budget:       2 * time.Second,
			want:         map[state.Outcome]int{state.OutcomeDeferred: 5},
			wantPeak:     1,
			wantFollowUp: refresh.DeferredResult{Found: 5, Queued: 5},
		},
		{
			name:         "without a deferral store: they fail retryably, for dbt to redeliver",
			setup:        limitSetup{targets: 3, concurrency: 1, siteLimit: 20, noDeferrals: true},
			holdOwn:      1,
			budget:       2 * time.Second,
			want:         map[state.Outcome]int{state.OutcomeFailed: 3},
			wantPeak:     1,
			wantFollowUp: refresh.DeferredResult{},
		},
		{
			name:          "Tableau asks to wait longer than the time left: deferred until then",
			setup:         limitSetup{targets: 3, concurrency: 10, siteLimit: 1, retryAfter: time.Minute},
			holdSite:      1,
			budget:        5 * time.Second,
			want:          map[state.Outcome]int{state.OutcomeDeferred: 3},
			wantPeak:      4,
			wantThrottled: true,
			// Not due yet: the follow-up leaves them (see the second look
			// below, after the wait).
			wantFollowUp: refresh.DeferredResult{Found: 3, Deferred: 3},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newLimitWorld(t, tt.setup)
			var releaseSite, releaseOwn func()
			if tt.holdSite > 0 {
				releaseSite = w.holdSite(tt.holdSite)
			}
			if tt.holdOwn > 0 {
				// Another run's refreshes take the refresher's places and
				// stay with Tableau until let go.
				ctx, cancel := context.WithCancel(context.Background())
				var ts []refreshmap.Target
				for i := range tt.holdOwn {
					id := w.tab.AddWorkbook(fmt.Sprintf("Other %d", i), "Finance")
					w.tab.Inject(tableautest.Fault{Path: id, Latency: time.Hour})
					ts = append(ts, refreshmap.Target{Kind: refreshmap.Workbook, ID: id})
				}
				done := make(chan struct{})
				go func() {
					defer close(done)
					w.ref.Refresh(ctx, refresh.Run{RunID: "other", DBTJobID: dbtJob}, refresh.MapTargets(ts, dbtJob), w.clock.Now().Add(time.Minute))
				}()
				eventually(t, "the refresher's places taken", func() bool { return w.tab.PeakInFlight() >= tt.holdOwn })
				releaseOwn = func() { cancel(); <-done }
			}
			if tt.releaseAfter429 {
				go func() {
					for w.tab.Throttled() == 0 {
						time.Sleep(5 * time.Millisecond)
					}
					releaseSite()
				}()
			}

			out := w.refresh(runID, tt.budget)

			if releaseOwn != nil {
				releaseOwn()
			}
			if releaseSite != nil && !tt.releaseAfter429 {
				releaseSite()
			}
			if got := counts(out); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("outcomes %v, want %v", got, tt.want)
				for _, o := range out {
					t.Logf("  %s: %s %s", o.Name, o.Result, o.Error)
				}
			}
			for _, o := range out {
				switch o.Result {
				case state.OutcomeDeferred:
					if !o.Settled() || o.Retryable || !strings.Contains(o.Error, "recorded for the follow-up") {
						t.Errorf("deferred outcome %+v: want settled, not retryable, and saying so", o)
					}
				case state.OutcomeFailed:
					if !o.Retryable || !strings.Contains(o.Error, "not queued in this invocation's time") {
						t.Errorf("failed outcome %+v: want retryable, saying why", o)
					}
				}
			}
			if peak := w.tab.PeakInFlight(); peak > tt.wantPeak {
				t.Errorf("the site had %d refreshes in flight at once, want at most %d", peak, tt.wantPeak)
			}
			if got := w.tab.Throttled() > 0; got != tt.wantThrottled {
				t.Errorf("the site turned %d requests away; want some: %v", w.tab.Throttled(), tt.wantThrottled)
			}
			// A deferred target holds no claim.
			for _, o := range out {
				if o.Result != state.OutcomeDeferred {
					continue
				}
				if rec, err := w.mem.Get(context.Background(), state.Key{RunID: runID, Target: o.Target.Key()}); err != nil || rec != nil {
					t.Errorf("deferred %s: record %+v, %v; want none", o.Name, rec, err)
				}
			}

			if got := w.followUp(); got != tt.wantFollowUp {
				t.Errorf("follow-up: %+v, want %+v", got, tt.wantFollowUp)
			}
			if tt.wantFollowUp.Deferred > 0 {
				// Tableau's wait is over, and its site has room: the next
				// follow-up queues them.
				w.clock.Advance(time.Minute + time.Second)
				w.tab.SetConcurrencyLimit(0, 0)
				if got := w.followUp(); got != (refresh.DeferredResult{Found: tt.wantFollowUp.Deferred, Queued: tt.wantFollowUp.Deferred}) {
					t.Errorf("follow-up after the wait: %+v", got)
				}
			}
			if tt.setup.noDeferrals {
				return
			}
			w.refreshedOnce()
			// Nothing is left for later, and a redelivery is a duplicate.
			if ds, _ := w.mem.DeferredTargets(context.Background()); len(ds) != 0 {
				t.Errorf("%d targets still deferred", len(ds))
			}
			if got := counts(w.refresh(runID, 30*time.Second)); got[state.OutcomeDuplicate] != len(w.ids) {
				t.Errorf("redelivery: %v, want every target a duplicate", got)
			}
			for _, k := range w.al.keys {
				if strings.Contains(k, runID) {
					t.Errorf("alert %s, want none for run %s", k, runID)
				}
			}
		})
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
