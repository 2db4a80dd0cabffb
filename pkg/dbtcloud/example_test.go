package dbtcloud_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dbtcloud"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dbtcloud/dbtcloudtest"
)

// Trigger a job, then poll the run until it finishes. The simulator and its
// fake clock stand in for dbt Cloud; against the real service, pass the
// account's access URL and a service token instead.
func ExampleClient_TriggerRun() {
	clock := dbtcloudtest.NewFakeClock(time.Date(2026, 3, 2, 6, 0, 0, 0, time.UTC))
	sim := dbtcloudtest.NewServer(dbtcloudtest.WithClock(clock.Now))
	defer sim.Close()
	sim.AddJob(123, "Daily build", dbtcloudtest.RunTimings(time.Minute, time.Minute, 40*time.Minute))

	client, err := dbtcloud.NewClient(
		dbtcloud.WithBaseURL(sim.URL()),
		dbtcloud.WithAccountID(sim.AccountID()),
		dbtcloud.WithToken(sim.Token()),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	run, err := client.TriggerRun(ctx, 123, &dbtcloud.TriggerRunRequest{Cause: "dbt-tableau-refresh nightly"})
	if errors.Is(err, dbtcloud.ErrTriggerOutcomeUnknown) {
		fmt.Println("look for the run with ListRuns before triggering again")
		return
	}
	if err != nil {
		fmt.Println(err)
		return
	}
	for !run.Status.Terminal() {
		fmt.Println(run.StatusHumanized)
		clock.Advance(15 * time.Minute) // a real poller would sleep here
		if run, err = client.GetRun(ctx, run.ID); err != nil {
			fmt.Println(err)
			return
		}
	}
	fmt.Println(run.StatusHumanized, "after", run.Duration)
	// Output:
	// Queued
	// Running
	// Running
	// Success after 00:42:00
}
