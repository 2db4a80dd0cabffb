package refreshmap

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// FuzzParse checks Parse on arbitrary input. Run it with
//
//	go test -run='^$' -fuzz='^FuzzParse$' -fuzztime=60s ./pkg/refreshmap/
//
// Properties: Parse never panics; a map it accepts was one JSON object and
// nothing else, with no key given twice; every job id is a positive integer
// in canonical form (the form dbt sends, so that the job can be looked up);
// every target has a kind and exactly one of ID and Name; Key() is distinct
// for distinct targets; and the canonical JSON of the targets parses back to
// the same map.
func FuzzParse(f *testing.F) {
	example, err := os.ReadFile("testdata/example.json")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		string(example),
		`{"jobs":{}}`,
		`{"jobs":{"7":[{"datasource":"Orders"}]}}`,
		`{"jobs":{"123":[{"workbook":"Sales Overview","project":"Finance"},{"datasource":"Orders"},{"workbook_id":"6e3b1c52-1c9e-4f4e-9d2b-000000000001"},{"datasource_id":"6e3b1c52-1c9e-4f4e-9d2b-000000000002"}]}}`,
		`{"jobs":{"1":[{"workbook":"A"}],"2":[{"workbook":"A"}],"18446744073709551615":[{"datasource":"A","project":"P"}]}}`,
		`{"jobs":{"1":[{"workbook":" padded name ","project":" P "}]}}`,
		`{"jobs":{"1":[{"workbook":"Q3 / Sales","project":"Finance"},{"workbook":"Sales","project":"Finance/Archive"}]}}`,
		`{"jobs":{"1":[{"workbook_id":" 9f1c "}]}}`,
		`{"jobs":{"1":[{"workbook":"A","datasource":null}]}}`,
		`{"jobs":{"1":[{"workbook":"\u00dcbersicht \"Q3\" \u0026 <b>"}]}}`,
		`{"jobs":{"1":[{"datasource":"Orders","incremental":true},{"workbook_id":"w","incremental":false}],"2":{"lineage":{"incremental":true}}},"lineage":{"incremental":false}}`,
		`{"jobs":{"1":[{"datasource":"Orders","incremental":"true"}]}}`,
		`{"jobs":{"1":[{"datasource":"Orders","site":"emea"},{"datasource":"Orders"},{"workbook_id":"w","site":""}]}}`,
		`{"jobs":{"1":[{"datasource":"Orders","site":"a/b"}]}}`,
		// Rejected ones.
		`{}`,
		`{"jobs":null}`,
		`{"jobs":{},"job":{}}`,
		`{"jobs":{}} {}`,
		`{"jobs":{"daily":[{"workbook":"A"}]}}`,
		`{"jobs":{"-1":[{"workbook":"A"}]}}`,
		`{"jobs":{"18446744073709551616":[{"workbook":"A"}]}}`,
		`{"jobs":{"1":{"workbook":"A"}}}`,
		`{"jobs":{"1":[]}}`,
		`{"jobs":{"1":[null]}}`,
		`{"jobs":{"1":[{"project":"P"}]}}`,
		`{"jobs":{"1":[{"workbook":"A","datasource":"B"}]}}`,
		`{"jobs":{"1":[{"worbook":"A"}]}}`,
		`{"jobs":{"1":[{"datasource":"  "}]}}`,
		`{"jobs":{"1":[{"workbook_id":"x","project":"P"}]}}`,
		`{"jobs":{"1":[{"workbook":"A","project":""}]}}`,
		`{"jobs":{"1":[{"workbook":5}]}}`,
		`{"jobs":{"1":[{"workbook":"A","project":"P"},{"workbook":"A","project":"P"}]}}`,
		`jobs: 1`,
		``,
	} {
		f.Add([]byte(s))
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			if m != nil {
				t.Fatalf("Parse returned a map and error %v", err)
			}
			if !strings.HasPrefix(err.Error(), "refresh map: ") {
				t.Fatalf("error %q does not say it is about the refresh map", err)
			}
			return
		}
		if m == nil {
			t.Fatal("Parse returned nil, nil")
		}
		if !json.Valid(data) {
			t.Fatalf("Parse accepted %q, which is not exactly one JSON value", data)
		}
		if dup := fuzzDuplicateKey(data); dup != "" {
			t.Fatalf("Parse accepted %q, which gives %s twice: one of them is silently ignored", data, dup)
		}
		checkMap(t, data, m)

		// Round trip through the canonical JSON of the targets.
		canon := canonicalJSON(t, m)
		m2, err := Parse(canon)
		if err != nil {
			t.Fatalf("canonical form %s of %q does not parse: %v", canon, data, err)
		}
		if !reflect.DeepEqual(m2.Jobs(), m.Jobs()) {
			t.Fatalf("round trip jobs %v, want %v (canonical %s)", m2.Jobs(), m.Jobs(), canon)
		}
		for _, job := range m.Jobs() {
			if got, want := m2.Targets(job), m.Targets(job); !reflect.DeepEqual(got, want) {
				t.Fatalf("round trip of job %s: %+v, want %+v (canonical %s)", job, got, want, canon)
			}
		}
	})
}

// checkMap asserts the invariants of an accepted map.
func checkMap(t *testing.T, data []byte, m *Map) {
	t.Helper()
	jobs := m.Jobs()
	byKey := map[string]Target{}
	for i, job := range jobs {
		if i > 0 && jobs[i-1] >= job {
			t.Fatalf("Jobs() = %q: not sorted and distinct", jobs)
		}
		n, err := strconv.ParseUint(job, 10, 64)
		switch {
		case err != nil || n == 0:
			t.Fatalf("Parse(%q) accepted dbt job id %q, which is not a positive integer", data, job)
		case strconv.FormatUint(n, 10) != job:
			t.Fatalf("Parse(%q) accepted dbt job id %q, which dbt writes %q: its targets can never be looked up",
				data, job, strconv.FormatUint(n, 10))
		}
		targets := m.Targets(job)
		if len(targets) == 0 {
			t.Fatalf("job %s has no targets", job)
		}
		seen := map[string]int{}
		for j, tg := range targets {
			checkTarget(t, tg)
			k := tg.Key()
			if prev, dup := seen[k]; dup {
				t.Fatalf("job %s: targets %d and %d share key %q", job, prev, j, k)
			}
			seen[k] = j
			if other, ok := byKey[k]; ok && other != tg {
				t.Fatalf("Parse(%q): distinct targets %+v and %+v share key %q", data, other, tg, k)
			}
			byKey[k] = tg
			if tg.String() == "" {
				t.Fatalf("target %+v has an empty String()", tg)
			}
		}
	}
	if len(jobs) == 0 && m.Targets("1") != nil {
		t.Fatal("empty map has targets")
	}
}

func checkTarget(t *testing.T, tg Target) {
	t.Helper()
	if tg.Kind != Workbook && tg.Kind != Datasource {
		t.Fatalf("target %+v: kind %q", tg, tg.Kind)
	}
	if (tg.ID == "") == (tg.Name == "") {
		t.Fatalf("target %+v: want exactly one of ID and Name", tg)
	}
	if tg.ID != "" && (tg.Project != "" || strings.TrimSpace(tg.ID) != tg.ID) {
		t.Fatalf("target %+v: ID with a project or untrimmed", tg)
	}
	if tg.Name != "" && strings.TrimSpace(tg.Name) == "" {
		t.Fatalf("target %+v: blank name", tg)
	}
	if tg.Project != "" && strings.TrimSpace(tg.Project) == "" {
		t.Fatalf("target %+v: blank project", tg)
	}
	if err := CheckSite(tg.Site); err != nil {
		t.Fatalf("target %+v: %v", tg, err)
	}
}

// canonicalJSON writes m the way a person would: one object per target with
// the kind's field, for names the project when there is one, and
// "incremental" when it asks for that, and the site when it is not the
// default.
func canonicalJSON(t *testing.T, m *Map) []byte {
	t.Helper()
	doc := map[string]map[string][]map[string]any{"jobs": {}}
	for _, job := range m.Jobs() {
		var list []map[string]any
		for _, tg := range m.Targets(job) {
			e := map[string]any{}
			if tg.Incremental {
				e["incremental"] = true
			}
			if tg.Site != "" {
				e["site"] = tg.Site
			}
			if tg.ID != "" {
				e[fieldName(tg.Kind, true)] = tg.ID
			} else {
				e[fieldName(tg.Kind, false)] = tg.Name
				if tg.Project != "" {
					e["project"] = tg.Project
				}
			}
			list = append(list, e)
		}
		doc["jobs"][job] = list
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fuzzDuplicateKey returns the first key that occurs twice in one object of
// an accepted map, or "". Job ids compare exactly (they are map keys); field
// names compare the way encoding/json matches them to struct fields, case
// folded.
func fuzzDuplicateKey(data []byte) string {
	dec := json.NewDecoder(bytes.NewReader(data))
	// object reads the object at the decoder and calls value for each key,
	// which must consume that key's value.
	object := func(where string, fold bool, value func(key string) string) string {
		if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
			return ""
		}
		seen := map[string]bool{}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return ""
			}
			k, _ := tok.(string)
			id := k
			if fold {
				id = fuzzFold(k)
			}
			if seen[id] {
				return fmt.Sprintf("key %q in %s", k, where)
			}
			seen[id] = true
			if d := value(k); d != "" {
				return d
			}
		}
		dec.Token() // '}'
		return ""
	}
	skip := func(string) string {
		var v json.RawMessage
		dec.Decode(&v)
		return ""
	}
	// Parse accepted the map, so the top level holds only "jobs" (in some
	// case), jobs holds lists, and lists hold target objects.
	return object("the top level", true, func(string) string {
		return object("jobs", false, func(job string) string {
			if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
				return ""
			}
			for i := 0; dec.More(); i++ {
				if d := object(fmt.Sprintf("jobs[%q][%d]", job, i), true, skip); d != "" {
					return d
				}
			}
			dec.Token() // ']'
			return ""
		})
	})
}

// fuzzFold folds a key as encoding/json does when matching struct fields.
func fuzzFold(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteRune(unicode.ToUpper(unicode.ToLower(r)))
	}
	return b.String()
}
