package state

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Memory is an in-process store for local runs and tests. It has the same
// semantics as the DynamoDB store but is shared only within one process.
type Memory struct {
	mu      sync.Mutex
	now     func() time.Time
	records map[Key]Record
	runs    map[string]ScheduledRun
	jobs    map[string]TableauJob // open
	allJobs map[string]TableauJob
	closed  map[string]Outcome // job id -> how it ended
	ends    map[Key]TargetSummary
	outbox  map[string]Notification
	// statuses are the targets' status records (status.go), made on first use.
	statuses map[string]TargetStatus
}

var _ Idempotency = (*Memory)(nil)

// Option configures a Memory store.
type Option func(*Memory)

// WithClock sets the clock the store's records are timed by (default the
// wall clock).
func WithClock(now func() time.Time) Option { return func(m *Memory) { m.now = now } }

// NewMemory returns an empty store.
func NewMemory(opts ...Option) *Memory {
	m := &Memory{
		now: time.Now, records: make(map[Key]Record), runs: make(map[string]ScheduledRun),
		jobs: make(map[string]TableauJob), allJobs: make(map[string]TableauJob), closed: make(map[string]Outcome), ends: make(map[Key]TargetSummary),
		outbox: make(map[string]Notification),
	}
	for _, opt := range opts {
		opt(m)
	}
	return m
}

// Begin implements Idempotency.
func (m *Memory) Begin(_ context.Context, c Claim) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if r, ok := m.records[c.Key]; ok && r.Live(now) {
		return &ClaimedError{Existing: r}
	}
	m.records[c.Key] = Record{
		Key: c.Key, Status: StatusInProgress, Owner: c.Owner, DBTJobID: c.DBTJobID,
		InProgressUntil: c.HoldUntil, ExpiresAt: now.Add(c.Retention), UpdatedAt: now,
	}
	return nil
}

// Complete implements Idempotency.
func (m *Memory) Complete(_ context.Context, k Key, owner string, outcome Outcome, jobID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.records[k]
	if !ok || r.Owner != owner || r.Status != StatusInProgress {
		return fmt.Errorf("complete %s: %w", k, ErrNotHeld)
	}
	r.Status, r.Outcome, r.JobID, r.UpdatedAt = StatusCompleted, outcome, jobID, m.now()
	m.records[k] = r
	return nil
}

// Release implements Idempotency.
func (m *Memory) Release(_ context.Context, k Key, owner string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r, ok := m.records[k]; ok && r.Owner == owner && r.Status == StatusInProgress {
		delete(m.records, k)
	}
	return nil
}

// Get implements Idempotency.
func (m *Memory) Get(_ context.Context, k Key) (*Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.records[k]
	if !ok {
		return nil, nil
	}
	return &r, nil
}
