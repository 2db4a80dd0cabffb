package dbtartifacts_test

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dbtartifacts"
)

// node describes a manifest node as "model.p.orders:table<-model.p.stg".
// Its relation is db.s.<name> unless it is ephemeral.
type node struct {
	id, materialized string
	parents          []string
}

func project(nodes ...node) *dbtartifacts.Manifest {
	m := &dbtartifacts.Manifest{Nodes: map[string]dbtartifacts.Node{}, ChildMap: map[string][]string{}}
	for _, n := range nodes {
		typ, rest, _ := strings.Cut(n.id, ".")
		_, name, _ := strings.Cut(rest, ".")
		mn := dbtartifacts.Node{UniqueID: n.id, ResourceType: typ, Database: "db", Schema: "s", Alias: name, Materialized: n.materialized}
		if n.materialized != dbtartifacts.MaterializedEphemeral {
			mn.RelationName = "db.s." + name
		}
		m.Nodes[n.id] = mn
		for _, p := range n.parents {
			m.ChildMap[p] = append(m.ChildMap[p], n.id)
		}
	}
	return m
}

func results(command string, fullRefresh bool, statuses ...string) *dbtartifacts.RunResults {
	rr := &dbtartifacts.RunResults{SchemaVersion: 6, Command: command, FullRefresh: fullRefresh}
	for _, s := range statuses {
		id, status, _ := strings.Cut(s, "=")
		rr.Results = append(rr.Results, dbtartifacts.Result{UniqueID: id, Status: dbtartifacts.Status(status)})
	}
	return rr
}

// summary renders a change set compactly: "node relation why [incremental]".
func summary(cs dbtartifacts.ChangeSet) []string {
	var out []string
	for _, c := range cs.Changes {
		s := fmt.Sprintf("%s %s %s", c.Node, c.Relation, c.Why())
		if c.Incremental {
			s += " incremental"
		}
		if c.Rebuilt != (len(c.Path) == 1) {
			s += " (Rebuilt disagrees with Path)"
		}
		out = append(out, s)
	}
	for _, u := range cs.Unnamed {
		out = append(out, "unnamed "+u)
	}
	return out
}

func TestChanged(t *testing.T) {
	const (
		A, B, V, V2, E, EV, T, TV, I, MV = "model.p.a", "model.p.b", "model.p.v", "model.p.v2", "model.p.e", "model.p.ev",
			"model.p.t", "model.p.tv", "model.p.i", "model.p.mv"
		S, SN = "seed.p.codes", "snapshot.p.snap"
	)
	table, view, eph, incr := dbtartifacts.MaterializedTable, dbtartifacts.MaterializedView, dbtartifacts.MaterializedEphemeral, dbtartifacts.MaterializedIncremental
	tests := []struct {
		name     string
		manifest *dbtartifacts.Manifest
		steps    []*dbtartifacts.RunResults
		want     []string
	}{
		{
			name:     "a rebuilt table and the view over it",
			manifest: project(node{A, table, nil}, node{V, view, []string{A}}),
			steps:    []*dbtartifacts.RunResults{results("build", false, A+"=success")},
			want:     []string{"model.p.a db.s.a model.p.a", "model.p.v db.s.v model.p.a → model.p.v"},
		},
		{
			name:     "through an ephemeral model to the view over it",
			manifest: project(node{A, table, nil}, node{E, eph, []string{A}}, node{EV, view, []string{E}}),
			steps:    []*dbtartifacts.RunResults{results("run", false, A+"=success")},
			want:     []string{"model.p.a db.s.a model.p.a", "model.p.ev db.s.ev model.p.a → model.p.e → model.p.ev"},
		},
		{
			name:     "through a chain of views",
			manifest: project(node{A, table, nil}, node{V, view, []string{A}}, node{V2, view, []string{V}}),
			steps:    []*dbtartifacts.RunResults{results("build", false, A+"=success")},
			want:     []string{"model.p.a db.s.a model.p.a", "model.p.v db.s.v model.p.a → model.p.v", "model.p.v2 db.s.v2 model.p.a → model.p.v → model.p.v2"},
		},
		{
			name: "not through a table or an incremental model the run did not build",
			manifest: project(node{A, table, nil}, node{T, table, []string{A}}, node{TV, view, []string{T}},
				node{I, incr, []string{A}}, node{V, view, []string{I}}),
			steps: []*dbtartifacts.RunResults{results("build", false, A+"=success")},
			want:  []string{"model.p.a db.s.a model.p.a"},
		},
		{
			name:     "not through a materialized view",
			manifest: project(node{A, table, nil}, node{MV, "materialized_view", []string{A}}, node{V, view, []string{MV}}),
			steps:    []*dbtartifacts.RunResults{results("build", false, A+"=success")},
			want:     []string{"model.p.a db.s.a model.p.a"},
		},
		{
			name:     "an incremental model is marked",
			manifest: project(node{I, incr, nil}, node{V, view, []string{I}}),
			steps:    []*dbtartifacts.RunResults{results("run", false, I+"=success")},
			want:     []string{"model.p.i db.s.i model.p.i incremental", "model.p.v db.s.v model.p.i → model.p.v"},
		},
		{
			name:     "but not when a command rebuilt it with --full-refresh",
			manifest: project(node{I, incr, nil}),
			steps:    []*dbtartifacts.RunResults{results("run", false, I+"=success"), results("run", true, I+"=success")},
			want:     []string{"model.p.i db.s.i model.p.i"},
		},
		{
			name:     "a microbatch model that partly succeeded changed",
			manifest: project(node{I, incr, nil}),
			steps:    []*dbtartifacts.RunResults{results("build", false, I+"=partial success")},
			want:     []string{"model.p.i db.s.i model.p.i incremental"},
		},
		{
			name:     "failed and skipped nodes changed nothing",
			manifest: project(node{A, table, nil}, node{B, table, nil}, node{V, view, []string{A, B}}),
			steps:    []*dbtartifacts.RunResults{results("build", false, A+"=error", B+"=skipped")},
			want:     nil,
		},
		{
			name:     "tests and hooks own no relation",
			manifest: project(node{A, table, nil}),
			steps:    []*dbtartifacts.RunResults{results("build", false, "test.p.not_null_a=pass", "operation.p.p-on-run-end-0=success", "unit_test.p.a.t=pass")},
			want:     nil,
		},
		{
			name:     "docs generate and compile report success without building",
			manifest: project(node{A, table, nil}, node{V, view, []string{A}}),
			steps:    []*dbtartifacts.RunResults{results("generate", false, A+"=success"), results("compile", false, A+"=success"), results("test", false, A+"=success")},
			want:     nil,
		},
		{
			name:     "results without args are taken at their word",
			manifest: project(node{A, table, nil}),
			steps:    []*dbtartifacts.RunResults{results("", false, A+"=success")},
			want:     []string{"model.p.a db.s.a model.p.a"},
		},
		{
			name:     "steps are merged: a seed and a snapshot from their own steps",
			manifest: project(node{S, "seed", nil}, node{SN, "snapshot", nil}, node{A, table, []string{S}}, node{V, view, []string{S, SN}}),
			steps:    []*dbtartifacts.RunResults{results("seed", false, S+"=success"), results("snapshot", false, SN+"=success")},
			want:     []string{"model.p.v db.s.v seed.p.codes → model.p.v", "seed.p.codes db.s.codes seed.p.codes", "snapshot.p.snap db.s.snap snapshot.p.snap"},
		},
		{
			name:     "a view the run rebuilt is listed as rebuilt",
			manifest: project(node{A, table, nil}, node{V, view, []string{A}}),
			steps:    []*dbtartifacts.RunResults{results("build", false, A+"=success", V+"=success")},
			want:     []string{"model.p.a db.s.a model.p.a", "model.p.v db.s.v model.p.v"},
		},
		{
			name:     "a view over two rebuilt tables is listed once, by the first",
			manifest: project(node{A, table, nil}, node{B, table, nil}, node{V, view, []string{B, A}}),
			steps:    []*dbtartifacts.RunResults{results("build", false, B+"=success", A+"=success")},
			want:     []string{"model.p.a db.s.a model.p.a", "model.p.b db.s.b model.p.b", "model.p.v db.s.v model.p.a → model.p.v"},
		},
		{
			name:     "a node the manifest does not know, named by its results",
			manifest: project(node{A, table, nil}),
			steps: []*dbtartifacts.RunResults{{Command: "build", Results: []dbtartifacts.Result{
				{UniqueID: "model.p.new", Status: "success", RelationName: `"DB"."S"."NEW"`}, {UniqueID: "model.p.nameless", Status: "success"}}}},
			want: []string{`model.p.new "DB"."S"."NEW" model.p.new`, "unnamed model.p.nameless"},
		},
		{
			name:     "the results' relation name wins over the manifest's",
			manifest: project(node{A, table, nil}),
			steps: []*dbtartifacts.RunResults{{Command: "build", Results: []dbtartifacts.Result{
				{UniqueID: A, Status: "success", RelationName: `"DB"."S"."A"`}}}},
			want: []string{`model.p.a "DB"."S"."A" model.p.a`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs, err := dbtartifacts.Changed(tt.manifest, tt.steps...)
			if err != nil {
				t.Fatal(err)
			}
			if got := summary(cs); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("changed:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

func TestChangedRendersRelationsMissingFromTheManifest(t *testing.T) {
	m := &dbtartifacts.Manifest{Nodes: map[string]dbtartifacts.Node{
		"model.p.a": {UniqueID: "model.p.a", ResourceType: "model", Database: "db", Schema: "s", Alias: "a", Materialized: "table"},
		"model.p.b": {UniqueID: "model.p.b", ResourceType: "model", Schema: "my.schema", Alias: "b", Materialized: "table"},
	}}
	cs, err := dbtartifacts.Changed(m, results("build", false, "model.p.a=success", "model.p.b=success"))
	if err != nil {
		t.Fatal(err)
	}
	got := []string{cs.Changes[0].Relation, cs.Changes[1].Relation}
	if want := []string{"db.s.a", `"my.schema".b`}; !reflect.DeepEqual(got, want) {
		t.Errorf("relations = %q, want %q", got, want)
	}
	c := cs.Changes[0]
	if c.Database != "db" || c.Schema != "s" || c.Identifier != "a" || c.ResourceType != "model" || c.Materialized != "table" || !c.Rebuilt {
		t.Errorf("change = %+v", c)
	}
}

func TestChangedNeedsItsInputs(t *testing.T) {
	if _, err := dbtartifacts.Changed(nil, results("build", false)); err == nil || !strings.Contains(err.Error(), "manifest") {
		t.Errorf("Changed(nil manifest) error = %v", err)
	}
	if _, err := dbtartifacts.Changed(project(), results("build", false), nil); err == nil || !strings.Contains(err.Error(), "run results 1 are nil") {
		t.Errorf("Changed(nil step) error = %v", err)
	}
}

// TestChangedDemo reads the demo job's artifacts, every step's results and
// the manifest, as the bridge will.
func TestChangedDemo(t *testing.T) {
	m, err := dbtartifacts.ReadManifest(bytes.NewReader(demoArtifact(t, "dbt build", "manifest.json")))
	if err != nil {
		t.Fatal(err)
	}
	var steps []*dbtartifacts.RunResults
	for _, cmd := range []string{"dbt seed", "dbt snapshot", "dbt build", "dbt docs generate"} {
		rr, err := dbtartifacts.ReadRunResults(bytes.NewReader(demoArtifact(t, cmd, "run_results.json")))
		if err != nil {
			t.Fatal(err)
		}
		steps = append(steps, rr)
	}
	cs, err := dbtartifacts.Changed(m, steps...)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"model.shop.order_facts_v analytics.marts.order_facts_v model.shop.orders → model.shop.order_facts → model.shop.order_facts_v",
		"model.shop.orders analytics.marts.orders model.shop.orders",
		"model.shop.orders_daily analytics.marts.orders_daily model.shop.orders_daily incremental",
		"model.shop.orders_v analytics.marts.orders_v model.shop.orders → model.shop.orders_v",
		"seed.shop.country_codes analytics.seeds.country_codes seed.shop.country_codes",
		"snapshot.shop.customers_snapshot analytics.snapshots.customers_snapshot snapshot.shop.customers_snapshot",
	}
	if got := summary(cs); !reflect.DeepEqual(got, want) {
		t.Errorf("changed:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}
