package dbtartifacts

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// Resource types of the nodes a Manifest keeps.
const (
	ResourceModel    = "model"
	ResourceSeed     = "seed"
	ResourceSnapshot = "snapshot"
	ResourceSource   = "source"
)

// Materializations lineage treats specially; others (materialized_view,
// dynamic_table, custom ones) are kept as dbt names them.
const (
	MaterializedTable       = "table"
	MaterializedView        = "view"
	MaterializedIncremental = "incremental"
	MaterializedEphemeral   = "ephemeral"
	MaterializedSeed        = "seed"
	MaterializedSnapshot    = "snapshot"
)

// ManifestVersions are the manifest.json schema versions ReadManifest
// accepts: v11 (dbt 1.7) and v12 (dbt 1.8 and later).
var ManifestVersions = []int{11, 12}

// Manifest is what lineage needs from a manifest.json: where each model,
// seed, snapshot and source lives, and which of them read which.
// See https://docs.getdbt.com/reference/artifacts/manifest-json.
type Manifest struct {
	// SchemaVersion is 11 or 12.
	SchemaVersion int
	// DBTVersion wrote the file.
	DBTVersion string
	// AdapterType is the warehouse, e.g. "snowflake", "bigquery",
	// "databricks"; empty if the manifest does not say.
	AdapterType string
	// ProjectName is the root project's name; empty if not given.
	ProjectName string
	// Nodes holds the enabled models, seeds, snapshots and sources by
	// unique id. Tests, analyses, macros, docs, exposures and disabled
	// nodes are not kept.
	Nodes map[string]Node
	// ChildMap lists, for each node, the models, seeds and snapshots that
	// read it (dbt's child_map without tests, exposures, metrics and other
	// nodes that have no relation of their own), sorted.
	ChildMap map[string][]string
}

// Node is a model, seed, snapshot or source.
type Node struct {
	UniqueID string
	// ResourceType is one of the Resource constants.
	ResourceType string
	// Database, Schema and Alias locate the relation, unquoted, as dbt
	// configured them. Alias is a source's identifier. Database is empty on
	// adapters without one.
	Database, Schema, Alias string
	// RelationName is the relation as dbt renders it, quotes included;
	// empty for ephemeral models.
	RelationName string
	// Materialized is config.materialized: "table", "view",
	// "incremental", "ephemeral", "seed", "snapshot"...; empty for sources.
	Materialized string
}

// rawNode is the part of a node the decoder keeps; every other field
// (raw_code, compiled_code, columns, description, depends_on...) is skipped
// without being stored.
type rawNode struct {
	ResourceType string  `json:"resource_type"`
	Database     *string `json:"database"`
	Schema       *string `json:"schema"`
	Alias        *string `json:"alias"`
	Identifier   *string `json:"identifier"`
	RelationName *string `json:"relation_name"`
	Config       struct {
		Materialized *string `json:"materialized"`
		Enabled      *bool   `json:"enabled"`
	} `json:"config"`
}

// keptType reports whether nodes of a resource type have a relation lineage
// cares about.
func keptType(t string) bool {
	return t == ResourceModel || t == ResourceSeed || t == ResourceSnapshot || t == ResourceSource
}

// keptChild reports, from its unique id alone, whether a child_map entry can
// be a model, seed or snapshot; child_map may come before nodes, so the
// nodes cannot be asked.
func keptChild(id string) bool {
	return strings.HasPrefix(id, "model.") || strings.HasPrefix(id, "seed.") || strings.HasPrefix(id, "snapshot.")
}

// ReadManifest decodes a manifest.json (schema v11 or v12) from r as a
// stream: it holds one node at a time and keeps only the fields of Node, so
// a manifest of hundreds of megabytes needs a few tens of megabytes of
// memory. A file of another kind or version is rejected with an error that
// says what it is.
func ReadManifest(r io.Reader) (*Manifest, error) {
	const file = "manifest.json"
	w := newWalker(r, file)
	m := &Manifest{Nodes: map[string]Node{}, ChildMap: map[string][]string{}}
	// Thousands of nodes share a handful of databases, schemas and
	// materializations, and child_map repeats every unique id: one copy each.
	in := interner{}
	meta, version, err := w.document(kindManifest, ManifestVersions, func(k string) (bool, error) {
		switch k {
		case "nodes", "sources":
			return true, readNodes(w, k, m, in)
		case "child_map":
			return true, readChildMap(w, m, in)
		}
		return false, nil
	})
	if err != nil {
		return nil, err
	}
	m.SchemaVersion = version
	m.DBTVersion, m.AdapterType, m.ProjectName = meta.DBTVersion, meta.AdapterType, meta.ProjectName
	// Edges to nodes that turned out not to be kept (a disabled model
	// still named by an older child_map) lead nowhere.
	for parent, children := range m.ChildMap {
		children = slices.DeleteFunc(children, func(c string) bool { _, ok := m.Nodes[c]; return !ok })
		if _, ok := m.Nodes[parent]; !ok || len(children) == 0 {
			delete(m.ChildMap, parent)
			continue
		}
		m.ChildMap[parent] = children
	}
	return m, nil
}

// readNodes reads the nodes or sources section one node at a time.
func readNodes(w *walker, section string, m *Manifest, in interner) error {
	doing := "reading " + section
	if err := w.open('{', doing); err != nil {
		return err
	}
	for w.dec.More() {
		id, err := w.key(doing)
		if err != nil {
			return err
		}
		var raw rawNode
		if err := w.decode(&raw, fmt.Sprintf("reading %s[%q]", section, id)); err != nil {
			return err
		}
		if !keptType(raw.ResourceType) || (raw.Config.Enabled != nil && !*raw.Config.Enabled) {
			continue
		}
		n := Node{
			UniqueID:     in.get(id),
			ResourceType: in.get(raw.ResourceType),
			Database:     in.get(deref(raw.Database)),
			Schema:       in.get(deref(raw.Schema)),
			Alias:        deref(raw.Alias),
			RelationName: deref(raw.RelationName),
			Materialized: in.get(deref(raw.Config.Materialized)),
		}
		if raw.ResourceType == ResourceSource {
			n.Alias, n.Materialized = deref(raw.Identifier), ""
		}
		m.Nodes[n.UniqueID] = n
	}
	return w.close(doing)
}

// readChildMap reads child_map one entry at a time, keeping the edges that
// can lead to a relation.
func readChildMap(w *walker, m *Manifest, in interner) error {
	const doing = "reading child_map"
	opened, err := w.openOrNull('{', doing)
	if err != nil || !opened {
		return err
	}
	for w.dec.More() {
		parent, err := w.key(doing)
		if err != nil {
			return err
		}
		var children []string
		if err := w.decode(&children, fmt.Sprintf("reading child_map[%q]", parent)); err != nil {
			return err
		}
		if !keptChild(parent) && !strings.HasPrefix(parent, "source.") {
			continue
		}
		kept := children[:0]
		for _, c := range children {
			if keptChild(c) {
				kept = append(kept, in.get(c))
			}
		}
		if len(kept) > 0 {
			slices.Sort(kept)
			m.ChildMap[in.get(parent)] = slices.Clone(kept) // frees the tests and exposures dropped from children
		}
	}
	return w.close(doing)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// interner returns one shared copy of each string it is given.
type interner map[string]string

func (in interner) get(s string) string {
	if s == "" {
		return ""
	}
	if v, ok := in[s]; ok {
		return v
	}
	in[s] = s
	return s
}
