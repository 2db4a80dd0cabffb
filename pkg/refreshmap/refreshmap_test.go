package refreshmap

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseExample(t *testing.T) {
	data, err := os.ReadFile("testdata/example.json")
	if err != nil {
		t.Fatal(err)
	}
	m, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	want := []Target{
		{Kind: Workbook, Name: "Sales Overview", Project: "Finance"},
		{Kind: Datasource, Name: "Orders"},
		{Kind: Workbook, ID: "6e3b1c52-1c9e-4f4e-9d2b-000000000001"},
		{Kind: Datasource, ID: "6e3b1c52-1c9e-4f4e-9d2b-000000000002"},
	}
	if got := m.Targets("123"); !reflect.DeepEqual(got, want) {
		t.Errorf("Targets(123) = %+v, want %+v", got, want)
	}
	if got := m.Targets("456")[0].Name; got != `Company, Inc & Partners: "Q3" / Übersicht` {
		t.Errorf("name = %q", got)
	}
	if m.Targets("999") != nil {
		t.Error("unmapped job has targets")
	}
	if got := m.Jobs(); !reflect.DeepEqual(got, []string{"123", "456"}) {
		t.Errorf("Jobs() = %v", got)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"not json", `jobs: 1`, "not valid JSON"},
		{"no jobs", `{}`, `missing "jobs"`},
		{"unknown top-level key", `{"jobs":{},"job":{}}`, `unknown key "job"`},
		{"key in another case", `{"Jobs":{}}`, `unknown key "Jobs"`},
		{"trailing data", `{"jobs":{}} {}`, "unexpected data"},
		{"trailing brace", `{"jobs":{}}}`, "unexpected data"},
		{"job id not numeric", `{"jobs":{"daily":[{"workbook":"A"}]}}`, `jobs["daily"]: dbt job id must be a positive integer`},
		{"job id zero", `{"jobs":{"0":[{"workbook":"A"}]}}`, `jobs["0"]: dbt job id must be a positive integer`},
		{"job id with a sign", `{"jobs":{"+1":[{"workbook":"A"}]}}`, `jobs["+1"]: dbt job id must be a positive integer`},
		{"job id with trailing letter", `{"jobs":{"12a":[{"workbook":"A"}]}}`, `jobs["12a"]: dbt job id must be a positive integer`},
		{"job id with space", `{"jobs":{" 12":[{"workbook":"A"}]}}`, `dbt job id must be a positive integer`},
		{"job id in other digits", `{"jobs":{"١٢":[{"workbook":"A"}]}}`, `dbt job id must be a positive integer`},
		{"job id leading zero", `{"jobs":{"0123":[{"workbook":"A"}]}}`, `without leading zeros`},
		{"job id too large", `{"jobs":{"18446744073709551616":[{"workbook":"A"}]}}`, `too large`},
		{"job given twice", `{"jobs":{"1":[{"workbook":"A"}],"1":[{"workbook":"B"}]}}`, `key "1" given twice`},
		{"key given twice", `{"jobs":{"1":[{"workbook":"A","workbook":"B"}]}}`, `key "workbook" given twice`},
		{"key case", `{"jobs":{"1":[{"workBook":"A"}]}}`, `unknown key "workBook"`},
		{"targets not a list", `{"jobs":{"1":{"workbook":"A"}}}`, `jobs["1"]: must be a list`},
		{"empty list", `{"jobs":{"1":[]}}`, `jobs["1"]: no targets`},
		{"no kind", `{"jobs":{"1":[{"project":"P"}]}}`, `jobs["1"][0]: give exactly one`},
		{"two kinds", `{"jobs":{"1":[{"workbook":"A","datasource":"B"}]}}`, `jobs["1"][0]: give exactly one`},
		{"typo key", `{"jobs":{"1":[{"workbook":"A"},{"worbook":"B"}]}}`, `jobs["1"][1]: want an object`},
		{"empty name", `{"jobs":{"1":[{"datasource":"  "}]}}`, `jobs["1"][0]: datasource is empty`},
		{"empty id", `{"jobs":{"1":[{"workbook_id":""}]}}`, `jobs["1"][0]: workbook_id is empty`},
		{"project with id", `{"jobs":{"1":[{"workbook_id":"x","project":"P"}]}}`, `project applies to names only`},
		{"empty project", `{"jobs":{"1":[{"workbook":"A","project":""}]}}`, `project is empty`},
		{"number name", `{"jobs":{"1":[{"workbook":5}]}}`, `jobs["1"][0]: workbook must be a string`},
		{"freshness_sla not a duration", `{"jobs":{"1":[{"workbook":"A","freshness_sla":"daily"}]}}`, `jobs["1"][0]: freshness_sla "daily": want a positive duration`},
		{"freshness_sla zero", `{"jobs":{"1":[{"workbook":"A","freshness_sla":"0s"}]}}`, `freshness_sla "0s": want a positive duration`},
		{"freshness_sla a number", `{"jobs":{"1":[{"workbook":"A","freshness_sla":6}]}}`, `freshness_sla must be a string`},
		{"duplicate target", `{"jobs":{"1":[{"workbook":"A","project":"P"},{"datasource":"B"},{"workbook":"A","project":"P"}]}}`, `jobs["1"][2]: same target as jobs["1"][0]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse() error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestTargetKeyDistinct(t *testing.T) {
	targets := []Target{
		{Kind: Workbook, Name: "A"},
		{Kind: Workbook, Name: "A", Project: "P"},
		{Kind: Datasource, Name: "A"},
		{Kind: Workbook, ID: "A"},
		{Kind: Workbook, Name: "P/A"},
		{Kind: Workbook, Name: "Q3/Sales", Project: "Finance"},
		{Kind: Workbook, Name: "Sales", Project: "Finance/Q3"},
	}
	seen := map[string]Target{}
	for _, tg := range targets {
		if prev, ok := seen[tg.Key()]; ok {
			t.Errorf("%v and %v share key %q", prev, tg, tg.Key())
		}
		seen[tg.Key()] = tg
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "map.json")
	if err := os.WriteFile(good, []byte(`{"jobs":{"7":[{"datasource":"Orders"}]}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"jobs":{"7":[{}]}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		env       map[string]string
		wantErr   string
		wantTarge string
	}{
		{"inline", map[string]string{"REFRESH_MAP": `{"jobs":{"7":[{"workbook":"W"}]}}`}, "", "W"},
		{"file", map[string]string{"REFRESH_MAP_FILE": good}, "", "Orders"},
		{"neither", nil, "set REFRESH_MAP", ""},
		{"both", map[string]string{"REFRESH_MAP": "{}", "REFRESH_MAP_FILE": good}, "both set", ""},
		{"missing file", map[string]string{"REFRESH_MAP_FILE": filepath.Join(dir, "nope.json")}, "REFRESH_MAP_FILE", ""},
		{"bad file names the file", map[string]string{"REFRESH_MAP_FILE": bad}, "REFRESH_MAP_FILE " + bad + `: jobs["7"][0]`, ""},
		{"bad inline names the variable", map[string]string{"REFRESH_MAP": `{"jobs":{"x":[]}}`}, `REFRESH_MAP: jobs["x"]`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Load(func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Load() error = %v, want %q", err, tt.wantErr)
				}
				if strings.Count(err.Error(), "refresh map") > 0 && strings.Contains(err.Error(), "REFRESH_MAP") {
					t.Errorf("Load() error %q stacks prefixes: the variable already says what was read", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Targets("7")[0].Name; got != tt.wantTarge {
				t.Errorf("target = %q, want %q", got, tt.wantTarge)
			}
		})
	}
}

func TestParseFreshnessSLA(t *testing.T) {
	m, err := Parse([]byte(`{"jobs":{"1":[{"workbook":"A","project":"P","freshness_sla":"6h"},{"datasource":"B"}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	ts := m.Targets("1")
	if ts[0].FreshnessSLA != 6*time.Hour || ts[1].FreshnessSLA != 0 {
		t.Errorf("FreshnessSLA = %s, %s; want 6h and unset", ts[0].FreshnessSLA, ts[1].FreshnessSLA)
	}
	if ts[0].Key() != (Target{Kind: Workbook, Name: "A", Project: "P"}).Key() {
		t.Errorf("the objective changed the target's key: %s", ts[0].Key())
	}
}
