// Package refresh queues Tableau refreshes for a dbt run exactly once per
// (run, target), whichever path — dbt's webhook or the scheduler — reports the
// run, however often, and however many instances do so at once.
package refresh

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/backoff"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/notify"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refreshmap"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
)

// Tableau is what the refresher needs from a Tableau client.
type Tableau interface {
	FindWorkbook(ctx context.Context, name, project string) (*tableau.Workbook, error)
	FindDatasource(ctx context.Context, name, project string) (*tableau.Datasource, error)
	RefreshWorkbook(ctx context.Context, id string) (*tableau.RefreshResult, error)
	RefreshDatasource(ctx context.Context, id string) (*tableau.RefreshResult, error)
}

// Results of one target, as reported to dbt and in logs.
const (
	Refreshed     = "refreshed"      // Tableau accepted the refresh; JobID is set
	AlreadyQueued = "already_queued" // Tableau had a refresh of the item queued already
	Duplicate     = "duplicate"      // an earlier delivery of this run refreshed it
	InProgress    = "in_progress"    // another delivery is refreshing it right now
	Failed        = "failed"
)

// Outcome is what happened to one target.
type Outcome struct {
	Target refreshmap.Target `json:"-"`
	Name   string            `json:"target"`
	Result string            `json:"result"`
	ItemID string            `json:"item_id,omitempty"`
	JobID  string            `json:"job_id,omitempty"`
	Error  string            `json:"error,omitempty"`
	// Retryable is set on failures that a later attempt can fix (Tableau
	// unreachable, 429, 5xx) and on targets still in progress elsewhere.
	Retryable bool `json:"retryable,omitempty"`
}

// Settled reports whether nothing more needs doing for the target.
func (o Outcome) Settled() bool { return o.Result != Failed && o.Result != InProgress }

// Run names the dbt run whose targets are refreshed.
type Run struct {
	RunID    string
	DBTJobID string
}

// Alerter raises a notification once per key.
type Alerter interface {
	Raise(ctx context.Context, key string, m notify.Message) error
}

// Refresher refreshes targets idempotently.
type Refresher struct {
	store     state.Idempotency
	jobs      state.TableauJobs
	alerts    Alerter
	tableau   func(context.Context) (Tableau, error)
	retention time.Duration
	logger    *slog.Logger
	now       func() time.Time

	ids *idCache
}

// Options configure a Refresher.
type Options struct {
	// Retention is how long a completed refresh blocks repeats of the same
	// run; it must exceed the age past which webhook events are ignored.
	Retention time.Duration
	// NameTTL is how long a name's LUID is remembered, so that a warm
	// function refreshes without searching. Zero means 10 minutes.
	NameTTL time.Duration
	// Jobs, when set, records each queued Tableau job so that it is
	// followed to its end.
	Jobs state.TableauJobs
	// Alerts, when set, hears of refreshes that could not be queued for a
	// reason no retry fixes.
	Alerts Alerter
	Logger *slog.Logger
	Now    func() time.Time
}

// DefaultRetention keeps records three days: longer than the default 24 h
// replay window and any dbt retry schedule.
const DefaultRetention = 72 * time.Hour

// New returns a Refresher. client returns the Tableau client to use; it is
// called per run so that rotated credentials take effect.
func New(store state.Idempotency, client func(context.Context) (Tableau, error), o Options) *Refresher {
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	if o.NameTTL <= 0 {
		o.NameTTL = 10 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Refresher{
		store: store, jobs: o.Jobs, alerts: o.Alerts, tableau: client, retention: o.Retention, logger: o.Logger, now: o.Now,
		ids: &idCache{ttl: o.NameTTL, now: o.Now, m: make(map[string]idEntry)},
	}
}

// Refresh queues a refresh of each target concurrently and returns one
// outcome per target, in the order given. holdUntil is when this
// invocation's claims lapse if it dies (its deadline); ctx bounds the work.
func (r *Refresher) Refresh(ctx context.Context, run Run, targets []refreshmap.Target, holdUntil time.Time) []Outcome {
	out := make([]Outcome, len(targets))
	var tc Tableau
	var tcErr error
	var once sync.Once
	client := func() (Tableau, error) {
		once.Do(func() { tc, tcErr = r.tableau(ctx) })
		return tc, tcErr
	}
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = r.one(ctx, run, t, holdUntil, client)
		}()
	}
	wg.Wait()
	return out
}

func (r *Refresher) one(ctx context.Context, run Run, t refreshmap.Target, holdUntil time.Time, client func() (Tableau, error)) Outcome {
	o := Outcome{Target: t, Name: t.String()}
	log := r.logger.With("dbt_run_id", run.RunID, "dbt_job_id", run.DBTJobID, "target", t.String())
	key := state.Key{RunID: run.RunID, Target: t.Key()}
	owner := state.NewOwner()
	err := r.store.Begin(ctx, state.Claim{Key: key, Owner: owner, DBTJobID: run.DBTJobID, HoldUntil: holdUntil, Retention: r.retention})
	var claimed *state.ClaimedError
	switch {
	case errors.As(err, &claimed):
		if claimed.Existing.Status == state.StatusCompleted {
			o.Result, o.JobID = Duplicate, claimed.Existing.JobID
			log.InfoContext(ctx, "target already refreshed for this run", "tableau_job_id", claimed.Existing.JobID)
		} else {
			o.Result, o.Retryable = InProgress, true
			log.InfoContext(ctx, "target is being refreshed by another delivery")
		}
		return o
	case err != nil:
		o.Result, o.Error, o.Retryable = Failed, "state store: "+err.Error(), true
		log.ErrorContext(ctx, "claim failed", "error", err)
		// The claim may have been written all the same (its reply was
		// lost); left, it would turn the redelivery away until it lapses.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if rerr := r.store.Release(rctx, key, owner); rerr != nil {
			log.WarnContext(ctx, "release failed; the claim lapses at its deadline", "error", rerr)
		}
		return o
	}

	res, itemID, err := r.queue(ctx, t, client)
	o.ItemID = itemID
	if err != nil {
		o.Result, o.Error, o.Retryable = Failed, err.Error(), tableau.Retryable(err)
		// A release must outlive a cancelled ctx, or the claim would block
		// retries until it lapses.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if rerr := r.store.Release(rctx, key, owner); rerr != nil {
			log.WarnContext(ctx, "release failed; the claim lapses at its deadline", "error", rerr)
		}
		if o.Retryable {
			log.WarnContext(ctx, "refresh failed; a retry may succeed", "error", err)
			return o
		}
		log.ErrorContext(ctx, "refresh failed", "error", err)
		if r.alerts != nil {
			m := notify.Message{
				Kind: notify.KindTableauRefreshNotQueued, DBTJobID: run.DBTJobID, DBTRunID: run.RunID,
				TableauItemKind: string(t.Kind), TableauItemName: t.String(), TableauItemID: itemID, Reason: err.Error(), At: r.now(),
			}
			if aerr := r.alerts.Raise(rctx, "not-queued:"+run.RunID+":"+t.Key(), m); aerr != nil {
				log.WarnContext(ctx, "notification pending", "error", aerr)
			}
		}
		return o
	}

	outcome := state.OutcomeRefreshed
	o.Result = Refreshed
	if res.AlreadyQueued {
		outcome, o.Result = state.OutcomeAlreadyQueued, AlreadyQueued
	} else if res.Job != nil {
		o.JobID = res.Job.ID
	}
	// Recording the refresh matters more than answering fast: until it is
	// recorded a redelivery meets the claim in progress, and once the claim
	// lapses it would refresh again. So the write may use all the time the
	// claim is held, even past ctx's (shorter) reply deadline.
	// holdUntil is on the store's clock; the context needs a duration.
	budget := max(holdUntil.Sub(r.now()), 2*time.Second)
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), budget)
	defer cancel()
	complete := func(ctx context.Context) error { return r.store.Complete(ctx, key, owner, outcome, o.JobID) }
	if r.jobs != nil && o.JobID != "" {
		// The same write records the job, to be followed to its end.
		j := state.TableauJob{JobID: o.JobID, Run: key, DBTJobID: run.DBTJobID, TargetName: t.String(), ItemKind: string(t.Kind), ItemID: itemID, QueuedAt: r.now()}
		complete = func(ctx context.Context) error { return r.jobs.CompleteJob(ctx, owner, j) }
	}
	if err := retryStore(cctx, complete); err != nil {
		// Tableau has the refresh; a lost record can only cause a repeat that
		// Tableau itself refuses with 409093 while the job is queued.
		log.ErrorContext(ctx, "could not record the completed refresh", "error", err, "tableau_job_id", o.JobID)
	}
	log.InfoContext(ctx, "refresh queued", "result", o.Result, "tableau_job_id", o.JobID, "item_id", itemID)
	return o
}

// retryStore runs a write that completes a claim, retrying transient store
// errors (the SDK retries throttling itself; this covers a slow or failed
// call) until ctx ends. A claim taken over by another invocation is not
// retried.
func retryStore(ctx context.Context, write func(context.Context) error) error {
	var err error
	for attempt := 1; ; attempt++ {
		if err = write(ctx); err == nil || errors.Is(err, state.ErrNotHeld) {
			return err
		}
		wait := backoff.Full(50*time.Millisecond, time.Second, attempt)
		if !backoff.Fits(ctx, wait) || backoff.Sleep(ctx, wait) != nil {
			return err
		}
	}
}

// queue resolves the target to a LUID and asks Tableau to refresh it. A LUID
// remembered from an earlier search that Tableau no longer knows (the item was
// republished) is searched again once.
func (r *Refresher) queue(ctx context.Context, t refreshmap.Target, client func() (Tableau, error)) (*tableau.RefreshResult, string, error) {
	tc, err := client()
	if err != nil {
		return nil, "", err
	}
	id, cached, err := r.resolve(ctx, tc, t)
	if err != nil {
		return nil, "", err
	}
	res, err := refreshItem(ctx, tc, t.Kind, id)
	if err != nil && cached && errors.Is(err, tableau.ErrNotFound) {
		r.ids.forget(t.Key())
		if id, _, err = r.resolve(ctx, tc, t); err != nil {
			return nil, "", err
		}
		res, err = refreshItem(ctx, tc, t.Kind, id)
	}
	if err != nil {
		return nil, id, fmt.Errorf("refresh %s: %w", t, err)
	}
	return res, id, nil
}

func refreshItem(ctx context.Context, tc Tableau, kind refreshmap.Kind, id string) (*tableau.RefreshResult, error) {
	if kind == refreshmap.Datasource {
		return tc.RefreshDatasource(ctx, id)
	}
	return tc.RefreshWorkbook(ctx, id)
}

func (r *Refresher) resolve(ctx context.Context, tc Tableau, t refreshmap.Target) (id string, cached bool, err error) {
	if t.ID != "" {
		return t.ID, false, nil
	}
	if id, ok := r.ids.get(t.Key()); ok {
		return id, true, nil
	}
	if t.Kind == refreshmap.Datasource {
		ds, err := tc.FindDatasource(ctx, t.Name, t.Project)
		if err != nil {
			return "", false, err
		}
		id = ds.ID
	} else {
		wb, err := tc.FindWorkbook(ctx, t.Name, t.Project)
		if err != nil {
			return "", false, err
		}
		id = wb.ID
	}
	r.ids.put(t.Key(), id)
	return id, false, nil
}

// idCache remembers name -> LUID for a while. Names change rarely and a stale
// LUID is caught by the 404 it earns.
type idCache struct {
	ttl time.Duration
	now func() time.Time
	mu  sync.Mutex
	m   map[string]idEntry
}

type idEntry struct {
	id      string
	expires time.Time
}

func (c *idCache) get(k string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok || !c.now().Before(e.expires) {
		return "", false
	}
	return e.id, true
}

func (c *idCache) put(k, id string) {
	c.mu.Lock()
	c.m[k] = idEntry{id: id, expires: c.now().Add(c.ttl)}
	c.mu.Unlock()
}

func (c *idCache) forget(k string) {
	c.mu.Lock()
	delete(c.m, k)
	c.mu.Unlock()
}
