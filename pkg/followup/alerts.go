// Package followup closes the loop after a refresh is queued: it follows
// Tableau's refresh jobs to their end, takes in Tableau's webhook events, and
// tells people about failures — once per failure, retried until delivered.
package followup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/notify"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
)

// Alerts sends notifications through the outbox in the state table: a
// failure is keyed so that the same failure reported twice (by the jobs API
// and by Tableau's webhook, say) is sent once, and a notification that
// cannot be delivered now stays pending for the next follow-up.
type Alerts struct {
	outbox state.Outbox
	// channels are delivered and retried separately, so that a Slack outage
	// does not resend an e-mail that SNS already delivered.
	channels map[string]notify.Notifier
	logger   *slog.Logger
	now      func() time.Time
	// MaxAttempts bounds deliveries before a notification is given up on,
	// loudly: an error log and the NotificationsLost metric.
	maxAttempts int
	retryDelay  time.Duration
	successes   bool
}

// NewAlerts returns Alerts that deliver to channels, named for the outbox
// (e.g. "slack", "sns"). With none, messages go to the log at error level.
// It takes WithMaxAttempts, WithRetryDelay, WithNotifySuccess, WithLogger
// and WithClock.
func NewAlerts(outbox state.Outbox, channels map[string]notify.Notifier, opts ...Option) *Alerts {
	o := apply(opts)
	if len(channels) == 0 {
		channels = map[string]notify.Notifier{"log": notify.LogNotifier{Logger: o.logger}}
	}
	return &Alerts{outbox: outbox, channels: channels, logger: o.logger, now: o.now, maxAttempts: o.maxAttempts, retryDelay: o.retryDelay, successes: o.notifySuccess}
}

// Raise queues the message under key and tries to deliver it now. A key
// already raised is not sent again. Successes are dropped unless asked for.
// A message queued but not delivered yet is not an error here: it is logged
// and the next Flush retries it. An error means it could not be queued nor
// sent.
func (a *Alerts) Raise(ctx context.Context, key string, m notify.Message) error {
	if !m.Kind.Failure() && !a.successes {
		return nil
	}
	payload, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode notification %s: %w", key, err)
	}
	var errs []error
	for name, n := range a.channels {
		ckey := key + "#" + name
		fresh, err := a.outbox.Enqueue(ctx, state.Notification{Key: ckey, Payload: payload})
		switch {
		case err != nil:
			// Without the outbox there is no dedupe; sending anyway is
			// better than staying silent about a failure.
			a.logger.ErrorContext(ctx, "notification outbox unavailable; sending without dedupe", "notification_key", ckey, "error", err)
			errs = append(errs, n.Notify(ctx, m))
		case !fresh:
			a.logger.InfoContext(ctx, "failure already notified", "notification_key", ckey)
		default:
			_ = a.deliver(ctx, ckey, n, m) // logged there; Flush retries
		}
	}
	return errors.Join(errs...)
}

// Flush retries the notifications that are due.
func (a *Alerts) Flush(ctx context.Context) error {
	pending, err := a.outbox.Pending(ctx, a.now())
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range pending {
		var m notify.Message
		if err := json.Unmarshal(p.Payload, &m); err != nil {
			a.logger.ErrorContext(ctx, "unreadable notification dropped", "notification_key", p.Key, "error", err)
			_ = a.outbox.Failed(ctx, p.Key, "unreadable payload", a.now(), true)
			continue
		}
		n, ok := a.channels[p.Key[strings.LastIndex(p.Key, "#")+1:]]
		if !ok {
			a.logger.ErrorContext(ctx, "notification for a channel no longer configured dropped", "notification_key", p.Key, "NotificationsLost", 1, lostMetric(a.now()))
			_ = a.outbox.Failed(ctx, p.Key, "channel not configured", a.now(), true)
			continue
		}
		if err := a.deliver(ctx, p.Key, n, m); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (a *Alerts) deliver(ctx context.Context, key string, n notify.Notifier, m notify.Message) error {
	attempts, ok, err := a.outbox.Claim(ctx, key, a.now().Add(2*time.Minute))
	if err != nil || !ok {
		return err // another invocation is delivering it
	}
	sendErr := n.Notify(ctx, m)
	bg := context.WithoutCancel(ctx)
	switch {
	case sendErr == nil:
		a.logger.InfoContext(ctx, "notification sent", "notification_key", key, "kind", m.Kind)
		return a.outbox.Delivered(bg, key)
	case errors.Is(sendErr, notify.ErrNoChannel):
		// The message is the error-level line just logged; there is
		// nothing to send it to, and so nothing to retry.
		a.logger.InfoContext(ctx, "no notification channel configured; the message is in the log", "notification_key", key, "kind", m.Kind)
		return a.outbox.Delivered(bg, key)
	}
	giveUp := attempts >= a.maxAttempts || !notify.Retryable(sendErr)
	retryAt := a.now().Add(a.retryDelay << min(attempts, 10))
	if err := a.outbox.Failed(bg, key, sendErr.Error(), retryAt, giveUp); err != nil {
		a.logger.WarnContext(ctx, "could not record a failed notification", "notification_key", key, "error", err)
	}
	if giveUp {
		a.logger.ErrorContext(ctx, "notification lost: giving up",
			"notification_key", key, "kind", m.Kind, "attempts", attempts, "error", sendErr, "NotificationsLost", 1, lostMetric(a.now()))
		return fmt.Errorf("notification %s lost after %d attempts: %w", key, attempts, sendErr)
	}
	a.logger.WarnContext(ctx, "notification not delivered; will retry", "notification_key", key, "attempts", attempts, "retry_at", retryAt, "error", sendErr)
	return fmt.Errorf("notification %s not delivered yet: %w", key, sendErr)
}

// lostMetric is a CloudWatch embedded-metric-format record on the log line,
// so the template's alarm on NotificationsLost fires without a PutMetricData
// call (and its IAM permission).
func lostMetric(now time.Time) slog.Attr {
	return slog.Group("_aws",
		slog.Int64("Timestamp", now.UnixMilli()),
		slog.Any("CloudWatchMetrics", []map[string]any{{
			"Namespace":  MetricNamespace,
			"Dimensions": [][]string{{}},
			"Metrics":    []map[string]string{{"Name": "NotificationsLost", "Unit": "Count"}},
		}}),
	)
}

// MetricNamespace is the CloudWatch namespace of the bridge's own metrics.
const MetricNamespace = "DbtTableauRefresh"
