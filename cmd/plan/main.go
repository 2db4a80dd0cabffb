// Command plan prints what a dbt run would refresh in Tableau, and why,
// without refreshing anything: the refresh map's targets and what lineage
// finds, the content excluded or read live, the changed relations no
// Tableau content reads, and the Tableau tables that match no dbt relation
// (usually a database alias to add). It reads the functions' environment
// (DEMO=true for the simulators).
//
//	make plan JOB=123 [RUN=70001]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/app"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dbtcloud"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/lineage"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refresh"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "plan:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("plan", flag.ContinueOnError)
	job := fs.String("job", "", "the dbt Cloud job id (required)")
	runID := fs.String("run", "", "the run to plan for; default the job's latest successful run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if _, err := strconv.ParseUint(*job, 10, 64); err != nil {
		return errors.New("-job must be a dbt Cloud job id, e.g. make plan JOB=123")
	}
	a, _, stop, err := app.Start(ctx)
	if err != nil {
		return err
	}
	defer stop()
	if *runID == "" {
		if a.DBT == nil {
			return errors.New("give RUN=<run id>: without DBT_ACCOUNT_ID the job's runs cannot be listed")
		}
		id, err := latestSuccess(ctx, a.DBT, *job)
		if err != nil {
			return err
		}
		*runID = strconv.FormatInt(id, 10)
	}
	plan := a.Planner.Plan(ctx, refresh.Run{RunID: *runID, DBTJobID: *job})
	fmt.Fprintf(out, "dbt job %s, run %s: %d to refresh (lineage %s)\n\n", *job, *runID, len(plan.Targets), a.Config.LineageWhy)
	section(out, "to refresh", plan.Targets)
	section(out, "excluded by the refresh map", plan.Excluded)
	section(out, "live connections (nothing to refresh)", plan.Live)
	if plan.Err != nil {
		fmt.Fprintf(out, "lineage failed (retry may help: %t): %v\n\n", plan.Retry, plan.Err)
	}
	if len(plan.Unmatched) > 0 {
		fmt.Fprintf(out, "changed relations no Tableau content reads:\n")
		tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
		for _, c := range plan.Unmatched {
			fmt.Fprintf(tw, "  %s\t%s\n", c.Node, c.Relation)
		}
		_ = tw.Flush()
		fmt.Fprintln(out)
	}
	if a.Planner.On() {
		id, _ := strconv.ParseInt(*runID, 10, 64)
		tables, err := a.Planner.TablesWithoutModel(ctx, id)
		if err != nil {
			return fmt.Errorf("listing Tableau tables without a dbt relation: %w", err)
		}
		if len(tables) > 0 {
			fmt.Fprintf(out, "Tableau tables that match no dbt relation (a database alias to add to LINEAGE_DATABASE_ALIASES?):\n")
			keys := make([]string, 0, len(tables))
			for k := range tables {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
			for _, k := range keys {
				fmt.Fprintf(tw, "  %s\tread by %s\n", k, strings.Join(tables[k], ", "))
			}
			_ = tw.Flush()
		}
	}
	return nil
}

func section(out io.Writer, title string, ts []refresh.Target) {
	if len(ts) == 0 {
		return
	}
	fmt.Fprintf(out, "%s:\n", title)
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	for _, t := range lineage.Sorted(ts) {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", t.Source, t, t.Why)
	}
	_ = tw.Flush()
	fmt.Fprintln(out)
}

// latestSuccess is the job's most recent successful run.
func latestSuccess(ctx context.Context, c *dbtcloud.Client, job string) (int64, error) {
	id, _ := strconv.ParseInt(job, 10, 64)
	runs, err := c.ListRuns(ctx, id, &dbtcloud.ListRunsOptions{Limit: 20})
	if err != nil {
		return 0, fmt.Errorf("list the runs of dbt job %s: %w", job, err)
	}
	for _, r := range runs {
		if r.Status.Success() {
			return r.ID, nil
		}
	}
	return 0, fmt.Errorf("dbt job %s has no successful run among its last %d: give RUN=<run id>", job, len(runs))
}
