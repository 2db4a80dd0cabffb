package dbtartifacts_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dbtartifacts"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dbtcloud"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dbtcloud/dbtcloudtest"
)

// TestSimulatorArtifacts reads a finished demo run from the dbt Cloud
// simulator the way the bridge will: the run's steps, the run_results.json
// of every step that builds, one manifest; then works out what changed.
func TestSimulatorArtifacts(t *testing.T) {
	clock := dbtcloudtest.NewFakeClock(time.Date(2026, 3, 2, 6, 0, 0, 0, time.UTC))
	sim := dbtcloudtest.NewServer(dbtcloudtest.WithClock(clock.Now))
	t.Cleanup(sim.Close)
	sim.AddJob(123, "Daily")
	c, err := dbtcloud.NewClient(dbtcloud.WithBaseURL(sim.URL()), dbtcloud.WithAccountID(sim.AccountID()), dbtcloud.WithToken(sim.Token()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	run, err := c.TriggerRun(ctx, 123, &dbtcloud.TriggerRunRequest{Cause: "test"})
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)

	steps, err := c.GetRunSteps(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	var results []*dbtartifacts.RunResults
	var read []int
	for _, s := range steps {
		if !dbtartifacts.CommandBuildsRelations(s.Command()) {
			continue
		}
		body, err := c.GetArtifact(ctx, run.ID, "run_results.json", s.Index)
		if err != nil {
			t.Fatal(err)
		}
		rr, err := dbtartifacts.ReadRunResults(body)
		body.Close()
		if err != nil {
			t.Fatalf("step %d: %v", s.Index, err)
		}
		results = append(results, rr)
		read = append(read, s.Index)
	}
	if want := []int{4, 5, 6}; !reflect.DeepEqual(read, want) {
		t.Errorf("read the results of steps %v, want %v (seed, snapshot, build; not deps or docs generate)", read, want)
	}
	body, err := c.GetArtifact(ctx, run.ID, "manifest.json", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	m, err := dbtartifacts.ReadManifest(body)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := dbtartifacts.Changed(m, results...)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range cs.Changes {
		got = append(got, c.Relation)
	}
	want := []string{"analytics.marts.order_facts_v", "analytics.marts.orders", "analytics.marts.orders_daily",
		"analytics.marts.orders_v", "analytics.seeds.country_codes", "analytics.snapshots.customers_snapshot"}
	if !reflect.DeepEqual(got, want) || len(cs.Unnamed) != 0 {
		t.Errorf("changed %v (unnamed %v), want %v", got, cs.Unnamed, want)
	}
}
