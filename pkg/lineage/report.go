package lineage

import (
	"context"
	"fmt"
	"sort"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/relname"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
)

// TablesWithoutModel walks the site's lineage and returns the tables
// Tableau content reads that no node of the run's manifest (model, seed,
// snapshot or source) names, keyed canonically and sorted, with the content
// that reads each. A table dbt builds under another database name than the
// one Tableau shows is the usual reason: LINEAGE_DATABASE_ALIASES maps them.
// It reads the whole site: for make plan, not for a delivery.
func (p *Planner) TablesWithoutModel(ctx context.Context, runID int64) (map[string][]string, error) {
	if !p.On() {
		return nil, fmt.Errorf("lineage is off")
	}
	m, err := p.readManifest(ctx, runID)
	if err != nil {
		return nil, fmt.Errorf("lineage: %w", err)
	}
	known := map[string]bool{}
	for _, n := range m.Nodes {
		if n.Schema == "" || n.Alias == "" {
			continue // an ephemeral model: no relation
		}
		name, err := relname.FromParts(n.Database, n.Schema, n.Alias)
		if err != nil {
			continue
		}
		for _, c := range p.aliases.Candidates(name) {
			known[c.String()] = true
		}
	}
	out := map[string][]string{}
	_, err = p.tab.WalkLineage(ctx, tableau.LineageCursor{}, func(page *tableau.LineagePage) error {
		for table, cs := range Tables(page.Edges()) {
			// The planner's rule: the Tableau table's own key must be one
			// of a dbt relation's candidates.
			if known[table] {
				continue
			}
			for _, c := range cs {
				out[table] = append(out[table], fmt.Sprintf("%s %q", c.Kind, c.Name))
			}
		}
		return nil
	})
	for _, cs := range out {
		sort.Strings(cs)
	}
	return out, err
}
