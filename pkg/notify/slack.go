package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/remote"
)

// Slack posts messages to a Slack incoming webhook.
//
// The webhook URL is a credential (anyone holding it can post to the
// channel), so Slack never logs it or puts it in an error: they name only
// its host.
//
// See https://api.slack.com/messaging/webhooks.
type Slack struct {
	urls   URLProvider
	client *http.Client
	retry  remote.Policy
	logger *slog.Logger
	sleep  func(context.Context, time.Duration) error
}

var _ Notifier = (*Slack)(nil)

// SlackOption configures NewSlack.
type SlackOption func(*Slack) error

// WithHTTPClient sets the client used to post. Redirects are refused (on a
// copy), so the payload is never re-sent somewhere the operator did not
// configure. Without it, remote.NewHTTPClient's is used.
func WithHTTPClient(c *http.Client) SlackOption {
	return func(s *Slack) error {
		if c == nil {
			return errors.New("notify: WithHTTPClient: client is nil")
		}
		s.client = c
		return nil
	}
}

// WithRetryPolicy sets how failed posts are retried (default
// remote.DefaultPolicy): Slack's 429 (waiting for its Retry-After when no
// longer than MaxDelay), 408 and 5xx replies, and failed connections. A
// post whose connection broke after it was sent is retried too: a duplicate
// alert costs less than a missed one.
func WithRetryPolicy(p remote.Policy) SlackOption {
	return func(s *Slack) error {
		if err := p.Validate(); err != nil {
			return fmt.Errorf("notify: %w", err)
		}
		s.retry = p
		return nil
	}
}

// WithLogger sets the logger for retries (debug level). Without it nothing
// is logged.
func WithLogger(l *slog.Logger) SlackOption {
	return func(s *Slack) error {
		if l == nil {
			return errors.New("notify: WithLogger: logger is nil")
		}
		s.logger = l
		return nil
	}
}

// NewSlack returns a notifier that posts to webhookURL. The URL must be
// https; plain http is accepted only for a loopback host, which is what
// tests and local runs use.
func NewSlack(webhookURL string, opts ...SlackOption) (*Slack, error) {
	if _, err := checkWebhookURL(webhookURL); err != nil {
		return nil, err
	}
	return NewSlackFromProvider(staticURL(webhookURL), opts...)
}

// URLProvider returns the webhook URL to post to now, or "" when none is
// configured. A Slack built on one follows a URL rotated in a secret; the
// provider should cache.
type URLProvider interface {
	SlackWebhookURL(ctx context.Context) (string, error)
}

// URLProviderFunc adapts a function to URLProvider.
type URLProviderFunc func(ctx context.Context) (string, error)

// SlackWebhookURL implements URLProvider.
func (f URLProviderFunc) SlackWebhookURL(ctx context.Context) (string, error) { return f(ctx) }

type staticURL string

func (u staticURL) SlackWebhookURL(context.Context) (string, error) { return string(u), nil }

// NewSlackFromProvider returns a notifier that posts to the URL p gives at
// each message. When p gives none, the message is logged at error level
// instead (as LogNotifier does) and Notify returns ErrNoChannel, so that a
// failure is never silent.
func NewSlackFromProvider(p URLProvider, opts ...SlackOption) (*Slack, error) {
	if p == nil {
		return nil, errors.New("notify: Slack URL provider is nil")
	}
	s := &Slack{
		urls:   p,
		client: remote.NewHTTPClient(),
		retry:  remote.DefaultPolicy(),
		logger: slog.New(slog.DiscardHandler),
		sleep:  remote.Sleep,
	}
	for _, opt := range opts {
		if err := opt(s); err != nil {
			return nil, err
		}
	}
	s.client = remote.RefuseRedirects(s.client)
	return s, nil
}

// checkWebhookURL returns the URL's host, for messages. Its errors never
// quote the URL, which may be the real secret mistyped.
func checkWebhookURL(raw string) (string, error) {
	u, err := remote.CheckURL(raw)
	if err != nil {
		return "", fmt.Errorf("notify: Slack webhook URL %w", err)
	}
	return u.Host, nil
}

// String names the notifier without its URL.
func (s *Slack) String() string { return "slack" }

// Notify posts m, retrying as the RetryPolicy allows. Any 2xx reply counts as
// delivered: Slack answers 200 "ok", and workflow webhooks answer JSON.
func (s *Slack) Notify(ctx context.Context, m Message) error {
	url, err := s.urls.SlackWebhookURL(ctx)
	if err != nil {
		return fmt.Errorf("notify: Slack webhook URL: %w", err)
	}
	if url == "" {
		return LogNotifier{Logger: s.logger}.Notify(ctx, m)
	}
	host, err := checkWebhookURL(url)
	if err != nil {
		return err
	}
	body, err := json.Marshal(slackPayloadFor(m))
	if err != nil {
		return fmt.Errorf("notify: encode Slack message: %w", err)
	}
	rt := remote.Retrier{
		Policy:    s.retry,
		Retryable: Retryable,
		Sleep:     s.sleep,
		OnRetry: func(ctx context.Context, attempt int, wait time.Duration, err error) {
			s.logger.DebugContext(ctx, "notify: retrying Slack webhook", "host", host,
				"kind", string(m.Kind), "attempt", attempt, "retry_in", wait.String(), "error", err.Error())
		},
	}
	return rt.Do(ctx, func(ctx context.Context) error { return s.post(ctx, url, host, body) })
}

func (s *Slack) post(ctx context.Context, url, host string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		// Not wrapped: the error would quote the URL.
		return fmt.Errorf("notify: build request for Slack webhook at %s", host)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	// The path is the credential: the error names the host alone.
	resp, err := remote.Do(s.client, req, "notify: post to Slack webhook at "+host, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	reply, _, _ := remote.ReadBody(resp, 1024)
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	return &SlackError{
		StatusCode: resp.StatusCode,
		Body:       asciiLine(string(reply), 100),
		Host:       host,
		RetryAfter: remote.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
	}
}

// slackPayload is the incoming-webhook body. Text is the fallback shown in
// notifications and by clients that cannot draw blocks.
// See https://api.slack.com/reference/block-kit/blocks#section.
type slackPayload struct {
	Text   string       `json:"text"`
	Blocks []slackBlock `json:"blocks"`
}

type slackBlock struct {
	Type string    `json:"type"`
	Text slackText `json:"text"`
}

type slackText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

func slackPayloadFor(m Message) slackPayload {
	return slackPayload{
		Text:   slackEscape(truncate(m.summary(), 150)),
		Blocks: []slackBlock{{Type: "section", Text: slackText{Type: "mrkdwn", Text: m.slackMrkdwn()}}},
	}
}

// slackSectionLimit is the most text a section block takes; Slack rejects
// the whole message (400 invalid_blocks) when it is longer.
const slackSectionLimit = 3000

// slackMrkdwn renders the message for a section block. Every value from
// outside is escaped, so a job name or a Tableau note cannot inject a link
// or an @channel mention.
// See https://api.slack.com/reference/surfaces/formatting#escaping.
func (m Message) slackMrkdwn() string {
	var b strings.Builder
	b.WriteString(m.Kind.emoji() + " *" + slackEscape(m.Kind.headline()) + "*")
	line := func(label, value string) {
		if value != "" {
			b.WriteString("\n*" + label + ":* " + value)
		}
	}
	job := slackEscape(m.dbtJob())
	line("dbt job", job)
	run := slackEscape(cleanLine(m.DBTRunID, maxNameLen))
	if run == "" && m.DBTRunURL != "" {
		run = "open in dbt Cloud"
	}
	line("dbt run", slackLink(m.DBTRunURL, run))

	item := slackEscape(m.itemName())
	id := slackEscape(cleanLine(m.TableauItemID, maxNameLen))
	if item == "" {
		item, id = id, ""
	}
	if item == "" && m.TableauItemURL != "" {
		item = "open in Tableau"
	}
	if item = slackLink(m.TableauItemURL, item); item != "" && id != "" {
		item += " (id " + id + ")"
	}
	line("Tableau "+slackEscape(m.itemKind()), item)
	line("Tableau job", slackEscape(cleanLine(m.TableauJobID, maxNameLen)))
	line("At", m.at())

	if reason := m.reason(); reason != "" {
		b.WriteString("\n*Reason:*")
		budget := slackSectionLimit - b.Len()
		var q strings.Builder
		for l := range strings.SplitSeq(reason, "\n") {
			// A literal '>' starts a quote; the text after it is escaped.
			q.WriteString("\n>" + slackEscape(l))
		}
		b.WriteString(cutEscaped(q.String(), budget))
	}
	return b.String()
}

// slackEscape replaces the three characters Slack treats as control
// characters with their HTML entities.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// slackLink renders <url|label>, or just label when raw is not an http(s)
// URL (a javascript: or slack: link must not become clickable).
func slackLink(raw, label string) string {
	raw = strings.TrimSpace(raw)
	u, err := url.Parse(raw)
	if raw == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || len(raw) > 1000 {
		return label
	}
	// '|' would end the URL part early; the entities are decoded by Slack.
	link := slackEscape(strings.ReplaceAll(raw, "|", "%7C"))
	if label == "" {
		return "<" + link + ">"
	}
	return "<" + link + "|" + label + ">"
}

// cutEscaped cuts escaped text to at most max bytes without splitting a
// rune or an entity such as "&amp;", marking the cut with an ellipsis.
func cutEscaped(s string, max int) string {
	const ellipsis = "…"
	if len(s) <= max {
		return s
	}
	if max < len(ellipsis) {
		return ""
	}
	cut := max - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	if amp := strings.LastIndexByte(s[:cut], '&'); amp >= 0 && !strings.Contains(s[amp:cut], ";") {
		cut = amp
	}
	return s[:cut] + ellipsis
}
