package tableautest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Job finish codes as Tableau reports them.
const (
	FinishSucceeded = 0
	FinishFailed    = 1
	FinishCancelled = 2
)

type jobState int

const (
	jobQueued jobState = iota
	jobRunning
	jobFinished
)

func (st jobState) String() string {
	switch st {
	case jobQueued:
		return "Queued"
	case jobRunning:
		return "InProgress"
	}
	return "Finished"
}

type job struct {
	id       string
	item     *item
	state    jobState
	created  time.Time
	started  time.Time
	updated  time.Time
	finished time.Time
	code     int
	notes    string
	// incremental: an incremental refresh (Query Jobs' jobType
	// increment_extracts).
	incremental bool
	// planned outcome when the running phase ends by itself
	planCode  int
	planNotes string
	running   time.Duration
	timer     *time.Timer
	done      chan struct{}
}

// JobInfo is the simulator's view of a refresh job.
type JobInfo struct {
	ID       string
	ItemID   string
	ItemType string // "workbook" or "datasource"
	ItemName string
	// State is "Queued", "InProgress" or "Finished".
	State string
	// FinishCode is 0, 1 or 2 once finished, -1 before.
	FinishCode  int
	Notes       string
	CreatedAt   time.Time
	StartedAt   time.Time
	CompletedAt time.Time
	// Incremental reports an incremental refresh.
	Incremental bool
}

// SetJobTimings changes how long jobs created from now on stay queued and
// running. A negative duration keeps jobs in that state until FinishJob or a
// cancel.
func (s *Server) SetJobTimings(queued, running time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg.queued, s.cfg.running = queued, running
}

// FailNextRefresh makes the next refresh job of the item end with finishCode 1
// and the given notes, as when the extract's database login fails.
func (s *Server) FailNextRefresh(itemLUID, notes string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext[itemLUID] = notes
}

// FinishJob ends a queued or running job now with the given finish code (0, 1
// or 2) and notes. A queued job is started first, so webhooks see the same
// started/outcome sequence as for a job that ran; code 2 (cancelled) sends no
// refresh event.
func (s *Server) FinishJob(jobID string, finishCode int, notes string) error {
	if finishCode < FinishSucceeded || finishCode > FinishCancelled {
		return fmt.Errorf("tableautest: finish code %d is not 0, 1 or 2", finishCode)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.jobs[jobID]
	if j == nil {
		return fmt.Errorf("tableautest: no job %s", jobID)
	}
	if j.state == jobFinished {
		return fmt.Errorf("tableautest: job %s already finished with code %d", jobID, j.code)
	}
	s.finishLocked(j, finishCode, notes)
	return nil
}

// Job returns a job by LUID.
func (s *Server) Job(id string) (JobInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.jobs[id]
	if j == nil {
		return JobInfo{}, false
	}
	return j.info(), true
}

// Jobs returns every job in creation order.
func (s *Server) Jobs() []JobInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]JobInfo, len(s.jobOrder))
	for i, j := range s.jobOrder {
		out[i] = j.info()
	}
	return out
}

// WaitJob blocks until the job finishes or ctx ends, and returns its final state.
func (s *Server) WaitJob(ctx context.Context, id string) (JobInfo, error) {
	s.mu.Lock()
	j := s.jobs[id]
	s.mu.Unlock()
	if j == nil {
		return JobInfo{}, fmt.Errorf("tableautest: no job %s", id)
	}
	select {
	case <-j.done:
		info, _ := s.Job(id)
		return info, nil
	case <-ctx.Done():
		return JobInfo{}, fmt.Errorf("tableautest: wait for job %s: %w", id, ctx.Err())
	case <-s.ctx.Done():
		return JobInfo{}, errors.New("tableautest: server closed")
	}
}

// RefreshCount is the number of refresh jobs created for the item: accepted
// requests (202), not the ones refused with 409.
func (s *Server) RefreshCount(itemLUID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refreshCount[itemLUID]
}

func (j *job) info() JobInfo {
	code := -1
	if j.state == jobFinished {
		code = j.code
	}
	return JobInfo{
		ID:          j.id,
		ItemID:      j.item.id,
		ItemType:    j.item.kind,
		ItemName:    j.item.name,
		State:       j.state.String(),
		FinishCode:  code,
		Notes:       j.notes,
		CreatedAt:   j.created,
		StartedAt:   j.started,
		CompletedAt: j.finished,
		Incremental: j.incremental,
	}
}

func (s *Server) refreshWorkbook(c *call, p []string) error {
	return s.refresh(c, kindWorkbook, p[0])
}

func (s *Server) refreshDatasource(c *call, p []string) error {
	return s.refresh(c, kindDatasource, p[0])
}

func (s *Server) refresh(c *call, kind, id string) error {
	// The body is {} (or an extractRefresh element from 3.25); it still has to
	// be well-formed.
	body, err := c.decode()
	if err != nil {
		return err
	}
	incremental, err := refreshKind(c, body)
	if err != nil {
		return err
	}
	n, err := s.queueRefresh(c.sess, kind, id, incremental)
	if err != nil {
		return err
	}
	return c.reply(http.StatusAccepted, n)
}

// queueRefresh creates the job, or says why Tableau would refuse to.
func (s *Server) queueRefresh(sess *session, kind, id string, incremental bool) (*node, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	it := s.items[id]
	if it == nil || it.kind != kind {
		return nil, errItemNotFound(kind, id)
	}
	if !sess.user.canRefresh() {
		return nil, errForbidden(fmt.Sprintf("The user does not have permission to refresh %s '%s'.", kind, id))
	}
	if !it.hasExtract {
		return nil, newError(http.StatusConflict, codeExtractNotAllowed,
			fmt.Sprintf("Extract operation is not allowed: %s '%s' has no extract.", kind, id))
	}
	for _, j := range s.jobs {
		if j.item == it && j.state != jobFinished {
			return nil, newError(http.StatusConflict, codeDuplicateJob,
				"Job for 'extract' is already queued. Not queuing a duplicate.")
		}
	}
	if s.closed {
		return nil, newError(http.StatusServiceUnavailable, defaultCode(http.StatusServiceUnavailable), "Server is shutting down.")
	}

	now := time.Now()
	j := &job{
		id:          newLUID(),
		item:        it,
		state:       jobQueued,
		created:     now,
		updated:     now,
		code:        -1,
		planCode:    FinishSucceeded,
		running:     s.cfg.running,
		done:        make(chan struct{}),
		incremental: incremental,
	}
	if notes, ok := s.failNext[id]; ok {
		delete(s.failNext, id)
		j.planCode, j.planNotes = FinishFailed, notes
	}
	s.jobs[j.id] = j
	s.jobOrder = append(s.jobOrder, j)
	s.refreshCount[id]++
	if q := s.cfg.queued; q >= 0 {
		j.timer = time.AfterFunc(q, func() { s.startJob(j) })
	}

	return el("job",
		"id", j.id,
		"mode", "Asynchronous",
		"type", "RefreshExtract",
		"createdAt", stamp(j.created),
	).add(el("extractRefreshJob").add(el(kind, "id", it.id, "name", it.name))), nil
}

func (s *Server) startJob(j *job) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || j.state != jobQueued {
		return
	}
	s.startLocked(j)
	if j.running >= 0 {
		j.timer = time.AfterFunc(j.running, func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.closed || j.state != jobRunning {
				return
			}
			s.finishLocked(j, j.planCode, j.planNotes)
		})
	}
}

func (s *Server) startLocked(j *job) {
	now := time.Now()
	j.state, j.started, j.updated = jobRunning, now, now
	s.emitLocked(j.item, "RefreshStarted")
}

func (s *Server) finishLocked(j *job, code int, notes string) {
	if j.timer != nil {
		j.timer.Stop()
	}
	if j.state == jobQueued && code != FinishCancelled {
		s.startLocked(j)
	}
	now := time.Now()
	j.state, j.finished, j.updated = jobFinished, now, now
	j.code, j.notes = code, notes
	switch code {
	case FinishSucceeded:
		s.emitLocked(j.item, "RefreshSucceeded")
	case FinishFailed:
		s.emitLocked(j.item, "RefreshFailed")
	}
	close(j.done)
}

func (s *Server) getJob(c *call, p []string) error {
	if err := jwtSince(c, jwtQueryJobVersion); err != nil {
		return err
	}
	s.mu.Lock()
	j := s.jobs[p[0]]
	var n *node
	if j != nil {
		n = j.node()
	}
	s.mu.Unlock()
	if n == nil {
		return errJobNotFound(p[0])
	}
	return c.reply(http.StatusOK, n)
}

// cancelJob is Cancel Job (PUT .../jobs/{id}). A job that has finished cannot
// be cancelled.
func (s *Server) cancelJob(c *call, p []string) error {
	s.mu.Lock()
	j := s.jobs[p[0]]
	var err error
	switch {
	case j == nil:
		err = errJobNotFound(p[0])
	case j.state == jobFinished:
		err = newError(http.StatusConflict, codeJobFinished,
			fmt.Sprintf("Job '%s' has already completed and cannot be cancelled.", j.id))
	default:
		s.finishLocked(j, FinishCancelled, "")
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return c.noContent(http.StatusOK)
}

func errJobNotFound(id string) *apiError {
	return newError(http.StatusNotFound, codeJobMissing, fmt.Sprintf("Job '%s' could not be found.", id))
}

// node renders Query Job. Progress grows while the job runs; completedAt and
// finishCode appear only once it has finished.
func (j *job) node() *node {
	n := el("job", "id", j.id, "mode", "Asynchronous", "type", "RefreshExtract",
		"progress", strconv.Itoa(j.progress(time.Now())), "createdAt", stamp(j.created))
	n.set("startedAt", stamp(j.started))
	n.set("updatedAt", stamp(j.updated))
	n.set("completedAt", stamp(j.finished))
	if j.state == jobFinished {
		n.set("finishCode", strconv.Itoa(j.code))
	}
	ref := el("extractRefreshJob")
	if j.notes != "" {
		ref.add(textEl("notes", j.notes))
	}
	ref.add(el(j.item.kind, "id", j.item.id, "name", j.item.name))
	return n.add(ref)
}

func (j *job) progress(now time.Time) int {
	switch j.state {
	case jobQueued:
		return 0
	case jobFinished:
		return 100
	}
	elapsed := now.Sub(j.started)
	if j.running <= 0 {
		// No planned end: creep up a point a second so pollers see movement.
		return min(99, int(elapsed/time.Second))
	}
	return min(99, int(elapsed*100/j.running))
}
