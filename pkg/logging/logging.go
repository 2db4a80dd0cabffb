// Package logging writes the functions' structured JSON logs. Attributes
// that belong to one invocation, such as the Lambda request id, travel in the
// context, so every line logged with that context carries them, including
// lines from packages that know nothing of Lambda.
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
