// Package refreshmap holds the mapping from dbt Cloud job ids to the Tableau
// workbooks and data sources that must be refreshed when the job succeeds.
//
// The map is JSON, given inline in REFRESH_MAP or, because a Lambda
// environment holds only 4 KB in all, in a file named by REFRESH_MAP_FILE:
//
//	{"jobs": {"123": [
//	    {"workbook": "Sales Overview", "project": "Finance"},
//	    {"datasource": "Orders", "incremental": true},
//	    {"workbook_id": "9f1c..."},
//	    {"datasource_id": "3b7e..."}],
//	  "456": {"targets": [...], "exclude": [{"workbook": "Scratch"}],
//	          "lineage": {"incremental": false}}},
//	 "exclude": [{"datasource": "Sandbox extract"}],
//	 "lineage": {"incremental": true}}
//
// With lineage on, the map's targets are refreshed on top of what lineage
// finds, and its exclusions (global, and per job in the object form) keep
// content from being refreshed whichever way it was found.
//
// "incremental": true on an entry asks for an incremental refresh of its
// extract (REST API 3.25 and later). "lineage": {"incremental": true}, at
// the top or for one job, asks for one of the content lineage finds when
// every relation of the run it reads was built incrementally.
//
// freshness_sla, on any entry, overrides the status page's freshness
// objective for that target.
//
// "site", on any entry, names the Tableau site the content is on by its
// content URL: absent or "" is TABLEAU_SITE, the default site. A target on
// another site is another target (its Key says so); one on the default
// site has the Key it always had, however the entry names the site, so
// that the records of a deployment that had one site still hold.
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
	"unicode"
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
	// Incremental asks for an incremental refresh rather than a full one.
	// It is not part of Key: the same content is one target either way.
	Incremental bool `json:"incremental,omitempty"`
	// FreshnessSLA, when the entry sets freshness_sla, overrides the status
	// page's freshness objective (FRESHNESS_SLA) for this target. It is no
	// part of the target's identity (Key).
	FreshnessSLA time.Duration `json:"-"`
	// Site is the content URL of the Tableau site the content is on; ""
	// is the default site (TABLEAU_SITE), which Parse and Load make of an
	// entry that names it.
	Site string `json:"site,omitempty"`
}

// Key identifies the target in idempotency records. It is stable across
// deployments as long as the map entry is unchanged, and distinct for
// distinct entries. A target on the default site has the key it had
// before sites were known, e.g. `workbook:id:9f1c...`; one on another site
// is prefixed with it: `site:"emea"/workbook:id:9f1c...`.
func (t Target) Key() string {
	var k string
	if t.ID != "" {
		k = string(t.Kind) + ":id:" + t.ID
	} else {
		// Quoted, because names may hold "/" and a plain join would let
		// "Q3/Sales" in "Finance" collide with "Sales" in "Finance/Q3".
		k = string(t.Kind) + ":name:" + strconv.Quote(t.Project) + "/" + strconv.Quote(t.Name)
	}
	if t.Site != "" {
		return "site:" + strconv.Quote(t.Site) + "/" + k
	}
	return k
}

// String names the target for people, in logs and replies; a target on
// another site than the default says which.
func (t Target) String() string {
	var s string
	switch {
	case t.ID != "" && t.Name != "":
		// Found by lineage, which knows both.
		s = fmt.Sprintf("%s %q (%s)", t.Kind, t.Name, t.ID)
	case t.ID != "":
		s = fmt.Sprintf("%s %s", t.Kind, t.ID)
	case t.Project != "":
		s = fmt.Sprintf("%s %q in project %q", t.Kind, t.Name, t.Project)
	default:
		s = fmt.Sprintf("%s %q", t.Kind, t.Name)
	}
	if t.Site != "" {
		s += fmt.Sprintf(" on site %q", t.Site)
	}
	return s
}

// Map is a validated refresh map.
type Map struct {
	jobs    map[string][]Target
	exclude map[string][]Target // per job
	global  []Target            // excluded for every job
	// lineageIncremental is "lineage": {"incremental": ...}, at the top and
	// per job (which wins).
	lineageIncremental    bool
	jobLineageIncremental map[string]bool
}

// Empty is a map with no targets and no exclusions: lineage alone decides.
func Empty() *Map { return &Map{jobs: map[string][]Target{}} }

// Excluded reports whether t must not be refreshed for jobID: the global or
// the job's exclusions name it, by LUID, or by kind and name (and project,
// when the exclusion gives one).
func (m *Map) Excluded(jobID string, t Target) bool {
	if m == nil {
		return false
	}
	for _, list := range [][]Target{m.global, m.exclude[jobID]} {
		for _, e := range list {
			if e.Names(t) {
				return true
			}
		}
	}
	return false
}

// Names reports whether the entry t names the content o: on the same site,
// the same LUID, or the same kind and name and, when t gives one, project.
// o may carry both a LUID and a name (content found by lineage).
func (t Target) Names(o Target) bool {
	if t.Kind != o.Kind || !SameSite(t.Site, o.Site) {
		return false
	}
	if t.ID != "" {
		return t.ID == o.ID
	}
	return o.Name != "" && t.Name == o.Name && (t.Project == "" || t.Project == o.Project)
}

// LineageIncremental reports whether content lineage finds for jobID is
// refreshed incrementally when the run built what it reads incrementally:
// the job's "lineage": {"incremental": ...}, else the map's.
func (m *Map) LineageIncremental(jobID string) bool {
	if m == nil {
		return false
	}
	if on, ok := m.jobLineageIncremental[jobID]; ok {
		return on
	}
	return m.lineageIncremental
}

// Incremental counts the entries that ask for an incremental refresh, and
// reports whether lineage asks for them anywhere, for the configuration
// check.
func (m *Map) Incremental() (entries int, lineage bool) {
	if m == nil {
		return 0, false
	}
	for _, ts := range m.jobs {
		for _, t := range ts {
			if t.Incremental {
				entries++
			}
		}
	}
	lineage = m.lineageIncremental
	for _, on := range m.jobLineageIncremental {
		lineage = lineage || on
	}
	return entries, lineage
}

// Sites returns the sites other than the default that the map's entries
// (targets and exclusions) name, each once, as first written (by job
// order), sorted.
func (m *Map) Sites() []string {
	if m == nil {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	add := func(ts []Target) {
		for _, t := range ts {
			if k := strings.ToLower(t.Site); t.Site != "" && !seen[k] {
				seen[k] = true
				out = append(out, t.Site)
			}
		}
	}
	add(m.global)
	for _, id := range m.Jobs() {
		add(m.jobs[id])
		add(m.exclude[id])
	}
	for _, id := range sortedKeys(m.exclude) {
		add(m.exclude[id])
	}
	sort.Strings(out)
	return out
}

// SameSite reports whether two content URLs name the same site: Tableau
// compares them without regard to case.
func SameSite(a, b string) bool { return strings.EqualFold(a, b) }

// CheckSite checks a site's content URL as written in a map entry or a
// setting: the bare content URL, as the browser shows it after /site/.
func CheckSite(contentURL string) error {
	if strings.ContainsAny(contentURL, "/?#") || strings.TrimSpace(contentURL) != contentURL || strings.ContainsFunc(contentURL, unicode.IsControl) {
		return fmt.Errorf("site %q: want the bare content URL, as the browser shows it after /site/ (\"\" for the default site)", contentURL)
	}
	return nil
}

// Targets returns the targets mapped to a dbt job id, or nil.
func (m *Map) Targets(jobID string) []Target {
	if m == nil {
		return nil
	}
	return m.jobs[jobID]
}

// String summarises the map, e.g. "2 dbt jobs, 5 targets, 1 exclusion".
func (m *Map) String() string {
	jobs := m.Jobs()
	targets, excluded := 0, len(m.global)
	for _, j := range jobs {
		targets += len(m.Targets(j))
	}
	for _, x := range m.exclude {
		excluded += len(x)
	}
	s := plural(len(jobs), "dbt job") + ", " + plural(targets, "target")
	if entries, _ := m.Incremental(); entries > 0 {
		s += fmt.Sprintf(" (%d incremental)", entries)
	}
	if excluded > 0 {
		s += ", " + plural(excluded, "exclusion")
	}
	return s
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
	if m == nil {
		return nil
	}
	ids := make([]string, 0, len(m.jobs))
	for id := range m.jobs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// ParseOption configures Parse.
type ParseOption func(*parser)

// parser holds what Parse was told.
type parser struct {
	defaultSite string
}

// WithDefaultSite names the default site (TABLEAU_SITE): an entry whose
// "site" is this content URL is on the default site, as if it named none,
// and keeps the Key it would have without a "site". Without it the default
// site is the one named "" alone.
func WithDefaultSite(contentURL string) ParseOption {
	return func(p *parser) { p.defaultSite = contentURL }
}

// Parse validates a JSON refresh map. Errors point at the bad entry, e.g.
// `jobs["123"][1]: ...`, so a deployment can be fixed without guessing.
//
// Keys are matched exactly and may appear once: encoding/json would match
// "Workbook" to "workbook" and let a repeated key silently win, and either
// would refresh something other than what the map seems to say.
func Parse(data []byte, opts ...ParseOption) (*Map, error) {
	var p parser
	for _, o := range opts {
		o(&p)
	}
	return p.parse(data)
}

func (p *parser) parse(data []byte) (*Map, error) {
	top, err := strictObject(data, "jobs", "exclude", "lineage")
	if err != nil {
		return nil, fmt.Errorf("refresh map: want a JSON object of the form {\"jobs\": {...}, \"exclude\": [...]}: %w", err)
	}
	m := Empty()
	m.exclude = map[string][]Target{}
	m.jobLineageIncremental = map[string]bool{}
	if raw, ok := top["exclude"]; ok {
		if m.global, err = p.parseList(raw, "exclude", true, true); err != nil {
			return nil, err
		}
	}
	if raw, ok := top["lineage"]; ok {
		if m.lineageIncremental, err = parseLineage(raw, "lineage"); err != nil {
			return nil, err
		}
	}
	rawJobs, ok := top["jobs"]
	if !ok || string(rawJobs) == "null" {
		if _, hasExclude := top["exclude"]; hasExclude {
			return m, nil // exclusions alone, for lineage
		}
		return nil, errors.New(`refresh map: missing "jobs" object`)
	}
	jobs, err := strictObject(rawJobs)
	if err != nil {
		return nil, fmt.Errorf(`refresh map: "jobs": %w`, err)
	}
	for _, jobID := range sortedKeys(jobs) {
		where := fmt.Sprintf("jobs[%q]", jobID)
		if !isJobID(jobID) {
			return nil, fmt.Errorf("refresh map: %s: dbt job id must be a positive integer without leading zeros", where)
		}
		if _, err := strconv.ParseUint(jobID, 10, 64); err != nil {
			return nil, fmt.Errorf("refresh map: %s: dbt job id is too large", where)
		}
		raw := jobs[jobID]
		if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '{' {
			// The object form: targets and exclusions of one job.
			obj, err := strictObject(raw, "targets", "exclude", "lineage")
			if err != nil {
				return nil, fmt.Errorf(`refresh map: %s: must be a list of targets, or {"targets": [...], "exclude": [...]}: %w`, where, err)
			}
			if rl, ok := obj["lineage"]; ok {
				on, err := parseLineage(rl, where+".lineage")
				if err != nil {
					return nil, err
				}
				m.jobLineageIncremental[jobID] = on
			}
			if rt, ok := obj["targets"]; ok {
				if m.jobs[jobID], err = p.parseList(rt, where+".targets", true, false); err != nil {
					return nil, err
				}
			}
			if rx, ok := obj["exclude"]; ok {
				if m.exclude[jobID], err = p.parseList(rx, where+".exclude", true, true); err != nil {
					return nil, err
				}
			}
			if _, hasLineage := obj["lineage"]; len(m.jobs[jobID]) == 0 && len(m.exclude[jobID]) == 0 && !hasLineage {
				return nil, fmt.Errorf("refresh map: %s: neither targets nor exclusions", where)
			}
			continue
		}
		if m.jobs[jobID], err = p.parseList(raw, where, false, false); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// parseLineage reads {"incremental": true|false}.
func parseLineage(raw json.RawMessage, where string) (bool, error) {
	obj, err := strictObject(raw, "incremental")
	if err != nil {
		return false, fmt.Errorf(`refresh map: %s: want {"incremental": true} or {"incremental": false}: %w`, where, err)
	}
	v, ok := obj["incremental"]
	if !ok {
		return false, fmt.Errorf(`refresh map: %s: want {"incremental": true} or {"incremental": false}`, where)
	}
	var on bool
	if err := json.Unmarshal(v, &on); err != nil {
		return false, fmt.Errorf("refresh map: %s.incremental must be true or false", where)
	}
	return on, nil
}

// parseList reads a list of entries at where; an empty list is an error
// unless mayBeEmpty. Exclusions name content and ask for no refresh.
func (p *parser) parseList(raw json.RawMessage, where string, mayBeEmpty, exclusions bool) ([]Target, error) {
	var entries []json.RawMessage
	if err := json.Unmarshal(raw, &entries); err != nil || entries == nil {
		return nil, fmt.Errorf("refresh map: %s: must be a list of targets", where)
	}
	if len(entries) == 0 && !mayBeEmpty {
		return nil, fmt.Errorf("refresh map: %s: no targets", where)
	}
	var out []Target
	seen := make(map[string]int, len(entries))
	for i, raw := range entries {
		at := fmt.Sprintf("%s[%d]", where, i)
		t, err := p.parseEntry(raw)
		if err != nil {
			return nil, fmt.Errorf("refresh map: %s: %w", at, err)
		}
		if t.Incremental && exclusions {
			return nil, fmt.Errorf("refresh map: %s: incremental applies to targets, not exclusions", at)
		}
		// The site in any case: Tableau reads content URLs so.
		same := t
		same.Site = strings.ToLower(t.Site)
		if j, dup := seen[same.Key()]; dup {
			return nil, fmt.Errorf("refresh map: %s: same target as %s[%d]", at, where, j)
		}
		seen[same.Key()] = i
		out = append(out, t)
	}
	return out, nil
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

var entryKeys = []string{"workbook", "workbook_id", "datasource", "datasource_id", "project", "incremental", "freshness_sla", "site"}

func (p *parser) parseEntry(raw json.RawMessage) (Target, error) {
	obj, err := strictObject(raw, entryKeys...)
	if err != nil {
		return Target{}, fmt.Errorf("want an object with one of workbook, workbook_id, datasource, datasource_id (and optional project, incremental, freshness_sla, site): %w", err)
	}
	fields := make(map[string]string, len(obj))
	var incremental bool
	for k, v := range obj {
		if string(v) == "null" {
			continue
		}
		if k == "incremental" {
			if err := json.Unmarshal(v, &incremental); err != nil {
				return Target{}, errors.New("incremental must be true or false")
			}
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
	t.Incremental = incremental
	if v, ok := fields["freshness_sla"]; ok {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil || d <= 0 {
			return Target{}, fmt.Errorf("freshness_sla %q: want a positive duration such as 24h or 90m", v)
		}
		t.FreshnessSLA = d
	}
	if site, ok := fields["site"]; ok {
		if err := CheckSite(site); err != nil {
			return Target{}, err
		}
		if !SameSite(site, p.defaultSite) {
			t.Site = site
		}
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

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ErrNotSet is Load's error when neither REFRESH_MAP nor REFRESH_MAP_FILE is
// set; it comes with an empty map, which is enough when lineage is on.
var ErrNotSet = errors.New("REFRESH_MAP is not set: set REFRESH_MAP (JSON) or REFRESH_MAP_FILE (path to a JSON file)")

// Load reads the map from the environment: REFRESH_MAP_FILE when set, else
// REFRESH_MAP. Setting both is an error, since one would silently win.
// Setting neither returns an empty map and ErrNotSet. Entries that name
// TABLEAU_SITE are on the default site (WithDefaultSite).
func Load(getenv func(string) string) (*Map, error) {
	inline, file := getenv("REFRESH_MAP"), getenv("REFRESH_MAP_FILE")
	def := WithDefaultSite(strings.TrimSpace(getenv("TABLEAU_SITE")))
	switch {
	case inline != "" && file != "":
		return nil, errors.New("REFRESH_MAP and REFRESH_MAP_FILE are both set: set one, or one would silently win")
	case file != "":
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("REFRESH_MAP_FILE: %w", err)
		}
		m, err := Parse(data, def)
		if err != nil {
			return nil, fmt.Errorf("REFRESH_MAP_FILE %s: %s", file, strings.TrimPrefix(err.Error(), "refresh map: "))
		}
		return m, nil
	case inline != "":
		m, err := Parse([]byte(inline), def)
		if err != nil {
			// The variable says what was being read; "refresh map" again
			// would only stack prefixes.
			return nil, fmt.Errorf("REFRESH_MAP: %s", strings.TrimPrefix(err.Error(), "refresh map: "))
		}
		return m, nil
	}
	return Empty(), ErrNotSet
}
