package state

import (
	"context"
	"sort"
	"time"
)

// TableauJob is a refresh job followed for a (dbt run, target) until it
// finishes: one the bridge queued, or one Tableau already had that the
// target rides on. A target has one open job at a time.
type TableauJob struct {
	JobID      string
	Run        Key // the dbt run and target it refreshes
	DBTJobID   string
	TargetName string
	ItemKind   string // "workbook" or "datasource"
	ItemID     string
	QueuedAt   time.Time
	// Outcome is the target's outcome, recorded with the job:
	// OutcomeRefreshed (the default) for a refresh the bridge queued,
	// OutcomeAlreadyQueued for a refresh Tableau already had (409093) that
	// the target rides on. JobID is empty when that refresh could not be
	// found.
	Outcome Outcome
	// Requeue says one more refresh of the item is due once this job ends
	// (it started before the dbt run finished, or could not be found): at
	// most one per (run, target), recorded by RequeueJob.
	Requeue bool
	// Incremental says the target asked for an incremental refresh, so the
	// one more refresh is one too.
	Incremental bool
	// DBTRunURL and DBTFinishedAt describe the dbt run, when the path that
	// reported it knew them: the status page shows both, and a job the
	// target rides on is judged against the finish.
	DBTRunURL     string
	DBTFinishedAt time.Time
	// RodeOn is set on the one more refresh: the job the target rode on
	// before it and how that ended, e.g. "job 1234 (failed)", or "a job
	// that could not be found".
	RodeOn string
	// Site is the content URL of the site the job is on, "" for the
	// default site: it is followed with that site's client.
	Site string
}

// outcome is j's outcome on its record.
func (j TableauJob) outcome() Outcome {
	if j.Outcome == "" {
		return OutcomeRefreshed
	}
	return j.Outcome
}

// TargetSummary is one target of a dbt run as it ended.
type TargetSummary struct {
	Record
	// RefreshState is "" while the Tableau job is open, then how it ended:
	// OutcomeSucceeded, OutcomeFailed, OutcomeCancelled or OutcomeStuck.
	RefreshState Outcome
	Notes        string
	FinishedAt   time.Time
	// RodeOn is the refresh Tableau already had that the target rode on
	// before one more refresh was queued for it (TableauJob.RodeOn).
	RodeOn string
}

// TableauJobs records open refresh jobs and how they ended.
type TableauJobs interface {
	// CompleteJob is Idempotency.Complete with j's outcome (OutcomeRefreshed
	// unless set) that also opens the job, in one write: the job to follow
	// costs no request of its own on the hot path. It fails with
	// ErrNotHeld as Complete does.
	CompleteJob(ctx context.Context, owner string, j TableauJob) error
	// RequeueJob replaces prev — open on its record, with one more refresh
	// due — by next, the one more refresh (or the refresh it found Tableau
	// already had), in one conditional write that keeps the target's
	// outcome and records next.RodeOn. It reports whether this call did
	// it, so that of two sources seeing prev end only one records the
	// refresh; next.Requeue is not honoured: one more is the most a target
	// gets.
	RequeueJob(ctx context.Context, prev, next TableauJob) (bool, error)
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
func (m *Memory) CompleteJob(_ context.Context, owner string, j TableauJob) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	done, err := m.complete(j.Run, owner, j.outcome(), j.JobID)
	if err != nil || !done {
		return err // a repeat leaves the job as it is, closed or not
	}
	m.jobs[j.Run] = j
	m.allJobs[j.Run] = j
	return nil
}

// RequeueJob implements TableauJobs.
func (m *Memory) RequeueJob(_ context.Context, prev, next TableauJob) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, open := m.jobs[prev.Run]
	if !open || cur.JobID != prev.JobID || !cur.Requeue {
		return false, nil
	}
	r := m.records[prev.Run]
	next.Run, next.Outcome, next.Requeue = prev.Run, r.Outcome, false
	r.JobID, r.UpdatedAt = next.JobID, m.now()
	m.records[prev.Run] = r
	m.jobs[prev.Run] = next
	m.allJobs[prev.Run] = next
	return true, nil
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
	end := m.ends[latest.Run]
	return latest, end.RefreshState, nil
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
	if cur, open := m.jobs[j.Run]; !open || cur.JobID != j.JobID {
		return false, nil
	}
	delete(m.jobs, j.Run)
	m.ends[j.Run] = TargetSummary{RefreshState: st, Notes: notes, FinishedAt: m.now(), RodeOn: m.allJobs[j.Run].RodeOn}
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
		s.RodeOn = m.allJobs[k].RodeOn
		out = append(out, s)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Target < out[b].Target })
	return out, nil
}
