package refreshmap

import (
	"errors"
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
		{"incremental twice over", `{"jobs":{"1":[{"datasource":"B"},{"datasource":"B","incremental":true}]}}`, `jobs["1"][1]: same target as jobs["1"][0]`},
		{"incremental not a boolean", `{"jobs":{"1":[{"datasource":"B","incremental":"yes"}]}}`, `jobs["1"][0]: incremental must be true or false`},
		{"incremental exclusion", `{"jobs":{"1":[{"datasource":"B"}]},"exclude":[{"datasource":"C","incremental":true}]}`, `exclude[0]: incremental applies to targets, not exclusions`},
		{"incremental job exclusion", `{"jobs":{"1":{"exclude":[{"workbook":"C","incremental":true}]}}}`, `jobs["1"].exclude[0]: incremental applies to targets`},
		{"lineage not an object", `{"jobs":{"1":[{"workbook":"A"}]},"lineage":true}`, `lineage: want {"incremental": true}`},
		{"lineage unknown key", `{"jobs":{"1":[{"workbook":"A"}]},"lineage":{"incremental":true,"full":false}}`, `unknown key "full"`},
		{"lineage without incremental", `{"jobs":{"1":[{"workbook":"A"}]},"lineage":{}}`, `lineage: want {"incremental": true}`},
		{"lineage incremental not a boolean", `{"jobs":{"1":{"lineage":{"incremental":1}}}}`, `jobs["1"].lineage.incremental must be true or false`},
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

func TestExclusions(t *testing.T) {
	m, err := Parse([]byte(`{
		"jobs": {
			"1": [{"workbook": "Sales"}],
			"2": {"targets": [{"datasource": "Orders"}], "exclude": [{"workbook": "Scratch", "project": "Sandbox"}]},
			"3": {"exclude": [{"datasource_id": "ds-luid"}]}
		},
		"exclude": [{"datasource": "Raw events"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	found := func(kind Kind, id, name, project string) Target {
		return Target{Kind: kind, ID: id, Name: name, Project: project}
	}
	tests := []struct {
		name string
		job  string
		t    Target
		want bool
	}{
		{"global, any job", "1", found(Datasource, "x", "Raw events", "Data"), true},
		{"global, a job without entries", "9", found(Datasource, "x", "Raw events", ""), true},
		{"job's own, same project", "2", found(Workbook, "w", "Scratch", "Sandbox"), true},
		{"job's own, other project", "2", found(Workbook, "w", "Scratch", "Finance"), false},
		{"job's own, other job", "1", found(Workbook, "w", "Scratch", "Sandbox"), false},
		{"by LUID", "3", found(Datasource, "ds-luid", "Anything", "Anywhere"), true},
		{"other kind", "1", found(Workbook, "x", "Raw events", ""), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := m.Excluded(tt.job, tt.t); got != tt.want {
				t.Errorf("Excluded(%s, %v) = %t, want %t", tt.job, tt.t, got, tt.want)
			}
		})
	}
	if got := len(m.Targets("2")); got != 1 {
		t.Errorf("job 2's targets: %d, want 1", got)
	}
	if got := m.String(); got != "2 dbt jobs, 2 targets, 3 exclusions" {
		t.Errorf("String() = %q", got)
	}
	for _, bad := range []struct{ json, want string }{
		{`{"jobs": {"1": {}}}`, "neither targets nor exclusions"},
		{`{"jobs": {"1": {"targets": [{"workbook": "W"}], "extra": []}}}`, `unknown key "extra"`},
		{`{"exclude": [{"workbook": ""}]}`, `exclude[0]: workbook is empty`},
	} {
		if _, err := Parse([]byte(bad.json)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("Parse(%s) = %v, want %q", bad.json, err, bad.want)
		}
	}
	if m, err := Parse([]byte(`{"exclude": [{"workbook": "W"}]}`)); err != nil || len(m.Jobs()) != 0 {
		t.Errorf("exclusions alone: %v, %v", m, err)
	}
	if m, err := Load(func(string) string { return "" }); !errors.Is(err, ErrNotSet) || m == nil || len(m.Jobs()) != 0 {
		t.Errorf("Load with nothing set = %v, %v; want an empty map and ErrNotSet", m, err)
	}
}

// TestIncremental: entries ask for incremental refreshes one by one, and
// lineage's content for the map or for one job; the key is the same either
// way, so an entry's records do not change with the flag.
func TestIncremental(t *testing.T) {
	m, err := Parse([]byte(`{"jobs": {
		"1": [{"datasource": "Orders", "incremental": true}, {"workbook": "Sales", "incremental": false}, {"workbook_id": "w-1"}],
		"2": {"targets": [{"datasource_id": "d-1", "incremental": true}], "lineage": {"incremental": false}},
		"3": {"lineage": {"incremental": true}}},
		"lineage": {"incremental": true}}`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		job     string
		entries []bool
		lineage bool
	}{
		{"1", []bool{true, false, false}, true},
		{"2", []bool{true}, false},
		{"3", nil, true},
		{"4", nil, true},
	}
	for _, tt := range tests {
		t.Run("job "+tt.job, func(t *testing.T) {
			ts := m.Targets(tt.job)
			if len(ts) != len(tt.entries) {
				t.Fatalf("targets = %+v", ts)
			}
			for i, want := range tt.entries {
				if ts[i].Incremental != want {
					t.Errorf("entry %d: incremental = %t, want %t", i, ts[i].Incremental, want)
				}
			}
			if got := m.LineageIncremental(tt.job); got != tt.lineage {
				t.Errorf("LineageIncremental = %t, want %t", got, tt.lineage)
			}
		})
	}
	full, incr := Target{Kind: Datasource, Name: "Orders"}, Target{Kind: Datasource, Name: "Orders", Incremental: true}
	if full.Key() != incr.Key() || !full.Names(incr) || !incr.Names(full) {
		t.Error("the incremental flag changes what a target names")
	}
	if n, lineage := m.Incremental(); n != 2 || !lineage {
		t.Errorf("Incremental() = %d, %t", n, lineage)
	}
	if got := m.String(); got != "2 dbt jobs, 4 targets (2 incremental)" {
		t.Errorf("String() = %q", got)
	}
	plain, _ := Parse([]byte(`{"jobs":{"1":[{"workbook":"A"}]},"lineage":{"incremental":false}}`))
	if n, lineage := plain.Incremental(); n != 0 || lineage || plain.String() != "1 dbt job, 1 target" {
		t.Errorf("plain map: Incremental() = %d, %t; %q", n, lineage, plain)
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

// The keys of targets on the default site are what a deployed state table
// holds: they must never change, whatever the map says of sites.
func TestTargetKeyPinned(t *testing.T) {
	tests := []struct {
		name    string
		entry   string
		opts    []ParseOption
		wantKey string
	}{
		{"workbook by name", `{"workbook":"Sales Overview","project":"Finance"}`, nil, `workbook:name:"Finance"/"Sales Overview"`},
		{"data source by name, no project", `{"datasource":"Orders"}`, nil, `datasource:name:""/"Orders"`},
		{"workbook by LUID", `{"workbook_id":"9f1c6c9e-0000-0000-0000-000000000001"}`, nil, `workbook:id:9f1c6c9e-0000-0000-0000-000000000001`},
		{"data source by LUID", `{"datasource_id":"3b7e21aa-0000-0000-0000-000000000002"}`, nil, `datasource:id:3b7e21aa-0000-0000-0000-000000000002`},
		{"incremental and freshness_sla change nothing", `{"datasource":"Orders","incremental":true,"freshness_sla":"6h"}`, nil, `datasource:name:""/"Orders"`},
		{"site empty is the default", `{"datasource":"Orders","site":""}`, nil, `datasource:name:""/"Orders"`},
		{"site naming TABLEAU_SITE is the default", `{"datasource":"Orders","site":"finance"}`, []ParseOption{WithDefaultSite("finance")}, `datasource:name:""/"Orders"`},
		{"in any case", `{"datasource":"Orders","site":"Finance"}`, []ParseOption{WithDefaultSite("finance")}, `datasource:name:""/"Orders"`},
		{"no site with TABLEAU_SITE set", `{"datasource":"Orders"}`, []ParseOption{WithDefaultSite("finance")}, `datasource:name:""/"Orders"`},
		{"another site", `{"datasource":"Orders","site":"emea"}`, []ParseOption{WithDefaultSite("finance")}, `site:"emea"/datasource:name:""/"Orders"`},
		{"another site by LUID", `{"workbook_id":"9f1c","site":"emea"}`, nil, `site:"emea"/workbook:id:9f1c`},
		{"a named site beside the default", `{"workbook_id":"9f1c","site":"finance"}`, nil, `site:"finance"/workbook:id:9f1c`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse([]byte(`{"jobs":{"1":[`+tt.entry+`]}}`), tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Targets("1")[0].Key(); got != tt.wantKey {
				t.Errorf("Key() = %s, want %s", got, tt.wantKey)
			}
		})
	}
}

func TestSites(t *testing.T) {
	m, err := Parse([]byte(`{"jobs":{
		"1":[{"workbook":"A"},{"workbook":"A","site":"emea"},{"workbook":"H","site":"home"},{"workbook":"B","site":"apac"}],
		"2":{"targets":[{"datasource":"C","site":"EMEA"}],"exclude":[{"workbook":"X","site":"sandbox"}]}},
		"exclude":[{"workbook":"S","site":"emea"}]}`), WithDefaultSite("home"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m.Sites(), []string{"apac", "emea", "sandbox"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Sites() = %v, want %v (each once, as first written)", got, want)
	}
	got := m.Targets("1")
	if got[0].Site != "" || got[1].Site != "emea" || got[2].Site != "" || got[3].Site != "apac" {
		t.Errorf("sites of job 1's targets: %+v", got)
	}
	if s := got[1].String(); s != `workbook "A" on site "emea"` {
		t.Errorf("String() = %s", s)
	}
	if s := got[0].String(); s != `workbook "A"` {
		t.Errorf("String() of a default-site target = %s", s)
	}
	tests := []struct {
		name     string
		job      string
		target   Target
		excluded bool
	}{
		{"excluded on its site", "1", Target{Kind: Workbook, Name: "S", Site: "emea"}, true},
		{"in any case", "1", Target{Kind: Workbook, Name: "S", Site: "Emea"}, true},
		{"not on the default site", "1", Target{Kind: Workbook, Name: "S"}, false},
		{"a job's exclusion on its site", "2", Target{Kind: Workbook, Name: "X", ID: "1", Site: "sandbox"}, true},
		{"not on another", "2", Target{Kind: Workbook, Name: "X", ID: "1", Site: "emea"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := m.Excluded(tt.job, tt.target); got != tt.excluded {
				t.Errorf("Excluded(%s, %v) = %t, want %t", tt.job, tt.target, got, tt.excluded)
			}
		})
	}
}

func TestSiteErrors(t *testing.T) {
	tests := []struct {
		name, in string
		opts     []ParseOption
		want     string
	}{
		{"a URL", `{"jobs":{"1":[{"workbook":"A","site":"https://x/site/emea"}]}}`, nil, `jobs["1"][0]: site "https://x/site/emea": want the bare content URL`},
		{"padded", `{"jobs":{"1":[{"workbook":"A","site":" emea"}]}}`, nil, `want the bare content URL`},
		{"not a string", `{"jobs":{"1":[{"workbook":"A","site":1}]}}`, nil, `site must be a string`},
		{"same target on the same site in two cases", `{"jobs":{"1":[{"workbook":"A","site":"emea"},{"workbook":"A","site":"EMEA"}]}}`, nil, `jobs["1"][1]: same target as jobs["1"][0]`},
		{"the default site named and not", `{"jobs":{"1":[{"workbook":"A"},{"workbook":"A","site":"home"}]}}`, []ParseOption{WithDefaultSite("home")}, `jobs["1"][1]: same target as jobs["1"][0]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.in), tt.opts...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse() error = %v, want %q", err, tt.want)
			}
		})
	}
	// Both entries are kept apart when the default site is another.
	if _, err := Parse([]byte(`{"jobs":{"1":[{"workbook":"A"},{"workbook":"A","site":"home"}]}}`)); err != nil {
		t.Errorf("a target on a named site beside the same on the default site: %v", err)
	}
}

func TestLoadDefaultSite(t *testing.T) {
	env := map[string]string{"REFRESH_MAP": `{"jobs":{"7":[{"workbook":"W","site":"home"},{"workbook":"W","site":"emea"}]}}`, "TABLEAU_SITE": "home"}
	m, err := Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if ts := m.Targets("7"); ts[0].Site != "" || ts[1].Site != "emea" {
		t.Errorf("targets %+v: want TABLEAU_SITE's entry on the default site", ts)
	}
}
