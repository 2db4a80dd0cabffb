package demo

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dbtcloud"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refreshmap"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
)

// Store is what Seed writes to: the in-memory state of a demo function.
type Store interface {
	state.Idempotency
	state.TableauJobs
	state.TargetStatuses
}

// Seed gives the status page a history in every state, as if the bridge
// had been running for a day: Sales Overview and Executive Summary fresh,
// Orders refreshing now, Executive KPIs failed with Tableau's notes,
// Customers stale, and Inventory never refreshed. The runs are dated before now; a refresh the
// demo then makes (the curl command) joins them.
func (d *Demo) Seed(ctx context.Context, s Store, now time.Time) error {
	runURL := func(run int) string {
		return dbtcloud.RunURL(d.DBT.URL(), d.DBT.AccountID(), "1", strconv.Itoa(run))
	}
	// target is the status of a map entry (its key names the project only
	// when the entry does) in project; mapProject "lineage" stands for
	// content lineage finds, keyed by its LUID as the refresher keys it.
	target := func(kind refreshmap.Kind, name, mapProject, project string) state.StatusTarget {
		id := d.items[name]
		t := refreshmap.Target{Kind: kind, Name: name, Project: mapProject}
		if mapProject == "lineage" {
			t = refreshmap.Target{Kind: kind, ID: id, Name: name, Project: project}
		}
		return state.StatusTarget{
			Key: t.Key(), Kind: string(kind), Name: name, Project: project, ItemID: id,
			URL: fmt.Sprintf("%s/#/site/%s/%ss/%s", d.Tableau.URL(), Site, kind, id),
		}
	}
	// run is dbt run n of job, finished ago before now; its refresh took
	// took.
	run := func(job string, n int, ago, took time.Duration, result state.Outcome, notes string) state.TargetRun {
		dbt := now.Add(-ago)
		r := state.TargetRun{
			RunID: strconv.Itoa(n), DBTJobID: job, DBTRunURL: runURL(n), DBTFinishedAt: dbt,
			At: dbt.Add(4 * time.Second), JobID: fmt.Sprintf("demo-job-%d", n), QueuedAt: dbt.Add(4 * time.Second),
			FinishedAt: dbt.Add(4*time.Second + took), Result: result, Notes: notes,
		}
		if result == state.OutcomeAlreadyQueued {
			r.JobID, r.QueuedAt, r.FinishedAt = "", time.Time{}, time.Time{}
		}
		return r
	}
	record := func(t state.StatusTarget, runs ...state.TargetRun) error {
		for _, r := range runs {
			if err := s.RecordRun(ctx, t, r); err != nil {
				return fmt.Errorf("demo status: %w", err)
			}
		}
		return nil
	}

	// Job 123's runs refresh these two through lineage.
	sales := target(refreshmap.Workbook, "Sales Overview", "lineage", "Finance")
	orders := target(refreshmap.Datasource, "Orders", "lineage", "Finance")
	var hourly []state.TargetRun
	for i := 7; i >= 1; i-- {
		hourly = append(hourly, run(JobID, 70100-i, time.Duration(i)*time.Hour+35*time.Minute, 2*time.Minute+time.Duration(i)*7*time.Second, state.OutcomeSucceeded, ""))
	}
	if err := record(sales, hourly...); err != nil {
		return err
	}
	// The map's entry for job 123, refreshed by the same runs.
	if err := record(target(refreshmap.Workbook, "Executive Summary", "Finance", "Finance"), hourly...); err != nil {
		return err
	}
	ordersRuns := append([]state.TargetRun(nil), hourly[3:]...)
	ordersRuns = append(ordersRuns, run(JobID, 70093, 4*time.Hour+35*time.Minute, 0, state.OutcomeAlreadyQueued, ""))
	if err := record(orders, ordersRuns...); err != nil {
		return err
	}
	// Orders is refreshing now: an open job, as the refresher leaves one.
	k := state.Key{RunID: "70100", Target: orders.Key}
	if err := s.Begin(ctx, state.Claim{Key: k, Owner: "demo", DBTJobID: JobID, HoldUntil: now.Add(time.Minute), Retention: 72 * time.Hour}); err != nil {
		return fmt.Errorf("demo status: %w", err)
	}
	if err := s.CompleteJob(ctx, "demo", state.TableauJob{
		JobID: "demo-job-70100", Run: k, DBTJobID: JobID, TargetName: `datasource "Orders"`, ItemKind: "datasource", ItemID: orders.ItemID,
		QueuedAt: now.Add(-2 * time.Minute), DBTRunURL: runURL(70100), DBTFinishedAt: now.Add(-2*time.Minute - 4*time.Second),
	}); err != nil {
		return fmt.Errorf("demo status: %w", err)
	}

	kpis := target(refreshmap.Workbook, "Executive KPIs", "Finance", "Finance")
	if err := record(kpis,
		run("456", 51201, 49*time.Hour, 6*time.Minute, state.OutcomeSucceeded, ""),
		run("456", 51202, 25*time.Hour, 5*time.Minute+40*time.Second, state.OutcomeSucceeded, ""),
		run("456", 51203, time.Hour+10*time.Minute, 90*time.Second, state.OutcomeFailed,
			"Database login failed for user 'etl_reader'. The embedded credentials of the data source may have expired."),
	); err != nil {
		return err
	}
	customers := target(refreshmap.Datasource, "Customers", "Marketing", "Marketing")
	return record(customers,
		run("456", 51102, 54*time.Hour, 3*time.Minute, state.OutcomeSucceeded, ""),
		run("456", 51150, 30*time.Hour, 3*time.Minute+20*time.Second, state.OutcomeSucceeded, ""),
		run("456", 51180, 6*time.Hour, 0, state.OutcomeAlreadyQueued, ""),
	)
}
