package state

import (
	"context"
	"sort"
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

var _ LineageIndex = (*Memory)(nil)

// LookupLineage implements LineageIndex.
func (m *Memory) LookupLineage(_ context.Context, tables []string) (map[string][]LineageContent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string][]LineageContent{}
	gen := m.lineage[m.build.Current]
	for _, t := range tables {
		if c, ok := gen[t]; ok {
			out[t] = sortedContent(c)
		}
	}
	return out, nil
}

// LineageBuild implements LineageIndex.
func (m *Memory) LineageBuild(context.Context) (LineageBuild, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.build, nil
}

// SaveLineageBuild implements LineageIndex.
func (m *Memory) SaveLineageBuild(_ context.Context, b LineageBuild) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.build = b
	return nil
}

// AddLineage implements LineageIndex.
func (m *Memory) AddLineage(_ context.Context, gen int64, tables map[string][]LineageContent) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	g := m.lineage[gen]
	if g == nil {
		g = map[string]map[LineageContent]bool{}
		m.lineage[gen] = g
	}
	for t, cs := range tables {
		if g[t] == nil {
			g[t] = map[LineageContent]bool{}
		}
		for _, c := range cs {
			g[t][c] = true
		}
	}
	return nil
}

// PublishLineage implements LineageIndex.
func (m *Memory) PublishLineage(_ context.Context, gen int64, b LineageBuild) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	b.Current, b.Building, b.CompletedAt, b.Cursor = gen, 0, m.now(), ""
	for g := range m.lineage {
		if g != gen {
			delete(m.lineage, g)
		}
	}
	m.build = b
	return nil
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
