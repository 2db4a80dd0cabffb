package notify

import (
	"context"
	"errors"
	"log/slog"
)

// Notifier delivers one message. Implementations are safe for concurrent use.
type Notifier interface {
	Notify(ctx context.Context, m Message) error
}

// ErrNoChannel is what LogNotifier returns: the message reached the log, as
// an error-level line (which a CloudWatch alarm can see), because no channel
// is configured. Callers count it as handled, not as sent.
var ErrNoChannel = errors.New("notify: no channel configured; the message went to the log")

// LogNotifier writes each message to a logger instead of sending it: failures
// at error level, successes at info. It stands in when no channel is
// configured, so that a failure still shows up (and can raise a CloudWatch
// alarm) rather than vanishing.
type LogNotifier struct {
	// Logger receives the messages; nil means slog.Default().
	Logger *slog.Logger
}

var _ Notifier = LogNotifier{}

// Notify implements Notifier. It always returns ErrNoChannel, so that the
// caller does not report the message as sent.
func (l LogNotifier) Notify(ctx context.Context, m Message) error {
	logger := l.Logger
	if logger == nil {
		logger = slog.Default()
	}
	level := slog.LevelError
	if !m.Kind.Failure() {
		level = slog.LevelInfo
	}
	// Only the fields the caller filled in, so the line stays readable.
	args := []any{"kind", string(m.Kind)}
	for _, f := range [][2]string{
		{"dbt_job_id", m.DBTJobID}, {"dbt_job_name", m.DBTJobName},
		{"dbt_run_id", m.DBTRunID}, {"dbt_run_url", m.DBTRunURL},
		{"tableau_item_kind", m.TableauItemKind}, {"tableau_item_name", m.TableauItemName},
		{"tableau_item_id", m.TableauItemID}, {"tableau_item_url", m.TableauItemURL},
		{"tableau_job_id", m.TableauJobID}, {"reason", m.Reason},
	} {
		if f[1] != "" {
			args = append(args, f[0], f[1])
		}
	}
	if !m.At.IsZero() {
		args = append(args, "at", m.At)
	}
	args = append(args, "channel", "log")
	logger.Log(ctx, level, "notify: "+m.Subject(), args...)
	return ErrNoChannel
}
