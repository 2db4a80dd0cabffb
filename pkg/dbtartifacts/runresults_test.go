package dbtartifacts_test

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dbtartifacts"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dbtcloud/dbtcloudtest"
)

// demoArtifact returns an artifact the demo job's step leaves, by the dbt
// command it runs.
func demoArtifact(t testing.TB, command, path string) []byte {
	t.Helper()
	for _, s := range dbtcloudtest.DemoSteps() {
		if strings.Contains(s.Name, "`"+command) {
			if b, ok := s.Artifacts[path]; ok {
				return b
			}
		}
	}
	t.Fatalf("the demo job has no %s step with %s", command, path)
	return nil
}

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReadRunResults(t *testing.T) {
	tests := []struct {
		name         string
		file         []byte
		version      int
		dbtVersion   string
		command      string
		fullRefresh  bool
		builds       bool
		count        int
		first        dbtartifacts.Result
		nullRelation string // a result whose relation_name is null
	}{
		{
			name: "v6 dbt build", file: demoArtifact(t, "dbt build", "run_results.json"),
			version: 6, dbtVersion: "1.10.11", command: "build", builds: true, count: 6,
			first:        dbtartifacts.Result{UniqueID: "model.shop.orders", Status: dbtartifacts.StatusSuccess, RelationName: "analytics.marts.orders"},
			nullRelation: "operation.shop.shop-on-run-end-0",
		},
		{
			name: "v6 dbt seed", file: demoArtifact(t, "dbt seed", "run_results.json"),
			version: 6, dbtVersion: "1.10.11", command: "seed", builds: true, count: 1,
			first: dbtartifacts.Result{UniqueID: "seed.shop.country_codes", Status: dbtartifacts.StatusSuccess, RelationName: "analytics.seeds.country_codes"},
		},
		{
			name: "v6 dbt docs generate compiles but builds nothing", file: demoArtifact(t, "dbt docs generate", "run_results.json"),
			version: 6, dbtVersion: "1.10.11", command: "generate", builds: false, count: 14,
			first: dbtartifacts.Result{UniqueID: "model.shop.customer_ltv", Status: dbtartifacts.StatusSuccess, RelationName: "analytics.marts.customer_ltv"},
		},
		{
			name: "v5 dbt build --full-refresh", file: readFile(t, "run_results_v5.json"),
			version: 5, dbtVersion: "1.7.19", command: "build", fullRefresh: true, builds: true, count: 8,
			first:        dbtartifacts.Result{UniqueID: "seed.shop.country_codes", Status: dbtartifacts.StatusSuccess, RelationName: "analytics.seeds.country_codes"},
			nullRelation: "test.shop.assert_orders_have_positive_amounts",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rr, err := dbtartifacts.ReadRunResults(bytes.NewReader(tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if rr.SchemaVersion != tt.version || rr.DBTVersion != tt.dbtVersion || rr.Command != tt.command ||
				rr.FullRefresh != tt.fullRefresh || rr.BuildsRelations() != tt.builds || rr.InvocationID == "" || rr.GeneratedAt.IsZero() {
				t.Errorf("read %+v", rr)
			}
			if len(rr.Results) != tt.count || rr.Results[0] != tt.first {
				t.Fatalf("%d results, first %+v; want %d, first %+v", len(rr.Results), rr.Results[0], tt.count, tt.first)
			}
			if tt.nullRelation != "" {
				found := false
				for _, r := range rr.Results {
					if r.UniqueID == tt.nullRelation {
						found = true
						if r.RelationName != "" {
							t.Errorf("%s relation = %q, want empty for null", r.UniqueID, r.RelationName)
						}
					}
				}
				if !found {
					t.Errorf("no result for %s", tt.nullRelation)
				}
			}
		})
	}
}

func TestReadRunResultsRejects(t *testing.T) {
	const v6 = `"https://schemas.getdbt.com/dbt/run-results/v6.json"`
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "unexpected EOF"},
		{"an HTML error page", "<html><body>502 Bad Gateway</body></html>", "invalid character '<'"},
		{"an array", "[]", "expected an object, found an array"},
		{"no metadata", `{"results": [], "elapsed_time": 1}`, "not a dbt artifact (no metadata.dbt_schema_version)"},
		{"a manifest", `{"metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v12.json"}, "nodes": {}}`,
			"this is a manifest artifact (https://schemas.getdbt.com/dbt/manifest/v12.json), not run_results.json"},
		{"source freshness results", `{"metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/sources/v3.json"}, "results": []}`,
			"this is a sources artifact"},
		{"an older schema", `{"metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v4.json", "dbt_version": "1.5.0"}, "results": []}`,
			"schema v4 (written by dbt 1.5.0) is not supported; this reader knows v5 and v6"},
		{"a newer schema", `{"metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v7.json"}, "results": []}`,
			"schema v7 (written by dbt unknown) is not supported"},
		{"a foreign schema URL", `{"metadata": {"dbt_schema_version": "https://example.com/run-results/v6.json"}}`, `dbt_schema_version is "https://example.com/run-results/v6.json"`},
		{"results not an array", `{"metadata": {"dbt_schema_version": ` + v6 + `}, "results": {}}`, "reading results (at byte"},
		{"a result without unique_id", `{"metadata": {"dbt_schema_version": ` + v6 + `}, "results": [{"status": "success"}]}`, "results[0] has no unique_id"},
		{"a status that is not a string", `{"metadata": {"dbt_schema_version": ` + v6 + `}, "results": [{"unique_id": "model.a.b", "status": 1}]}`, "reading results[0]"},
		{"truncated", `{"metadata": {"dbt_schema_version": ` + v6 + `}, "results": [{"unique_id": "model.a.b", "status": "succ`, "unexpected EOF"},
		{"text after the object", `{"metadata": {"dbt_schema_version": ` + v6 + `}, "results": []} {}`, "after the top-level object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rr, err := dbtartifacts.ReadRunResults(strings.NewReader(tt.in))
			if err == nil {
				t.Fatalf("read %+v, want an error", rr)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "run_results.json") {
				t.Errorf("error = %q, want it to name run_results.json and say %q", err, tt.want)
			}
		})
	}
}

// TestReadRunResultsTruncated cuts a real file at many lengths: a partial
// download must never read as a shorter, valid list of results.
func TestReadRunResultsTruncated(t *testing.T) {
	full := bytes.TrimSpace(demoArtifact(t, "dbt build", "run_results.json"))
	// Every 7th length, and every length near the end.
	for n := 0; n < len(full); n = min(n+7, max(n+1, len(full)-64)) {
		if rr, err := dbtartifacts.ReadRunResults(bytes.NewReader(full[:n])); err == nil {
			t.Fatalf("the first %d of %d bytes read as %d results", n, len(full), len(rr.Results))
		}
	}
}

func TestCommandBuildsRelations(t *testing.T) {
	tests := []struct {
		command string
		want    bool
	}{
		{"dbt build", true},
		{"dbt build --select orders+ --exclude tag:weekly", true},
		{"dbt run --full-refresh", true},
		{"dbt seed", true},
		{"dbt snapshot", true},
		{"dbt retry", true},
		{"dbt clone --state prod-artifacts", true},
		{"dbt --warn-error run", true},
		{"dbt --log-level debug build", true},
		{"dbtf build", true},
		{"dbt test", false},
		{"dbt deps", false},
		{"dbt docs generate", false},
		{"dbt source freshness", false},
		{"dbt compile", false},
		{"dbt run-operation grant_select", false},
		{"dbt show --select orders", false},
		{"dbt ls --select tag:run", false},
		{"", false},
		{"Clone git repository", false},
		{"make run", false},
	}
	for _, tt := range tests {
		if got := dbtartifacts.CommandBuildsRelations(tt.command); got != tt.want {
			t.Errorf("CommandBuildsRelations(%q) = %v, want %v", tt.command, got, tt.want)
		}
	}
}
