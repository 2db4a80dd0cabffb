package refresh

import (
	"context"
	"fmt"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
)

// A refresh Tableau answers 409093 ("already queued") is not lost: a refresh
// of the item is queued or running. But Tableau does not say which, nor
// whether it started before the dbt run finished and so may read the old
// data. The refresher finds that job (Query Jobs, then Query Job to confirm
// the item), records it on the run like one of its own so that the
// follow-up reports its end, and when it started before the run finished,
// or cannot be found, has the follow-up queue one more refresh once it has
// ended: at most one per (run, target).

// JobFinder finds the refresh job Tableau already has for an item.
// *tableau.Client is one.
type JobFinder interface {
	FindRefreshJob(ctx context.Context, q tableau.RefreshJobQuery) (*tableau.Job, error)
}

// WithRides follows the refresh an already queued target rides on (found
// with f), and has one more refresh queued after it when it may have read
// the old data. It needs WithJobs; without it, already_queued ends the
// story.
func WithRides(f JobFinder) Option { return func(r *Refresher) { r.finder = f } }

// RideLookback is how far back a ride looks for the job: longer than any
// refresh waits in Tableau's queue.
const RideLookback = 12 * time.Hour

// incrementalDowngraded is the Detail of an incremental refresh asked of a
// server whose REST API predates them.
const incrementalDowngraded = "an incremental refresh was asked for, but Tableau's REST API predates them (" +
	tableau.IncrementalRefreshVersion + "): refreshed in full"

// Ride is what a target that was already queued rides on.
type Ride struct {
	// Job is Tableau's job for the item; nil when it could not be found.
	Job *tableau.Job
	// Requeue says one more refresh is due once Job has ended: it started
	// before the dbt run finished, or it could not be found.
	Requeue bool
	// Detail says so, for the reply and the logs.
	Detail string
}

// JobID is the id of the job ridden on, or "".
func (r *Ride) JobID() string {
	if r == nil || r.Job == nil {
		return ""
	}
	return r.Job.ID
}

// PlanRide decides what riding on job (nil when not found, with findErr
// saying why when the search failed) comes to for a run that finished at
// runFinished (zero when unknown).
//
// A job that has not started reads the data as it is when it runs, after
// the run. One that started before the run finished may have read the old
// data, so one more refresh follows it; so it does when the start cannot be
// compared, or the job cannot be found: one refresh too many costs
// backgrounder time, one too few leaves the dashboard stale without anyone
// knowing, which is what the bridge is for.
func PlanRide(job *tableau.Job, findErr error, runFinished time.Time) Ride {
	switch {
	case findErr != nil:
		return Ride{Requeue: true, Detail: fmt.Sprintf("Tableau had a refresh of the item queued, which could not be looked up (%v): one more refresh is queued once it has ended", findErr)}
	case job == nil:
		return Ride{Requeue: true, Detail: "Tableau had a refresh of the item queued, but no such job was found (Query Jobs lists it under the item's name; it may have ended already): one more refresh is queued once it has ended"}
	case job.StartedAt.IsZero():
		return Ride{Job: job, Detail: fmt.Sprintf("rides on Tableau job %s, queued and not started yet: it reads the run's data", job.ID)}
	case runFinished.IsZero():
		return Ride{Job: job, Requeue: true, Detail: fmt.Sprintf("rides on Tableau job %s, which started at %s, perhaps before the dbt run finished: one more refresh is queued when it ends",
			job.ID, job.StartedAt.UTC().Format(time.RFC3339))}
	case job.StartedAt.Before(runFinished):
		return Ride{Job: job, Requeue: true, Detail: fmt.Sprintf("rides on Tableau job %s, which started at %s, before the dbt run finished at %s: one more refresh is queued when it ends",
			job.ID, job.StartedAt.UTC().Format(time.RFC3339), runFinished.UTC().Format(time.RFC3339))}
	}
	return Ride{Job: job, Detail: fmt.Sprintf("rides on Tableau job %s, which started after the dbt run finished", job.ID)}
}

// rideOn finds the job an already queued target rides on, or returns nil
// when the refresh was queued or rides are not followed.
func (r *Refresher) rideOn(ctx context.Context, c *claim, res *tableau.RefreshResult) *Ride {
	if !res.AlreadyQueued || r.finder == nil || r.jobs == nil {
		return nil
	}
	finder := r.finder
	if r.otherSite(c.Target.Site) {
		// The job is on the target's site: its client looks.
		f, ok := c.tc.(JobFinder)
		if !ok {
			return nil
		}
		finder = f
	}
	now := r.now()
	job, err := finder.FindRefreshJob(ctx, tableau.RefreshJobQuery{
		Kind: string(c.Target.Kind), ItemID: c.ItemID, Name: c.Target.Name,
		CreatedSince: now.Add(-RideLookback),
		// A job that ended a moment ago is the one Tableau meant.
		EndedSince: now.Add(-time.Minute),
	})
	rd := PlanRide(job, err, c.run.FinishedAt)
	if err != nil {
		c.log.WarnContext(ctx, "the refresh Tableau already had could not be found", "error", err)
	}
	return &rd
}
