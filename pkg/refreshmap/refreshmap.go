// Package refreshmap holds the mapping from dbt Cloud job ids to the Tableau
// workbooks and data sources that must be refreshed when the job succeeds.
//
// The map is JSON, given inline in REFRESH_MAP or, because a Lambda
// environment holds only 4 KB in all, in a file named by REFRESH_MAP_FILE:
//
//	{"jobs": {"123": [
//	    {"workbook": "Sales Overview", "project": "Finance"},
//	    {"datasource": "Orders"},
//	    {"workbook_id": "9f1c..."},
//	    {"datasource_id": "3b7e...", "freshness_sla": "6h"}]}}
//
// freshness_sla, on any entry, overrides the status page's freshness
// objective for that target.
package refreshmap

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Kind is the type of Tableau content a target names.
type Kind string

// The kinds of content that have extracts to refresh.
const (
	Workbook   Kind = "workbook"
	Datasource Kind = "datasource"
)

// Target is one workbook or data source, named either by LUID or by name with
// an optional project.
type Target struct {
	Kind    Kind   `json:"kind"`
	ID      string `json:"id,omitempty"`
	Name    string `json:"name,omitempty"`
	Project string `json:"project,omitempty"`
	// FreshnessSLA, when the entry sets freshness_sla, overrides the status
	// page's freshness objective (FRESHNESS_SLA) for this target. It is no
	// part of the target's identity (Key).
	FreshnessSLA time.Duration `json:"-"`
}

// Key identifies the target in idempotency records. It is stable across
// deployments as long as the map entry is unchanged, and distinct for
// distinct entries.
func (t Target) Key() string {
	if t.ID != "" {
		return string(t.Kind) + ":id:" + t.ID
	}
	// Quoted, because names may hold "/" and a plain join would let
	// "Q3/Sales" in "Finance" collide with "Sales" in "Finance/Q3".
	return string(t.Kind) + ":name:" + strconv.Quote(t.Project) + "/" + strconv.Quote(t.Name)
}

// String names the target for people, in logs and replies.
func (t Target) String() string {
	switch {
	case t.ID != "":
		return fmt.Sprintf("%s %s", t.Kind, t.ID)
	case t.Project != "":
		return fmt.Sprintf("%s %q in project %q", t.Kind, t.Name, t.Project)
	default:
		return fmt.Sprintf("%s %q", t.Kind, t.Name)
	}
}

// Map is a validated refresh map.
type Map struct {
	jobs map[string][]Target
}

// Targets returns the targets mapped to a dbt job id, or nil.
func (m *Map) Targets(jobID string) []Target {
	if m == nil {
		return nil
	}
	return m.jobs[jobID]
}

// String summarises the map, e.g. "2 dbt jobs, 5 targets".
func (m *Map) String() string {
	jobs := m.Jobs()
	targets := 0
	for _, j := range jobs {
		targets += len(m.Targets(j))
	}
	return plural(len(jobs), "dbt job") + ", " + plural(targets, "target")
}

// plural says "1 target" or "3 targets".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// Jobs returns the mapped dbt job ids in ascending order.
func (m *Map) Jobs() []string {
	ids := make([]string, 0, len(m.jobs))
	for id := range m.jobs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Parse validates a JSON refresh map. Errors point at the bad entry, e.g.
// `jobs["123"][1]: ...`, so a deployment can be fixed without guessing.
//
// Keys are matched exactly and may appear once: encoding/json would match
// "Workbook" to "workbook" and let a repeated key silently win, and either
// would refresh something other than what the map seems to say.
func Parse(data []byte) (*Map, error) {
	top, err := strictObject(data, "jobs")
	if err != nil {
		return nil, fmt.Errorf("refresh map: want a JSON object of the form {\"jobs\": {...}}: %w", err)
	}
	rawJobs, ok := top["jobs"]
	if !ok || string(rawJobs) == "null" {
		return nil, errors.New(`refresh map: missing "jobs" object`)
	}
	jobs, err := strictObject(rawJobs)
	if err != nil {
		return nil, fmt.Errorf(`refresh map: "jobs": %w`, err)
	}
	m := &Map{jobs: make(map[string][]Target, len(jobs))}
	for _, jobID := range sortedKeys(jobs) {
		where := fmt.Sprintf("jobs[%q]", jobID)
		if !isJobID(jobID) {
			return nil, fmt.Errorf("refresh map: %s: dbt job id must be a positive integer without leading zeros", where)
		}
		if _, err := strconv.ParseUint(jobID, 10, 64); err != nil {
			return nil, fmt.Errorf("refresh map: %s: dbt job id is too large", where)
		}
		var entries []json.RawMessage
		if err := json.Unmarshal(jobs[jobID], &entries); err != nil || entries == nil {
			return nil, fmt.Errorf("refresh map: %s: must be a list of targets", where)
		}
		if len(entries) == 0 {
			return nil, fmt.Errorf("refresh map: %s: no targets", where)
		}
		seen := make(map[string]int, len(entries))
		for i, raw := range entries {
			at := fmt.Sprintf("%s[%d]", where, i)
			t, err := parseEntry(raw)
			if err != nil {
				return nil, fmt.Errorf("refresh map: %s: %w", at, err)
			}
			if j, dup := seen[t.Key()]; dup {
				return nil, fmt.Errorf("refresh map: %s: same target as %s[%d]", at, where, j)
			}
			seen[t.Key()] = i
			m.jobs[jobID] = append(m.jobs[jobID], t)
		}
	}
	return m, nil
}

// isJobID reports whether s is a dbt job id written canonically: digits, no
// leading zero. (A loop rather than a regexp: a package-level regexp is
// compiled in every cold start.)
func isJobID(s string) bool {
	if s == "" || s[0] == '0' {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

var entryKeys = []string{"workbook", "workbook_id", "datasource", "datasource_id", "project", "freshness_sla"}

func parseEntry(raw json.RawMessage) (Target, error) {
	obj, err := strictObject(raw, entryKeys...)
	if err != nil {
		return Target{}, fmt.Errorf("want an object with one of workbook, workbook_id, datasource, datasource_id (and optional project, freshness_sla): %w", err)
	}
	fields := make(map[string]string, len(obj))
	for k, v := range obj {
		if string(v) == "null" {
			continue
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return Target{}, fmt.Errorf("%s must be a string", k)
		}
		fields[k] = s
	}
	var t Target
	set := 0
	for _, f := range []struct {
		key  string
		kind Kind
		byID bool
	}{
		{"workbook", Workbook, false}, {"workbook_id", Workbook, true},
		{"datasource", Datasource, false}, {"datasource_id", Datasource, true},
	} {
		v, ok := fields[f.key]
		if !ok {
			continue
		}
		set++
		if strings.TrimSpace(v) == "" {
			return Target{}, fmt.Errorf("%s is empty", f.key)
		}
		t.Kind = f.kind
		if f.byID {
			t.ID = strings.TrimSpace(v)
		} else {
			// Tableau names may legitimately start or end with spaces; keep
			// the name exactly as written.
			t.Name = v
		}
	}
	if set != 1 {
		return Target{}, errors.New("give exactly one of workbook, workbook_id, datasource, datasource_id")
	}
	if p, ok := fields["project"]; ok {
		if t.ID != "" {
			return Target{}, fmt.Errorf("project applies to names only; %s already names one item", fieldName(t.Kind, true))
		}
		if strings.TrimSpace(p) == "" {
			return Target{}, errors.New("project is empty (leave it out to search every project)")
		}
		t.Project = p
	}
	if v, ok := fields["freshness_sla"]; ok {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil || d <= 0 {
			return Target{}, fmt.Errorf("freshness_sla %q: want a positive duration such as 24h or 90m", v)
		}
		t.FreshnessSLA = d
	}
	return t, nil
}

// strictObject decodes one JSON object and nothing after it, refusing
// repeated keys and, when allowed is given, any key not in it (compared
// exactly, not case-insensitively).
func strictObject(data []byte, allowed ...string) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("not a JSON object")
	}
	out := make(map[string]json.RawMessage)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("not valid JSON: %w", err)
		}
		k, _ := tok.(string)
		if len(allowed) > 0 && !slices.Contains(allowed, k) {
			return nil, fmt.Errorf("unknown key %q (want %s)", k, strings.Join(allowed, ", "))
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("key %q given twice", k)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("not valid JSON: %w", err)
		}
		out[k] = v
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("unexpected data after the JSON object")
	}
	return out, nil
}

func fieldName(k Kind, byID bool) string {
	if byID {
		return string(k) + "_id"
	}
	return string(k)
}

func sortedKeys(m map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Load reads the map from the environment: REFRESH_MAP_FILE when set, else
// REFRESH_MAP. Setting both is an error, since one would silently win.
func Load(getenv func(string) string) (*Map, error) {
	inline, file := getenv("REFRESH_MAP"), getenv("REFRESH_MAP_FILE")
	switch {
	case inline != "" && file != "":
		return nil, errors.New("REFRESH_MAP and REFRESH_MAP_FILE are both set: set one, or one would silently win")
	case file != "":
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("REFRESH_MAP_FILE: %w", err)
		}
		m, err := Parse(data)
		if err != nil {
			return nil, fmt.Errorf("REFRESH_MAP_FILE %s: %s", file, strings.TrimPrefix(err.Error(), "refresh map: "))
		}
		return m, nil
	case inline != "":
		m, err := Parse([]byte(inline))
		if err != nil {
			// The variable says what was being read; "refresh map" again
			// would only stack prefixes.
			return nil, fmt.Errorf("REFRESH_MAP: %s", strings.TrimPrefix(err.Error(), "refresh map: "))
		}
		return m, nil
	}
	return nil, errors.New("REFRESH_MAP is not set: set REFRESH_MAP (JSON) or REFRESH_MAP_FILE (path to a JSON file)")
}
