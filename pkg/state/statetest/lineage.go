package statetest

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
)

// TestLineageIndex runs the lineage index's contract against stores made by
// newStore: lookups read the last published generation only, pages of one
// generation merge, a published generation replaces the one before whole,
// and the build's progress survives between invocations.
func TestLineageIndex(t *testing.T, newStore func(t *testing.T, clock func() time.Time) state.LineageIndex) {
	ctx := context.Background()
	orders := state.LineageContent{Kind: "datasource", LUID: "ds-1", Name: "Orders", Project: "Finance", Extract: true}
	sales := state.LineageContent{Kind: "workbook", LUID: "wb-1", Name: "Sales", Project: "Finance", Extract: true, Via: `embedded data source "Sales (extract)"`}
	live := state.LineageContent{Kind: "datasource", LUID: "ds-2", Name: "Orders live", Project: "Finance", Extract: false}

	c := NewClock()
	s := newStore(t, c.Now)
	if got, err := s.LookupLineage(ctx, []string{"ANALYTICS.MARTS.ORDERS"}); err != nil || len(got) != 0 {
		t.Fatalf("lookup in an empty index = %v, %v; want nothing", got, err)
	}
	b, err := s.LineageBuild(ctx)
	if err != nil || b.Current != 0 || b.Building != 0 {
		t.Fatalf("build of an empty index = %+v, %v", b, err)
	}

	// Generation 1, written in two pages that both touch ORDERS.
	b = state.LineageBuild{Building: 1, StartedAt: c.Now(), Cursor: `{"stage":"workbooks"}`, Tables: 2}
	if err := s.SaveLineageBuild(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := s.AddLineage(ctx, 1, map[string][]state.LineageContent{"ANALYTICS.MARTS.ORDERS": {orders, live}, "MARTS.CUSTOMERS": {orders}}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddLineage(ctx, 1, map[string][]state.LineageContent{"ANALYTICS.MARTS.ORDERS": {sales, orders}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.LookupLineage(ctx, []string{"ANALYTICS.MARTS.ORDERS"}); len(got) != 0 {
		t.Fatalf("an unpublished generation was read: %v", got)
	}
	if got, err := s.LineageBuild(ctx); err != nil || !reflect.DeepEqual(got, b) {
		t.Fatalf("saved build = %+v, %v; want %+v", got, err, b)
	}
	c.Advance(time.Minute)
	if err := s.PublishLineage(ctx, 1, state.LineageBuild{Tables: 2, Warnings: []string{"partial page"}, Partial: true}); err != nil {
		t.Fatal(err)
	}
	got, err := s.LookupLineage(ctx, []string{"ANALYTICS.MARTS.ORDERS", "MARTS.CUSTOMERS", "ANALYTICS.MARTS.UNKNOWN"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]state.LineageContent{"ANALYTICS.MARTS.ORDERS": {orders, live, sales}, "MARTS.CUSTOMERS": {orders}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("lookup after publishing = %v, want %v", got, want)
	}
	b, err = s.LineageBuild(ctx)
	if err != nil || b.Current != 1 || b.Building != 0 || b.Cursor != "" || !b.CompletedAt.Equal(c.Now()) || !b.Partial || len(b.Warnings) != 1 {
		t.Fatalf("build after publishing = %+v, %v", b, err)
	}

	// Generation 2 replaces generation 1 whole: ORDERS lost a reader,
	// CUSTOMERS lost them all.
	if err := s.AddLineage(ctx, 2, map[string][]state.LineageContent{"ANALYTICS.MARTS.ORDERS": {orders}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.LookupLineage(ctx, []string{"MARTS.CUSTOMERS"}); len(got) != 1 {
		t.Fatalf("generation 1 stopped being read before generation 2 was published: %v", got)
	}
	if err := s.PublishLineage(ctx, 2, state.LineageBuild{}); err != nil {
		t.Fatal(err)
	}
	got, _ = s.LookupLineage(ctx, []string{"ANALYTICS.MARTS.ORDERS", "MARTS.CUSTOMERS"})
	if want := (map[string][]state.LineageContent{"ANALYTICS.MARTS.ORDERS": {orders}}); !reflect.DeepEqual(got, want) {
		t.Fatalf("lookup after generation 2 = %v, want %v", got, want)
	}

	// A lookup of many tables at once, as a run that rebuilt hundreds of
	// models makes.
	many := map[string][]state.LineageContent{}
	var names []string
	for i := range 250 {
		name := fmt.Sprintf("ANALYTICS.MARTS.T%03d", i)
		names = append(names, name)
		if i%2 == 0 {
			many[name] = []state.LineageContent{{Kind: "datasource", LUID: fmt.Sprintf("ds-%d", i), Name: name, Extract: true}}
		}
	}
	if err := s.AddLineage(ctx, 3, many); err != nil {
		t.Fatal(err)
	}
	if err := s.PublishLineage(ctx, 3, state.LineageBuild{}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.LookupLineage(ctx, names); err != nil || len(got) != 125 || got["ANALYTICS.MARTS.T248"][0].LUID != "ds-248" {
		t.Fatalf("lookup of %d tables: %d found, %v", len(names), len(got), err)
	}
}

// SiteLineageStore is a store of each site's lineage index.
type SiteLineageStore interface {
	state.LineageIndex
	state.SiteLineage
}

// TestSiteLineage runs the index's contract on a site's index, and checks
// that the sites' indexes are apart: each is built and published on its
// own, and a lookup reads its site's alone.
func TestSiteLineage(t *testing.T, newStore func(t *testing.T, clock func() time.Time) SiteLineageStore) {
	t.Run("a site's index keeps the contract", func(t *testing.T) {
		TestLineageIndex(t, func(t *testing.T, clock func() time.Time) state.LineageIndex {
			return newStore(t, clock).SiteLineage("emea")
		})
	})
	ctx := context.Background()
	c := NewClock()
	s := newStore(t, c.Now)
	if s.SiteLineage("") != state.LineageIndex(s) {
		t.Error(`SiteLineage("") is not the store itself`)
	}
	home := state.LineageContent{Kind: "datasource", LUID: "ds-home", Name: "Orders", Extract: true}
	emea := state.LineageContent{Kind: "datasource", LUID: "ds-emea", Name: "Orders", Extract: true}
	for _, x := range []struct {
		idx     state.LineageIndex
		gen     int64
		content state.LineageContent
	}{{s, 3, home}, {s.SiteLineage("EMEA"), 1, emea}} {
		if err := x.idx.AddLineage(ctx, x.gen, map[string][]state.LineageContent{"MARTS.ORDERS": {x.content}}); err != nil {
			t.Fatal(err)
		}
		if err := x.idx.PublishLineage(ctx, x.gen, state.LineageBuild{Tables: 1}); err != nil {
			t.Fatal(err)
		}
	}
	for _, x := range []struct {
		name string
		idx  state.LineageIndex
		want state.LineageContent
		gen  int64
	}{{"the default site", s, home, 3}, {"emea, in any case", s.SiteLineage("emea"), emea, 1}} {
		got, err := x.idx.LookupLineage(ctx, []string{"MARTS.ORDERS"})
		if err != nil || !reflect.DeepEqual(got, map[string][]state.LineageContent{"MARTS.ORDERS": {x.want}}) {
			t.Errorf("%s: lookup = %v, %v; want its own %v", x.name, got, err, x.want)
		}
		if b, err := x.idx.LineageBuild(ctx); err != nil || b.Current != x.gen {
			t.Errorf("%s: build = %+v, %v; want generation %d", x.name, b, err, x.gen)
		}
	}
	if got, err := s.SiteLineage("apac").LookupLineage(ctx, []string{"MARTS.ORDERS"}); err != nil || len(got) != 0 {
		t.Errorf("a site never built: lookup = %v, %v", got, err)
	}
}
