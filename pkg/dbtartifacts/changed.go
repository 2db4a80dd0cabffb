package dbtartifacts

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Change is one relation a run changed, and why.
type Change struct {
	// Node owns the relation, e.g. "model.shop.orders_v".
	Node string
	// ResourceType is "model", "seed" or "snapshot".
	ResourceType string
	// Materialized is the node's config.materialized; empty when the node
	// is missing from the manifest.
	Materialized string
	// Relation is the relation as dbt renders it, quotes included:
	// relation_name from run_results.json or the manifest, else the
	// manifest's database, schema and alias joined with dots.
	Relation string
	// Database, Schema and Identifier are the relation's unquoted parts from
	// the manifest; empty when the node is missing from it. Prefer them to
	// parsing Relation where they are set.
	Database, Schema, Identifier string
	// Rebuilt reports that the run built Node itself. When false, Node is a
	// view that changed because a relation it reads (directly, or through
	// other views and ephemeral models) was rebuilt.
	Rebuilt bool
	// Incremental reports that the run added to an incremental model rather
	// than rebuilding it: materialized incremental, built by no command run
	// with --full-refresh. An incremental extract refresh can follow it.
	Incremental bool
	// Path runs from the rebuilt node to Node through the child_map, e.g.
	// [model.shop.orders model.shop.orders_enriched model.shop.orders_enriched_v];
	// just [Node] when Rebuilt. Of several routes, the shortest from the
	// first rebuilt node in sorted order is given.
	Path []string
}

// Why renders Path for logs and replies:
// "model.shop.orders → model.shop.orders_v".
func (c Change) Why() string { return strings.Join(c.Path, " → ") }

// ChangeSet is everything a run changed.
type ChangeSet struct {
	// Changes has one entry per changed node, sorted by Node.
	Changes []Change
	// Unnamed lists rebuilt nodes whose relation cannot be named: missing
	// from the manifest, and without relation_name in run_results.json.
	// Usually the manifest is older than the run.
	Unnamed []string
}

// rebuild is what the run results say about one rebuilt node.
type rebuild struct {
	relation      string
	fullRefreshed bool
}

// Changed returns the relations a run changed, given the run_results.json
// of each of its steps (in any order; steps whose command builds nothing,
// such as docs generate, are ignored) and a manifest of the project:
//
//   - every model, seed and snapshot some step built (status success, or
//     partial success for microbatch models), and
//   - every view downstream of one of those, following the manifest's
//     child_map through views and ephemeral models only. A table or
//     incremental model the run did not build keeps its data, so nothing
//     downstream of it changed through it. Ephemeral models have no relation
//     and are not listed themselves; the views over them are.
//
// Materialized views and dynamic tables are not followed: the warehouse
// refreshes them on its own schedule, not when dbt builds their parents.
func Changed(m *Manifest, steps ...*RunResults) (ChangeSet, error) {
	if m == nil {
		return ChangeSet{}, errors.New("dbtartifacts: Changed needs the manifest to find views downstream of rebuilt nodes")
	}
	rebuilt := map[string]*rebuild{}
	for i, step := range steps {
		if step == nil {
			return ChangeSet{}, fmt.Errorf("dbtartifacts: Changed: run results %d are nil", i)
		}
		if !step.BuildsRelations() {
			continue
		}
		for _, res := range step.Results {
			if !res.Status.Built() || !ownsRelation(resourceType(m, res.UniqueID)) {
				continue
			}
			rb := rebuilt[res.UniqueID]
			if rb == nil {
				rb = &rebuild{}
				rebuilt[res.UniqueID] = rb
			}
			if res.RelationName != "" {
				rb.relation = res.RelationName
			}
			rb.fullRefreshed = rb.fullRefreshed || step.FullRefresh
		}
	}

	// Breadth first from every rebuilt node at once, so that each view gets
	// a shortest path; sorted starts and children make the path chosen the
	// same on every run.
	starts := make([]string, 0, len(rebuilt))
	for id := range rebuilt {
		starts = append(starts, id)
	}
	slices.Sort(starts)
	via := make(map[string]string, len(starts)) // node → the node it was reached from; "" for starts
	for _, id := range starts {
		via[id] = ""
	}
	for queue := slices.Clone(starts); len(queue) > 0; queue = queue[1:] {
		for _, child := range m.ChildMap[queue[0]] {
			if _, seen := via[child]; seen || !passesChange(m.Nodes[child]) {
				continue
			}
			via[child] = queue[0]
			queue = append(queue, child)
		}
	}

	var cs ChangeSet
	for id := range via {
		n, known := m.Nodes[id]
		rb := rebuilt[id]
		c := Change{
			Node: id, ResourceType: n.ResourceType, Materialized: n.Materialized,
			Database: n.Database, Schema: n.Schema, Identifier: n.Alias,
			Rebuilt: rb != nil, Path: pathTo(id, via),
		}
		if !known {
			c.ResourceType = resourceType(m, id)
		}
		switch {
		case rb != nil && rb.relation != "":
			c.Relation = rb.relation
		case n.RelationName != "":
			c.Relation = n.RelationName
		case n.Materialized == MaterializedEphemeral:
			continue // nothing to refresh; the views over it are listed
		case known && n.Alias != "":
			c.Relation = renderRelation(n.Database, n.Schema, n.Alias)
		default:
			cs.Unnamed = append(cs.Unnamed, id)
			continue
		}
		c.Incremental = rb != nil && n.Materialized == MaterializedIncremental && !rb.fullRefreshed
		cs.Changes = append(cs.Changes, c)
	}
	slices.SortFunc(cs.Changes, func(a, b Change) int { return strings.Compare(a.Node, b.Node) })
	slices.Sort(cs.Unnamed)
	return cs, nil
}

// passesChange reports whether a node downstream of a changed relation
// changes too: a view reads its parents when queried, and an ephemeral
// model is inlined into whatever selects from it.
func passesChange(n Node) bool {
	return n.ResourceType == ResourceModel && (n.Materialized == MaterializedView || n.Materialized == MaterializedEphemeral)
}

// ownsRelation reports whether building a node of this type writes a
// relation.
func ownsRelation(resourceType string) bool {
	return resourceType == ResourceModel || resourceType == ResourceSeed || resourceType == ResourceSnapshot
}

// resourceType returns a node's type from the manifest, or from its unique
// id ("model.shop.orders") when the manifest does not have it.
func resourceType(m *Manifest, id string) string {
	if n, ok := m.Nodes[id]; ok {
		return n.ResourceType
	}
	t, _, _ := strings.Cut(id, ".")
	return t
}

func pathTo(id string, via map[string]string) []string {
	var path []string
	for at := id; at != ""; at = via[at] {
		path = append(path, at)
	}
	slices.Reverse(path)
	return path
}

// renderRelation joins unquoted parts with dots, double-quoting a part that
// would otherwise be misread.
func renderRelation(parts ...string) string {
	var kept []string
	for _, p := range parts {
		if p == "" {
			continue
		}
		if strings.ContainsAny(p, ".\"`[] ") {
			p = `"` + strings.ReplaceAll(p, `"`, `""`) + `"`
		}
		kept = append(kept, p)
	}
	return strings.Join(kept, ".")
}
