// Package logging writes the functions' structured JSON logs. Attributes
// that belong to one invocation, such as the Lambda request id, travel in the
// context, so every line logged with that context carries them, including
// lines from packages that know nothing of Lambda.
//
// Both functions and the command-line tools log with one vocabulary, so that
// one CloudWatch Logs Insights query finds a run's lines wherever they were
// written. Keys are snake_case; ids are strings (dbt's run and job ids too,
// as its webhooks carry them), durations are Go duration strings ("1.5s"),
// times RFC 3339, counts numbers. The keys (vocabulary_test.go holds the
// list and fails on a key that is not in it):
//
//	request_id        the Lambda (or API Gateway) request id
//	dbt_job_id        dbt Cloud job id            dbt_run_id      dbt Cloud run id
//	dbt_run_url       link to the run             dbt_status      "Success", "Running", ...
//	event_id          dbt webhook event id        event_type      dbt webhook event type
//	target            a refresh map target, e.g. workbook "Sales" in project "Finance"
//	tableau_item_id   workbook or data source LUID
//	tableau_item_name its name                    tableau_job_id  refresh job LUID
//	tableau_site      a Tableau site's content URL (only for a site other than TABLEAU_SITE)
//	tableau_event     Tableau webhook event type  refresh_state   how a refresh job ended
//	rode_on           the refresh Tableau already had that a target rode on, before one more
//	result            what happened to a target or event (the reply's values)
//	targets, unsettled, failed, deferred          counts of targets
//	notes, reason     Tableau's job notes; why something failed or was skipped
//	error             an error's message (never a secret: errors do not carry them)
//	notification_key  the failure a notification is about; kind: its kind
//	method, path, status, bytes, duration          one HTTP call to an API
//	attempt, attempts, retry_in, retry_at          retries
//	age, ahead, next_check_in, triggered_at        times and waits
//	connection, stage, page_size, next_page_size, slowest_page, tables   lineage index pages
//
// NotificationsLost and ExternalRefreshes are CloudWatch embedded metrics, named
// as the template's alarms and dashboards name them.
package logging

import (
	"context"
	"io"
	"log/slog"
)

type ctxKey struct{}

// With returns a context whose log lines carry args (key-value pairs or
// slog.Attr values, as for slog.Logger.With).
func With(ctx context.Context, args ...any) context.Context {
	prev, _ := ctx.Value(ctxKey{}).([]any)
	next := make([]any, 0, len(prev)+len(args))
	return context.WithValue(ctx, ctxKey{}, append(append(next, prev...), args...))
}

// New returns a JSON logger at level writing to w.
func New(w io.Writer, level slog.Leveler) *slog.Logger {
	return slog.New(Handler{slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})})
}

// Handler adds the context's attributes to each record.
type Handler struct{ slog.Handler }

// Handle implements slog.Handler.
func (h Handler) Handle(ctx context.Context, r slog.Record) error {
	if args, ok := ctx.Value(ctxKey{}).([]any); ok {
		r.Add(args...)
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (h Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return Handler{h.Handler.WithAttrs(attrs)}
}

// WithGroup implements slog.Handler.
func (h Handler) WithGroup(name string) slog.Handler {
	return Handler{h.Handler.WithGroup(name)}
}
