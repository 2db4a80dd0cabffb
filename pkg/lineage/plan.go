// Package lineage decides what a dbt run refreshes without a hand-written
// list: the relations the run changed (dbt's artifacts, package
// dbtartifacts) crossed with the Tableau content that reads them (Tableau's
// Metadata API, kept as an index in the state table), together with the
// refresh map's entries and less its exclusions. Each target says why.
//
// A delivery costs a few round trips more than the map alone, whatever the
// number of changed models: the run's artifacts, one read of the index, and
// at most one targeted Metadata API lookup for all the changed tables the
// index does not know (content published since the index was built). The
// index is built apart, on a schedule (Builder).
//
// With several Tableau sites (WithSites) each site has its own index and
// Metadata API: a delivery reads every site's index and looks up on each
// what it does not know, at once, and each target found is on its site.
package lineage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dbtartifacts"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dbtcloud"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/notify"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refresh"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refreshmap"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/relname"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
)

// Artifacts is what lineage reads from dbt Cloud.
type Artifacts interface {
	GetRunSteps(ctx context.Context, runID int64) ([]dbtcloud.RunStep, error)
	GetArtifact(ctx context.Context, runID int64, path string, step int) (io.ReadCloser, error)
}

// Metadata is what lineage asks Tableau's Metadata API.
type Metadata interface {
	LookupTables(ctx context.Context, names []string) (*tableau.TableLookup, error)
	WalkLineage(ctx context.Context, cur tableau.LineageCursor, visit func(*tableau.LineagePage) error) (tableau.LineageCursor, error)
}

// Planner finds a run's targets. Without Artifacts (lineage off) it
// returns the refresh map's.
type Planner struct {
	m       *refreshmap.Map
	dbt     Artifacts
	tab     Metadata
	index   state.LineageIndex
	sites   []Site
	aliases relname.Aliases
	alerts  refresh.Alerter
	logger  *slog.Logger
	now     func() time.Time
}

// Site is a Tableau site other than the default that lineage covers: the
// content there is found in its own index, and looked up with its own
// Metadata API, and refreshed there.
type Site struct {
	Name     string // the site's content URL
	Metadata Metadata
	Index    state.LineageIndex
}

// Option configures a Planner or a Builder.
type Option func(*options)

type options struct {
	aliases relname.Aliases
	alerts  refresh.Alerter
	logger  *slog.Logger
	now     func() time.Time
	sites   []Site
}

// WithSites has lineage cover these sites besides the default one: a
// Planner finds the content over a run's changes on each, at once, and a
// Builder builds each one's index in turn.
func WithSites(sites ...Site) Option { return func(o *options) { o.sites = append(o.sites, sites...) } }

func apply(opts []Option) options {
	o := options{logger: slog.New(slog.DiscardHandler), now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithAliases maps dbt's database names to Tableau's
// (LINEAGE_DATABASE_ALIASES).
func WithAliases(a relname.Aliases) Option { return func(o *options) { o.aliases = a } }

// WithAlerts tells a person when lineage cannot work for a reason only they
// can fix: the Metadata API off, or a user not allowed to see lineage.
func WithAlerts(a refresh.Alerter) Option { return func(o *options) { o.alerts = a } }

// WithLogger sets where lineage logs; by default nowhere.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithClock sets the clock (the day notifications are keyed by).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// NewPlanner returns a Planner for m. With dbt, tab and index all set,
// lineage adds what the run changed; with any of them nil it is off and
// the map alone decides.
func NewPlanner(m *refreshmap.Map, dbt Artifacts, tab Metadata, index state.LineageIndex, opts ...Option) *Planner {
	o := apply(opts)
	if m == nil {
		m = refreshmap.Empty()
	}
	p := &Planner{m: m, aliases: o.aliases, alerts: o.alerts, logger: o.logger, now: o.now}
	if dbt != nil && tab != nil && index != nil {
		p.dbt, p.tab, p.index, p.sites = dbt, tab, index, o.sites
	}
	return p
}

// MapOnly is a Planner without lineage: the refresh map decides.
func MapOnly(m *refreshmap.Map) *Planner { return NewPlanner(m, nil, nil, nil) }

// Map returns the planner's refresh map.
func (p *Planner) Map() *refreshmap.Map { return p.m }

// On reports whether lineage adds to the map.
func (p *Planner) On() bool { return p.dbt != nil }

// Plan is what a run refreshes, and what lineage saw.
type Plan struct {
	// Targets are the map's entries for the job and the content lineage
	// found, once each, less the map's exclusions.
	Targets []refresh.Target
	// Excluded are targets the map's exclusions removed; Live is content
	// that reads a changed table over a live connection (nothing to
	// refresh).
	Excluded, Live []refresh.Target
	// Changed is everything the run changed; Unmatched the changes no
	// Tableau content reads (an alias missing, or nothing built on them).
	Changed   []dbtartifacts.Change
	Unmatched []dbtartifacts.Change
	// Lookups counts targeted Metadata API lookups (at most one per site).
	Lookups int
	// Err is why lineage could not add what the run changed; the map's
	// targets are in Targets all the same. Retry says whether a later
	// attempt may succeed (artifacts not ready yet, an outage).
	Err   error
	Retry bool
}

// Plan returns the targets of run. It never fails as a whole: the map's
// targets are always there, and a failure of lineage is in Plan.Err.
func (p *Planner) Plan(ctx context.Context, run refresh.Run) Plan {
	var plan Plan
	seen := map[string]bool{}
	add := func(t refresh.Target) {
		if seen[t.Key()] {
			return
		}
		if p.m.Excluded(run.DBTJobID, t.Target) {
			plan.Excluded = append(plan.Excluded, t)
			seen[t.Key()] = true
			return
		}
		seen[t.Key()] = true
		plan.Targets = append(plan.Targets, t)
	}
	mapped := p.m.Targets(run.DBTJobID)
	for _, t := range refresh.MapTargets(mapped, run.DBTJobID) {
		add(t)
	}
	if !p.On() {
		return plan
	}
	log := p.logger.With("dbt_run_id", run.RunID, "dbt_job_id", run.DBTJobID)
	if c, ok := p.dbt.(interface{ Check(context.Context) error }); ok {
		// Lineage is on when the secret has the dbt token it needs; without
		// it the map alone decides, which is no failure.
		if err := c.Check(ctx); err != nil {
			log.WarnContext(ctx, "lineage skipped for this run: the map's targets only", "reason", err.Error())
			return plan
		}
	}
	found, err := p.lineage(ctx, run, &plan)
	if err != nil {
		plan.Err, plan.Retry = err, retryable(err)
		if plan.Retry {
			log.WarnContext(ctx, "lineage not available yet; the map's targets are refreshed, the run's lineage on a retry", "error", err)
		} else {
			log.ErrorContext(ctx, "lineage failed; the map's targets are refreshed", "error", err)
		}
	}
	// Content is refreshed incrementally only when every relation of the
	// run it reads was built incrementally: an incremental refresh reads
	// new rows, and a relation rebuilt in full may have changed old ones.
	incremental := map[string]bool{}
	for _, f := range found {
		k := f.Key()
		if on, seen := incremental[k]; seen {
			incremental[k] = on && f.incremental
		} else {
			incremental[k] = f.incremental
		}
	}
	lineageIncremental := p.m.LineageIncremental(run.DBTJobID)
	for _, f := range found {
		t := f.Target
		// Content the map lists by name is the map's: refreshed once, as
		// the map's entry, in full when the run rebuilt what it reads in
		// full, whatever the entry asks.
		if i := slices.IndexFunc(mapped, func(e refreshmap.Target) bool { return e.Names(t.Target) }); i >= 0 {
			if mapped[i].Incremental && !incremental[t.Key()] {
				plan.fullRefresh(mapped[i].Key(), f.node)
			}
			continue
		}
		if lineageIncremental && incremental[t.Key()] {
			t.Incremental = true
			t.Why += "; refreshed incrementally, as the map's lineage.incremental asks"
		}
		add(t)
	}
	return plan
}

// fullRefresh turns the incremental refresh the map's entry key asks for
// into a full one, saying which rebuilt node made it so.
func (plan *Plan) fullRefresh(key, node string) {
	for i := range plan.Targets {
		if t := &plan.Targets[i]; t.Key() == key && t.Incremental {
			t.Incremental = false
			t.Why += "; refreshed in full: the run rebuilt " + node + " in full"
		}
	}
}

// found is content lineage found, with whether the change that leads to it
// was built incrementally, and the change's node.
type found struct {
	refresh.Target
	incremental bool
	node        string
}

// lineage finds the content downstream of what the run changed.
func (p *Planner) lineage(ctx context.Context, run refresh.Run, plan *Plan) ([]found, error) {
	runID, err := strconv.ParseInt(run.RunID, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("lineage: dbt run id %q is not a number", run.RunID)
	}
	cs, err := p.Changes(ctx, runID)
	if err != nil {
		return nil, err
	}
	plan.Changed = cs.Changes
	if len(cs.Unnamed) > 0 {
		p.logger.WarnContext(ctx, "lineage: rebuilt nodes without a relation name (is the manifest older than the run?)",
			"dbt_run_id", run.RunID, "reason", strings.Join(cs.Unnamed, ", "))
	}
	return p.targets(ctx, cs.Changes, plan)
}

// Changes reads what run runID changed from its artifacts: run_results.json
// of every step that builds relations, and manifest.json.
func (p *Planner) Changes(ctx context.Context, runID int64) (dbtartifacts.ChangeSet, error) {
	var (
		steps   []dbtcloud.RunStep
		m       *dbtartifacts.Manifest
		stepErr error
		manErr  error
		wg      sync.WaitGroup
	)
	// The steps and the manifest at once; then the steps' run results.
	wg.Add(2)
	go func() {
		defer wg.Done()
		steps, stepErr = p.dbt.GetRunSteps(ctx, runID)
	}()
	go func() {
		defer wg.Done()
		m, manErr = p.readManifest(ctx, runID)
	}()
	wg.Wait()
	if errors.Is(stepErr, dbtcloud.ErrNotFound) {
		// The run itself is unknown, not just its artifacts: no retry finds it.
		return dbtartifacts.ChangeSet{}, fmt.Errorf("lineage: dbt Cloud has no run %d in this account: is DBT_ACCOUNT_ID the account of the webhook's job? (%w)", runID, stepErr)
	}
	if err := errors.Join(stepErr, manErr); err != nil {
		return dbtartifacts.ChangeSet{}, fmt.Errorf("lineage: %w", err)
	}
	var building []dbtcloud.RunStep
	for _, s := range steps {
		if dbtartifacts.CommandBuildsRelations(s.Command()) {
			building = append(building, s)
		}
	}
	results := make([]*dbtartifacts.RunResults, len(building))
	errs := make([]error, len(building))
	for i, s := range building {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = p.readRunResults(ctx, runID, s.Index)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return dbtartifacts.ChangeSet{}, fmt.Errorf("lineage: %w", err)
	}
	cs, err := dbtartifacts.Changed(m, results...)
	if err != nil {
		return dbtartifacts.ChangeSet{}, fmt.Errorf("lineage: %w", err)
	}
	return cs, nil
}

func (p *Planner) readManifest(ctx context.Context, runID int64) (*dbtartifacts.Manifest, error) {
	body, err := p.dbt.GetArtifact(ctx, runID, "manifest.json", 0)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	m, err := dbtartifacts.ReadManifest(body)
	if err != nil {
		return nil, fmt.Errorf("manifest.json of run %d: %w", runID, err)
	}
	return m, nil
}

func (p *Planner) readRunResults(ctx context.Context, runID int64, step int) (*dbtartifacts.RunResults, error) {
	body, err := p.dbt.GetArtifact(ctx, runID, "run_results.json", step)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	r, err := dbtartifacts.ReadRunResults(body)
	if err != nil {
		return nil, fmt.Errorf("run_results.json of run %d step %d: %w", runID, step, err)
	}
	return r, nil
}

// change is one changed relation and the index keys it may be found under.
type change struct {
	dbtartifacts.Change
	name relname.Name
	keys []string
}

// Targets returns the content that reads the changed relations: from the
// index, and for relations the index does not know, from one targeted
// Metadata API lookup. Content over a live connection goes to plan.Live,
// changes no content reads to plan.Unmatched.
func (p *Planner) Targets(ctx context.Context, changes []dbtartifacts.Change, plan *Plan) ([]refresh.Target, error) {
	fs, err := p.targets(ctx, changes, plan)
	out := make([]refresh.Target, len(fs))
	for i, f := range fs {
		out[i] = f.Target
	}
	return out, err
}

func (p *Planner) targets(ctx context.Context, changes []dbtartifacts.Change, plan *Plan) ([]found, error) {
	var named []change
	var keys []string
	for _, c := range changes {
		n, err := relationName(c)
		if err != nil {
			p.logger.WarnContext(ctx, "lineage: a changed relation's name cannot be read", "reason", c.Node+": "+err.Error())
			plan.Unmatched = append(plan.Unmatched, c)
			continue
		}
		ch := change{Change: c, name: n}
		for _, cand := range p.aliases.Candidates(n) {
			ch.keys = append(ch.keys, cand.String())
		}
		keys = append(keys, ch.keys...)
		named = append(named, ch)
	}
	if len(named) == 0 {
		return nil, nil
	}
	// Every site at once: its index, then its lookup of what the index
	// does not know.
	sites := append([]Site{{Metadata: p.tab, Index: p.index}}, p.sites...)
	reads := make([]siteReads, len(sites))
	var wg sync.WaitGroup
	for i, site := range sites {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reads[i] = p.siteReads(ctx, site, named, keys)
		}()
	}
	wg.Wait()
	var errs []error
	for _, r := range reads {
		plan.Lookups += r.lookups
		if r.storeErr != nil {
			return nil, r.storeErr
		}
		errs = append(errs, r.lookupErr)
	}
	var out []found
	for _, c := range named {
		matched := false
		for i, site := range sites {
			var rs []state.LineageContent
			for _, k := range c.keys {
				rs = append(rs, reads[i].indexed[k]...)
			}
			matched = matched || len(rs) > 0
			state.SortContent(rs)
			for _, r := range rs {
				t := refresh.Target{
					Target: refreshmap.Target{Kind: refreshmap.Kind(r.Kind), ID: r.LUID, Name: r.Name, Project: r.Project, Site: site.Name},
					Source: refresh.SourceLineage,
					Why:    why(c, r),
				}
				if !r.Extract {
					plan.Live = append(plan.Live, t)
					continue
				}
				out = append(out, found{Target: t, incremental: c.Incremental, node: c.Node})
			}
		}
		if !matched {
			plan.Unmatched = append(plan.Unmatched, c.Change)
		}
	}
	// What the indexes know still counts; the rest waits.
	return out, errors.Join(errs...)
}

// siteReads is what one site's content reads of a run's changes.
type siteReads struct {
	indexed   map[string][]state.LineageContent
	lookups   int
	storeErr  error // the index could not be read
	lookupErr error // the lookup of what it does not know failed
}

// siteReads reads the site's index for the changes, and looks up on the
// site, in one query, the tables the index does not know.
func (p *Planner) siteReads(ctx context.Context, site Site, named []change, keys []string) siteReads {
	var r siteReads
	indexed, err := site.Index.LookupLineage(ctx, keys)
	if err != nil {
		r.storeErr = &storeError{err}
		return r
	}
	var unknown []change
	for _, c := range named {
		if !anyKey(indexed, c.keys) {
			unknown = append(unknown, c)
		}
	}
	if len(unknown) > 0 {
		found, err := p.lookup(ctx, site, unknown)
		r.lookups++
		r.lookupErr = err
		for k, cs := range found {
			indexed[k] = append(indexed[k], cs...)
		}
	}
	r.indexed = indexed
	return r
}

// lookup asks the site's Metadata API, in one query, for the tables the
// index does not know and returns what reads them, keyed as the index is.
func (p *Planner) lookup(ctx context.Context, site Site, unknown []change) (map[string][]state.LineageContent, error) {
	var names []string
	seen := map[string]bool{}
	for _, c := range unknown {
		if t := c.name.Table(); !seen[t] {
			seen[t] = true
			names = append(names, t)
		}
	}
	res, err := site.Metadata.LookupTables(ctx, names)
	if err != nil {
		p.notifyMetadata(ctx, site.Name, err)
		if site.Name != "" {
			return nil, fmt.Errorf("lineage: look up %d tables the index of site %q does not know: %w", len(names), site.Name, err)
		}
		return nil, fmt.Errorf("lineage: look up %d tables the index does not know: %w", len(names), err)
	}
	if res.Partial || res.HiddenTables > 0 {
		p.logger.WarnContext(ctx, "lineage: Tableau's answer is incomplete", "reason", fmt.Sprintf("partial=%t hidden tables=%d; %s", res.Partial, res.HiddenTables, tableau.HiddenTablesFix))
	}
	return Tables(res.Edges()), nil
}

// notifyMetadata tells a person, once a day (per site), that lineage needs
// them.
func (p *Planner) notifyMetadata(ctx context.Context, site string, err error) {
	fix := tableau.MetadataFix(err)
	if fix == "" || p.alerts == nil {
		return
	}
	key, on := "lineage-metadata:", ""
	if site != "" {
		key, on = "lineage-metadata:"+site+":", fmt.Sprintf("On Tableau site %q: ", site)
	}
	m := notify.Message{Kind: notify.KindLineageUnavailable, Reason: on + fix + " (" + err.Error() + "). The refresh map's targets are still refreshed.", At: p.now()}
	if aerr := p.alerts.Raise(ctx, key+p.now().UTC().Format(time.DateOnly), m); aerr != nil {
		p.logger.WarnContext(ctx, "notification pending", "error", aerr)
	}
}

// Tables turns Tableau's lineage edges into index entries, keyed by the
// canonical names of the tables; tables whose names cannot be read (hidden
// by permissions) are left out.
func Tables(edges []tableau.LineageEdge) map[string][]state.LineageContent {
	out := map[string][]state.LineageContent{}
	for _, e := range edges {
		if e.Table.Hidden() {
			continue
		}
		n, err := relname.FromParts(e.Table.Database, e.Table.Schema, e.Table.Name)
		if err != nil {
			continue
		}
		out[n.String()] = append(out[n.String()], state.LineageContent{
			Kind: string(e.Target.Kind), LUID: e.Target.LUID, Name: e.Target.Name, Project: e.Target.ProjectName,
			Extract: e.Target.Extract, Via: e.Via,
		})
	}
	return out
}

// relationName is the name to match a change by: its parts from the
// manifest where it has them, else the relation dbt rendered.
func relationName(c dbtartifacts.Change) (relname.Name, error) {
	if c.Schema != "" && c.Identifier != "" {
		return relname.FromParts(c.Database, c.Schema, c.Identifier)
	}
	return relname.Parse(c.Relation)
}

func anyKey(m map[string][]state.LineageContent, keys []string) bool {
	for _, k := range keys {
		if len(m[k]) > 0 {
			return true
		}
	}
	return false
}

// why renders the chain from the dbt node to the content, e.g.
// `model.shop.orders → ANALYTICS.MARTS.ORDERS → data source "Orders" (Finance)`.
func why(c change, r state.LineageContent) string {
	what := "data source"
	if r.Kind == string(refreshmap.Workbook) {
		what = "workbook"
	}
	s := fmt.Sprintf("%s → %s → %s %q", c.Why(), c.name, what, r.Name)
	if r.Project != "" {
		s += " (" + r.Project + ")"
	}
	if r.Via != "" && r.Via != "published data source" {
		s += ", through its " + r.Via
	}
	if c.Incremental {
		s += "; the model was built incrementally"
	}
	return s
}

// retryable reports whether a lineage failure may pass on its own: the
// artifacts are not there yet, dbt Cloud or Tableau or the state table
// failed for now.
func retryable(err error) bool {
	switch {
	case errors.Is(err, dbtcloud.ErrArtifactNotAvailable), errors.Is(err, io.ErrUnexpectedEOF):
		return true
	case tableau.MetadataFix(err) != "":
		return false
	case dbtcloud.Retryable(err), tableau.Retryable(err):
		return true
	}
	var se *storeError
	return errors.As(err, &se)
}

// storeError is the lineage index (the state table) failing: transient.
type storeError struct{ err error }

func (e *storeError) Error() string { return "lineage: " + e.err.Error() }
func (e *storeError) Unwrap() error { return e.err }

// Sorted returns targets ordered by name, for stable output.
func Sorted(ts []refresh.Target) []refresh.Target {
	out := append([]refresh.Target(nil), ts...)
	sort.Slice(out, func(a, b int) bool { return out[a].String() < out[b].String() })
	return out
}
