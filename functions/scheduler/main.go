// Command scheduler is the scheduled Lambda function: on each tick it runs
// the dbt Cloud jobs the event names, follows them, and refreshes their
// Tableau targets when they succeed; every five minutes it follows the runs
// and Tableau refresh jobs in flight. It runs as a Lambda when
// AWS_LAMBDA_RUNTIME_API is set; otherwise it handles one event file
// (-event), against the simulators when DEMO=true.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/app"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/localrun"
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

	a, _, stop, err := app.Start(ctx)
	if err != nil {
		return err
	}
	defer stop()
	s, err := a.Scheduler()
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
