package lineage_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/lineage"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refresh"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/remote"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau/tableautest"
)

// TestSites: lineage on two sites. The index of each is built from its own
// Metadata API into its own index; a run's changes find the content over
// them on both, each target on its own site, and the map's exclusions
// apply per site.
func TestSites(t *testing.T) {
	r := newRig(t)
	emea := r.d.Tableau.AddSite("emea")
	emea.AddPAT("emea-bot", "emea-secret")
	orders := tableautest.TableRef{Database: "ANALYTICS", Schema: "MARTS", Name: "ORDERS", ConnectionType: "snowflake"}
	emea.AddDatasource("EMEA Orders", "Europe", tableautest.ReadsTables(orders))
	// The map excludes the default site's Scratchpad workbook, not this one.
	emea.AddWorkbook("Scratchpad", "Sandbox", tableautest.WithEmbeddedSources(tableautest.EmbeddedSource{
		Name: "Scratch", Extract: true, Tables: []tableautest.TableRef{orders}}))
	ec, err := tableau.NewClient(r.d.Tableau.URL(), tableau.WithSite("emea"), tableau.WithPAT("emea-bot", "emea-secret"),
		tableau.WithRetryPolicy(remote.Policy{MaxAttempts: 1}))
	if err != nil {
		t.Fatal(err)
	}
	site := lineage.Site{Name: "emea", Metadata: ec, Index: r.index.SiteLineage("emea")}
	ctx := context.Background()

	res, err := lineage.NewBuilder(r.tab, r.index, lineage.WithSites(site)).Build(ctx)
	if err != nil || !res.Done || res.Sites["emea"] == nil || !res.Sites["emea"].Done {
		t.Fatalf("build: %+v, %v; want both sites built", res, err)
	}
	got, err := site.Index.LookupLineage(ctx, []string{"ANALYTICS.MARTS.ORDERS"})
	if err != nil || len(got["ANALYTICS.MARTS.ORDERS"]) != 2 {
		t.Fatalf("emea's index: %v, %v", got, err)
	}
	if home, _ := r.index.LookupLineage(ctx, []string{"ANALYTICS.MARTS.ORDERS"}); slices.ContainsFunc(home["ANALYTICS.MARTS.ORDERS"], func(c state.LineageContent) bool { return c.Name == "EMEA Orders" }) {
		t.Error("emea's content is in the default site's index")
	}

	plan := r.planner(lineage.WithSites(site)).Plan(ctx, refresh.Run{RunID: "70001", DBTJobID: "123"})
	if plan.Err != nil {
		t.Fatal(plan.Err)
	}
	var onEMEA []string
	for _, tg := range plan.Targets {
		if tg.Site == "emea" {
			onEMEA = append(onEMEA, tg.Name)
			if !strings.HasPrefix(tg.Key(), `site:"emea"/`) || !strings.Contains(tg.String(), `on site "emea"`) {
				t.Errorf("target %s: key %s", tg, tg.Key())
			}
		}
	}
	slices.Sort(onEMEA)
	if !slices.Equal(onEMEA, []string{"EMEA Orders", "Scratchpad"}) {
		t.Errorf("targets on emea %v, want EMEA Orders and Scratchpad (the map excludes the default site's Scratchpad only)", onEMEA)
	}
	// The default site's targets are those of the single-site demo.
	var home []refresh.Target
	for _, tg := range plan.Targets {
		if tg.Site == "" {
			home = append(home, tg)
		}
	}
	if got := names(home); !slices.Equal(got, wantDemoTargets) {
		t.Errorf("the default site's targets:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(wantDemoTargets, "\n  "))
	}
}
