package state

import (
	"context"
	"sort"
	"strings"
	"time"
)

// LineageContent is Tableau content that reads a table: a published data
// source, or a workbook through a data source of its own.
type LineageContent struct {
	Kind    string `json:"kind"` // "workbook" or "datasource", as refreshmap.Kind
	LUID    string `json:"luid"`
	Name    string `json:"name"`
	Project string `json:"project,omitempty"`
	// Extract is false for a live connection: nothing to refresh.
	Extract bool `json:"extract"`
	// Via says how the content reads the table (an embedded data source,
	// custom SQL), for the "why" of a refresh.
	Via string `json:"via,omitempty"`
}

// LineageBuild is where the lineage index stands. Lookups read the
// generation Current; a build writes the next one, Building, page by page
// and over several invocations if it must, and publishes it whole when it
// is done, so that a half-built index is never read.
type LineageBuild struct {
	Current     int64     // 0 until a build completes
	CompletedAt time.Time // when Current was published
	Building    int64     // 0 when no build is under way
	StartedAt   time.Time
	// Cursor is where the build under way resumes (opaque to the store).
	Cursor string
	// Tables is how many tables the build under way has written.
	Tables int
	// Partial is set when Tableau returned part of a page (its time or
	// node limit even at the smallest page size); Warnings say what.
	Partial  bool
	Warnings []string
}

// LineageIndex holds the lineage index, table -> content, keyed by the
// canonical table names of package relname.
type LineageIndex interface {
	// LookupLineage returns the content that reads each of tables that the
	// current generation knows; a table it does not know is absent from
	// the result.
	LookupLineage(ctx context.Context, tables []string) (map[string][]LineageContent, error)
	// LineageBuild returns where the index stands.
	LineageBuild(ctx context.Context) (LineageBuild, error)
	// SaveLineageBuild records progress of the build under way.
	SaveLineageBuild(ctx context.Context, b LineageBuild) error
	// AddLineage adds content to tables in generation gen, merging with
	// what earlier pages wrote there.
	AddLineage(ctx context.Context, gen int64, tables map[string][]LineageContent) error
	// PublishLineage makes generation gen the one lookups read and ends
	// the build.
	PublishLineage(ctx context.Context, gen int64, b LineageBuild) error
}

// SiteLineage gives each Tableau site's lineage index: every site's
// content reads tables of its own, and its index is built and published on
// its own. The store itself is the default site's.
type SiteLineage interface {
	// SiteLineage returns the index of the site with the given content URL
	// ("" for the default site: the store itself). Content URLs are read
	// without regard to case.
	SiteLineage(site string) LineageIndex
}

var (
	_ LineageIndex = (*Memory)(nil)
	_ SiteLineage  = (*Memory)(nil)
)

// memLineage is one site's index in memory.
type memLineage struct {
	gens  map[int64]map[string]map[LineageContent]bool // generation -> table -> content
	build LineageBuild
}

// siteLineage is a site's index in a Memory store.
type siteLineage struct {
	m    *Memory
	site string
}

// SiteLineage implements SiteLineage.
func (m *Memory) SiteLineage(site string) LineageIndex {
	if site == "" {
		return m
	}
	return siteLineage{m: m, site: strings.ToLower(site)}
}

// space returns a site's index, made on first use; m.mu is held.
func (m *Memory) space(site string) *memLineage {
	if site == "" {
		return &m.lin
	}
	if m.siteLin == nil {
		m.siteLin = map[string]*memLineage{}
	}
	l := m.siteLin[site]
	if l == nil {
		l = &memLineage{gens: map[int64]map[string]map[LineageContent]bool{}}
		m.siteLin[site] = l
	}
	return l
}

// LookupLineage implements LineageIndex.
func (s siteLineage) LookupLineage(ctx context.Context, tables []string) (map[string][]LineageContent, error) {
	return s.m.lookupLineage(s.site, tables)
}

// LineageBuild implements LineageIndex.
func (s siteLineage) LineageBuild(context.Context) (LineageBuild, error) {
	return s.m.lineageBuild(s.site), nil
}

// SaveLineageBuild implements LineageIndex.
func (s siteLineage) SaveLineageBuild(_ context.Context, b LineageBuild) error {
	s.m.saveLineageBuild(s.site, b)
	return nil
}

// AddLineage implements LineageIndex.
func (s siteLineage) AddLineage(_ context.Context, gen int64, tables map[string][]LineageContent) error {
	s.m.addLineage(s.site, gen, tables)
	return nil
}

// PublishLineage implements LineageIndex.
func (s siteLineage) PublishLineage(_ context.Context, gen int64, b LineageBuild) error {
	s.m.publishLineage(s.site, gen, b)
	return nil
}

// LookupLineage implements LineageIndex.
func (m *Memory) LookupLineage(_ context.Context, tables []string) (map[string][]LineageContent, error) {
	return m.lookupLineage("", tables)
}

func (m *Memory) lookupLineage(site string, tables []string) (map[string][]LineageContent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.space(site)
	out := map[string][]LineageContent{}
	gen := l.gens[l.build.Current]
	for _, t := range tables {
		if c, ok := gen[t]; ok {
			out[t] = sortedContent(c)
		}
	}
	return out, nil
}

// LineageBuild implements LineageIndex.
func (m *Memory) LineageBuild(context.Context) (LineageBuild, error) {
	return m.lineageBuild(""), nil
}

func (m *Memory) lineageBuild(site string) LineageBuild {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.space(site).build
}

// SaveLineageBuild implements LineageIndex.
func (m *Memory) SaveLineageBuild(_ context.Context, b LineageBuild) error {
	m.saveLineageBuild("", b)
	return nil
}

func (m *Memory) saveLineageBuild(site string, b LineageBuild) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.space(site).build = b
}

// AddLineage implements LineageIndex.
func (m *Memory) AddLineage(_ context.Context, gen int64, tables map[string][]LineageContent) error {
	m.addLineage("", gen, tables)
	return nil
}

func (m *Memory) addLineage(site string, gen int64, tables map[string][]LineageContent) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.space(site)
	g := l.gens[gen]
	if g == nil {
		g = map[string]map[LineageContent]bool{}
		l.gens[gen] = g
	}
	for t, cs := range tables {
		if g[t] == nil {
			g[t] = map[LineageContent]bool{}
		}
		for _, c := range cs {
			g[t][c] = true
		}
	}
}

// PublishLineage implements LineageIndex.
func (m *Memory) PublishLineage(_ context.Context, gen int64, b LineageBuild) error {
	m.publishLineage("", gen, b)
	return nil
}

func (m *Memory) publishLineage(site string, gen int64, b LineageBuild) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.space(site)
	b.Current, b.Building, b.CompletedAt, b.Cursor = gen, 0, m.now(), ""
	for g := range l.gens {
		if g != gen {
			delete(l.gens, g)
		}
	}
	l.build = b
}

func sortedContent(set map[LineageContent]bool) []LineageContent {
	out := make([]LineageContent, 0, len(set))
	for c := range set {
		out = append(out, c)
	}
	SortContent(out)
	return out
}

// SortContent orders content by kind, name and LUID, so that lookups and
// the reasons built from them are the same every time.
func SortContent(cs []LineageContent) {
	sort.Slice(cs, func(a, b int) bool {
		x, y := cs[a], cs[b]
		if x.Kind != y.Kind {
			return x.Kind < y.Kind
		}
		if x.Name != y.Name {
			return x.Name < y.Name
		}
		if x.LUID != y.LUID {
			return x.LUID < y.LUID
		}
		return x.Via < y.Via
	})
}
