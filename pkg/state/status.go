package state

import (
	"context"
	"slices"
	"sort"
	"time"
)

// HistoryLength is how many runs a target's status keeps: the status page
// shows them, newest first.
const HistoryLength = 10

// OutcomeNotRefreshed is a target the bridge would refresh but has no
// record of refreshing (the status page's result for it).
const OutcomeNotRefreshed Outcome = "not_refreshed"

// StatusTarget names the Tableau content of a target, as far as it is known:
// the refresh map gives the key, kind and name or LUID; Tableau, once asked,
// the rest.
type StatusTarget struct {
	Key     string // the target's key in run records (refreshmap.Target.Key)
	Kind    string // "workbook" or "datasource"
	Name    string
	Project string
	ItemID  string // the content's LUID
	URL     string // the content's page in Tableau
	// Site is the content URL of the site the content is on, "" for the
	// default site.
	Site string
}

// TargetRun is what one dbt run did to one target.
type TargetRun struct {
	RunID         string
	DBTJobID      string
	DBTRunURL     string
	DBTFinishedAt time.Time
	// At is when the bridge asked Tableau to refresh: it orders the history.
	At         time.Time
	JobID      string // Tableau's refresh job, when one was queued
	QueuedAt   time.Time
	FinishedAt time.Time
	// Result is OutcomeSucceeded, OutcomeFailed, OutcomeCancelled,
	// OutcomeStuck, OutcomeAlreadyQueued or, for a job still open,
	// OutcomeRunning.
	Result Outcome
	Notes  string
}

// QualityWarning is a Tableau data quality warning the bridge put on a
// target's content. Only warnings recorded here are ever changed or removed
// by the bridge.
type QualityWarning struct {
	ID string
	// Reason is OutcomeFailed (a refresh failed) or OutcomeStale (no
	// refresh succeeded within the freshness objective).
	Reason Outcome
	RunID  string
}

// OutcomeStale is a target whose last successful refresh is older than its
// freshness objective.
const OutcomeStale Outcome = "stale"

// TargetStatus is one target's recent history.
type TargetStatus struct {
	StatusTarget
	// Runs are the latest HistoryLength runs that settled (or will not
	// change: already_queued), newest first. Jobs still open are in
	// TableauJobs.OpenJobs, not here.
	Runs []TargetRun
	// LastSuccess is the latest run whose refresh succeeded, kept after it
	// leaves Runs; nil when none is on record.
	LastSuccess *TargetRun
	Warning     QualityWarning
	UpdatedAt   time.Time
}

// TargetStatuses keeps each target's status for the status page and the data
// quality warnings. Writes happen when a refresh job ends (the follow-up,
// Tableau's webhook) or when a refresh will not be queued (already queued,
// failed), never on the path of a refresh that succeeds in being queued.
type TargetStatuses interface {
	// RecordRun writes r into t's history, replacing a run with the same
	// RunID, keeping the newest HistoryLength by At. Fields of t left empty
	// keep the values already known. It is idempotent.
	RecordRun(ctx context.Context, t StatusTarget, r TargetRun) error
	// SetWarning records the warning the bridge put on the target's content,
	// or, with the zero QualityWarning, that it removed it. A target with no
	// status is left alone.
	SetWarning(ctx context.Context, key string, w QualityWarning) error
	// TargetStatuses returns every target's status, by key.
	TargetStatuses(ctx context.Context) ([]TargetStatus, error)
}

// MergeRun applies RecordRun's rule to s: r replaces the run with its RunID
// or joins the history, which stays ordered newest first and at most
// HistoryLength long; a success becomes LastSuccess unless a later one is
// known. Stores share it so that they agree.
func (s *TargetStatus) MergeRun(t StatusTarget, r TargetRun) {
	keep := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	s.Key = t.Key
	keep(&s.Kind, t.Kind)
	keep(&s.Name, t.Name)
	keep(&s.Project, t.Project)
	keep(&s.ItemID, t.ItemID)
	keep(&s.URL, t.URL)
	keep(&s.Site, t.Site)
	runs := slices.DeleteFunc(slices.Clone(s.Runs), func(x TargetRun) bool { return x.RunID == r.RunID })
	runs = append(runs, r)
	sort.SliceStable(runs, func(i, j int) bool { return runs[i].At.After(runs[j].At) })
	if len(runs) > HistoryLength {
		runs = runs[:HistoryLength]
	}
	s.Runs = runs
	if r.Result == OutcomeSucceeded && (s.LastSuccess == nil || s.LastSuccess.RunID == r.RunID || !r.At.Before(s.LastSuccess.At)) {
		last := r
		s.LastSuccess = &last
	}
}

var _ TargetStatuses = (*Memory)(nil)

// RecordRun implements TargetStatuses.
func (m *Memory) RecordRun(_ context.Context, t StatusTarget, r TargetRun) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.statuses == nil {
		m.statuses = make(map[string]TargetStatus)
	}
	s := m.statuses[t.Key]
	s.MergeRun(t, r)
	s.UpdatedAt = m.now()
	m.statuses[t.Key] = s
	return nil
}

// SetWarning implements TargetStatuses.
func (m *Memory) SetWarning(_ context.Context, key string, w QualityWarning) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.statuses[key]
	if !ok {
		return nil
	}
	s.Warning, s.UpdatedAt = w, m.now()
	m.statuses[key] = s
	return nil
}

// TargetStatuses implements TargetStatuses.
func (m *Memory) TargetStatuses(context.Context) ([]TargetStatus, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]TargetStatus, 0, len(m.statuses))
	for _, s := range m.statuses {
		s.Runs = slices.Clone(s.Runs)
		if s.LastSuccess != nil {
			last := *s.LastSuccess
			s.LastSuccess = &last
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}
