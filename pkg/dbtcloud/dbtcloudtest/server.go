// Package dbtcloudtest is an in-process fake of the dbt Cloud Administrative
// API v2 and of dbt Cloud's job webhooks, for tests and the local demo.
//
// It is written from the API's documentation and captured replies, not from
// package dbtcloud, so that the client is tested against an independent
// reading of the same contract: replies use dbt's envelope
// ({"status": {...}, "data": ...}), dbt's timestamp layout and dbt's status
// codes and error bodies.
//
// Runs move through queued (1), starting (2) and running (3) to success (10),
// error (20) or cancelled (30) as the server's clock passes each job's
// timings. The state is computed from the clock whenever it is read, so a
// test with a fake clock can play a forty-minute run in a microsecond.
//
// A run goes through its job's steps (run_steps, with include_related), and
// once it has finished serves each step's artifacts, such as run_results.json
// and manifest.json; by default those of a demo dbt project, see DemoSteps.
package dbtcloudtest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"sync"
	"time"
)

// Defaults used when WithAccount and WithToken are not given.
const (
	DefaultAccountID int64 = 1
	DefaultToken           = "dbtc_simulator_service_token"
)

// Default phase lengths of a run when the job has no RunTimings: short, so
// the local demo finishes a run in a quarter of a minute of real time.
const (
	DefaultQueued   = 2 * time.Second
	DefaultStarting = 3 * time.Second
	DefaultRunning  = 10 * time.Second
)

// DefaultErrorMessage is the status_message of runs that end in error when
// the job has no ErrorMessage.
const DefaultErrorMessage = "Database Error in model orders (models/marts/orders.sql)\n  relation \"raw.jaffle_shop.orders\" does not exist"

const cancelledMessage = "Cancelled by user."

// Server is a running fake dbt Cloud. Create it with NewServer and Close it
// when done. All methods are safe for concurrent use.
type Server struct {
	srv *httptest.Server
	mux *http.ServeMux

	// Settings fixed before the server starts.
	accountID int64
	token     string
	now       func() time.Time
	addr      string
	timing    WebhookTiming

	mu            sync.Mutex
	jobs          map[int64]*job
	runs          map[int64]*run
	nextRunID     int64
	nextTriggerID int64
	faults        []*faultState
	latency       time.Duration
	requests      []Request
	hooks         []*subscription
	deliveries    []Delivery
	inflight      int
	pollerStarted bool
	closed        bool

	closing chan struct{}
	wg      sync.WaitGroup
}

// Option configures a Server.
type Option func(*Server)

// WithAccount sets the account id the server answers for; requests for
// another account get 403, as a token not scoped to that account does.
func WithAccount(id int64) Option {
	return func(s *Server) {
		if id <= 0 {
			panic(fmt.Sprintf("dbtcloudtest: account id must be positive, got %d", id))
		}
		s.accountID = id
	}
}

// WithToken sets the one valid API token. Requests without it get 401 with
// dbt's "Invalid token." body.
func WithToken(token string) Option {
	return func(s *Server) {
		if token == "" {
			panic("dbtcloudtest: token must not be empty")
		}
		s.token = token
	}
}

// WithClock sets the clock that run life cycles and timestamps follow. now
// must be safe for concurrent use: the webhook poller calls it from its own
// goroutine.
func WithClock(now func() time.Time) Option {
	return func(s *Server) {
		if now == nil {
			panic("dbtcloudtest: clock must not be nil")
		}
		s.now = now
	}
}

// WithAddr makes the server listen on addr (for example "127.0.0.1:8089")
// instead of a random loopback port, so a local demo has a stable URL.
func WithAddr(addr string) Option {
	return func(s *Server) { s.addr = addr }
}

// WithWebhookTiming changes how the server delivers webhooks; zero fields
// keep their defaults.
func WithWebhookTiming(t WebhookTiming) Option {
	return func(s *Server) {
		if t.Timeout > 0 {
			s.timing.Timeout = t.Timeout
		}
		if t.RetryDelay > 0 {
			s.timing.RetryDelay = t.RetryDelay
		}
		if t.PollInterval > 0 {
			s.timing.PollInterval = t.PollInterval
		}
	}
}

// NewServer starts a fake dbt Cloud on a loopback address. It works outside
// tests too (the local demo uses it); it panics if it cannot listen, like
// httptest.NewServer.
func NewServer(opts ...Option) *Server {
	s := &Server{
		accountID:     DefaultAccountID,
		token:         DefaultToken,
		now:           time.Now,
		timing:        defaultWebhookTiming,
		jobs:          map[int64]*job{},
		runs:          map[int64]*run{},
		nextRunID:     70403100001,
		nextTriggerID: 71017200001,
		closing:       make(chan struct{}),
	}
	for _, opt := range opts {
		opt(s)
	}
	s.mux = s.routes()
	s.srv = httptest.NewUnstartedServer(s)
	if s.addr != "" {
		l, err := net.Listen("tcp", s.addr)
		if err != nil {
			panic(fmt.Sprintf("dbtcloudtest: listen on %s: %v", s.addr, err))
		}
		s.srv.Listener.Close()
		s.srv.Listener = l
	}
	s.srv.Start()
	return s
}

// URL returns the base URL to give a client, like "http://127.0.0.1:41234".
func (s *Server) URL() string { return s.srv.URL }

// AccountID returns the account the server answers for.
func (s *Server) AccountID() int64 { return s.accountID }

// Token returns the valid API token.
func (s *Server) Token() string { return s.token }

// HTTPClient returns a client configured for the server.
func (s *Server) HTTPClient() *http.Client { return s.srv.Client() }

// Close stops webhook deliveries and shuts the server down. It is safe to
// call more than once.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.closing)
	s.mu.Unlock()
	s.wg.Wait()
	s.srv.Close()
}

// job is a job definition and how its runs behave.
type job struct {
	id, environmentID, projectID int64
	name                         string
	queued, starting, running    time.Duration
	outcome                      int
	errorMessage                 string
	stuck                        bool
	steps                        []Step
}

// JobOption configures a job added with AddJob.
type JobOption func(*job)

// RunTimings sets how long runs of the job stay queued, starting and running.
func RunTimings(queued, starting, running time.Duration) JobOption {
	if queued < 0 || starting < 0 || running < 0 {
		panic("dbtcloudtest: run timings must not be negative")
	}
	return func(j *job) { j.queued, j.starting, j.running = queued, starting, running }
}

// Outcome sets the final status of the job's runs: 10 (success, the
// default), 20 (error, with a status_message) or 30 (cancelled, as when
// someone cancels it in the UI).
func Outcome(status int) JobOption {
	checkOutcome(status)
	return func(j *job) { j.outcome = status }
}

// ErrorMessage sets the status_message of the job's runs that end in error.
func ErrorMessage(msg string) JobOption {
	return func(j *job) { j.errorMessage = msg }
}

// StuckInQueue keeps the job's runs queued forever, as when the account has
// no free run slot; only a cancel ends them.
func StuckInQueue() JobOption {
	return func(j *job) { j.stuck = true }
}

// Environment sets the environment and project ids the job's runs report.
func Environment(environmentID, projectID int64) JobOption {
	return func(j *job) { j.environmentID, j.projectID = environmentID, projectID }
}

func checkOutcome(status int) {
	if status != statusSuccess && status != statusError && status != statusCancelled {
		panic(fmt.Sprintf("dbtcloudtest: outcome must be 10, 20 or 30, got %d", status))
	}
}

// AddJob defines job id; triggering an unknown job answers 404. Adding an
// existing id replaces its definition for runs triggered from then on.
func (s *Server) AddJob(id int64, name string, opts ...JobOption) {
	if id <= 0 {
		panic(fmt.Sprintf("dbtcloudtest: job id must be positive, got %d", id))
	}
	j := &job{
		id: id, name: name, environmentID: 218762, projectID: 167194,
		queued: DefaultQueued, starting: DefaultStarting, running: DefaultRunning,
		outcome: statusSuccess, errorMessage: DefaultErrorMessage, steps: DemoSteps(),
	}
	for _, opt := range opts {
		opt(j)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.jobs[id] = j
}

// AddFinishedRun records run runID of jobID as having finished already,
// with the job's outcome and artifacts, as a run dbt Cloud reported by
// webhook before the simulator started would have (the demo's sample
// events name such runs). It panics for an unknown job or a run id in use.
func (s *Server) AddFinishedRun(jobID, runID int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[jobID]
	if !ok {
		panic(fmt.Sprintf("dbtcloudtest: AddFinishedRun: no job %d", jobID))
	}
	if _, dup := s.runs[runID]; dup {
		panic(fmt.Sprintf("dbtcloudtest: AddFinishedRun: run %d exists", runID))
	}
	took := j.queued + j.starting + j.running
	r := &run{id: runID, triggerID: s.nextTriggerID, job: *j, req: triggerBody{Cause: "Kicked off from the UI"},
		created: s.now().Add(-took - time.Minute)}
	s.nextTriggerID++
	s.runs[runID] = r
}

// SetJobOutcome changes the final status (10, 20 or 30) of runs of jobID
// triggered from now on; runs already triggered keep theirs. It panics for
// an unknown job, which is a mistake in the test.
func (s *Server) SetJobOutcome(jobID int64, status int) {
	checkOutcome(status)
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[jobID]
	if !ok {
		panic(fmt.Sprintf("dbtcloudtest: SetJobOutcome: no job %d", jobID))
	}
	j.outcome = status
}

// Run status codes, as dbt numbers them.
const (
	statusQueued    = 1
	statusStarting  = 2
	statusRunning   = 3
	statusSuccess   = 10
	statusError     = 20
	statusCancelled = 30
)

func humanStatus(status int) string {
	switch status {
	case statusQueued:
		return "Queued"
	case statusStarting:
		return "Starting"
	case statusRunning:
		return "Running"
	case statusSuccess:
		return "Success"
	case statusError:
		return "Error"
	case statusCancelled:
		return "Cancelled"
	}
	return "Unknown"
}

func terminal(status int) bool {
	return status == statusSuccess || status == statusError || status == statusCancelled
}

// run is one triggered run. Its job's settings are copied at trigger time so
// that later AddJob or SetJobOutcome calls do not rewrite history.
type run struct {
	id, triggerID int64
	job           job
	req           triggerBody
	created       time.Time
	cancelledAt   *time.Time

	// Webhook bookkeeping: which transitions have been announced.
	announcedStart, announcedEnd bool
}

// runState is a run as of one instant.
type runState struct {
	status                      int
	dequeued, started, finished *time.Time
	updated                     time.Time
	message                     string
}

// stateAt computes the run's state at now from its timings; nothing is
// stored, which is what lets a fake clock jump ahead.
func (r *run) stateAt(now time.Time) runState {
	dq := r.created.Add(r.job.queued)
	st := dq.Add(r.job.starting)
	fin := st.Add(r.job.running)
	at := func(t time.Time) *time.Time { return &t }

	if c := r.cancelledAt; c != nil && !now.Before(*c) {
		s := runState{status: statusCancelled, finished: at(*c), updated: *c, message: cancelledMessage}
		if !r.job.stuck && !dq.After(*c) {
			s.dequeued = at(dq)
		}
		if !r.job.stuck && !st.After(*c) {
			s.started = at(st)
		}
		return s
	}
	switch {
	case r.job.stuck || now.Before(dq):
		return runState{status: statusQueued, updated: r.created}
	case now.Before(st):
		return runState{status: statusStarting, dequeued: at(dq), updated: dq}
	case now.Before(fin):
		return runState{status: statusRunning, dequeued: at(dq), started: at(st), updated: st}
	}
	s := runState{status: r.job.outcome, dequeued: at(dq), started: at(st), finished: at(fin), updated: fin}
	switch r.job.outcome {
	case statusError:
		s.message = r.job.errorMessage
	case statusCancelled:
		s.message = cancelledMessage
	}
	return s
}

// RunInfo is a run as the server sees it, for assertions.
type RunInfo struct {
	ID, JobID     int64
	Status        int
	StatusMessage string
	Cause         string
	// The overrides the trigger asked for.
	GitBranch, GitSHA, SchemaOverride string
	StepsOverride                     []string
	CreatedAt                         time.Time
	// Zero until the run reaches that point.
	StartedAt, FinishedAt time.Time
}

func (s *Server) infoLocked(r *run, now time.Time) RunInfo {
	st := r.stateAt(now)
	info := RunInfo{
		ID: r.id, JobID: r.job.id, Status: st.status, StatusMessage: st.message, Cause: r.req.Cause,
		GitBranch: r.req.GitBranch, GitSHA: r.req.GitSHA, SchemaOverride: r.req.SchemaOverride,
		StepsOverride: slices.Clone(r.req.StepsOverride), CreatedAt: r.created,
	}
	if st.started != nil {
		info.StartedAt = *st.started
	}
	if st.finished != nil {
		info.FinishedAt = *st.finished
	}
	return info
}

// Runs returns every run, oldest first, in its state at the server's clock.
func (s *Server) Runs() []RunInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	out := make([]RunInfo, 0, len(s.runs))
	for _, r := range s.sortedRunsLocked() {
		out = append(out, s.infoLocked(r, now))
	}
	return out
}

// Run returns run id in its state at the server's clock.
func (s *Server) Run(id int64) (RunInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.runs[id]
	if !ok {
		return RunInfo{}, false
	}
	return s.infoLocked(r, s.now()), true
}

// TriggerCount returns how many runs of jobID were started, which is what a
// test of "no duplicate trigger" wants: requests that failed before creating
// a run do not count.
func (s *Server) TriggerCount(jobID int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.runs {
		if r.job.id == jobID {
			n++
		}
	}
	return n
}

func (s *Server) sortedRunsLocked() []*run {
	out := make([]*run, 0, len(s.runs))
	for _, r := range s.runs {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// triggerLocked creates a run of j.
func (s *Server) triggerLocked(j *job, req triggerBody, now time.Time) *run {
	r := &run{id: s.nextRunID, triggerID: s.nextTriggerID, job: *j, req: req, created: now}
	s.nextRunID++
	s.nextTriggerID++
	s.runs[r.id] = r
	return r
}

// cancelLocked cancels r unless it has already finished, which is what dbt
// does: a cancel of a finished run is accepted and changes nothing.
func (s *Server) cancelLocked(r *run, now time.Time) {
	if r.cancelledAt != nil || terminal(r.stateAt(now).status) {
		return
	}
	r.cancelledAt = &now
}

// closingContext is cancelled when the server closes.
func (s *Server) closingContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-s.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}
