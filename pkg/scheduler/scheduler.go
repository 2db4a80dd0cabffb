// Package scheduler runs dbt Cloud jobs on a schedule and refreshes their
// Tableau targets when they succeed.
//
// A dbt run may outlast the invocation that started it, so the run is
// recorded in the state table and followed by later invocations instead of
// being started again: each scheduled tick either triggers a job or resumes
// the run it has in flight, and a frequent follow-up event checks runs in
// flight without waiting. Refreshes go through the same idempotent code as
// the webhook path, so a run reported by both paths refreshes each target
// once.
package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dbtcloud"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/followup"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/lineage"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/logging"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/notify"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refresh"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refreshmap"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/remote"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
)

// DBT is what the scheduler needs from a dbt Cloud client.
type DBT interface {
	TriggerRun(ctx context.Context, jobID int64, req *dbtcloud.TriggerRunRequest) (*dbtcloud.Run, error)
	GetRun(ctx context.Context, runID int64) (*dbtcloud.Run, error)
	ListRuns(ctx context.Context, jobID int64, opts *dbtcloud.ListRunsOptions) ([]*dbtcloud.Run, error)
	CancelRun(ctx context.Context, runID int64) (*dbtcloud.Run, error)
}

// Checker is implemented by a DBT whose configuration can be checked before
// a tick touches any job (the API token is present, say): a tick that could
// not run one job for want of configuration fails as one error rather than
// one per job.
type Checker interface {
	Check(ctx context.Context) error
}

// ErrNoDBT is the error of a tick that names dbt jobs in a deployment that
// has no dbt Cloud account configured. Following Tableau jobs needs none.
var ErrNoDBT = errors.New("the scheduled path is not configured: set DBT_ACCOUNT_ID (template parameter DbtAccountId) and put dbt_api_token in the secret")

// Event is the scheduled event's input. A tick names the jobs to run; a
// follow-up ({"follow": true}) only checks the runs in flight, queues the
// targets earlier invocations deferred, and follows Tableau's jobs.
type Event struct {
	Jobs []string `json:"jobs,omitempty"`
	// ScheduledTime is EventBridge Scheduler's <aws.scheduler.scheduled-time>
	// for this tick: a retried invocation of the same tick carries the same
	// value and so does not trigger the jobs again.
	ScheduledTime string `json:"scheduled_time,omitempty"`
	Follow        bool   `json:"follow,omitempty"`
	// LineageIndex builds the lineage index, or continues the build under
	// way ({"lineage_index": true}, hourly).
	LineageIndex bool `json:"lineage_index,omitempty"`
}

// JobResult is what happened to one job.
type JobResult struct {
	JobID   string            `json:"job_id"`
	RunID   int64             `json:"run_id,omitempty"`
	Outcome state.Outcome     `json:"outcome"`
	Status  string            `json:"dbt_status,omitempty"`
	Message string            `json:"message,omitempty"`
	Href    string            `json:"href,omitempty"`
	Targets []refresh.Outcome `json:"targets,omitempty"`
}

// Result is the invocation's result.
type Result struct {
	Jobs []JobResult `json:"jobs"`
	// Tableau is what a follow-up saw of the Tableau refresh jobs.
	Tableau *followup.FollowResult `json:"tableau,omitempty"`
	// Lineage is what a lineage_index event did.
	Lineage *lineage.BuildResult `json:"lineage_index,omitempty"`
	// Deferred is what a follow-up did with the targets earlier
	// invocations deferred, when there were any.
	Deferred *refresh.DeferredResult `json:"deferred,omitempty"`
}

// Indexer builds the lineage index (lineage.Builder).
type Indexer interface {
	Build(ctx context.Context) (lineage.BuildResult, error)
}

// failed reports whether the outcome is one the invocation must fail for,
// so that the error alarm and EventBridge's retry and dead-letter queue see it.
func (r JobResult) failed() bool {
	switch r.Outcome {
	case state.OutcomeFailed, state.OutcomeCancelled, state.OutcomeStuck, state.OutcomeError, state.OutcomeRefreshIncomplete:
		return true
	}
	return false
}

// config is what Options set.
type config struct {
	Planner            Planner
	PollWindow, Margin time.Duration
	FirstPoll, MaxPoll time.Duration
	QueueLimit         time.Duration
	CancelStuck        bool
	Cause              string
	Alerts             refresh.Alerter
	Follower           Follower
	Indexer            Indexer
	Logger             *slog.Logger
	Now                func() time.Time
	Sleep              func(ctx context.Context, d time.Duration) error
	Deadline           func(ctx context.Context) (time.Time, bool)
}

// Planner says what a run refreshes: the refresh map's targets for its
// job, and with lineage what the run changed (lineage.Planner).
type Planner interface {
	Plan(ctx context.Context, run refresh.Run) lineage.Plan
	On() bool
	Map() *refreshmap.Map
}

// Follower follows the Tableau refresh jobs, on follow-up events.
type Follower interface {
	Follow(ctx context.Context) (followup.FollowResult, error)
}

// Option configures a Scheduler.
type Option func(*config)

// WithPollWindow bounds how long one invocation waits for runs (default
// 5m); longer runs are finished by follow-up invocations.
func WithPollWindow(d time.Duration) Option { return func(c *config) { c.PollWindow = d } }

// WithMargin sets the time kept free before the Lambda deadline (default 30s).
func WithMargin(d time.Duration) Option { return func(c *config) { c.Margin = d } }

// WithPolls shapes the backoff between status checks: first, growing by
// half each time, capped at max (defaults 10s and 60s).
func WithPolls(first, max time.Duration) Option {
	return func(c *config) { c.FirstPoll, c.MaxPoll = first, max }
}

// WithQueueLimit sets how long a run may stay queued or starting before it
// is reported as stuck (default 30m); cancel also cancels it in dbt Cloud.
func WithQueueLimit(d time.Duration, cancel bool) Option {
	return func(c *config) { c.QueueLimit, c.CancelStuck = d, cancel }
}

// WithCause sets the trigger's cause, shown in dbt Cloud (default DefaultCause).
func WithCause(cause string) Option { return func(c *config) { c.Cause = cause } }

// WithAlerts tells a person of failed, cancelled and stuck runs.
func WithAlerts(a refresh.Alerter) Option { return func(c *config) { c.Alerts = a } }

// WithFollower follows the Tableau refresh jobs on follow-up events, after
// the dbt runs in flight are checked.
func WithFollower(f Follower) Option { return func(c *config) { c.Follower = f } }

// WithIndexer builds the lineage index on lineage_index events.
func WithIndexer(i Indexer) Option { return func(c *config) { c.Indexer = i } }

// WithLogger sets where the Scheduler logs; by default nowhere.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.Logger = l } }

// WithClock sets the clock and the sleep between polls; tests pass a
// simulated pair.
func WithClock(now func() time.Time, sleep func(ctx context.Context, d time.Duration) error) Option {
	return func(c *config) { c.Now, c.Sleep = now, sleep }
}

// WithDeadline sets where the invocation's deadline is read (default: the
// context's).
func WithDeadline(f func(ctx context.Context) (time.Time, bool)) Option {
	return func(c *config) { c.Deadline = f }
}

// DefaultCause is the cause of the runs the scheduler triggers.
const DefaultCause = "Scheduled by dbt-tableau-refresh"

// Scheduler handles scheduled events.
type Scheduler struct {
	dbt       DBT
	runs      state.ScheduledRuns
	refresher *refresh.Refresher
	cfg       config
}

// New returns a Scheduler that runs the jobs of m. dbt is nil in a
// deployment without a dbt Cloud account: follow-ups still follow the
// Tableau jobs the webhook queued, and a tick that names jobs fails with
// ErrNoDBT.
func New(dbt DBT, runs state.ScheduledRuns, r *refresh.Refresher, p Planner, opts ...Option) (*Scheduler, error) {
	if runs == nil || r == nil || p == nil {
		return nil, errors.New("scheduler: run store, refresher and planner are required")
	}
	cfg := config{
		Planner: p, PollWindow: 5 * time.Minute, Margin: 30 * time.Second, FirstPoll: 10 * time.Second, MaxPoll: time.Minute,
		QueueLimit: 30 * time.Minute, Cause: DefaultCause, Logger: slog.New(slog.DiscardHandler),
		Now: time.Now, Sleep: remote.Sleep, Deadline: func(ctx context.Context) (time.Time, bool) { return ctx.Deadline() },
	}
	for _, opt := range opts {
		opt(&cfg)
	}
	return &Scheduler{dbt: dbt, runs: runs, refresher: r, cfg: cfg}, nil
}

// Handle is the Lambda handler. Jobs are handled concurrently and
// independently; the error lists every job that failed.
func (s *Scheduler) Handle(ctx context.Context, ev Event) (Result, error) {
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		ctx = logging.With(ctx, "request_id", lc.AwsRequestID)
	}
	if ev.LineageIndex {
		return s.buildIndex(ctx, ev)
	}
	jobs, err := s.jobsFor(ctx, ev)
	if err != nil {
		return Result{}, err
	}
	if !ev.Follow {
		if err := s.checkDBT(ctx, jobs); err != nil {
			return Result{}, err
		}
	}
	tick, err := tickOf(ev, s.cfg.Now())
	if err != nil {
		return Result{}, err
	}
	until := s.pollUntil(ctx)
	if ev.Follow {
		// A follow-up looks once; the next one is minutes away anyway.
		until = s.cfg.Now()
	}
	res := Result{Jobs: make([]JobResult, len(jobs))}
	var wg sync.WaitGroup
	for i, job := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res.Jobs[i] = s.job(ctx, job, tick, ev.Follow, until)
		}()
	}
	wg.Wait()

	var failures []string
	for _, j := range res.Jobs {
		if j.failed() {
			failures = append(failures, fmt.Sprintf("job %s run %d: %s: %s", j.JobID, j.RunID, j.Outcome, j.Message))
		}
	}
	var errs []error
	if ev.Follow {
		dr, err := s.queueDeferred(ctx)
		if dr.Found > 0 || err != nil {
			res.Deferred = &dr
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if len(failures) > 0 {
		errs = append(errs, fmt.Errorf("%d of %d %s failed: %s", len(failures), len(res.Jobs), plural(len(res.Jobs), "dbt job", "dbt jobs"), strings.Join(failures, "; ")))
	}
	if ev.Follow && s.cfg.Follower != nil {
		fr, err := s.cfg.Follower.Follow(ctx)
		res.Tableau = &fr
		if err != nil {
			errs = append(errs, fmt.Errorf("follow Tableau refresh jobs: %w", err))
		}
	}
	return res, errors.Join(errs...)
}

// queueDeferred queues the targets that earlier invocations deferred (the
// webhook's, when Tableau could not take them all in dbt's time), within
// this invocation's time less the margin; the claims it takes are held until
// its deadline.
func (s *Scheduler) queueDeferred(ctx context.Context) (refresh.DeferredResult, error) {
	hold := s.cfg.Now().Add(time.Minute)
	if d, ok := s.cfg.Deadline(ctx); ok {
		hold = d
		// The deadline is on the scheduler's clock; the context's is wall
		// time.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, max(d.Sub(s.cfg.Now())-s.cfg.Margin, time.Second))
		defer cancel()
	}
	return s.refresher.QueueDeferred(ctx, hold)
}

// buildIndex handles a lineage_index event.
func (s *Scheduler) buildIndex(ctx context.Context, ev Event) (Result, error) {
	if len(ev.Jobs) > 0 || ev.Follow {
		return Result{}, errors.New(`scheduled event: "lineage_index" is an event of its own; do not list "jobs" or "follow" with it`)
	}
	if s.cfg.Indexer == nil {
		return Result{}, errors.New("configuration: a lineage_index event, but lineage is off (LINEAGE=off, or DBT_ACCOUNT_ID is not set)")
	}
	// Leave the build time to record where it stopped before the deadline.
	if d, ok := s.cfg.Deadline(ctx); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Add(-s.cfg.Margin))
		defer cancel()
	}
	res, err := s.cfg.Indexer.Build(ctx)
	return Result{Jobs: []JobResult{}, Lineage: &res}, err
}

// checkDBT fails a tick at once, as one configuration error, when dbt Cloud
// cannot be asked about any job.
func (s *Scheduler) checkDBT(ctx context.Context, jobs []string) error {
	if s.dbt == nil {
		return fmt.Errorf("configuration: the event names %s %s, but %w", plural(len(jobs), "dbt job", "dbt jobs"), strings.Join(jobs, ", "), ErrNoDBT)
	}
	if c, ok := s.dbt.(Checker); ok {
		if err := c.Check(ctx); err != nil {
			return fmt.Errorf("configuration: %w", err)
		}
	}
	return nil
}

// runIDAttr logs a dbt run id as the string the webhook path logs it as,
// so one query finds a run's lines from both functions.
func runIDAttr(id int64) slog.Attr {
	return slog.String("dbt_run_id", strconv.FormatInt(id, 10))
}

// plural picks the word for n things.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// tickLayout is fixed-width, so that ticks order as strings in the store.
const tickLayout = "2006-01-02T15:04:05.000000000Z"

// tickOf names the invocation's tick: the scheduled time EventBridge passes,
// or now for an unscheduled invocation (by hand, or a test).
func tickOf(ev Event, now time.Time) (string, error) {
	if ev.ScheduledTime == "" {
		return now.UTC().Format(tickLayout), nil
	}
	t, err := time.Parse(time.RFC3339Nano, ev.ScheduledTime)
	if err != nil {
		return "", fmt.Errorf("scheduled event: scheduled_time %q is not an RFC 3339 time", ev.ScheduledTime)
	}
	return t.UTC().Format(tickLayout), nil
}

// jobsFor validates the event and returns the jobs to handle, before any is
// touched: a bad id must not leave the others half done.
func (s *Scheduler) jobsFor(ctx context.Context, ev Event) ([]string, error) {
	if ev.Follow {
		if len(ev.Jobs) > 0 {
			return nil, errors.New(`scheduled event: "follow" checks every run in flight; do not list "jobs" with it`)
		}
		recs, err := s.runs.List(ctx)
		if err != nil {
			return nil, err
		}
		var jobs []string
		for _, r := range recs {
			if r.Phase == state.PhaseRunning {
				jobs = append(jobs, r.JobID)
			}
		}
		return jobs, nil
	}
	if len(ev.Jobs) == 0 {
		return nil, errors.New(`scheduled event: no jobs; want {"jobs": ["<dbt job id>", ...]} or {"follow": true}`)
	}
	seen := make(map[string]bool, len(ev.Jobs))
	for _, j := range ev.Jobs {
		if _, err := strconv.ParseInt(j, 10, 64); err != nil || strings.HasPrefix(j, "-") || strings.HasPrefix(j, "+") {
			return nil, fmt.Errorf("scheduled event: dbt job id %q is not a positive integer", j)
		}
		if !s.cfg.Planner.On() && len(s.cfg.Planner.Map().Targets(j)) == 0 {
			return nil, fmt.Errorf("scheduled event: dbt job %s has no Tableau targets in the refresh map, and lineage is off", j)
		}
		if seen[j] {
			return nil, fmt.Errorf("scheduled event: dbt job %s is listed twice", j)
		}
		seen[j] = true
	}
	return ev.Jobs, nil
}

func (s *Scheduler) pollUntil(ctx context.Context) time.Time {
	until := s.cfg.Now().Add(s.cfg.PollWindow)
	if d, ok := s.cfg.Deadline(ctx); ok {
		if m := d.Add(-s.cfg.Margin); m.Before(until) {
			until = m
		}
	}
	return until
}

// job triggers the job or resumes its run in flight, then follows the run.
func (s *Scheduler) job(ctx context.Context, jobID, tick string, followOnly bool, until time.Time) JobResult {
	res := JobResult{JobID: jobID}
	log := s.cfg.Logger.With("dbt_job_id", jobID)
	rec, err := s.runs.Get(ctx, jobID)
	if err != nil {
		return s.errored(ctx, log, res, err)
	}
	switch {
	case rec != nil && rec.Phase == state.PhaseRunning && s.dbt == nil:
		// A run triggered before DBT_ACCOUNT_ID was removed.
		res.RunID = rec.RunID
		return s.errored(ctx, log, res, fmt.Errorf("cannot follow dbt run %d: %w", rec.RunID, ErrNoDBT))
	case rec != nil && rec.Phase == state.PhaseRunning:
		res.RunID = rec.RunID
		log.InfoContext(ctx, "resuming dbt run in flight", runIDAttr(rec.RunID), "triggered_at", rec.TriggeredAt)
		return s.follow(ctx, log, res, rec.TriggeredAt, until)
	case followOnly:
		res.Outcome, res.Message = state.OutcomeAlreadyHandled, "no run in flight"
		return res
	}
	return s.trigger(ctx, log, res, tick, until)
}

func (s *Scheduler) trigger(ctx context.Context, log *slog.Logger, res JobResult, tick string, until time.Time) JobResult {
	owner := state.NewOwner()
	now := s.cfg.Now()
	err := s.runs.BeginTrigger(ctx, res.JobID, owner, tick, now.Add(2*time.Minute))
	var held *state.LeaseHeldError
	switch {
	case errors.As(err, &held) && held.Existing.Phase == state.PhaseRunning:
		// Another invocation triggered it between our read and our lease.
		res.RunID = held.Existing.RunID
		return s.follow(ctx, log, res, held.Existing.TriggeredAt, until)
	case errors.As(err, &held):
		res.RunID, res.Outcome, res.Message = held.Existing.RunID, state.OutcomeAlreadyHandled, held.Error()
		if held.Existing.Phase == state.PhaseSettled && held.Existing.Tick == tick && held.Existing.Outcome != state.OutcomeRefreshed {
			// A retried tick repeats the failure it is retrying for, so the
			// event still ends in the dead-letter queue.
			res.Outcome, res.Status = held.Existing.Outcome, string(held.Existing.Outcome)
		}
		log.InfoContext(ctx, "not triggering", "reason", held.Error())
		return res
	case err != nil:
		return s.errored(ctx, log, res, err)
	}
	jobNum, _ := strconv.ParseInt(res.JobID, 10, 64)
	// The cause is unique to this attempt, so that a run whose trigger reply
	// was lost can be found again instead of being started twice.
	cause := fmt.Sprintf("%s (%s)", s.cfg.Cause, owner[:12])
	run, err := s.dbt.TriggerRun(ctx, jobNum, &dbtcloud.TriggerRunRequest{Cause: cause})
	if errors.Is(err, dbtcloud.ErrTriggerOutcomeUnknown) {
		if found, ferr := s.findByCause(ctx, jobNum, cause); ferr == nil && found != nil {
			log.WarnContext(ctx, "trigger reply lost; found the run by its cause", runIDAttr(found.ID))
			run, err = found, nil
		}
	}
	if err != nil {
		if aerr := s.runs.Abandon(context.WithoutCancel(ctx), res.JobID, owner); aerr != nil {
			log.WarnContext(ctx, "could not drop the trigger lease; it lapses in two minutes", "error", aerr)
		}
		return s.errored(ctx, log, res, fmt.Errorf("trigger dbt job %s: %w", res.JobID, err))
	}
	res.RunID, res.Href = run.ID, run.Href
	if err := s.runs.Started(context.WithoutCancel(ctx), res.JobID, owner, run.ID, now); err != nil {
		// The run exists but is not recorded: following it now is still
		// right; a later tick may start another run of the job.
		log.ErrorContext(ctx, "could not record the triggered run", runIDAttr(run.ID), "error", err)
	}
	log.InfoContext(ctx, "triggered dbt run", runIDAttr(run.ID), "dbt_run_url", run.Href)
	return s.follow(ctx, log, res, now, until)
}

func (s *Scheduler) findByCause(ctx context.Context, jobID int64, cause string) (*dbtcloud.Run, error) {
	runs, err := s.dbt.ListRuns(ctx, jobID, &dbtcloud.ListRunsOptions{Limit: 10})
	if err != nil {
		return nil, err
	}
	for _, r := range runs {
		if r.Trigger != nil && r.Trigger.Cause == cause {
			return r, nil
		}
	}
	return nil, nil
}

// follow polls the run with capped exponential backoff until it ends or the
// poll window closes.
func (s *Scheduler) follow(ctx context.Context, log *slog.Logger, res JobResult, triggeredAt, until time.Time) JobResult {
	log = log.With(runIDAttr(res.RunID))
	wait := s.cfg.FirstPoll
	var lastErr error
	for {
		run, err := s.dbt.GetRun(ctx, res.RunID)
		switch {
		case err == nil:
			lastErr = nil
			res.Status, res.Href = run.Status.String(), run.Href
			if run.Status.Terminal() {
				return s.settle(ctx, log, res, run)
			}
			if waited := s.cfg.Now().Sub(queuedSince(run, triggeredAt)); notStarted(run.Status) && waited > s.cfg.QueueLimit {
				return s.stuck(ctx, log, res, waited)
			}
		case dbtcloud.Retryable(err):
			lastErr = err
			log.WarnContext(ctx, "dbt run status unavailable; will ask again", "error", err)
		default:
			return s.errored(ctx, log, res, fmt.Errorf("read dbt run %d: %w", res.RunID, err))
		}
		if s.cfg.Now().Add(wait).After(until) {
			res.Outcome = state.OutcomeRunning
			res.Message = "still " + strings.ToLower(res.Status) + "; the next invocation follows it"
			if lastErr != nil {
				res.Message = "status unavailable (" + lastErr.Error() + "); the next invocation follows it"
			}
			log.InfoContext(ctx, "dbt run outlives this invocation", "dbt_status", res.Status)
			return res
		}
		// One line per wait, so that someone watching a run (make invoke)
		// sees what the function is waiting for.
		log.InfoContext(ctx, "waiting for the dbt run to finish", "dbt_status", res.Status, "next_check_in", wait.String())
		if err := s.cfg.Sleep(ctx, wait); err != nil {
			res.Outcome, res.Message = state.OutcomeRunning, "invocation ending: "+err.Error()
			return res
		}
		wait = min(wait*3/2, s.cfg.MaxPoll)
	}
}

func (s *Scheduler) settle(ctx context.Context, log *slog.Logger, res JobResult, run *dbtcloud.Run) JobResult {
	if !run.Status.Success() {
		res.Outcome = state.OutcomeFailed
		if run.Status == dbtcloud.StatusCancelled {
			res.Outcome = state.OutcomeCancelled
		}
		res.Message = run.StatusMessage
		if res.Message == "" {
			res.Message = "dbt run " + strings.ToLower(run.Status.String())
		}
		settled, err := s.runs.Settle(context.WithoutCancel(ctx), res.JobID, res.RunID, res.Outcome)
		if err != nil {
			log.WarnContext(ctx, "could not settle the run record", "error", err)
		}
		if settled || err != nil {
			log.ErrorContext(ctx, "dbt run did not succeed; Tableau not refreshed", "dbt_status", res.Status, "reason", res.Message, "dbt_run_url", run.Href)
			kind := notify.KindDBTRunFailed
			if res.Outcome == state.OutcomeCancelled {
				kind = notify.KindDBTRunCancelled
			}
			s.alert(ctx, log, res, kind)
		}
		return res
	}
	ran := refresh.Run{RunID: strconv.FormatInt(res.RunID, 10), DBTJobID: res.JobID, URL: run.Href}
	if run.FinishedAt != nil {
		ran.FinishedAt = run.FinishedAt.Time
	}
	plan := s.cfg.Planner.Plan(ctx, ran)
	hold := s.cfg.Now().Add(time.Minute)
	if d, ok := s.cfg.Deadline(ctx); ok {
		hold = d
	}
	res.Targets = s.refresher.Refresh(ctx, ran, plan.Targets, hold)
	var unsettled []string
	if plan.Err != nil && plan.Retry {
		// The record stays RUNNING: the next follow-up reads the run's
		// artifacts again (the map's targets are done, and stay done).
		unsettled = append(unsettled, "lineage: "+plan.Err.Error())
	}
	for _, o := range res.Targets {
		if !o.Settled() {
			unsettled = append(unsettled, o.Name+": "+o.Error)
		}
	}
	if len(unsettled) > 0 {
		// The record stays RUNNING: the next invocation sees the success
		// again and retries only these targets.
		res.Outcome, res.Message = state.OutcomeRefreshIncomplete, strings.Join(unsettled, "; ")
		log.WarnContext(ctx, "dbt run succeeded; some Tableau targets not refreshed yet", "unsettled", len(unsettled))
		return res
	}
	res.Outcome = state.OutcomeRefreshed
	if _, err := s.runs.Settle(context.WithoutCancel(ctx), res.JobID, res.RunID, state.OutcomeRefreshed); err != nil {
		log.WarnContext(ctx, "could not settle the run record", "error", err)
	}
	log.InfoContext(ctx, "dbt run succeeded; Tableau targets refreshed", "targets", len(res.Targets))
	return res
}

func (s *Scheduler) stuck(ctx context.Context, log *slog.Logger, res JobResult, waited time.Duration) JobResult {
	res.Outcome = state.OutcomeStuck
	res.Message = fmt.Sprintf("still %s after %s (limit %s)", strings.ToLower(res.Status), waited.Round(time.Second), s.cfg.QueueLimit)
	if s.cfg.CancelStuck {
		if _, err := s.dbt.CancelRun(ctx, res.RunID); err != nil {
			res.Message += "; cancel failed: " + err.Error()
		} else {
			res.Message += "; cancelled"
		}
	}
	settled, err := s.runs.Settle(context.WithoutCancel(ctx), res.JobID, res.RunID, state.OutcomeStuck)
	if err != nil {
		log.WarnContext(ctx, "could not settle the run record", "error", err)
	}
	if settled || err != nil {
		log.ErrorContext(ctx, "dbt run stuck before starting", "dbt_status", res.Status, "reason", res.Message)
		s.alert(ctx, log, res, notify.KindDBTRunStuck)
	}
	return res
}

// alert raises a run's failure once, keyed by the run.
func (s *Scheduler) alert(ctx context.Context, log *slog.Logger, res JobResult, kind notify.Kind) {
	if s.cfg.Alerts == nil {
		return
	}
	m := notify.Message{
		Kind: kind, DBTJobID: res.JobID, DBTRunID: strconv.FormatInt(res.RunID, 10), DBTRunURL: res.Href,
		Reason: res.Message, At: s.cfg.Now(),
	}
	if err := s.cfg.Alerts.Raise(context.WithoutCancel(ctx), "dbt-run:"+m.DBTRunID, m); err != nil {
		log.WarnContext(ctx, "notification pending", "error", err)
	}
}

func (s *Scheduler) errored(ctx context.Context, log *slog.Logger, res JobResult, err error) JobResult {
	res.Outcome, res.Message = state.OutcomeError, err.Error()
	log.ErrorContext(ctx, "dbt job not handled", "error", err)
	return res
}

func notStarted(st dbtcloud.RunStatus) bool {
	return st == dbtcloud.StatusQueued || st == dbtcloud.StatusStarting
}

// queuedSince prefers dbt's own creation time: a resumed run's record may
// have lost its trigger time.
func queuedSince(run *dbtcloud.Run, triggeredAt time.Time) time.Time {
	if !run.CreatedAt.IsZero() {
		return run.CreatedAt.Time
	}
	return triggeredAt
}
