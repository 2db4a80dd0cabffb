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
//	    {"datasource_id": "3b7e..."}]}}
package refreshmap

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
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
}

// Key identifies the target in idempotency records. It is stable across
// deployments as long as the map entry is unchanged, and distinct for
// distinct entries.
func (t Target) Key() string {
	if t.ID != "" {
		return string(t.Kind) + ":id:" + t.ID
	}
	return string(t.Kind) + ":name:" + t.Project + "/" + t.Name
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

// Jobs returns the mapped dbt job ids in ascending order.
func (m *Map) Jobs() []string {
	ids := make([]string, 0, len(m.jobs))
	for id := range m.jobs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// entry is one target as written in the JSON map.
type entry struct {
	Workbook     *string `json:"workbook"`
	WorkbookID   *string `json:"workbook_id"`
	Datasource   *string `json:"datasource"`
	DatasourceID *string `json:"datasource_id"`
	Project      *string `json:"project"`
}

// Parse validates a JSON refresh map. Errors point at the bad entry, e.g.
// `jobs["123"][1]: ...`, so a deployment can be fixed without guessing.
func Parse(data []byte) (*Map, error) {
	var doc struct {
		Jobs map[string]json.RawMessage `json:"jobs"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("refresh map: not a JSON object of the form {\"jobs\": {...}}: %w", err)
	}
	if dec.More() {
		return nil, errors.New("refresh map: unexpected data after the JSON object")
	}
	if doc.Jobs == nil {
		return nil, errors.New(`refresh map: missing "jobs" object`)
	}
	m := &Map{jobs: make(map[string][]Target, len(doc.Jobs))}
	for _, jobID := range sortedKeys(doc.Jobs) {
		where := fmt.Sprintf("jobs[%q]", jobID)
		if _, err := strconv.ParseUint(jobID, 10, 64); err != nil {
			return nil, fmt.Errorf("refresh map: %s: dbt job id must be a positive integer", where)
		}
		var entries []json.RawMessage
		if err := json.Unmarshal(doc.Jobs[jobID], &entries); err != nil {
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

func parseEntry(raw json.RawMessage) (Target, error) {
	var e entry
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return Target{}, fmt.Errorf("want an object with one of workbook, workbook_id, datasource, datasource_id (and optional project): %w", err)
	}
	var t Target
	set := 0
	for _, f := range []struct {
		v    *string
		kind Kind
		byID bool
	}{
		{e.Workbook, Workbook, false}, {e.WorkbookID, Workbook, true},
		{e.Datasource, Datasource, false}, {e.DatasourceID, Datasource, true},
	} {
		if f.v == nil {
			continue
		}
		set++
		v := strings.TrimSpace(*f.v)
		if v == "" {
			return Target{}, fmt.Errorf("%s is empty", fieldName(f.kind, f.byID))
		}
		t.Kind = f.kind
		if f.byID {
			t.ID = v
		} else {
			// Tableau names may legitimately start or end with spaces; keep
			// the name exactly as written.
			t.Name = *f.v
		}
	}
	if set != 1 {
		return Target{}, errors.New("give exactly one of workbook, workbook_id, datasource, datasource_id")
	}
	if e.Project != nil {
		if t.ID != "" {
			return Target{}, fmt.Errorf("project applies to names only; %s already names one item", fieldName(t.Kind, true))
		}
		if strings.TrimSpace(*e.Project) == "" {
			return Target{}, errors.New("project is empty (leave it out to search every project)")
		}
		t.Project = *e.Project
	}
	return t, nil
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
		return nil, errors.New("refresh map: set REFRESH_MAP or REFRESH_MAP_FILE, not both")
	case file != "":
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("refresh map: REFRESH_MAP_FILE: %w", err)
		}
		m, err := Parse(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		return m, nil
	case inline != "":
		m, err := Parse([]byte(inline))
		if err != nil {
			return nil, fmt.Errorf("REFRESH_MAP: %w", err)
		}
		return m, nil
	}
	return nil, errors.New("refresh map: set REFRESH_MAP (JSON) or REFRESH_MAP_FILE (path to a JSON file)")
}
