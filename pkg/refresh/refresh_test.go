package refresh_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/notify"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refresh"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refreshmap"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/remote"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state/statetest"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
)

// The refresher against the in-memory store and a fake Tableau: each case
// is one or more deliveries of the same (run, target), and checks what
// each delivery reports, what the store holds afterwards, how many refresh
// calls reached Tableau and how many alerts were raised.

const (
	runID   = "70001"
	dbtJob  = "123"
	salesID = "9f1c6c9e-0000-4000-8000-000000000001"
)

var (
	byName = refreshmap.Target{Kind: refreshmap.Workbook, Name: "Sales", Project: "Finance"}
	byID   = refreshmap.Target{Kind: refreshmap.Datasource, ID: "3b7e21aa-0000-4000-8000-000000000002"}
)

// reply is Tableau's answer to one refresh call.
type reply struct {
	res *tableau.RefreshResult
	err error
}

func queued(job string) reply { return reply{res: &tableau.RefreshResult{Job: &tableau.Job{ID: job}}} }

func tableauError(status int, code string) reply {
	return reply{err: &tableau.Error{StatusCode: status, Code: code, Method: http.MethodPost, Path: "/api/3.23/sites/s/workbooks/" + salesID + "/refresh"}}
}

// fakeTableau answers refresh calls with its replies in order (the last
// one repeats) and finds "Sales" in "Finance" unless findErr is set.
type fakeTableau struct {
	replies []reply
	findErr error

	mu       sync.Mutex
	refreshs []string // ids refreshed, in order
	finds    int
}

func (f *fakeTableau) SignIn(context.Context) error { return nil }

func (f *fakeTableau) FindWorkbook(_ context.Context, name, project string) (*tableau.Workbook, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.finds++
	if f.findErr != nil {
		return nil, f.findErr
	}
	if name != "Sales" || project != "Finance" {
		return nil, &tableau.NotFoundError{Kind: "workbook", Name: name, Project: project}
	}
	return &tableau.Workbook{ID: salesID, Name: name}, nil
}

func (f *fakeTableau) FindDatasource(_ context.Context, name, project string) (*tableau.Datasource, error) {
	return nil, &tableau.NotFoundError{Kind: "datasource", Name: name, Project: project}
}

func (f *fakeTableau) RefreshWorkbook(_ context.Context, id string, _ ...tableau.RefreshOption) (*tableau.RefreshResult, error) {
	return f.refresh(id)
}

func (f *fakeTableau) RefreshDatasource(_ context.Context, id string, _ ...tableau.RefreshOption) (*tableau.RefreshResult, error) {
	return f.refresh(id)
}

func (f *fakeTableau) refresh(id string) (*tableau.RefreshResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refreshs = append(f.refreshs, id)
	r := f.replies[min(len(f.refreshs), len(f.replies))-1]
	return r.res, r.err
}

func (f *fakeTableau) calls() int { f.mu.Lock(); defer f.mu.Unlock(); return len(f.refreshs) }

// alerts records what the refresher raises.
type alerts struct {
	mu   sync.Mutex
	keys []string
	msgs []notify.Message
}

func (a *alerts) Raise(_ context.Context, key string, m notify.Message) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.keys, a.msgs = append(a.keys, key), append(a.msgs, m)
	return nil
}

// storeFaults are the failures a store injects.
type storeFaults struct {
	// beginErr fails every claim; beginApplied writes it first, as a
	// DynamoDB call whose reply was lost does.
	beginErr     error
	beginApplied bool
	// completeErrs fail the completions in turn, then they succeed;
	// completeAlways fails every one.
	completeErrs   []error
	completeAlways error
	// takeOver, before each completion, lets another owner take the claim
	// over, as if this one had lapsed.
	takeOver bool
}

// store is the in-memory store with faults on demand.
type store struct {
	*state.Memory
	storeFaults

	mu        sync.Mutex
	completes int
}

func (s *store) Begin(ctx context.Context, c state.Claim) error {
	if s.beginErr == nil {
		return s.Memory.Begin(ctx, c)
	}
	if s.beginApplied {
		if err := s.Memory.Begin(ctx, c); err != nil {
			return err
		}
	}
	return s.beginErr
}

func (s *store) completeFault(ctx context.Context, k state.Key, owner string) error {
	s.mu.Lock()
	s.completes++
	n := s.completes
	s.mu.Unlock()
	if s.takeOver {
		// Only a lapsed claim can be taken: lapse it by hand.
		if err := s.Memory.Release(ctx, k, owner); err != nil {
			return err
		}
		if err := s.Memory.Begin(ctx, state.Claim{Key: k, Owner: "successor", DBTJobID: dbtJob, HoldUntil: time.Now().Add(time.Hour), Retention: time.Hour}); err != nil {
			return err
		}
	}
	if s.completeAlways != nil {
		return s.completeAlways
	}
	if n <= len(s.completeErrs) {
		return s.completeErrs[n-1]
	}
	return nil
}

func (s *store) Complete(ctx context.Context, k state.Key, owner string, outcome state.Outcome, jobID string) error {
	if err := s.completeFault(ctx, k, owner); err != nil {
		return err
	}
	return s.Memory.Complete(ctx, k, owner, outcome, jobID)
}

func (s *store) CompleteJob(ctx context.Context, owner string, j state.TableauJob) error {
	if err := s.completeFault(ctx, j.Run, owner); err != nil {
		return err
	}
	return s.Memory.CompleteJob(ctx, owner, j)
}

func (s *store) completions() int { s.mu.Lock(); defer s.mu.Unlock(); return s.completes }

// want is what one delivery reports.
type want struct {
	result    state.Outcome
	retryable bool
	jobID     string
	errHas    string // a substring of the reported error, when it fails
}

// record is what the store holds once the deliveries are done.
type record struct {
	none    bool // no record: the claim was released
	status  state.Status
	outcome state.Outcome
	jobID   string
	owner   string // "" for the refresher's own (random) owner
}

var errStoreDown = errors.New("dynamodb: InternalServerError")

func TestRefresh(t *testing.T) {
	tests := []struct {
		name    string
		target  refreshmap.Target
		seed    func(t *testing.T, s *store, clock *statetest.Clock, k state.Key) // what the store held before
		faults  storeFaults
		replies []reply // Tableau's, to the refresh calls in turn
		findErr error   // Tableau's answer to a search by name
		// Each delivery's outcome; each holds its claims for hold (default
		// a minute) and the clock moves on by gap between them.
		deliveries []want
		hold, gap  time.Duration
		record     record
		// Refresh calls that reached Tableau, completion writes (-n: at
		// least n), alerts.
		refreshes, completions, alerts int
	}{
		{
			name:       "refreshed, then a redelivery is a duplicate",
			target:     byName,
			replies:    []reply{queued("job-1")},
			deliveries: []want{{result: state.OutcomeRefreshed, jobID: "job-1"}, {result: state.OutcomeDuplicate, jobID: "job-1"}},
			record:     record{status: state.StatusCompleted, outcome: state.OutcomeRefreshed, jobID: "job-1"},
			refreshes:  1, completions: 1,
		},
		{
			name:       "Tableau has one queued already (409093)",
			target:     byID,
			replies:    []reply{{res: &tableau.RefreshResult{AlreadyQueued: true}}},
			deliveries: []want{{result: state.OutcomeAlreadyQueued}, {result: state.OutcomeDuplicate}},
			record:     record{status: state.StatusCompleted, outcome: state.OutcomeAlreadyQueued},
			refreshes:  1, completions: 1,
		},
		{
			name:   "claim lost: an earlier delivery completed it",
			target: byName,
			seed: func(t *testing.T, s *store, clock *statetest.Clock, k state.Key) {
				claim(t, s, clock, k, "earlier", time.Minute)
				if err := s.Memory.Complete(context.Background(), k, "earlier", state.OutcomeRefreshed, "job-0"); err != nil {
					t.Fatal(err)
				}
			},
			replies:    []reply{queued("job-1")},
			deliveries: []want{{result: state.OutcomeDuplicate, jobID: "job-0"}},
			record:     record{status: state.StatusCompleted, outcome: state.OutcomeRefreshed, jobID: "job-0", owner: "earlier"},
		},
		{
			name:   "claim lost: another delivery holds it",
			target: byName,
			seed: func(t *testing.T, s *store, clock *statetest.Clock, k state.Key) {
				claim(t, s, clock, k, "other", time.Minute)
			},
			replies:    []reply{queued("job-1")},
			deliveries: []want{{result: state.OutcomeInProgress, retryable: true}},
			record:     record{status: state.StatusInProgress, owner: "other"},
		},
		{
			name:   "claim lapsed: its holder died, the next delivery takes it over",
			target: byName,
			seed: func(t *testing.T, s *store, clock *statetest.Clock, k state.Key) {
				claim(t, s, clock, k, "crashed", 10*time.Second)
				clock.Advance(11 * time.Second)
			},
			replies:    []reply{queued("job-1")},
			deliveries: []want{{result: state.OutcomeRefreshed, jobID: "job-1"}},
			record:     record{status: state.StatusCompleted, outcome: state.OutcomeRefreshed, jobID: "job-1"},
			refreshes:  1, completions: 1,
		},
		{
			name:       "permanent: no workbook of that name",
			target:     byName,
			findErr:    &tableau.NotFoundError{Kind: "workbook", Name: "Sales", Project: "Finance"},
			deliveries: []want{{result: state.OutcomeFailed, errHas: "no workbook named"}},
			record:     record{none: true},
			alerts:     1,
		},
		{
			name:       "permanent: Tableau no longer knows the LUID (404)",
			target:     byID,
			replies:    []reply{tableauError(http.StatusNotFound, "404004")},
			deliveries: []want{{result: state.OutcomeFailed, errHas: "404"}},
			record:     record{none: true},
			refreshes:  1, alerts: 1,
		},
		{
			name:    "permanent: no extract (409090), alerted once per delivery under one key",
			target:  byName,
			replies: []reply{tableauError(http.StatusConflict, tableau.CodeNoExtract)},
			// Released, so a redelivery tries again and fails alike; the
			// alert's key is the same, for the outbox to send it once.
			deliveries: []want{{result: state.OutcomeFailed, errHas: "409090"}, {result: state.OutcomeFailed, errHas: "409090"}},
			record:     record{none: true},
			refreshes:  2, alerts: 2,
		},
		{
			name:       "transient: Tableau 5xx, released, and the retry refreshes",
			target:     byName,
			replies:    []reply{tableauError(http.StatusServiceUnavailable, ""), queued("job-2")},
			deliveries: []want{{result: state.OutcomeFailed, retryable: true, errHas: "503"}, {result: state.OutcomeRefreshed, jobID: "job-2"}},
			record:     record{status: state.StatusCompleted, outcome: state.OutcomeRefreshed, jobID: "job-2"},
			refreshes:  2, completions: 1,
		},
		{
			name:       "transient: Tableau 429",
			target:     byID,
			replies:    []reply{tableauError(http.StatusTooManyRequests, "429000")},
			deliveries: []want{{result: state.OutcomeFailed, retryable: true, errHas: "429"}},
			record:     record{none: true},
			refreshes:  1,
		},
		{
			name:   "transient: Tableau unreachable",
			target: byID,
			replies: []reply{{err: &remote.TransportError{Service: "tableau", Method: http.MethodPost, Path: "/refresh", Sent: false,
				Err: errors.New("dial tcp 10.0.0.1:443: connect: connection refused")}}},
			deliveries: []want{{result: state.OutcomeFailed, retryable: true, errHas: "connection refused"}},
			record:     record{none: true},
			refreshes:  1,
		},
		{
			name:       "the claim cannot be written: nothing is refreshed",
			target:     byName,
			faults:     storeFaults{beginErr: errStoreDown},
			replies:    []reply{queued("job-1")},
			deliveries: []want{{result: state.OutcomeFailed, retryable: true, errHas: "state store"}},
			record:     record{none: true},
		},
		{
			// Left, the claim would turn every redelivery away until it
			// lapsed (found by TestLoadWithDynamoDBFaults).
			name:       "the claim was written but its reply lost: released",
			target:     byName,
			faults:     storeFaults{beginErr: errStoreDown, beginApplied: true},
			replies:    []reply{queued("job-1")},
			deliveries: []want{{result: state.OutcomeFailed, retryable: true, errHas: "state store"}},
			record:     record{none: true},
		},
		{
			name:       "completion write fails twice: retried, the refresh is not repeated",
			target:     byName,
			faults:     storeFaults{completeErrs: []error{errStoreDown, context.DeadlineExceeded}},
			replies:    []reply{queued("job-1")},
			deliveries: []want{{result: state.OutcomeRefreshed, jobID: "job-1"}, {result: state.OutcomeDuplicate, jobID: "job-1"}},
			record:     record{status: state.StatusCompleted, outcome: state.OutcomeRefreshed, jobID: "job-1"},
			refreshes:  1, completions: 3,
		},
		{
			name:       "completion write finds the claim taken over: not retried",
			target:     byID,
			faults:     storeFaults{takeOver: true},
			replies:    []reply{{res: &tableau.RefreshResult{AlreadyQueued: true}}},
			deliveries: []want{{result: state.OutcomeAlreadyQueued}},
			record:     record{status: state.StatusInProgress, owner: "successor"},
			refreshes:  1, completions: 1,
		},
		{
			// The write is retried for as long as the claim is held (here
			// the 2 s floor); the claim then stays until it lapses, and a
			// redelivery meanwhile is turned away rather than refreshed.
			name:       "completion write never succeeds: the refresh is not repeated while the claim is held",
			target:     byName,
			faults:     storeFaults{completeAlways: errStoreDown},
			replies:    []reply{queued("job-1")},
			hold:       time.Second,
			deliveries: []want{{result: state.OutcomeRefreshed, jobID: "job-1"}, {result: state.OutcomeInProgress, retryable: true}},
			record:     record{status: state.StatusInProgress},
			refreshes:  1, completions: -2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			clock := statetest.NewClock()
			s := &store{Memory: state.NewMemory(state.WithClock(clock.Now)), storeFaults: tt.faults}
			tab := &fakeTableau{replies: tt.replies, findErr: tt.findErr}
			al := &alerts{}
			r := refresh.New(s, tab, refresh.WithJobs(s), refresh.WithAlerts(al), refresh.WithClock(clock.Now))
			k := state.Key{RunID: runID, Target: tt.target.Key()}
			if tt.seed != nil {
				tt.seed(t, s, clock, k)
			}

			hold := tt.hold
			if hold == 0 {
				hold = time.Minute
			}
			for i, w := range tt.deliveries {
				if i > 0 {
					clock.Advance(tt.gap)
				}
				out := r.Refresh(ctx, refresh.Run{RunID: runID, DBTJobID: dbtJob}, refresh.MapTargets([]refreshmap.Target{tt.target}, dbtJob), clock.Now().Add(hold))
				if len(out) != 1 {
					t.Fatalf("delivery %d: %d outcomes for one target", i+1, len(out))
				}
				o := out[0]
				if o.Result != w.result || o.Retryable != w.retryable || o.JobID != w.jobID {
					t.Errorf("delivery %d: result %s retryable %v job %q (error %q), want %s retryable %v job %q",
						i+1, o.Result, o.Retryable, o.JobID, o.Error, w.result, w.retryable, w.jobID)
				}
				if (o.Error != "") != (w.errHas != "") || !strings.Contains(o.Error, w.errHas) {
					t.Errorf("delivery %d: error %q, want one holding %q", i+1, o.Error, w.errHas)
				}
			}

			rec, err := s.Get(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			checkRecord(t, rec, tt.record)
			if got := tab.calls(); got != tt.refreshes {
				t.Errorf("Tableau got %d refresh calls, want %d", got, tt.refreshes)
			}
			if got := s.completions(); (tt.completions >= 0 && got != tt.completions) || got < -tt.completions {
				t.Errorf("%d completion writes, want %d (-n: at least n)", got, tt.completions)
			}
			if len(al.keys) != tt.alerts {
				t.Errorf("%d alerts raised, want %d: %v", len(al.keys), tt.alerts, al.keys)
			}
			for i, m := range al.msgs {
				if al.keys[i] != al.keys[0] || m.Kind != notify.KindTableauRefreshNotQueued || m.DBTRunID != runID || m.DBTJobID != dbtJob || m.Reason == "" {
					t.Errorf("alert %d: key %q, %+v", i, al.keys[i], m)
				}
			}
			if rec != nil && rec.Status == state.StatusCompleted && rec.Outcome == state.OutcomeRefreshed && rec.Owner != "earlier" {
				open, err := s.OpenJobs(ctx)
				if err != nil || len(open) != 1 || open[0].JobID != rec.JobID || open[0].Run != k || open[0].DBTJobID != dbtJob {
					t.Errorf("open jobs = %+v, %v; want %s, to be followed", open, err, rec.JobID)
				}
			}
		})
	}
}

func claim(t *testing.T, s *store, clock *statetest.Clock, k state.Key, owner string, hold time.Duration) {
	t.Helper()
	err := s.Memory.Begin(context.Background(), state.Claim{Key: k, Owner: owner, DBTJobID: dbtJob, HoldUntil: clock.Now().Add(hold), Retention: refresh.DefaultRetention})
	if err != nil {
		t.Fatal(err)
	}
}

func checkRecord(t *testing.T, got *state.Record, want record) {
	t.Helper()
	switch {
	case want.none:
		if got != nil {
			t.Errorf("store holds %+v, want no record (the claim released)", *got)
		}
		return
	case got == nil:
		t.Errorf("store holds no record, want %+v", want)
		return
	}
	if got.Status != want.status || got.Outcome != want.outcome || got.JobID != want.jobID {
		t.Errorf("record %s outcome %q job %q, want %s outcome %q job %q", got.Status, got.Outcome, got.JobID, want.status, want.outcome, want.jobID)
	}
	switch {
	case want.owner != "" && got.Owner != want.owner:
		t.Errorf("record owner %q, want %q", got.Owner, want.owner)
	case want.owner == "" && (got.Owner == "" || got.Owner == "crashed"):
		t.Errorf("record owner %q, want the refresher's own", got.Owner)
	}
	if got.DBTJobID != dbtJob {
		t.Errorf("record dbt job %q, want %q", got.DBTJobID, dbtJob)
	}
}

// TestRepublishedItemIsFoundAgain: a LUID remembered from an earlier search
// that Tableau no longer knows (the workbook was republished) is searched
// again once, and the new one refreshed.
func TestRepublishedItemIsFoundAgain(t *testing.T) {
	ctx := context.Background()
	clock := statetest.NewClock()
	mem := state.NewMemory(state.WithClock(clock.Now))
	tab := &fakeTableau{replies: []reply{queued("job-1"), tableauError(http.StatusNotFound, "404004"), queued("job-2")}}
	r := refresh.New(mem, tab, refresh.WithClock(clock.Now))
	for i, run := range []string{"1", "2"} {
		out := r.Refresh(ctx, refresh.Run{RunID: run, DBTJobID: dbtJob}, refresh.MapTargets([]refreshmap.Target{byName}, dbtJob), clock.Now().Add(time.Minute))
		if out[0].Result != state.OutcomeRefreshed || out[0].JobID != fmt.Sprint("job-", i+1) {
			t.Errorf("run %s: %+v", run, out[0])
		}
	}
	if tab.finds != 2 || tab.calls() != 3 {
		t.Errorf("%d searches and %d refresh calls, want 2 and 3 (the first run's search cached, the stale LUID searched again)", tab.finds, tab.calls())
	}
}
