package state

import (
	"context"
	"sort"
	"time"
)

// TableauJob is a refresh job we queued and have not seen finish.
type TableauJob struct {
	JobID      string
	Run        Key // the dbt run and target it refreshes
	DBTJobID   string
	TargetName string
	ItemKind   string // "workbook" or "datasource"
	ItemID     string
	QueuedAt   time.Time
	// DBTRunURL and DBTFinishedAt describe the dbt run for the status page,
	// when the path that reported the run knew them.
	DBTRunURL     string
	DBTFinishedAt time.Time
}

// TargetSummary is one target of a dbt run as it ended.
type TargetSummary struct {
	Record
	// RefreshState is "" while the Tableau job is open, then how it ended:
	// OutcomeSucceeded, OutcomeFailed, OutcomeCancelled or OutcomeStuck.
	RefreshState Outcome
	Notes        string
	FinishedAt   time.Time
}

// TableauJobs records open refresh jobs and how they ended.
type TableauJobs interface {
	// CompleteJob is Idempotency.Complete with OutcomeRefreshed that also
	// opens the job, in one write: the job to follow costs no request of
	// its own on the hot path. It fails with ErrNotHeld as Complete does.
	CompleteJob(ctx context.Context, owner string, j TableauJob) error
	// OpenJobs lists the open jobs, oldest first.
	OpenJobs(ctx context.Context) ([]TableauJob, error)
	// CloseJob removes an open job and writes its end on the run's target
	// record. It reports whether this call closed it, so that of two
	// sources reporting one end (the jobs API and Tableau's webhook) only
	// one acts on it.
	CloseJob(ctx context.Context, j TableauJob, end Outcome, notes string) (bool, error)
	// LatestJob returns the most recently queued job for a Tableau item,
	// open or closed, with its end state ("" while open), or nil. A Tableau
	// webhook names the item, not the job.
	LatestJob(ctx context.Context, itemID string) (*TableauJob, Outcome, error)
	// RunSummary returns every target record of a dbt run.
	RunSummary(ctx context.Context, runID string) ([]TargetSummary, error)
}

var _ TableauJobs = (*Memory)(nil)

// CompleteJob implements TableauJobs.
func (m *Memory) CompleteJob(ctx context.Context, owner string, j TableauJob) error {
	if err := m.Complete(ctx, j.Run, owner, OutcomeRefreshed, j.JobID); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.jobs[j.JobID] = j
	m.allJobs[j.JobID] = j
	return nil
}

// LatestJob implements TableauJobs.
func (m *Memory) LatestJob(_ context.Context, itemID string) (*TableauJob, Outcome, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var latest *TableauJob
	for _, j := range m.allJobs {
		if j.ItemID == itemID && (latest == nil || j.QueuedAt.After(latest.QueuedAt)) {
			latest = &j
		}
	}
	if latest == nil {
		return nil, "", nil
	}
	return latest, m.closed[latest.JobID], nil
}

// OpenJobs implements TableauJobs.
func (m *Memory) OpenJobs(context.Context) ([]TableauJob, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]TableauJob, 0, len(m.jobs))
	for _, j := range m.jobs {
		out = append(out, j)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].QueuedAt.Before(out[b].QueuedAt) })
	return out, nil
}

// CloseJob implements TableauJobs.
func (m *Memory) CloseJob(_ context.Context, j TableauJob, st Outcome, notes string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, open := m.jobs[j.JobID]; !open {
		return false, nil
	}
	delete(m.jobs, j.JobID)
	m.closed[j.JobID] = st
	m.ends[j.Run] = TargetSummary{RefreshState: st, Notes: notes, FinishedAt: m.now()}
	return true, nil
}

// RunSummary implements TableauJobs.
func (m *Memory) RunSummary(_ context.Context, runID string) ([]TargetSummary, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []TargetSummary
	for k, r := range m.records {
		if k.RunID != runID {
			continue
		}
		s := m.ends[k]
		s.Record = r
		out = append(out, s)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Target < out[b].Target })
	return out, nil
}
