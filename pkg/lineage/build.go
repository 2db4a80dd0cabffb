package lineage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/notify"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refresh"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
)

// Builder builds the lineage index from Tableau's Metadata API: published
// data sources, workbooks and custom SQL, page by page. A site too big for
// one invocation is finished by the next ones: the build records where it
// stopped after every page, and is published, whole, only when done. With
// WithSites it builds each site's index in turn, a site whose build is
// under way first.
type Builder struct {
	sites  []Site // the default site first, Name ""
	alerts refresh.Alerter
	logger *slog.Logger
	now    func() time.Time
}

// NewBuilder returns a Builder of the default site's index, from tab into
// index. It takes WithSites, WithAlerts, WithLogger and WithClock.
func NewBuilder(tab Metadata, index state.LineageIndex, opts ...Option) *Builder {
	o := apply(opts)
	return &Builder{sites: append([]Site{{Metadata: tab, Index: index}}, o.sites...), alerts: o.alerts, logger: o.logger, now: o.now}
}

// maxWarnings bounds the warnings a build keeps: they say what kind of
// trouble there was, and a site can produce one per page.
const maxWarnings = 20

// staleBuild is how old a build under way may be before it is started
// again: the content it has walked is no longer current.
const staleBuild = 24 * time.Hour

// BuildResult is what one invocation of Build did.
type BuildResult struct {
	Generation int64 `json:"generation"`
	// Done is set when the build finished and was published; otherwise the
	// next invocation resumes it.
	Done      bool `json:"done"`
	Pages     int  `json:"pages"`
	Tables    int  `json:"tables"`    // written by this invocation
	Partial   bool `json:"partial"`   // a page came back incomplete
	Resumed   bool `json:"resumed"`   // this invocation continued an earlier one
	Published bool `json:"published"` // this invocation published the generation
	// Sites are the other sites' builds (WithSites), by content URL; the
	// fields above are the default site's.
	Sites map[string]*BuildResult `json:"sites,omitempty"`
	// Skipped is set on a site this invocation had no time for: the next
	// one builds it.
	Skipped bool `json:"skipped,omitempty"`
}

// Build walks the Metadata API from where the index build stands until it
// is done or ctx's deadline nears, writing each page's tables to the
// generation under way; with several sites, each in turn, a site whose
// build is under way first (so that a site too big for one invocation is
// finished before the others start again), until one is left unfinished.
// A site that fails does not stop the others; the errors are joined.
func (b *Builder) Build(ctx context.Context) (BuildResult, error) {
	if len(b.sites) == 1 {
		return b.buildSite(ctx, b.sites[0])
	}
	states := make([]state.LineageBuild, len(b.sites))
	for i, s := range b.sites {
		var err error
		if states[i], err = s.Index.LineageBuild(ctx); err != nil {
			return BuildResult{}, fmt.Errorf("lineage index%s: %w", onSite(s.Name), err)
		}
	}
	order := make([]int, len(b.sites))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(x, y int) bool { return states[order[x]].Building != 0 && states[order[y]].Building == 0 })
	results := make([]*BuildResult, len(b.sites))
	var errs []error
	stopped := false
	for _, i := range order {
		site := b.sites[i]
		if stopped {
			results[i] = &BuildResult{Skipped: true}
			continue
		}
		res, err := b.buildSite(ctx, site)
		results[i] = &res
		if err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				stopped = true
			}
			continue
		}
		// A site left unfinished used the invocation's time.
		stopped = !res.Done
	}
	out := *results[0]
	for i, s := range b.sites[1:] {
		if out.Sites == nil {
			out.Sites = map[string]*BuildResult{}
		}
		out.Sites[s.Name] = results[i+1]
	}
	return out, errors.Join(errs...)
}

// onSite names a site other than the default in a message.
func onSite(site string) string {
	if site == "" {
		return ""
	}
	return fmt.Sprintf(" of site %q", site)
}

// buildSite builds one site's index.
func (b *Builder) buildSite(ctx context.Context, site Site) (BuildResult, error) {
	st, err := site.Index.LineageBuild(ctx)
	if err != nil {
		return BuildResult{}, fmt.Errorf("lineage index%s: %w", onSite(site.Name), err)
	}
	var res BuildResult
	cur := tableau.LineageCursor{}
	switch {
	case st.Building != 0 && b.now().Sub(st.StartedAt) < staleBuild && st.Cursor != "":
		if err := json.Unmarshal([]byte(st.Cursor), &cur); err != nil {
			return res, fmt.Errorf("lineage index%s: the build's cursor is unreadable: %w", onSite(site.Name), err)
		}
		res.Resumed = true
	default:
		gen := max(st.Current, st.Building) + 1
		st = state.LineageBuild{Current: st.Current, CompletedAt: st.CompletedAt, Building: gen, StartedAt: b.now()}
	}
	res.Generation = st.Building
	log := b.logger.With("stage", string(cur.Stage))
	if site.Name != "" {
		log = log.With("tableau_site", site.Name)
	}
	next, err := site.Metadata.WalkLineage(ctx, cur, func(p *tableau.LineagePage) error {
		tables := Tables(p.Edges())
		if err := site.Index.AddLineage(ctx, st.Building, tables); err != nil {
			return err
		}
		res.Pages++
		res.Tables += len(tables)
		st.Tables += len(tables)
		if p.Partial {
			res.Partial, st.Partial = true, true
			for _, w := range p.Warnings {
				if len(st.Warnings) < maxWarnings {
					st.Warnings = append(st.Warnings, w.Message)
				}
			}
		}
		raw, err := json.Marshal(p.Next)
		if err != nil {
			return err
		}
		st.Cursor = string(raw)
		return site.Index.SaveLineageBuild(ctx, st)
	})
	if err != nil {
		b.notifyMetadata(ctx, site.Name, err)
		return res, fmt.Errorf("lineage index%s: %w", onSite(site.Name), err)
	}
	if !next.Done() {
		log.InfoContext(ctx, "lineage index build continues in the next invocation", "tables", st.Tables)
		return res, nil
	}
	if err := site.Index.PublishLineage(ctx, st.Building, st); err != nil {
		return res, fmt.Errorf("lineage index%s: %w", onSite(site.Name), err)
	}
	res.Done, res.Published = true, true
	log.InfoContext(ctx, "lineage index published", "tables", st.Tables)
	if st.Partial {
		log.WarnContext(ctx, "lineage index is partial: Tableau cut some pages short", "reason", fmt.Sprint(st.Warnings))
	}
	return res, nil
}

// notifyMetadata tells a person, once a day (per site), that the index
// cannot be built for a reason only they can fix.
func (b *Builder) notifyMetadata(ctx context.Context, site string, err error) {
	fix := tableau.MetadataFix(err)
	if fix == "" || b.alerts == nil {
		return
	}
	key, on := "lineage-metadata:", ""
	if site != "" {
		key, on = "lineage-metadata:"+site+":", fmt.Sprintf("On Tableau site %q: ", site)
	}
	m := notify.Message{Kind: notify.KindLineageUnavailable, Reason: on + fix + " (" + err.Error() + ")", At: b.now()}
	if aerr := b.alerts.Raise(ctx, key+b.now().UTC().Format(time.DateOnly), m); aerr != nil && !errors.Is(aerr, context.Canceled) {
		b.logger.WarnContext(ctx, "notification pending", "error", aerr)
	}
}
