// Command scheduler is the scheduled Lambda function: on each tick it runs
// the dbt Cloud jobs the event names, follows them, and refreshes their
// Tableau targets when they succeed. It runs as a Lambda when
// AWS_LAMBDA_RUNTIME_API is set; otherwise it handles one event file
// (-event), against the local simulators when no deployment is configured.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/bridge"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/localrun"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/scheduler"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "scheduler:", err)
		os.Exit(1)
	}
}

func run() error {
	event := flag.String("event", "", "handle one scheduled event from this JSON file, print the result and exit")
	timeout := flag.Duration("timeout", 15*time.Minute, "the invocation's time limit when run locally")
	flag.Parse()
	ctx := context.Background()

	deps, _, stop, err := bridge.Start(ctx)
	if err != nil {
		return err
	}
	defer stop()
	// Without DBT_ACCOUNT_ID the function still follows the Tableau jobs the
	// webhook queued; only ticks that name dbt jobs need dbt Cloud.
	var dbt scheduler.DBT
	if c := deps.DBT(); c != nil {
		dbt = c
	} else {
		deps.Logger.InfoContext(ctx, "scheduled path off: DBT_ACCOUNT_ID is not set; follow-ups still follow Tableau refresh jobs")
	}
	cfg := deps.Config
	s, err := scheduler.New(dbt, deps.Runs, deps.Refresher, scheduler.Config{
		Map: cfg.Map, PollWindow: cfg.PollWindow, QueueLimit: cfg.QueueLimit, CancelStuck: cfg.CancelStuck, Logger: deps.Logger,
		Alerts: deps.Alerts, Follower: deps.Tracker,
	})
	if err != nil {
		return err
	}
	switch {
	case os.Getenv("AWS_LAMBDA_RUNTIME_API") != "":
		lambda.Start(s.Handle)
		return nil
	case *event != "":
		return localrun.Invoke(ctx, *event, *timeout, s.Handle, os.Stdout)
	}
	return errors.New("run it with -event FILE (e.g. events/schedule.json), or as a Lambda")
}
