package state

import (
	"context"
	"fmt"
	"sort"
	"time"
)

// Phases of a scheduled dbt run's record.
const (
	// PhaseTriggering: an invocation holds the lease to trigger a run and
	// has not yet recorded its id.
	PhaseTriggering = "TRIGGERING"
	// PhaseRunning: the run was triggered and is not settled yet.
	PhaseRunning = "RUNNING"
	// PhaseSettled: the run finished and was dealt with. The record stays so
	// that a retried invocation of the same schedule tick does not trigger
	// the job again.
	PhaseSettled = "SETTLED"
)

// ScheduledRun is a dbt run that the scheduler started and has not settled:
// at most one per dbt job, so that a run that outlives an invocation is
// followed by the next one instead of being started again.
type ScheduledRun struct {
	JobID string
	Phase string
	// Tick names the schedule tick (the scheduled time EventBridge passes,
	// as a fixed-width UTC time so that ticks order as strings) whose
	// invocation triggered the run.
	Tick string
	// Outcome is set once SETTLED.
	Outcome Outcome
	// Owner holds the trigger lease while TRIGGERING.
	Owner      string
	LeaseUntil time.Time
	// RunID is set once RUNNING.
	RunID       int64
	TriggeredAt time.Time
	UpdatedAt   time.Time
}

// LeaseHeldError is returned by BeginTrigger while another invocation holds
// the job: it is triggering, or a run of the job is in flight.
type LeaseHeldError struct {
	Existing ScheduledRun
}

func (e *LeaseHeldError) Error() string {
	switch e.Existing.Phase {
	case PhaseRunning:
		return fmt.Sprintf("dbt job %s has run %d in flight", e.Existing.JobID, e.Existing.RunID)
	case PhaseSettled:
		return fmt.Sprintf("dbt job %s already ran for tick %s (run %d, %s)", e.Existing.JobID, e.Existing.Tick, e.Existing.RunID, e.Existing.Outcome)
	}
	return fmt.Sprintf("dbt job %s is being triggered by another invocation", e.Existing.JobID)
}

// ScheduledRuns records the scheduler's runs in flight.
type ScheduledRuns interface {
	// BeginTrigger takes the job for owner until leaseUntil, before the run
	// is triggered for tick. It fails with *LeaseHeldError when a run is in
	// flight, another owner's lease is live, or a run for this tick or a
	// later one was already settled.
	BeginTrigger(ctx context.Context, jobID, owner, tick string, leaseUntil time.Time) error
	// Started records the run that owner triggered.
	Started(ctx context.Context, jobID, owner string, runID int64, at time.Time) error
	// Abandon drops owner's trigger lease after the trigger failed.
	Abandon(ctx context.Context, jobID, owner string) error
	// Get returns the job's record, or nil.
	Get(ctx context.Context, jobID string) (*ScheduledRun, error)
	// List returns every record, in job id order.
	List(ctx context.Context) ([]ScheduledRun, error)
	// Settle marks runID SETTLED with its outcome and reports whether this
	// call did it, so that of two invocations settling one run only one
	// reports it.
	Settle(ctx context.Context, jobID string, runID int64, outcome Outcome) (bool, error)
}

// MemoryRuns is ScheduledRuns in memory.
type MemoryRuns struct {
	m *Memory
}

var _ ScheduledRuns = MemoryRuns{}

// Runs returns the store's scheduled-run records.
func (m *Memory) Runs() MemoryRuns { return MemoryRuns{m} }

// BeginTrigger implements ScheduledRuns.
func (r MemoryRuns) BeginTrigger(_ context.Context, jobID, owner, tick string, leaseUntil time.Time) error {
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	now := r.m.now()
	if cur, ok := r.m.runs[jobID]; ok && blocksTrigger(cur, tick, now) {
		return &LeaseHeldError{Existing: cur}
	}
	r.m.runs[jobID] = ScheduledRun{JobID: jobID, Phase: PhaseTriggering, Tick: tick, Owner: owner, LeaseUntil: leaseUntil, UpdatedAt: now}
	return nil
}

// blocksTrigger says whether an existing record keeps a new trigger for tick
// from starting at now.
func blocksTrigger(cur ScheduledRun, tick string, now time.Time) bool {
	switch cur.Phase {
	case PhaseRunning:
		return true
	case PhaseSettled:
		// Ticks are fixed-width UTC times, so they order as strings: a retry
		// of this tick or of an earlier one must not trigger again.
		return cur.Tick >= tick
	}
	return now.Before(cur.LeaseUntil)
}

// Started implements ScheduledRuns.
func (r MemoryRuns) Started(_ context.Context, jobID, owner string, runID int64, at time.Time) error {
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	cur, ok := r.m.runs[jobID]
	if !ok || cur.Phase != PhaseTriggering || cur.Owner != owner {
		return fmt.Errorf("record run %d of dbt job %s: trigger lease no longer held", runID, jobID)
	}
	r.m.runs[jobID] = ScheduledRun{JobID: jobID, Phase: PhaseRunning, Tick: cur.Tick, RunID: runID, TriggeredAt: at, UpdatedAt: r.m.now()}
	return nil
}

// Abandon implements ScheduledRuns.
func (r MemoryRuns) Abandon(_ context.Context, jobID, owner string) error {
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	if cur, ok := r.m.runs[jobID]; ok && cur.Phase == PhaseTriggering && cur.Owner == owner {
		delete(r.m.runs, jobID)
	}
	return nil
}

// Get implements ScheduledRuns.
func (r MemoryRuns) Get(_ context.Context, jobID string) (*ScheduledRun, error) {
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	cur, ok := r.m.runs[jobID]
	if !ok {
		return nil, nil
	}
	return &cur, nil
}

// List implements ScheduledRuns.
func (r MemoryRuns) List(context.Context) ([]ScheduledRun, error) {
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	out := make([]ScheduledRun, 0, len(r.m.runs))
	for _, v := range r.m.runs {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].JobID < out[j].JobID })
	return out, nil
}

// Settle implements ScheduledRuns.
func (r MemoryRuns) Settle(_ context.Context, jobID string, runID int64, outcome Outcome) (bool, error) {
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	if cur, ok := r.m.runs[jobID]; ok && cur.Phase == PhaseRunning && cur.RunID == runID {
		cur.Phase, cur.Outcome, cur.UpdatedAt = PhaseSettled, outcome, r.m.now()
		r.m.runs[jobID] = cur
		return true, nil
	}
	return false, nil
}
