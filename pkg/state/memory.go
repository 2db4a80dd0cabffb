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
	jobs    map[Key]TableauJob // open, by (run, target)
	allJobs map[Key]TableauJob // the latest of each (run, target)
	ends    map[Key]TargetSummary
	outbox  map[string]Notification
	// lin is the default site's lineage index, siteLin the other sites'
	// (lineage.go).
	lin     memLineage
	siteLin map[string]*memLineage

	deferred map[Key]deferredEntry // see Deferrals

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
		jobs: make(map[Key]TableauJob), allJobs: make(map[Key]TableauJob), ends: make(map[Key]TargetSummary),
		outbox: make(map[string]Notification), lin: memLineage{gens: make(map[int64]map[string]map[LineageContent]bool)},
		deferred: make(map[Key]deferredEntry),
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
		Key: c.Key, Status: StatusInProgress, Owner: c.Owner, DBTJobID: c.DBTJobID, Source: c.Source, Why: c.Why,
		InProgressUntil: c.HoldUntil, ExpiresAt: now.Add(c.Retention), UpdatedAt: now,
	}
	return nil
}

// Complete implements Idempotency.
func (m *Memory) Complete(_ context.Context, k Key, owner string, outcome Outcome, jobID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, err := m.complete(k, owner, outcome, jobID)
	return err
}

// complete is Complete with m.mu held; it reports whether this call
// completed the claim (false for a repeat of owner's own completion).
func (m *Memory) complete(k Key, owner string, outcome Outcome, jobID string) (bool, error) {
	r, ok := m.records[k]
	switch {
	case ok && r.Owner == owner && r.Status == StatusCompleted && r.Outcome == outcome && r.JobID == jobID:
		return false, nil
	case !ok || r.Owner != owner || r.Status != StatusInProgress:
		return false, fmt.Errorf("complete %s: %w", k, ErrNotHeld)
	}
	r.Status, r.Outcome, r.JobID, r.UpdatedAt = StatusCompleted, outcome, jobID, m.now()
	m.records[k] = r
	return true, nil
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
