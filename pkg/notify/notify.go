package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
)

// Notifier delivers one message. Implementations are safe for concurrent use.
type Notifier interface {
	Notify(ctx context.Context, m Message) error
}

// Multi sends each message to every notifier in it, concurrently, so that a
// Slack outage being retried does not eat the time SNS needed. Notify
// returns nil only when all succeed; otherwise the errors of the ones that
// failed, joined (each names its Slack host or SNS topic).
type Multi []Notifier

var _ Notifier = Multi(nil)

// Notify implements Notifier.
func (mu Multi) Notify(ctx context.Context, m Message) error {
	errs := make([]error, len(mu))
	var wg sync.WaitGroup
	for i, n := range mu {
		wg.Go(func() { errs[i] = n.Notify(ctx, m) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// LogNotifier writes each message to a logger instead of sending it: failures
// at error level, successes at info. New returns it when no channel is
// configured, so that a failure still shows up (and can raise a CloudWatch
// alarm) rather than vanishing.
type LogNotifier struct {
	// Logger receives the messages; nil means slog.Default().
	Logger *slog.Logger
}

var _ Notifier = LogNotifier{}

// Notify implements Notifier; it never fails.
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
	args = append(args, "channel", "none configured")
	logger.Log(ctx, level, "notify: "+m.Subject(), args...)
	return nil
}

// Options configures New. Every field is optional.
type Options struct {
	// SlackWebhookURL is a Slack incoming webhook; a secret, typically read
	// from Secrets Manager. Empty: no Slack.
	SlackWebhookURL string
	// SNSTopicARN is the topic to publish to. Empty: no SNS.
	SNSTopicARN string
	// SNS is the client for SNSTopicARN, e.g. sns.NewFromConfig(cfg);
	// required when SNSTopicARN is set.
	SNS SNSAPI
	// HTTPClient posts to Slack; nil means a client with a 10s timeout.
	HTTPClient *http.Client
	// Logger gets Slack's retries (debug) and, when nothing is configured,
	// the messages themselves; nil means slog.Default().
	Logger *slog.Logger
	// Retry bounds Slack's retries; the zero value means DefaultRetryPolicy.
	Retry RetryPolicy
}

// New builds the notifier the options ask for: Slack, SNS, or a Multi of
// both. With neither configured it returns a LogNotifier, which logs every
// failure at error level (successes at info), so a deployment without a
// channel still leaves a trace of each failure in its logs. An SNS client
// without a topic is not a channel and is ignored.
func New(opts Options) (Notifier, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	var out Multi
	if opts.SlackWebhookURL != "" {
		slackOpts := []SlackOption{WithLogger(logger), WithRetryPolicy(opts.Retry.orDefault())}
		if opts.HTTPClient != nil {
			slackOpts = append(slackOpts, WithHTTPClient(opts.HTTPClient))
		}
		s, err := NewSlack(opts.SlackWebhookURL, slackOpts...)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	if opts.SNSTopicARN != "" {
		if opts.SNS == nil {
			return nil, fmt.Errorf("notify: SNS topic %s is set but no SNS client was given", opts.SNSTopicARN)
		}
		s, err := NewSNS(opts.SNS, opts.SNSTopicARN)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	switch len(out) {
	case 0:
		return LogNotifier{Logger: logger}, nil
	case 1:
		return out[0], nil
	}
	return out, nil
}
