package followup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/notify"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
)

// Tableau is what the tracker asks Tableau: jobs and items, and for a
// target that rode on a refresh Tableau already had, one more refresh.
type Tableau interface {
	Job(ctx context.Context, id string) (*tableau.Job, error)
	Workbook(ctx context.Context, id string) (*tableau.Workbook, error)
	Datasource(ctx context.Context, id string) (*tableau.Datasource, error)
	RefreshWorkbook(ctx context.Context, id string, opts ...tableau.RefreshOption) (*tableau.RefreshResult, error)
	RefreshDatasource(ctx context.Context, id string, opts ...tableau.RefreshOption) (*tableau.RefreshResult, error)
	FindRefreshJob(ctx context.Context, q tableau.RefreshJobQuery) (*tableau.Job, error)
}

// Status keeps each target's history for the status page and the data
// quality warnings on its content (package status).
type Status interface {
	// Record writes a run's result into its target's history. It is
	// idempotent: the tracker records an end before it closes the job, so
	// that no end is lost, and the same end reported twice writes the same.
	Record(ctx context.Context, t state.StatusTarget, r state.TargetRun) error
	// Settled is told of an end once, by the caller that closed the job.
	Settled(ctx context.Context, t state.StatusTarget, r state.TargetRun)
	// Sweep is given a turn at each Follow, to find targets gone stale.
	Sweep(ctx context.Context) error
}

// Sites gives the client of each Tableau site other than the default: a
// job is followed on its own site (state.TableauJob.Site).
type Sites interface {
	// Client returns the client of the site with the given content URL.
	Client(site string) (Tableau, error)
	// BySiteID returns the client signed in to the site with the given
	// LUID, as Tableau's webhooks name it, or nil when none is.
	BySiteID(luid string) Tableau
}

// Tracker follows the refresh jobs we queued until they end.
type Tracker struct {
	jobs    state.TableauJobs
	tableau Tableau
	sites   Sites
	alerts  *Alerts
	status  Status
	limit   time.Duration
	logger  *slog.Logger
	now     func() time.Time
}

// NewTracker returns a Tracker that asks tc (the default site's client)
// about the jobs in jobs and tells alerts of their failures. It takes
// WithSites, WithJobLimit, WithStatus, WithLogger and WithClock.
func NewTracker(jobs state.TableauJobs, tc Tableau, alerts *Alerts, opts ...Option) *Tracker {
	o := apply(opts)
	return &Tracker{jobs: jobs, tableau: tc, sites: o.sites, alerts: alerts, status: o.status, limit: o.jobLimit, logger: o.logger, now: o.now}
}

// client is the client of a job's site ("" for the default).
func (t *Tracker) client(site string) (Tableau, error) {
	switch {
	case site == "":
		return t.tableau, nil
	case t.sites == nil:
		return nil, fmt.Errorf("the job is on Tableau site %q, and this follow-up knows the default site only", site)
	}
	return t.sites.Client(site)
}

// FollowResult counts what one Follow saw.
type FollowResult struct {
	Open      int `json:"open"`
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
	Stuck     int `json:"stuck"`
	Unknown   int `json:"unknown"`
	// Requeued counts the one more refreshes queued (or found queued)
	// after a refresh a target rode on.
	Requeued int `json:"requeued"`
}

// Follow reads each open job's state once, closes the finished ones and
// raises their failures, then retries undelivered notifications. Called
// every few minutes, it is the polling loop: each look is one request and
// nothing waits in between.
func (t *Tracker) Follow(ctx context.Context) (FollowResult, error) {
	var res FollowResult
	open, err := t.jobs.OpenJobs(ctx)
	if err != nil {
		return res, err
	}
	res.Open = len(open)
	var errs []error
	if len(open) > 0 {
		for _, j := range open {
			log := t.logger.With("tableau_job_id", j.JobID, "dbt_run_id", j.Run.RunID, "target", j.TargetName)
			tc, err := t.client(j.Site)
			if err != nil {
				// Nothing is lost: the job stays open for the next look.
				res.Unknown++
				log.WarnContext(ctx, "refresh job's site unavailable; will look again", "tableau_site", j.Site, "error", err)
				continue
			}
			if j.JobID == "" && j.Requeue {
				// The refresh it rode on was never found: the one more
				// refresh is tried now, and Tableau refuses it while that
				// one is still queued or running.
				requeued, err := t.requeue(ctx, tc, j, "", "")
				res.Requeued += requeued
				errs = append(errs, err)
				continue
			}
			job, err := tc.Job(ctx, j.JobID)
			switch {
			case errors.Is(err, tableau.ErrNotFound):
				res.Unknown++
				errs = append(errs, t.end(ctx, tc, j, state.OutcomeStuck, "Tableau no longer knows this job"))
				continue
			case err != nil:
				res.Unknown++
				log.WarnContext(ctx, "refresh job state unavailable; will look again", "error", err)
				continue
			case job.Finished() && j.Requeue:
				requeued, err := t.requeue(ctx, tc, j, endState(job), job.Notes)
				res.Requeued += requeued
				errs = append(errs, err)
			case job.Finished():
				st := endState(job)
				switch st {
				case state.OutcomeSucceeded:
					res.Succeeded++
				default:
					res.Failed++
				}
				errs = append(errs, t.end(ctx, tc, j, st, job.Notes))
			case t.now().Sub(j.QueuedAt) > t.limit:
				res.Stuck++
				errs = append(errs, t.end(ctx, tc, j, state.OutcomeStuck,
					fmt.Sprintf("not finished %s after it was queued (progress %d%%)", t.now().Sub(j.QueuedAt).Round(time.Minute), job.Progress)))
			}
		}
	}
	if t.status != nil {
		// The page and the warnings are a view: a failed sweep is logged,
		// and the next follow-up sweeps again.
		if err := t.status.Sweep(ctx); err != nil {
			t.logger.WarnContext(ctx, "status sweep failed; the next follow-up tries again", "error", err)
		}
	}
	if err := t.alerts.Flush(ctx); err != nil {
		errs = append(errs, err)
	}
	return res, errors.Join(errs...)
}

func endState(job *tableau.Job) state.Outcome {
	switch *job.FinishCode {
	case tableau.FinishSuccess, tableau.FinishCompleted:
		return state.OutcomeSucceeded
	case tableau.FinishCancelled:
		return state.OutcomeCancelled
	}
	return state.OutcomeFailed
}

// end closes a job and raises what it ended with. Only the caller that
// closes the job raises, and the key is the job's, so the same end reported
// by the jobs API and by Tableau's webhook makes one message.
func (t *Tracker) end(ctx context.Context, tc Tableau, j state.TableauJob, st state.Outcome, notes string) error {
	var it item
	if tc != nil {
		it = t.lookup(ctx, tc, j.ItemKind, j.ItemID)
	}
	target := state.StatusTarget{Key: j.Run.Target, Kind: j.ItemKind, Name: it.name, Project: it.project, ItemID: j.ItemID, URL: it.url, Site: j.Site}
	run := state.TargetRun{
		RunID: j.Run.RunID, DBTJobID: j.DBTJobID, DBTRunURL: j.DBTRunURL, DBTFinishedAt: j.DBTFinishedAt, At: j.QueuedAt,
		JobID: j.JobID, QueuedAt: j.QueuedAt, FinishedAt: t.now(), Result: st, Notes: reason(st, notes),
	}
	if t.status != nil {
		// Before the close: should this write fail, the job stays open and
		// the next look records and closes it.
		if err := t.status.Record(ctx, target, run); err != nil {
			return err
		}
	}
	closed, err := t.jobs.CloseJob(ctx, j, st, notes)
	if err != nil {
		return err
	}
	log := t.logger.With("tableau_job_id", j.JobID, "dbt_run_id", j.Run.RunID, "dbt_job_id", j.DBTJobID, "target", j.TargetName)
	if !closed {
		return nil
	}
	if st == state.OutcomeSucceeded {
		log.InfoContext(ctx, "Tableau refresh finished", "refresh_state", st)
	} else {
		log.ErrorContext(ctx, "Tableau refresh did not succeed", "refresh_state", st, "notes", notes)
	}
	if t.status != nil {
		t.status.Settled(ctx, target, run)
	}
	m := notify.Message{
		Kind: kindFor(st), DBTJobID: j.DBTJobID, DBTRunID: j.Run.RunID, TableauItemKind: j.ItemKind,
		TableauItemName: j.TargetName, TableauItemID: j.ItemID, TableauJobID: j.JobID, Reason: reason(st, notes), At: t.now(),
	}
	if it.name != "" {
		m.TableauItemName = it.name
		if j.Site != "" {
			m.TableauItemName += fmt.Sprintf(" on site %q", j.Site)
		}
	}
	m.TableauItemURL = it.url
	return t.alerts.Raise(ctx, "tableau-job:"+j.JobID, m)
}

func kindFor(st state.Outcome) notify.Kind {
	switch st {
	case state.OutcomeSucceeded:
		return notify.KindTableauRefreshSucceeded
	case state.OutcomeStuck:
		return notify.KindTableauJobStuck
	}
	return notify.KindTableauRefreshFailed
}

func reason(st state.Outcome, notes string) string {
	switch {
	case notes != "":
		return notes
	case st == state.OutcomeCancelled:
		return "the refresh job was cancelled"
	case st == state.OutcomeFailed:
		return "Tableau reported the refresh job as failed without notes"
	}
	return ""
}

// item is what Tableau says of a workbook or data source.
type item struct{ name, project, url string }

// lookup asks Tableau for an item's name, project and link, which only it
// knows. A failure costs the message its link and the status page its
// names, not the message.
func (t *Tracker) lookup(ctx context.Context, tc Tableau, kind, id string) item {
	if id == "" {
		return item{}
	}
	switch kind {
	case "workbook":
		if wb, err := tc.Workbook(ctx, id); err == nil {
			return item{wb.Name, wb.Project.Name, wb.WebpageURL}
		}
	case "datasource":
		if ds, err := tc.Datasource(ctx, id); err == nil {
			return item{ds.Name, ds.Project.Name, ds.WebpageURL}
		}
	}
	return item{}
}

// describe fills in the item's name and link.
func (t *Tracker) describe(ctx context.Context, tc Tableau, m *notify.Message) {
	it := t.lookup(ctx, tc, m.TableauItemKind, m.TableauItemID)
	if it.name != "" {
		m.TableauItemName = it.name
	}
	m.TableauItemURL = it.url
}

// HandleEvent takes in a Tableau webhook event. The end of a refresh we
// queued closes its job (and a failure is raised, under the job's key); the
// end of anyone else's refresh is counted, and its failure raised too, since
// the dashboard is stale either way.
func (t *Tracker) HandleEvent(ctx context.Context, ev *tableau.Event) (state.Outcome, error) {
	outcome := ev.RefreshOutcome()
	if outcome != "succeeded" && outcome != "failed" {
		return state.OutcomeIgnored, nil
	}
	st := state.OutcomeSucceeded
	if outcome == "failed" {
		st = state.OutcomeFailed
	}
	log := t.logger.With("tableau_event", ev.Type, "tableau_item_id", ev.ResourceID, "tableau_item_name", ev.ResourceName)
	j, end, err := t.jobs.LatestJob(ctx, ev.ResourceID)
	if err != nil {
		return "", err
	}
	// Ours if we queued a job for the item before the event happened. Item
	// LUIDs are unique across sites, so the job says which site it is on.
	if j != nil && (ev.CreatedAt.IsZero() || !j.QueuedAt.After(ev.CreatedAt.Add(time.Minute))) {
		tc, err := t.client(j.Site)
		if err != nil {
			// The follow-up looks at the job on its site again.
			log.WarnContext(ctx, "refresh event for a job whose site is unavailable; the follow-up looks again", "tableau_job_id", j.JobID, "tableau_site", j.Site, "error", err)
			return state.OutcomeOurs, nil
		}
		notes := ""
		if end == "" && j.JobID != "" {
			// The event names the item, not the job; the job says whether
			// it is the one that ended, and why it failed.
			job, err := tc.Job(ctx, j.JobID)
			switch {
			case err == nil && !job.Finished():
				// Another refresh of the item ended — the one a target rode
				// on, just followed by one more: this one goes on, and the
				// follow-up sees it end.
				log.InfoContext(ctx, "refresh event for the item; its open job goes on", "tableau_job_id", j.JobID)
				return state.OutcomeOurs, nil
			case err == nil:
				st, notes = endState(job), job.Notes
			}
		}
		if end != "" {
			// Already closed by the jobs API: nothing more to record, and its
			// notification (same key) went out then.
			log.InfoContext(ctx, "refresh end already recorded", "tableau_job_id", j.JobID, "refresh_state", end)
			return state.OutcomeOurs, nil
		}
		if j.Requeue {
			// The refresh the target rode on has ended: one more now.
			_, err := t.requeue(ctx, tc, *j, st, notes)
			return state.OutcomeOurs, err
		}
		return state.OutcomeOurs, t.end(ctx, tc, *j, st, notes)
	}
	log.InfoContext(ctx, "refresh of content we did not refresh", "result", outcome,
		"ExternalRefreshes", 1, externalMetric(t.now()))
	if st != state.OutcomeFailed {
		return state.OutcomeExternal, nil
	}
	m := notify.Message{
		Kind: notify.KindTableauRefreshFailed, TableauItemKind: ev.ItemKind(), TableauItemName: ev.ResourceName,
		TableauItemID: ev.ResourceID, Reason: "Tableau reported the refresh as failed (not one this bridge queued)", At: ev.CreatedAt,
	}
	// The event names its site by LUID: a client signed in there can say
	// more of the item; else the default site's tries.
	tc := t.tableau
	if t.sites != nil {
		if c := t.sites.BySiteID(ev.SiteID); c != nil {
			tc = c
		}
	}
	t.describe(ctx, tc, &m)
	key := "tableau-item:" + ev.ResourceID + ":" + ev.CreatedAt.UTC().Format(time.RFC3339)
	return state.OutcomeExternal, t.alerts.Raise(ctx, key, m)
}

// externalMetric counts refreshes of content we did not refresh, by outcome
// (the log line's "outcome" key is the dimension).
func externalMetric(now time.Time) slog.Attr {
	return slog.Group("_aws",
		slog.Int64("Timestamp", now.UnixMilli()),
		slog.Any("CloudWatchMetrics", []map[string]any{{
			"Namespace":  MetricNamespace,
			"Dimensions": [][]string{{"outcome"}},
			"Metrics":    []map[string]string{{"Name": "ExternalRefreshes", "Unit": "Count"}},
		}}),
	)
}
