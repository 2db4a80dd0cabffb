package lineage_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/lineage"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau/tableautest"
)

// dying is an index whose writes fail after a number of pages, as when an
// invocation is cut off halfway through a build.
type dying struct {
	*state.Memory
	pagesLeft int
}

func (d *dying) AddLineage(ctx context.Context, gen int64, tables map[string][]state.LineageContent) error {
	if d.pagesLeft == 0 {
		return errors.New("invocation ended")
	}
	d.pagesLeft--
	return d.Memory.AddLineage(ctx, gen, tables)
}

// A site too big for one invocation is built over several: each resumes
// where the last stopped, lookups read the previous generation meanwhile,
// and the new one is published whole.
func TestBuildResumesAndPublishesWhole(t *testing.T) {
	r := newRig(t)
	for i := range 250 { // three pages of data sources at the default page size
		r.d.Tableau.AddDatasource(fmt.Sprintf("Extract %03d", i), "Bulk", tableautest.ReadsTables(tableautest.TableRef{
			Database: "ANALYTICS", Schema: "BULK", Name: fmt.Sprintf("T%03d", i), ConnectionType: "snowflake"}))
	}
	idx := &dying{Memory: r.index, pagesLeft: 2}
	b := lineage.NewBuilder(r.tab, idx)
	ctx := context.Background()

	res, err := b.Build(ctx)
	if err == nil || res.Done || res.Pages != 2 {
		t.Fatalf("first invocation: %+v, %v; want it cut off after two pages", res, err)
	}
	if got, _ := idx.LookupLineage(ctx, []string{"ANALYTICS.BULK.T000"}); len(got) != 0 {
		t.Fatalf("a half-built generation is read: %v", got)
	}
	idx.pagesLeft = -1 // no more failures
	res, err = b.Build(ctx)
	if err != nil || !res.Done || !res.Resumed || !res.Published || res.Generation != 1 {
		t.Fatalf("second invocation: %+v, %v; want it to resume generation 1 and publish it", res, err)
	}
	got, err := idx.LookupLineage(ctx, []string{"ANALYTICS.BULK.T000", "ANALYTICS.BULK.T249", "ANALYTICS.MARTS.ORDERS_V"})
	if err != nil || len(got) != 3 {
		t.Fatalf("after the build: %v, %v; want the first and last pages' tables and the workbooks'", got, err)
	}
	st, _ := idx.LineageBuild(ctx)
	if st.Current != 1 || st.Building != 0 || st.Tables < 250 {
		t.Errorf("build state %+v", st)
	}

	// The next build starts generation 2 and replaces 1 whole.
	if res, err := b.Build(ctx); err != nil || res.Generation != 2 || !res.Done {
		t.Fatalf("rebuild: %+v, %v", res, err)
	}
}

// The Metadata API off stops the build with one notification a day.
func TestBuildWithTheMetadataAPIOff(t *testing.T) {
	r := newRig(t)
	r.d.Tableau.SetMetadataEnabled(false)
	b := lineage.NewBuilder(r.tab, r.index, lineage.WithAlerts(r.alerts))
	for range 2 {
		if _, err := b.Build(context.Background()); err == nil {
			t.Fatal("build succeeded with the Metadata API off")
		}
	}
	if len(r.alerts.keys) != 1 {
		t.Errorf("%d notifications, want 1", len(r.alerts.keys))
	}
}
