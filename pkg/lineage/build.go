package lineage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/notify"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refresh"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
)

// Builder builds the lineage index from Tableau's Metadata API: published
// data sources, workbooks and custom SQL, page by page. A site too big for
// one invocation is finished by the next ones: the build records where it
// stopped after every page, and is published, whole, only when done.
type Builder struct {
	tab    Metadata
	index  state.LineageIndex
	alerts refresh.Alerter
	logger *slog.Logger
	now    func() time.Time
}

// NewBuilder returns a Builder. It takes WithAlerts, WithLogger and
// WithClock.
func NewBuilder(tab Metadata, index state.LineageIndex, opts ...Option) *Builder {
	o := apply(opts)
	return &Builder{tab: tab, index: index, alerts: o.alerts, logger: o.logger, now: o.now}
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
}

// Build walks the Metadata API from where the index build stands until it
// is done or ctx's deadline nears, writing each page's tables to the
// generation under way.
func (b *Builder) Build(ctx context.Context) (BuildResult, error) {
	st, err := b.index.LineageBuild(ctx)
	if err != nil {
		return BuildResult{}, fmt.Errorf("lineage index: %w", err)
	}
	var res BuildResult
	cur := tableau.LineageCursor{}
	switch {
	case st.Building != 0 && b.now().Sub(st.StartedAt) < staleBuild && st.Cursor != "":
		if err := json.Unmarshal([]byte(st.Cursor), &cur); err != nil {
			return res, fmt.Errorf("lineage index: the build's cursor is unreadable: %w", err)
		}
		res.Resumed = true
	default:
		gen := max(st.Current, st.Building) + 1
		st = state.LineageBuild{Current: st.Current, CompletedAt: st.CompletedAt, Building: gen, StartedAt: b.now()}
	}
	res.Generation = st.Building
	log := b.logger.With("stage", string(cur.Stage))
	next, err := b.tab.WalkLineage(ctx, cur, func(p *tableau.LineagePage) error {
		tables := Tables(p.Edges())
		if err := b.index.AddLineage(ctx, st.Building, tables); err != nil {
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
		return b.index.SaveLineageBuild(ctx, st)
	})
	if err != nil {
		b.notifyMetadata(ctx, err)
		return res, fmt.Errorf("lineage index: %w", err)
	}
	if !next.Done() {
		log.InfoContext(ctx, "lineage index build continues in the next invocation", "tables", st.Tables)
		return res, nil
	}
	if err := b.index.PublishLineage(ctx, st.Building, st); err != nil {
		return res, fmt.Errorf("lineage index: %w", err)
	}
	res.Done, res.Published = true, true
	log.InfoContext(ctx, "lineage index published", "tables", st.Tables)
	if st.Partial {
		log.WarnContext(ctx, "lineage index is partial: Tableau cut some pages short", "reason", fmt.Sprint(st.Warnings))
	}
	return res, nil
}

// notifyMetadata tells a person, once a day, that the index cannot be built
// for a reason only they can fix.
func (b *Builder) notifyMetadata(ctx context.Context, err error) {
	fix := tableau.MetadataFix(err)
	if fix == "" || b.alerts == nil {
		return
	}
	m := notify.Message{Kind: notify.KindLineageUnavailable, Reason: fix + " (" + err.Error() + ")", At: b.now()}
	if aerr := b.alerts.Raise(ctx, "lineage-metadata:"+b.now().UTC().Format(time.DateOnly), m); aerr != nil && !errors.Is(aerr, context.Canceled) {
		b.logger.WarnContext(ctx, "notification pending", "error", aerr)
	}
}
