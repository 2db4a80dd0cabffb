package followup

import (
	"context"
	"fmt"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/notify"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refresh"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
)

// requeue queues the one more refresh a target that rode on a refresh
// Tableau already had is due, now that that refresh has ended (prevEnd is
// how; "" when it was never found), and records it on the run in place of
// the ride. It reports 1 when the target now has its refresh to follow.
//
// At most one per (run, target): only RequeueJob's winner records one, and
// Tableau itself turns away a second request while the first is queued
// (409093), so two sources seeing the same end, or a follow-up after a
// crash between the request and the record, find the first one and ride on
// it instead of queueing another.
func (t *Tracker) requeue(ctx context.Context, tc Tableau, j state.TableauJob, prevEnd state.Outcome, notes string) (int, error) {
	log := t.logger.With("tableau_job_id", j.JobID, "dbt_run_id", j.Run.RunID, "dbt_job_id", j.DBTJobID, "target", j.TargetName)
	rode := "a refresh Tableau already had, which could not be found"
	if j.JobID != "" {
		rode = fmt.Sprintf("job %s (%s)", j.JobID, prevEnd)
	}
	if prevEnd != "" && prevEnd != state.OutcomeSucceeded {
		// Told like the end of one of ours; the one more refresh that
		// follows is reported in its turn.
		log.ErrorContext(ctx, "the Tableau refresh a target rode on did not succeed; one more follows", "refresh_state", prevEnd, "notes", notes)
		m := notify.Message{
			Kind: kindFor(prevEnd), DBTJobID: j.DBTJobID, DBTRunID: j.Run.RunID, TableauItemKind: j.ItemKind,
			TableauItemName: j.TargetName, TableauItemID: j.ItemID, TableauJobID: j.JobID,
			Reason: reason(prevEnd, notes) + " (a refresh Tableau already had; one more refresh of the item is queued)", At: t.now(),
		}
		t.describe(ctx, tc, &m)
		if err := t.alerts.Raise(ctx, "tableau-job:"+j.JobID, m); err != nil {
			log.WarnContext(ctx, "notification pending", "error", err)
		}
	}
	var opts []tableau.RefreshOption
	if j.Incremental {
		opts = append(opts, tableau.Incremental(true))
	}
	var res *tableau.RefreshResult
	var err error
	if j.ItemKind == "datasource" {
		res, err = tc.RefreshDatasource(ctx, j.ItemID, opts...)
	} else {
		res, err = tc.RefreshWorkbook(ctx, j.ItemID, opts...)
	}
	stale := t.now().Sub(j.QueuedAt) > t.limit
	next := state.TableauJob{
		DBTJobID: j.DBTJobID, TargetName: j.TargetName, ItemKind: j.ItemKind, ItemID: j.ItemID, QueuedAt: t.now(),
		Incremental: j.Incremental, DBTFinishedAt: j.DBTFinishedAt, RodeOn: rode, Site: j.Site,
	}
	switch {
	case err != nil && tableau.Retryable(err) && !stale:
		log.WarnContext(ctx, "one more refresh not queued yet; the next follow-up tries again", "error", err)
		return 0, nil
	case err != nil:
		return 0, t.end(ctx, tc, j, state.OutcomeFailed, "one more refresh after "+rode+" could not be queued: "+err.Error())
	case res.AlreadyQueued:
		// Queued since the ride ended (by a source that saw the same end,
		// or by Tableau's schedule): ride on it if it reads the run's data.
		found, ferr := tc.FindRefreshJob(ctx, tableau.RefreshJobQuery{
			Kind: j.ItemKind, ItemID: j.ItemID, Name: t.itemName(ctx, tc, j),
			CreatedSince: j.QueuedAt.Add(-refresh.RideLookback),
		})
		plan := refresh.PlanRide(found, ferr, j.DBTFinishedAt)
		if found == nil || plan.Requeue {
			if stale {
				return 0, t.end(ctx, tc, j, state.OutcomeStuck, fmt.Sprintf("one more refresh after %s could not be queued in %s: Tableau kept answering that a refresh of the item is already queued", rode, t.limit))
			}
			log.InfoContext(ctx, "one more refresh waits: Tableau still has an earlier refresh of the item", "reason", plan.Detail)
			return 0, nil
		}
		next.JobID = found.ID
	default:
		next.JobID = res.Job.ID
	}
	ok, err := t.jobs.RequeueJob(ctx, j, next)
	if err != nil {
		return 0, err
	}
	log = t.logger.With("tableau_job_id", next.JobID, "dbt_run_id", j.Run.RunID, "dbt_job_id", j.DBTJobID, "target", j.TargetName, "rode_on", rode)
	if !ok {
		log.InfoContext(ctx, "one more refresh already recorded by another source")
		return 0, nil
	}
	log.InfoContext(ctx, "one more refresh queued after the refresh the target rode on")
	return 1, nil
}

// itemName is the item's name, by which Query Jobs titles its jobs; "" when
// Tableau cannot say.
func (t *Tracker) itemName(ctx context.Context, tc Tableau, j state.TableauJob) string {
	if j.ItemKind == "datasource" {
		if ds, err := tc.Datasource(ctx, j.ItemID); err == nil {
			return ds.Name
		}
		return ""
	}
	if wb, err := tc.Workbook(ctx, j.ItemID); err == nil {
		return wb.Name
	}
	return ""
}
