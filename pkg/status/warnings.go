package status

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
)

// MessagePrefix starts the message of every data quality warning the
// bridge puts on Tableau content. With the warning's id, remembered in the
// target's status, it marks the warnings the bridge may change or remove:
// no other warning is ever touched.
const MessagePrefix = "[dbt-tableau-refresh]"

// maxNotes bounds Tableau's notes quoted in a warning.
const maxNotes = 600

// Warnings is what the Recorder asks Tableau (a *tableau.Client).
type Warnings interface {
	AddDataQualityWarning(ctx context.Context, contentType, contentID string, w *tableau.DataQualityWarning) (*tableau.DataQualityWarning, error)
	DataQualityWarnings(ctx context.Context, contentType, contentID string) ([]*tableau.DataQualityWarning, error)
	UpdateDataQualityWarning(ctx context.Context, id string, w *tableau.DataQualityWarning) (*tableau.DataQualityWarning, error)
	DeleteDataQualityWarning(ctx context.Context, id string) error
}

// WithQualityWarnings has the Recorder put a data quality warning on a
// target's content when its refresh fails or it goes stale, and take it
// off when a later refresh succeeds (TABLEAU_QUALITY_WARNINGS=true). w is
// the default site's client; see WithSiteWarnings for the others.
func WithQualityWarnings(w Warnings) Option { return func(o *options) { o.warnings = w } }

// WithSiteWarnings gives the client of each site other than the default,
// for the warnings on content there; without it content on other sites
// gets none.
func WithSiteWarnings(client func(site string) (Warnings, error)) Option {
	return func(o *options) { o.siteWarnings = client }
}

// api is the client that puts warnings on a target's content: its site's.
func (r *Recorder) api(site string) (Warnings, error) {
	switch {
	case site == "":
		return r.o.warnings, nil
	case r.o.siteWarnings == nil:
		return nil, fmt.Errorf("the content is on Tableau site %q, and the status recorder knows the default site only", site)
	}
	return r.o.siteWarnings(site)
}

// Recorder keeps the targets' statuses: it is the Status of the refresher
// (package refresh) and of the follow-up's tracker (package followup), and
// with WithQualityWarnings it keeps the warnings on their content.
type Recorder struct {
	store state.TargetStatuses
	o     options
	obj   Objectives
}

// NewRecorder returns a Recorder writing to store. It takes WithMap and
// WithFreshnessSLA (the objectives Sweep judges by), WithQualityWarnings,
// WithLogger and WithClock.
func NewRecorder(store state.TargetStatuses, opts ...Option) *Recorder {
	o := apply(opts)
	return &Recorder{store: store, o: o, obj: NewObjectives(o.sla, o.m)}
}

// Record implements the Status of packages refresh and followup.
func (r *Recorder) Record(ctx context.Context, t state.StatusTarget, run state.TargetRun) error {
	return r.store.RecordRun(ctx, t, run)
}

// Settled implements the Status of packages refresh and followup: a
// failure puts a warning on the content, a success takes the bridge's off.
// Tableau's refusals are logged; the refresh's own outcome stands.
func (r *Recorder) Settled(ctx context.Context, t state.StatusTarget, run state.TargetRun) {
	if r.o.warnings == nil {
		return
	}
	switch {
	case run.Result == state.OutcomeSucceeded:
		r.clear(ctx, t, run)
	case failed(run.Result):
		r.put(ctx, t, run, state.OutcomeFailed)
	}
}

// Sweep implements the Status of package followup: a target that went
// stale, and has no warning of the bridge's on it yet, gets one.
func (r *Recorder) Sweep(ctx context.Context) error {
	if r.o.warnings == nil {
		return nil
	}
	statuses, err := r.store.TargetStatuses(ctx)
	if err != nil {
		return err
	}
	now := r.o.now()
	for _, s := range statuses {
		if s.Kind != tableau.WarningContentDatasource || s.Warning.ID != "" || s.LastSuccess == nil || !isStale(s.LastSuccess, r.obj.For(s.Key), now) {
			// Not a data source (workbooks take no warnings), already
			// warned (a failure warning says more than a stale one), or
			// never refreshed by the bridge: nothing to judge by.
			continue
		}
		r.put(ctx, s.StatusTarget, *s.LastSuccess, state.OutcomeStale)
	}
	return nil
}

// put puts the bridge's warning on the content, or changes the one it put
// there before: found by the id remembered or, should that be lost, by the
// message prefix.
func (r *Recorder) put(ctx context.Context, t state.StatusTarget, run state.TargetRun, reason state.Outcome) {
	log := r.o.logger.With("target", t.Key, "tableau_item_id", t.ItemID, "dbt_run_id", run.RunID, "reason", string(reason))
	if t.Kind != tableau.WarningContentDatasource || t.ItemID == "" {
		log.InfoContext(ctx, "no data quality warning: Tableau takes them on published data sources only, and the workbook shows those of its data sources")
		return
	}
	w := &tableau.DataQualityWarning{Type: tableau.WarningTypeWarning, IsActive: true, IsSevere: true, Message: r.message(t, run, reason)}
	if reason == state.OutcomeStale {
		w.Type, w.IsSevere = tableau.WarningTypeStale, false
	}
	api, err := r.api(t.Site)
	if err != nil {
		log.WarnContext(ctx, "no data quality warning put", "error", err)
		return
	}
	existing, err := api.DataQualityWarnings(ctx, tableau.WarningContentDatasource, t.ItemID)
	if err != nil {
		log.WarnContext(ctx, "could not read the data quality warnings; none put", "error", err)
		return
	}
	var stored *tableau.DataQualityWarning
	if ours := oursAmong(existing); len(ours) > 0 {
		stored, err = api.UpdateDataQualityWarning(ctx, ours[0].ID, w)
	} else {
		stored, err = api.AddDataQualityWarning(ctx, tableau.WarningContentDatasource, t.ItemID, w)
	}
	var te *tableau.Error
	switch {
	case errors.As(err, &te) && te.StatusCode == http.StatusConflict:
		log.InfoContext(ctx, "a person's data quality warning of that type is on the content; left alone", "error", err)
		return
	case err != nil:
		log.WarnContext(ctx, "could not put the data quality warning", "error", err)
		return
	}
	if err := r.store.SetWarning(ctx, t.Key, state.QualityWarning{ID: stored.ID, Reason: reason, RunID: run.RunID}); err != nil {
		// The prefix finds it again next time.
		log.WarnContext(ctx, "data quality warning put but not recorded", "error", err)
		return
	}
	log.InfoContext(ctx, "data quality warning put on the content")
}

// clear removes the bridge's warnings from the content, and only those.
func (r *Recorder) clear(ctx context.Context, t state.StatusTarget, run state.TargetRun) {
	if t.Kind != tableau.WarningContentDatasource || t.ItemID == "" {
		return
	}
	log := r.o.logger.With("target", t.Key, "tableau_item_id", t.ItemID, "dbt_run_id", run.RunID)
	api, err := r.api(t.Site)
	if err != nil {
		log.WarnContext(ctx, "the bridge's data quality warnings, if any, stay until the next success", "error", err)
		return
	}
	existing, err := api.DataQualityWarnings(ctx, tableau.WarningContentDatasource, t.ItemID)
	if err != nil {
		log.WarnContext(ctx, "could not read the data quality warnings; the bridge's, if any, stay until the next success", "error", err)
		return
	}
	removed := 0
	for _, w := range oursAmong(existing) {
		if err := api.DeleteDataQualityWarning(ctx, w.ID); err != nil && !errors.Is(err, tableau.ErrNotFound) {
			log.WarnContext(ctx, "could not remove the data quality warning", "error", err)
			return
		}
		removed++
	}
	if err := r.store.SetWarning(ctx, t.Key, state.QualityWarning{}); err != nil {
		log.WarnContext(ctx, "data quality warning removed but not recorded", "error", err)
		return
	}
	if removed > 0 {
		log.InfoContext(ctx, "data quality warning removed: the refresh succeeded")
	}
}

func oursAmong(ws []*tableau.DataQualityWarning) []*tableau.DataQualityWarning {
	var out []*tableau.DataQualityWarning
	for _, w := range ws {
		if strings.HasPrefix(w.Message, MessagePrefix) {
			out = append(out, w)
		}
	}
	return out
}

// message names the dbt run and the failure, or the staleness.
func (r *Recorder) message(t state.StatusTarget, run state.TargetRun, reason state.Outcome) string {
	var b strings.Builder
	b.WriteString(MessagePrefix + " ")
	dbt := "dbt run " + run.RunID
	if run.DBTJobID != "" {
		dbt += " (job " + run.DBTJobID + ")"
	}
	if reason == state.OutcomeStale {
		last := run.FinishedAt
		if last.IsZero() {
			last = run.At
		}
		fmt.Fprintf(&b, "Stale: no refresh succeeded within the freshness objective of %s. The last success was at %s, after %s.",
			duration(int64(r.obj.For(t.Key).Seconds())), last.UTC().Format("2006-01-02 15:04 UTC"), dbt)
	} else {
		notes := run.Notes
		if len(notes) > maxNotes {
			notes = strings.ToValidUTF8(notes[:maxNotes], "") + "…"
		}
		fmt.Fprintf(&b, "The refresh after %s failed", dbt)
		if notes != "" {
			b.WriteString(": " + notes)
		}
		b.WriteString(". The data may be out of date.")
	}
	if run.DBTRunURL != "" {
		b.WriteString(" " + run.DBTRunURL)
	}
	return b.String()
}
