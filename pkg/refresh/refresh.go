// Package refresh queues Tableau refreshes for a dbt run exactly once per
// (run, target), whichever path — dbt's webhook or the scheduler — reports the
// run, however often, and however many instances do so at once.
//
// Targets may be on several Tableau sites (refreshmap.Target.Site): each is
// refreshed with its site's client (WithSites), signed in with the site's
// own credentials, within its site's concurrency bound; a site that cannot
// be signed in to fails its own targets and no others.
package refresh

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/notify"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refreshmap"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/remote"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/secrets"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
)

// Tableau is what the refresher needs from a Tableau client.
type Tableau interface {
	// SignIn makes sure the client has a session (adopting a shared one),
	// so that a failure to sign in is told apart from a target's failure.
	SignIn(ctx context.Context) error
	FindWorkbook(ctx context.Context, name, project string) (*tableau.Workbook, error)
	FindDatasource(ctx context.Context, name, project string) (*tableau.Datasource, error)
	RefreshWorkbook(ctx context.Context, id string, opts ...tableau.RefreshOption) (*tableau.RefreshResult, error)
	RefreshDatasource(ctx context.Context, id string, opts ...tableau.RefreshOption) (*tableau.RefreshResult, error)
}

// Source says how a target was found.
type Source string

// Sources of targets.
const (
	SourceMap     Source = "map"     // listed in the refresh map for the job
	SourceLineage Source = "lineage" // downstream of a relation the run changed
)

// Target is content to refresh for a run, how it was found, and why.
type Target struct {
	refreshmap.Target
	Source Source
	// Why is the chain from the dbt node to the content, e.g.
	// `model.shop.orders → ANALYTICS.MARTS.ORDERS → data source "Orders" (Finance)`.
	Why string

	// deferredAt is when the target was first deferred, for a deferred
	// target that QueueDeferred queues.
	deferredAt time.Time
}

// MapTargets are the map's targets for a job, as Targets.
func MapTargets(ts []refreshmap.Target, jobID string) []Target {
	out := make([]Target, len(ts))
	for i, t := range ts {
		out[i] = Target{Target: t, Source: SourceMap, Why: "listed in the refresh map for dbt job " + jobID}
		if t.Incremental {
			out[i].Why += ", incrementally"
		}
	}
	return out
}

// Outcome is what happened to one target.
type Outcome struct {
	Target refreshmap.Target `json:"-"`
	Name   string            `json:"target"`
	Source Source            `json:"source,omitempty"`
	Why    string            `json:"why,omitempty"`
	Result state.Outcome     `json:"result"`
	ItemID string            `json:"item_id,omitempty"`
	// JobID is Tableau's job: the refresh queued, or the one an
	// already_queued target rides on.
	JobID string `json:"job_id,omitempty"`
	// Site is the target's site when it is not the default (its content
	// URL).
	Site string `json:"site,omitempty"`
	// Incremental reports that Tableau was asked for an incremental refresh.
	Incremental bool `json:"incremental,omitempty"`
	// Detail says more of the outcome: which job an already_queued target
	// rides on and whether one more refresh follows it, or why an
	// incremental refresh was full.
	Detail string `json:"detail,omitempty"`
	Error  string `json:"error,omitempty"`
	// Retryable is set on failures that a later attempt can fix (Tableau
	// unreachable, 429, 5xx) and on targets still in progress elsewhere.
	Retryable bool `json:"retryable,omitempty"`
}

// Settled reports whether nothing more needs doing for the target.
func (o Outcome) Settled() bool {
	return o.Result != state.OutcomeFailed && o.Result != state.OutcomeInProgress
}

// Run names the dbt run whose targets are refreshed.
type Run struct {
	RunID    string
	DBTJobID string
	// FinishedAt (zero when unknown) and URL (the run's page in dbt Cloud)
	// are kept for the status page; FinishedAt also tells whether a refresh
	// Tableau already had started before the run finished, and so may have
	// read the old data.
	FinishedAt time.Time
	URL        string
}

// Alerter raises a notification once per key.
type Alerter interface {
	Raise(ctx context.Context, key string, m notify.Message) error
}

// Status keeps the status page's history of each target (package status).
// Refreshes that are queued reach it when their job ends (package
// followup); the refresher tells it of those that will not be.
type Status interface {
	// Record writes a run's result into its target's history.
	Record(ctx context.Context, t state.StatusTarget, r state.TargetRun) error
	// Settled is told of a result that ends the run's refresh, so that a
	// data quality warning can be put on the content or taken off.
	Settled(ctx context.Context, t state.StatusTarget, r state.TargetRun)
}

// Refresher refreshes targets idempotently.
type Refresher struct {
	store     state.Idempotency
	tableau   Tableau
	jobs      state.TableauJobs
	alerts    Alerter
	status    Status
	retention time.Duration
	nameTTL   time.Duration
	logger    *slog.Logger
	now       func() time.Time
	// credentialsAt and siteCredentialsAt: see WithCredentialsAt and
	// WithSiteCredentialsAt.
	credentialsAt     string
	siteCredentialsAt func(site string) string
	// sites gives the clients of sites other than the default: see
	// WithSites.
	sites func(site string) (Tableau, error)
	// finder: see WithRides.
	finder JobFinder
	// site, concurrency and deferrals: see WithSite, WithConcurrency and
	// WithDeferrals; limits holds the places on each site.
	site        string
	concurrency int
	deferrals   state.Deferrals
	limits      *siteLimits

	ids *idCache
}

// Option configures a Refresher.
type Option func(*Refresher)

// WithRetention sets how long a completed refresh blocks repeats of the
// same run (default DefaultRetention); it must exceed the age past which
// webhook events are ignored.
func WithRetention(d time.Duration) Option { return func(r *Refresher) { r.retention = d } }

// WithNameTTL sets how long a name's LUID is remembered, so that a warm
// function refreshes without searching (default 10 minutes).
func WithNameTTL(d time.Duration) Option { return func(r *Refresher) { r.nameTTL = d } }

// WithJobs records each queued Tableau job, so that it is followed to its
// end.
func WithJobs(j state.TableauJobs) Option { return func(r *Refresher) { r.jobs = j } }

// WithAlerts tells a person of refreshes that could not be queued for a
// reason no retry fixes, and of credentials Tableau rejects.
func WithAlerts(a Alerter) Option { return func(r *Refresher) { r.alerts = a } }

// WithStatus tells st of refreshes Tableau had already queued and of those
// that failed for good: the status page shows them, and a failure may put a
// data quality warning on the content. It costs a write only on those
// paths, never on a refresh that is queued.
func WithStatus(st Status) Option { return func(r *Refresher) { r.status = st } }

// WithCredentialsAt says where the bridge's Tableau credentials are kept,
// e.g. `Secrets Manager secret "bridge/credentials"`, for the message that
// asks a person to fix them when Tableau rejects them.
func WithCredentialsAt(where string) Option { return func(r *Refresher) { r.credentialsAt = where } }

// WithSiteCredentialsAt says where the credentials of each site other than
// the default are kept (e.g. under tableau_sites in the secret), for the
// same message.
func WithSiteCredentialsAt(where func(site string) string) Option {
	return func(r *Refresher) { r.siteCredentialsAt = where }
}

// WithSites gives the client of each site other than the default (a
// target's Site): the one New was given refreshes the default site's. A
// client it cannot give fails that site's targets, retryably. Without it
// every target is refreshed with New's client.
func WithSites(client func(site string) (Tableau, error)) Option {
	return func(r *Refresher) { r.sites = client }
}

// WithLogger sets where the Refresher logs; by default nowhere.
func WithLogger(l *slog.Logger) Option { return func(r *Refresher) { r.logger = l } }

// WithClock sets the clock claims are timed by: the store's.
func WithClock(now func() time.Time) Option { return func(r *Refresher) { r.now = now } }

// DefaultRetention keeps records three days: longer than the default 24 h
// replay window and any dbt retry schedule.
const DefaultRetention = 72 * time.Hour

// New returns a Refresher that claims targets in store and refreshes them
// with tc, a client whose credentials follow their secret.
func New(store state.Idempotency, tc Tableau, opts ...Option) *Refresher {
	r := &Refresher{
		store: store, tableau: tc, retention: DefaultRetention, nameTTL: 10 * time.Minute,
		logger: slog.New(slog.DiscardHandler), now: time.Now, credentialsAt: "the bridge's secret",
		concurrency: DefaultConcurrency,
	}
	for _, opt := range opts {
		opt(r)
	}
	r.ids = &idCache{ttl: r.nameTTL, now: r.now, m: make(map[string]idEntry)}
	r.limits = newSiteLimits(r.concurrency)
	return r
}

// Refresh queues a refresh of each target concurrently, at most the
// concurrency bound at a time on a site, and returns one outcome per target,
// in the order given. holdUntil is when this invocation's claims lapse if it
// dies (its deadline); ctx bounds the work. Targets that got no place on
// their site before ctx's deadline, less DeferReserve, are deferred (see
// WithDeferrals).
func (r *Refresher) Refresh(ctx context.Context, run Run, targets []Target, holdUntil time.Time) []Outcome {
	out := make([]Outcome, len(targets))
	// Each site's client signs in once before any of its targets is
	// claimed: a failure there concerns every target on the site, and
	// claiming them only to release them would cost two writes each for
	// nothing. The sites sign in at once.
	clients := r.signIn(ctx, run, targets)
	// A target waits for a place on its site until qctx ends; those that
	// got none are recorded together as soon as every target has either,
	// while the others may still be with Tableau.
	qctx, cancel := queueBy(ctx)
	defer cancel()
	var wg, placed sync.WaitGroup
	var mu sync.Mutex
	var waiting []int
	for i, t := range targets {
		tc := clients[siteKey(t.Site)]
		if tc.err != nil {
			out[i] = Outcome{Target: t.Target, Name: t.String(), Source: t.Source, Why: t.Why, Site: t.Site, Result: state.OutcomeFailed, Error: tc.err.Error(), Retryable: true}
			continue
		}
		wg.Add(1)
		placed.Add(1)
		go func() {
			defer wg.Done()
			release := r.limits.acquire(qctx, siteKey(t.Site))
			if release == nil {
				mu.Lock()
				waiting = append(waiting, i)
				mu.Unlock()
				placed.Done()
				return
			}
			placed.Done()
			out[i] = r.one(ctx, qctx, run, t, holdUntil, tc.Tableau, release)
		}()
	}
	placed.Wait()
	slices.Sort(waiting)
	r.recordDeferred(ctx, run, targets, waiting, out)
	wg.Wait()
	return out
}

// siteClient is a site's client, signed in, or why it is not.
type siteClient struct {
	Tableau
	err error
}

// siteKey is what a site is told apart by: content URLs are read without
// regard to case; "" is the default site.
func siteKey(site string) string { return strings.ToLower(site) }

// client returns the client of a site ("" for the default).
func (r *Refresher) client(site string) (Tableau, error) {
	switch {
	case !r.otherSite(site):
		return r.tableau, nil
	case r.sites == nil:
		return nil, fmt.Errorf("the target is on Tableau site %q, and this refresher knows the default site only", site)
	}
	return r.sites(site)
}

// otherSite reports whether site is another than the default.
func (r *Refresher) otherSite(site string) bool {
	return site != "" && !refreshmap.SameSite(site, r.site)
}

// signIn signs in to each site the targets are on, at once, and returns
// each site's client, or its failure (reported once per site).
func (r *Refresher) signIn(ctx context.Context, run Run, targets []Target) map[string]*siteClient {
	clients := map[string]*siteClient{}
	var wg sync.WaitGroup
	for _, t := range targets {
		k := siteKey(t.Site)
		if _, ok := clients[k]; ok {
			continue
		}
		sc := &siteClient{}
		clients[k] = sc
		site := t.Site
		wg.Add(1)
		go func() {
			defer wg.Done()
			if sc.Tableau, sc.err = r.client(site); sc.err == nil {
				sc.err = sc.Tableau.SignIn(ctx)
			}
			if sc.err != nil {
				r.signInFailed(ctx, run, site, sc.err)
			}
		}()
	}
	wg.Wait()
	return clients
}

// signInFailed reports a failure to use the bridge's own Tableau
// credentials. It fails the whole run's refresh, retryably: dbt redelivers
// (a 503), the scheduled path retries, and once a person has fixed the
// credentials the next attempt refreshes. Rejected credentials are no
// passing fault, so they are also told to a person, once a day while they
// last.
func (r *Refresher) signInFailed(ctx context.Context, run Run, site string, err error) {
	log := r.logger.With("dbt_run_id", run.RunID, "dbt_job_id", run.DBTJobID)
	if site != "" {
		log = log.With("tableau_site", site)
	}
	if tableau.Retryable(err) {
		log.WarnContext(ctx, "Tableau sign-in failed; a retry may succeed", "error", err)
		return
	}
	who := "the bridge's Tableau credentials"
	where := r.credentialsAt
	onSite := ""
	if r.otherSite(site) {
		who = fmt.Sprintf("the bridge's Tableau credentials for site %q", site)
		onSite = fmt.Sprintf(" on site %q", site)
		if r.siteCredentialsAt != nil {
			where = r.siteCredentialsAt(site)
		}
	}
	var se *tableau.SignInError
	if errors.As(err, &se) {
		who = se.Credentials + onSite
	}
	reason := fmt.Sprintf("Tableau rejected %s: put valid credentials in %s. Until then every refresh%s fails with a 503 and dbt Cloud redelivers; the first delivery after the fix refreshes. (%v)", who, where, onSite, err)
	var missing *secrets.MissingSiteCredentialsError
	if errors.As(err, &missing) {
		reason = fmt.Sprintf("The bridge has no credentials for Tableau site %q: put them in %s. Until then every refresh on the site fails with a 503 and dbt Cloud redelivers; the first delivery after the fix refreshes. (%v)", site, where, err)
		log.ErrorContext(ctx, "no Tableau credentials for the site", "error", err)
	} else {
		log.ErrorContext(ctx, "Tableau rejected the bridge's credentials", "credentials", who, "error", err)
	}
	if r.alerts == nil {
		return
	}
	m := notify.Message{Kind: notify.KindTableauCredentialsRejected, DBTJobID: run.DBTJobID, DBTRunID: run.RunID, Reason: reason, At: r.now()}
	key := "tableau-credentials:" + who + ":" + r.now().UTC().Format(time.DateOnly)
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if aerr := r.alerts.Raise(actx, key, m); aerr != nil {
		log.WarnContext(ctx, "notification pending", "error", aerr)
	}
}

// one refreshes one target, holding a place on its site (release gives it
// back once Tableau has answered): claim it, ask Tableau, record the
// outcome. qctx is the time left to queue.
func (r *Refresher) one(ctx, qctx context.Context, run Run, t Target, holdUntil time.Time, tc Tableau, release func()) Outcome {
	c := &claim{
		Outcome: Outcome{Target: t.Target, Name: t.String(), Source: t.Source, Why: t.Why, Site: t.Site},
		run:     run,
		key:     state.Key{RunID: run.RunID, Target: t.Key()},
		owner:   state.NewOwner(),
		log:     r.logger.With("dbt_run_id", run.RunID, "dbt_job_id", run.DBTJobID, "target", t.String()),
		tc:      tc,
	}
	if !r.take(ctx, c, holdUntil) {
		release()
		return c.Outcome
	}
	res, itemID, err := r.queue(ctx, t.Target, tc)
	release()
	c.ItemID = itemID
	if wait, later := r.later(qctx, err); err != nil && later {
		r.deferOne(ctx, c, t, wait, err)
		return c.Outcome
	}
	if err != nil {
		r.fail(ctx, c, err)
		return c.Outcome
	}
	c.Incremental = res.Incremental && !res.AlreadyQueued
	if res.Downgraded {
		c.Detail = incrementalDowngraded
	}
	r.complete(ctx, c, res, r.rideOn(ctx, c, res), holdUntil)
	return c.Outcome
}

// claim is one target's refresh in progress.
type claim struct {
	Outcome
	run   Run
	key   state.Key
	owner string
	log   *slog.Logger
	tc    Tableau // the target's site's client
}

// take claims the target for this run, and reports whether it did. When it
// did not, the outcome says why: an earlier delivery refreshed it, another
// is refreshing it now, or the store could not be asked.
func (r *Refresher) take(ctx context.Context, c *claim, holdUntil time.Time) bool {
	err := r.store.Begin(ctx, state.Claim{Key: c.key, Owner: c.owner, DBTJobID: c.run.DBTJobID, HoldUntil: holdUntil, Retention: r.retention,
		Source: string(c.Source), Why: c.Why})
	var claimed *state.ClaimedError
	switch {
	case err == nil:
		return true
	case errors.As(err, &claimed) && claimed.Existing.Status == state.StatusCompleted:
		c.Result, c.JobID = state.OutcomeDuplicate, claimed.Existing.JobID
		c.log.InfoContext(ctx, "target already refreshed for this run", "tableau_job_id", claimed.Existing.JobID)
	case errors.As(err, &claimed):
		c.Result, c.Retryable = state.OutcomeInProgress, true
		c.log.InfoContext(ctx, "target is being refreshed by another delivery")
	default:
		c.Result, c.Error, c.Retryable = state.OutcomeFailed, "state store: "+err.Error(), true
		c.log.ErrorContext(ctx, "claim failed", "error", err)
		// The claim may have been written all the same (its reply was
		// lost); left, it would turn the redelivery away until it lapses.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if rerr := r.store.Release(rctx, c.key, c.owner); rerr != nil {
			c.log.WarnContext(ctx, "release failed; the claim lapses at its deadline", "error", rerr)
		}
	}
	return false
}

// fail releases the claim of a refresh Tableau did not queue, so that a
// retry can run, and tells a person about failures no retry fixes.
func (r *Refresher) fail(ctx context.Context, c *claim, err error) {
	c.Result, c.Error = state.OutcomeFailed, err.Error()
	// Rejected credentials concern every target, and are fixed in the
	// secret, after which a retry succeeds (the session lapsed mid-run and
	// signing in again was refused).
	rejected := errors.Is(err, tableau.ErrBadCredentials)
	c.Retryable = tableau.Retryable(err) || rejected
	// A release must outlive a cancelled ctx, or the claim would block
	// retries until it lapses.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if rerr := r.store.Release(rctx, c.key, c.owner); rerr != nil {
		c.log.WarnContext(ctx, "release failed; the claim lapses at its deadline", "error", rerr)
	}
	switch {
	case rejected:
		r.signInFailed(ctx, c.run, c.Target.Site, err)
		return
	case c.Retryable:
		c.log.WarnContext(ctx, "refresh failed; a retry may succeed", "error", err)
		return
	}
	c.log.ErrorContext(ctx, "refresh failed", "error", err)
	r.settled(rctx, c, state.TargetRun{Result: state.OutcomeFailed, FinishedAt: r.now(), Notes: err.Error()})
	if r.alerts == nil {
		return
	}
	t := c.Target
	m := notify.Message{
		Kind: notify.KindTableauRefreshNotQueued, DBTJobID: c.run.DBTJobID, DBTRunID: c.run.RunID,
		TableauItemKind: string(t.Kind), TableauItemName: t.String(), TableauItemID: c.ItemID, Reason: err.Error(), At: r.now(),
	}
	if aerr := r.alerts.Raise(rctx, "not-queued:"+c.run.RunID+":"+t.Key(), m); aerr != nil {
		c.log.WarnContext(ctx, "notification pending", "error", aerr)
	}
}

// complete records the refresh Tableau queued on the claim, with the job
// to follow: the one queued, or the one an already queued target rides on
// (rd, nil unless rides are followed).
func (r *Refresher) complete(ctx context.Context, c *claim, res *tableau.RefreshResult, rd *Ride, holdUntil time.Time) {
	outcome := state.OutcomeRefreshed
	c.Result = state.OutcomeRefreshed
	if res.AlreadyQueued {
		outcome, c.Result = state.OutcomeAlreadyQueued, state.OutcomeAlreadyQueued
	} else if res.Job != nil {
		c.JobID = res.Job.ID
	}
	if rd != nil {
		c.JobID, c.Detail = rd.JobID(), rd.Detail
	}
	// Recording the refresh matters more than answering fast: until it is
	// recorded a redelivery meets the claim in progress, and once the claim
	// lapses it would refresh again. So the write may use all the time the
	// claim is held, even past ctx's (shorter) reply deadline.
	// holdUntil is on the store's clock; the context needs a duration.
	budget := max(holdUntil.Sub(r.now()), 2*time.Second)
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), budget)
	defer cancel()
	write := func(ctx context.Context) error { return r.store.Complete(ctx, c.key, c.owner, outcome, c.JobID) }
	if r.jobs != nil && (c.JobID != "" || rd != nil) {
		// The same write records the job, to be followed to its end.
		j := state.TableauJob{JobID: c.JobID, Run: c.key, DBTJobID: c.run.DBTJobID, TargetName: c.Name, ItemKind: string(c.Target.Kind), ItemID: c.ItemID, QueuedAt: r.now(),
			Outcome: outcome, Incremental: c.Target.Incremental, DBTRunURL: c.run.URL, DBTFinishedAt: c.run.FinishedAt, Site: c.Target.Site}
		if rd != nil {
			j.Requeue = rd.Requeue
		}
		write = func(ctx context.Context) error { return r.jobs.CompleteJob(ctx, c.owner, j) }
	}
	if err := retryStore(cctx, write); err != nil {
		// Tableau has the refresh; a lost record can only cause a repeat that
		// Tableau itself refuses with 409093 while the job is queued.
		c.log.ErrorContext(ctx, "could not record the completed refresh", "error", err, "tableau_job_id", c.JobID)
	}
	c.log.InfoContext(ctx, "refresh queued", "result", c.Result, "tableau_job_id", c.JobID, "tableau_item_id", c.ItemID, "reason", c.Detail)
	if res.AlreadyQueued {
		// The status page hears of it now; the end of the job it rides on,
		// when that is followed, replaces this.
		r.settled(cctx, c, state.TargetRun{Result: state.OutcomeAlreadyQueued, JobID: c.JobID, Notes: c.Detail})
	}
}

// settled tells the status of a target's result that will not change: it
// is recorded (a failure to record is logged; the refresh itself is done)
// and, for a failure, told on.
func (r *Refresher) settled(ctx context.Context, c *claim, run state.TargetRun) {
	if r.status == nil {
		return
	}
	t := c.Target
	st := state.StatusTarget{Key: c.key.Target, Kind: string(t.Kind), Name: t.Name, Project: t.Project, ItemID: c.ItemID, Site: t.Site}
	run.RunID, run.DBTJobID, run.DBTRunURL, run.DBTFinishedAt, run.At = c.run.RunID, c.run.DBTJobID, c.run.URL, c.run.FinishedAt, r.now()
	if err := r.status.Record(ctx, st, run); err != nil {
		c.log.WarnContext(ctx, "could not record the result on the status page", "error", err)
	}
	if run.Result == state.OutcomeFailed {
		r.status.Settled(ctx, st, run)
	}
}

// retryStore repeats a write that completes a claim after a transient store
// error (the SDK retries throttling itself; this covers a slow or failed
// call) for as long as the write's context allows: the claim's time. A
// claim taken over by another invocation is not retried.
func retryStore(ctx context.Context, write func(context.Context) error) error {
	rt := remote.Retrier{
		// Attempts are bounded by ctx, not by count.
		Policy:    remote.Policy{MaxAttempts: 1 << 20, BaseDelay: 50 * time.Millisecond, MaxDelay: time.Second},
		Retryable: func(err error) bool { return !errors.Is(err, state.ErrNotHeld) },
	}
	return rt.Do(ctx, write)
}

// queue resolves the target to a LUID and asks Tableau to refresh it. A LUID
// remembered from an earlier search that Tableau no longer knows (the item was
// republished) is searched again once.
func (r *Refresher) queue(ctx context.Context, t refreshmap.Target, tc Tableau) (*tableau.RefreshResult, string, error) {
	id, cached, err := r.resolve(ctx, tc, t)
	if err != nil {
		return nil, "", err
	}
	res, err := refreshItem(ctx, tc, t.Kind, id, t.Incremental)
	if err != nil && cached && errors.Is(err, tableau.ErrNotFound) {
		r.ids.forget(t.Key())
		if id, _, err = r.resolve(ctx, tc, t); err != nil {
			return nil, "", err
		}
		res, err = refreshItem(ctx, tc, t.Kind, id, t.Incremental)
	}
	if err != nil {
		return nil, id, fmt.Errorf("refresh %s: %w", t, err)
	}
	return res, id, nil
}

func refreshItem(ctx context.Context, tc Tableau, kind refreshmap.Kind, id string, incremental bool) (*tableau.RefreshResult, error) {
	var opts []tableau.RefreshOption
	if incremental {
		opts = append(opts, tableau.Incremental(true))
	}
	if kind == refreshmap.Datasource {
		return tc.RefreshDatasource(ctx, id, opts...)
	}
	return tc.RefreshWorkbook(ctx, id, opts...)
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
