package status

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refreshmap"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
)

// State is where a target stands, for the summary and the filter.
type State string

// The states, in the order the page lists them: what needs a person first.
const (
	StateFailing State = "failing" // the latest refresh failed (or was cancelled, or got stuck)
	StateStale   State = "stale"   // no refresh succeeded within the freshness objective
	StateRunning State = "running" // a refresh is queued or running
	StateFresh   State = "fresh"   // the last refresh succeeded within the objective
)

// States lists the states in the page's order.
var States = []State{StateFailing, StateStale, StateRunning, StateFresh}

func (s State) rank() int { return slices.Index(States, s) }

// ParseState reads a filter value; "" is no filter.
func ParseState(v string) (State, bool) {
	if v == "" {
		return "", true
	}
	s := State(v)
	return s, slices.Contains(States, s)
}

// Report is every target's status at one moment: the body of /status.json,
// and what /status shows. Absent values are null.
type Report struct {
	GeneratedAt time.Time `json:"generated_at"`
	Summary     Summary   `json:"summary"`
	// FreshnessSLASeconds is the default objective (FRESHNESS_SLA).
	FreshnessSLASeconds int64 `json:"freshness_sla_seconds"`
	// Filter is the state the targets were filtered by, or null.
	Filter  *State   `json:"filter"`
	Targets []Target `json:"targets"`
}

// Summary counts the targets in each state (all of them, whatever the
// filter).
type Summary struct {
	Fresh   int `json:"fresh"`
	Stale   int `json:"stale"`
	Failing int `json:"failing"`
	Running int `json:"running"`
}

// Count returns the count of targets in s.
func (s Summary) Count(st State) int {
	switch st {
	case StateFresh:
		return s.Fresh
	case StateStale:
		return s.Stale
	case StateFailing:
		return s.Failing
	case StateRunning:
		return s.Running
	}
	return 0
}

// Target is one Tableau target and the last dbt run that fed it.
type Target struct {
	Type    string  `json:"type"` // "workbook" or "datasource"
	Name    string  `json:"name"`
	Project *string `json:"project"`
	Site    string  `json:"site"` // the content URL of the target's site ("" is the server's default site)
	LUID    *string `json:"luid"`
	URL     *string `json:"url"` // the content's page in Tableau
	Run
	// Stale is true when no refresh succeeded within the objective.
	Stale bool `json:"stale"`
	// State, FreshnessSLASeconds and LastSuccessAt are what Stale and the
	// summary are judged by.
	State               State      `json:"state"`
	FreshnessSLASeconds int64      `json:"freshness_sla_seconds"`
	LastSuccessAt       *time.Time `json:"last_success_at"`
	// History is the last state.HistoryLength runs, newest first; the
	// first is the run above.
	History []Run `json:"history"`

	key string
}

// Run is what one dbt run did to a target. Result is "succeeded",
// "failed" (also a cancelled or stuck refresh: Notes say which), "running",
// "already_queued" (Tableau had a refresh queued already) or
// "not_refreshed" (no run on record).
type Run struct {
	DBTJobID          *string       `json:"dbt_job_id"`
	DBTRunID          *string       `json:"dbt_run_id"`
	DBTRunURL         *string       `json:"dbt_run_url"`
	DBTFinishedAt     *time.Time    `json:"dbt_finished_at"`
	RefreshJobID      *string       `json:"refresh_job_id"`
	RefreshQueuedAt   *time.Time    `json:"refresh_queued_at"`
	RefreshFinishedAt *time.Time    `json:"refresh_finished_at"`
	Result            state.Outcome `json:"result"`
	Notes             *string       `json:"notes"`
	// LagSeconds is from dbt's finish to the extract's, for a refresh that
	// succeeded.
	LagSeconds *int64 `json:"lag_seconds"`
}

func str(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func when(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// result is the page's word for an outcome.
func result(o state.Outcome) state.Outcome {
	switch o {
	case state.OutcomeCancelled, state.OutcomeStuck:
		return state.OutcomeFailed
	}
	return o
}

func failed(o state.Outcome) bool {
	return o == state.OutcomeFailed || o == state.OutcomeCancelled || o == state.OutcomeStuck
}

func runOf(r state.TargetRun) Run {
	out := Run{
		DBTJobID: str(r.DBTJobID), DBTRunID: str(r.RunID), DBTRunURL: str(r.DBTRunURL), DBTFinishedAt: when(r.DBTFinishedAt),
		RefreshJobID: str(r.JobID), RefreshQueuedAt: when(r.QueuedAt), RefreshFinishedAt: when(r.FinishedAt),
		Result: result(r.Result), Notes: str(r.Notes),
	}
	switch r.Result {
	case state.OutcomeCancelled:
		if r.Notes == "" {
			out.Notes = str("cancelled")
		}
	case state.OutcomeStuck:
		out.Notes = str("stuck: " + r.Notes)
	}
	if r.Result == state.OutcomeSucceeded && !r.FinishedAt.IsZero() && !r.DBTFinishedAt.IsZero() {
		lag := int64(r.FinishedAt.Sub(r.DBTFinishedAt).Round(time.Second) / time.Second)
		out.LagSeconds = &lag
	}
	return out
}

// known is a target the refresh map names.
type known struct {
	target refreshmap.Target
	job    string
}

func mapTargets(m *refreshmap.Map) []known {
	if m == nil {
		return nil
	}
	var out []known
	for _, job := range m.Jobs() {
		for _, t := range m.Targets(job) {
			out = append(out, known{t, job})
		}
	}
	return out
}

// Objectives says how old a target's last successful refresh may be: the
// map's freshness_sla for the target (the smallest, when several jobs name
// it), else the default.
type Objectives struct {
	def       time.Duration
	perTarget map[string]time.Duration
}

// NewObjectives returns the objectives of the map's targets, def for the
// others.
func NewObjectives(def time.Duration, m *refreshmap.Map) Objectives {
	o := Objectives{def: def, perTarget: map[string]time.Duration{}}
	for _, k := range mapTargets(m) {
		if d := k.target.FreshnessSLA; d > 0 {
			if cur, ok := o.perTarget[k.target.Key()]; !ok || d < cur {
				o.perTarget[k.target.Key()] = d
			}
		}
	}
	return o
}

// For returns the objective of the target with the given key.
func (o Objectives) For(key string) time.Duration {
	if d, ok := o.perTarget[key]; ok {
		return d
	}
	return o.def
}

// row gathers what is known of one target before it becomes a Target.
type row struct {
	state.StatusTarget
	runs        []state.TargetRun
	lastSuccess *state.TargetRun
	mapJob      string
}

// isStale says whether the target has no successful refresh within sla.
func isStale(last *state.TargetRun, sla time.Duration, now time.Time) bool {
	if last == nil {
		return true
	}
	done := last.FinishedAt
	if done.IsZero() {
		done = last.At
	}
	return now.Sub(done) > sla
}

// build makes the report from the statuses, the open jobs (the running
// refreshes) and the map's targets (those never refreshed show as
// not_refreshed). site is the default site's content URL: a row's site is
// its target's, or that one.
func build(now time.Time, site string, obj Objectives, statuses []state.TargetStatus, open []state.TableauJob, m *refreshmap.Map) *Report {
	rows := map[string]*row{}
	get := func(key string) *row {
		r, ok := rows[key]
		if !ok {
			r = &row{StatusTarget: state.StatusTarget{Key: key}}
			rows[key] = r
		}
		return r
	}
	for _, s := range statuses {
		r := get(s.Key)
		r.StatusTarget, r.runs, r.lastSuccess = s.StatusTarget, slices.Clone(s.Runs), s.LastSuccess
	}
	for _, j := range open {
		r := get(j.Run.Target)
		if r.Kind == "" {
			r.Kind = j.ItemKind
		}
		if r.ItemID == "" {
			r.ItemID = j.ItemID
		}
		if r.Site == "" {
			r.Site = j.Site
		}
		if slices.ContainsFunc(r.runs, func(x state.TargetRun) bool { return x.RunID == j.Run.RunID }) {
			continue // its end is recorded; the close is on its way
		}
		r.runs = append(r.runs, state.TargetRun{
			RunID: j.Run.RunID, DBTJobID: j.DBTJobID, DBTRunURL: j.DBTRunURL, DBTFinishedAt: j.DBTFinishedAt,
			At: j.QueuedAt, JobID: j.JobID, QueuedAt: j.QueuedAt, Result: state.OutcomeRunning,
		})
	}
	for _, k := range mapTargets(m) {
		r := get(k.target.Key())
		if r.mapJob == "" {
			r.mapJob = k.job
		}
		if r.Kind == "" {
			r.Kind = string(k.target.Kind)
		}
		if r.Name == "" {
			r.Name = k.target.Name
		}
		if r.Project == "" {
			r.Project = k.target.Project
		}
		if r.ItemID == "" {
			r.ItemID = k.target.ID
		}
		if r.Site == "" {
			r.Site = k.target.Site
		}
	}

	rep := &Report{GeneratedAt: now.UTC(), FreshnessSLASeconds: int64(obj.def / time.Second), Targets: make([]Target, 0, len(rows))}
	for _, r := range rows {
		slices.SortStableFunc(r.runs, func(a, b state.TargetRun) int { return b.At.Compare(a.At) })
		if len(r.runs) > state.HistoryLength {
			r.runs = r.runs[:state.HistoryLength]
		}
		sla := obj.For(r.Key)
		t := Target{
			Type: r.Kind, Name: cmp.Or(r.Name, r.ItemID, r.Key), Project: str(r.Project), Site: cmp.Or(r.Site, site),
			LUID: str(r.ItemID), URL: str(r.URL), Stale: isStale(r.lastSuccess, sla, now),
			FreshnessSLASeconds: int64(sla / time.Second), History: make([]Run, 0, len(r.runs)), key: r.Key,
		}
		if r.lastSuccess != nil {
			t.LastSuccessAt = when(cmp.Or(r.lastSuccess.FinishedAt, r.lastSuccess.At))
		}
		for _, x := range r.runs {
			t.History = append(t.History, runOf(x))
		}
		if len(r.runs) > 0 {
			t.Run = t.History[0]
		} else {
			t.Run = Run{DBTJobID: str(r.mapJob), Result: state.OutcomeNotRefreshed}
		}
		switch {
		case t.Result == state.OutcomeRunning:
			t.State = StateRunning
		case len(r.runs) > 0 && failed(r.runs[0].Result):
			t.State = StateFailing
		case t.Stale:
			t.State = StateStale
		default:
			t.State = StateFresh
		}
		switch t.State {
		case StateFresh:
			rep.Summary.Fresh++
		case StateStale:
			rep.Summary.Stale++
		case StateFailing:
			rep.Summary.Failing++
		case StateRunning:
			rep.Summary.Running++
		}
		rep.Targets = append(rep.Targets, t)
	}
	slices.SortFunc(rep.Targets, func(a, b Target) int {
		return cmp.Or(
			cmp.Compare(a.State.rank(), b.State.rank()),
			cmp.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)),
			cmp.Compare(deref(a.Project), deref(b.Project)),
			cmp.Compare(a.key, b.key),
		)
	})
	return rep
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// filter keeps the targets in state s.
func (r *Report) filter(s State) {
	if s == "" {
		return
	}
	r.Filter = &s
	r.Targets = slices.DeleteFunc(r.Targets, func(t Target) bool { return t.State != s })
}
