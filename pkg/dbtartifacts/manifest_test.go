package dbtartifacts_test

import (
	"bytes"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dbtartifacts"
)

func TestReadManifest(t *testing.T) {
	tests := []struct {
		name       string
		file       []byte
		version    int
		dbtVersion string
	}{
		{"v12 (dbt 1.10)", demoArtifact(t, "dbt build", "manifest.json"), 12, "1.10.11"},
		{"v11 (dbt 1.7)", readFile(t, "manifest_v11.json"), 11, "1.7.19"},
	}
	wantNodes := map[string]dbtartifacts.Node{
		"model.shop.orders": {UniqueID: "model.shop.orders", ResourceType: "model", Database: "analytics", Schema: "marts",
			Alias: "orders", RelationName: "analytics.marts.orders", Materialized: "table"},
		"model.shop.stg_orders": {UniqueID: "model.shop.stg_orders", ResourceType: "model", Database: "analytics", Schema: "marts",
			Alias: "stg_orders", Materialized: "ephemeral"},
		"model.shop.orders_daily": {UniqueID: "model.shop.orders_daily", ResourceType: "model", Database: "analytics", Schema: "marts",
			Alias: "orders_daily", RelationName: "analytics.marts.orders_daily", Materialized: "incremental"},
		"seed.shop.country_codes": {UniqueID: "seed.shop.country_codes", ResourceType: "seed", Database: "analytics", Schema: "seeds",
			Alias: "country_codes", RelationName: "analytics.seeds.country_codes", Materialized: "seed"},
		"snapshot.shop.customers_snapshot": {UniqueID: "snapshot.shop.customers_snapshot", ResourceType: "snapshot", Database: "analytics",
			Schema: "snapshots", Alias: "customers_snapshot", RelationName: "analytics.snapshots.customers_snapshot", Materialized: "snapshot"},
		"source.shop.raw.orders": {UniqueID: "source.shop.raw.orders", ResourceType: "source", Database: "raw", Schema: "shop",
			Alias: "orders", RelationName: "raw.shop.orders"},
	}
	wantChildren := map[string][]string{
		// Tests, the exposure and the hook are not children lineage follows.
		"model.shop.orders":         {"model.shop.customer_ltv", "model.shop.order_facts", "model.shop.orders_daily", "model.shop.orders_v"},
		"model.shop.stg_orders":     {"model.shop.orders"},
		"model.shop.order_facts":    {"model.shop.order_facts_v"},
		"seed.shop.country_codes":   {"model.shop.orders"},
		"source.shop.raw.customers": {"model.shop.customers", "snapshot.shop.customers_snapshot"},
		"model.shop.orders_v":       nil,
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := dbtartifacts.ReadManifest(bytes.NewReader(tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if m.SchemaVersion != tt.version || m.DBTVersion != tt.dbtVersion || m.AdapterType != "snowflake" || m.ProjectName != "shop" {
				t.Errorf("manifest %d %q %q %q", m.SchemaVersion, m.DBTVersion, m.AdapterType, m.ProjectName)
			}
			// 10 models, a seed, a snapshot, two sources; no tests, hook,
			// exposure, macro or the disabled model.
			var ids []string
			for id := range m.Nodes {
				ids = append(ids, id)
			}
			slices.Sort(ids)
			if len(ids) != 14 || slices.ContainsFunc(ids, func(id string) bool {
				return strings.HasPrefix(id, "test.") || strings.HasPrefix(id, "operation.") || strings.Contains(id, "legacy")
			}) {
				t.Errorf("nodes = %v", ids)
			}
			for id, want := range wantNodes {
				if got := m.Nodes[id]; got != want {
					t.Errorf("node %s = %+v\nwant %+v", id, got, want)
				}
			}
			for id, want := range wantChildren {
				if got := m.ChildMap[id]; !reflect.DeepEqual(got, want) {
					t.Errorf("children of %s = %v, want %v", id, got, want)
				}
			}
		})
	}
}

func TestReadManifestRejects(t *testing.T) {
	const v12 = `"https://schemas.getdbt.com/dbt/manifest/v12.json"`
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "unexpected EOF"},
		{"not JSON", "manifest", "invalid character"},
		{"no metadata", `{"nodes": {}, "child_map": {}}`, "not a dbt artifact (no metadata.dbt_schema_version)"},
		{"run results", `{"metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v6.json"}, "results": []}`,
			"this is a run-results artifact (https://schemas.getdbt.com/dbt/run-results/v6.json), not manifest.json"},
		{"a catalog", `{"metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/catalog/v1.json"}, "nodes": {}}`, "this is a catalog artifact"},
		{"v10 (dbt 1.6)", `{"metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v10.json", "dbt_version": "1.6.9"}}`,
			"schema v10 (written by dbt 1.6.9) is not supported; this reader knows v11 and v12"},
		{"nodes not an object", `{"metadata": {"dbt_schema_version": ` + v12 + `}, "nodes": []}`, "reading nodes"},
		{"a node that is not an object", `{"metadata": {"dbt_schema_version": ` + v12 + `}, "nodes": {"model.a.b": "x"}}`, `reading nodes["model.a.b"]`},
		{"a resource type that is not a string", `{"metadata": {"dbt_schema_version": ` + v12 + `}, "nodes": {"model.a.b": {"resource_type": 3}}}`, `reading nodes["model.a.b"]`},
		{"child_map of strings", `{"metadata": {"dbt_schema_version": ` + v12 + `}, "child_map": {"model.a.b": "model.a.c"}}`, `reading child_map["model.a.b"]`},
		{"text after the object", `{"metadata": {"dbt_schema_version": ` + v12 + `}} x`, "after the top-level object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := dbtartifacts.ReadManifest(strings.NewReader(tt.in))
			if err == nil {
				t.Fatalf("read %+v, want an error", m)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "manifest.json") {
				t.Errorf("error = %q, want it to name manifest.json and say %q", err, tt.want)
			}
		})
	}
}

// TestReadManifestTruncated cuts the demo manifest at every length: a
// partial download must never read as a smaller manifest.
func TestReadManifestTruncated(t *testing.T) {
	full := bytes.TrimSpace(demoArtifact(t, "dbt build", "manifest.json"))
	// Every 397th length, and every length near the end where only closing
	// brackets are missing.
	for n := 0; n < len(full); n = min(n+397, max(n+1, len(full)-64)) {
		if m, err := dbtartifacts.ReadManifest(bytes.NewReader(full[:n])); err == nil {
			t.Fatalf("the first %d of %d bytes read as a manifest of %d nodes", n, len(full), len(m.Nodes))
		}
	}
}

// TestReadManifestNullSections reads the sections the schema allows to be
// null, and keys in an order dbt does not write them in.
func TestReadManifestNullSections(t *testing.T) {
	in := `{
	  "child_map": {"model.p.a": ["model.p.b", "test.p.t"], "test.p.t": [], "exposure.p.e": ["model.p.a"]},
	  "parent_map": null,
	  "nodes": {
	    "model.p.b": {"resource_type": "model", "database": null, "schema": "s", "alias": "b", "relation_name": "s.b", "config": {"materialized": "view"}},
	    "model.p.a": {"resource_type": "model", "database": null, "schema": "s", "alias": "a", "relation_name": null, "config": {"enabled": true, "materialized": "table"}},
	    "model.p.off": {"resource_type": "model", "schema": "s", "alias": "off", "config": {"enabled": false}},
	    "test.p.t": {"resource_type": "test", "schema": "s", "alias": "t"}
	  },
	  "disabled": null,
	  "metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v12.json", "adapter_type": null, "invocation_id": null}
	}`
	m, err := dbtartifacts.ReadManifest(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]dbtartifacts.Node{
		"model.p.a": {UniqueID: "model.p.a", ResourceType: "model", Schema: "s", Alias: "a", Materialized: "table"},
		"model.p.b": {UniqueID: "model.p.b", ResourceType: "model", Schema: "s", Alias: "b", RelationName: "s.b", Materialized: "view"},
	}
	if !reflect.DeepEqual(m.Nodes, want) {
		t.Errorf("nodes = %+v", m.Nodes)
	}
	if !reflect.DeepEqual(m.ChildMap, map[string][]string{"model.p.a": {"model.p.b"}}) {
		t.Errorf("child_map = %v", m.ChildMap)
	}
}
