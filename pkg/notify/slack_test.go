package notify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/notify"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/remote"
)

// secret is the credential part of every test webhook URL; it must never
// show up in an error or a log line.
const secret = "T000/B000/XXXXsecretXXXX"

// reply is one canned answer from the fake Slack.
type reply struct {
	status     int
	body       string
	retryAfter string
	location   string
}

var ok = reply{status: http.StatusOK, body: "ok"}

// receiver is a fake Slack incoming webhook. It answers with replies in
// order, repeating the last one, and keeps every request body.
type receiver struct {
	t       *testing.T
	mu      sync.Mutex
	replies []reply
	bodies  [][]byte
}

// newReceiver starts a fake Slack and returns it with its webhook URL.
func newReceiver(t *testing.T, replies ...reply) (*receiver, string) {
	t.Helper()
	r := &receiver{t: t, replies: replies}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return r, srv.URL + "/services/" + secret
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost || req.URL.Path != "/services/"+secret {
		r.t.Errorf("fake Slack got %s %s, want POST /services/<secret>", req.Method, req.URL.Path)
	}
	if ct := req.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		r.t.Errorf("Content-Type = %q, want application/json", ct)
	}
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	n := len(r.bodies)
	r.bodies = append(r.bodies, body)
	rep := r.replies[min(n, len(r.replies)-1)]
	r.mu.Unlock()
	if rep.retryAfter != "" {
		w.Header().Set("Retry-After", rep.retryAfter)
	}
	if rep.location != "" {
		w.Header().Set("Location", rep.location)
	}
	w.WriteHeader(rep.status)
	_, _ = io.WriteString(w, rep.body)
}

func (r *receiver) attempts() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.bodies)
}

// payload decodes the last request.
func (r *receiver) payload() slackPayload {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var p slackPayload
	if len(r.bodies) == 0 {
		r.t.Fatal("fake Slack got no request")
	}
	if err := json.Unmarshal(r.bodies[len(r.bodies)-1], &p); err != nil {
		r.t.Fatalf("request body is not JSON: %v", err)
	}
	return p
}

type slackPayload struct {
	Text   string `json:"text"`
	Blocks []struct {
		Type string `json:"type"`
		Text struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"text"`
	} `json:"blocks"`
}

// sleeper records the waits the notifier asks for instead of sleeping, and
// notes any wait that would end after the context's deadline.
type sleeper struct {
	mu           sync.Mutex
	waits        []time.Duration
	pastDeadline []time.Duration
}

func (s *sleeper) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waits = append(s.waits, d)
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < d {
		s.pastDeadline = append(s.pastDeadline, d)
	}
	return ctx.Err()
}

// logBuffer collects log output from concurrent notifiers.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func debugLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// fastRetry keeps the recorded waits small and easy to check.
var fastRetry = remote.Policy{MaxAttempts: 4, BaseDelay: 100 * time.Millisecond, MaxDelay: 2 * time.Second}

// newSlack returns a notifier for url with recorded sleeps and logs.
func newSlack(t *testing.T, url string, policy remote.Policy) (*notify.Slack, *sleeper, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	s, err := notify.NewSlack(url, notify.WithRetryPolicy(policy), notify.WithLogger(debugLogger(logs)))
	if err != nil {
		t.Fatal(err)
	}
	sl := &sleeper{}
	notify.SetSleep(s, sl.sleep)
	return s, sl, logs
}

// assertNoSecret fails when the webhook's credential leaked into s.
func assertNoSecret(t *testing.T, what, s string) {
	t.Helper()
	if strings.Contains(s, "secret") || strings.Contains(s, "/services/") {
		t.Errorf("%s leaks the webhook URL: %s", what, s)
	}
}

func TestSlackRetries(t *testing.T) {
	tests := []struct {
		name         string
		replies      []reply
		wantAttempts int
		wantStatus   int    // 0: success
		wantBody     string // Slack's code in the error
		wantWaits    []time.Duration
		maxWaits     []time.Duration // ceilings for jittered waits
		wantRetry    bool            // Retryable(err)
	}{
		{name: "200 ok", replies: []reply{ok}, wantAttempts: 1},
		{name: "any 2xx is delivered", replies: []reply{{status: http.StatusOK, body: `{"ok":true}`}}, wantAttempts: 1},
		{
			name:         "429 then 200 waits Retry-After",
			replies:      []reply{{status: 429, body: "rate_limited", retryAfter: "1"}, ok},
			wantAttempts: 2, wantWaits: []time.Duration{time.Second},
		},
		{
			name:         "429 without Retry-After backs off",
			replies:      []reply{{status: 429}, ok},
			wantAttempts: 2, maxWaits: []time.Duration{100 * time.Millisecond},
		},
		{
			name:         "503 then 200",
			replies:      []reply{{status: 503, body: "service unavailable"}, ok},
			wantAttempts: 2, maxWaits: []time.Duration{100 * time.Millisecond},
		},
		{
			name:         "500s until attempts run out",
			replies:      []reply{{status: 500, body: "rollup_error"}},
			wantAttempts: 4, wantStatus: 500, wantBody: "rollup_error", wantRetry: true,
			maxWaits: []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond},
		},
		{
			name:         "Retry-After beyond MaxDelay ends retries",
			replies:      []reply{{status: 429, body: "rate_limited", retryAfter: "30"}, ok},
			wantAttempts: 1, wantStatus: 429, wantBody: "rate_limited", wantRetry: true,
		},
		{name: "400 invalid_payload", replies: []reply{{status: 400, body: "invalid_payload"}, ok}, wantAttempts: 1, wantStatus: 400, wantBody: "invalid_payload"},
		{name: "400 user_not_found", replies: []reply{{status: 400, body: "user_not_found"}, ok}, wantAttempts: 1, wantStatus: 400, wantBody: "user_not_found"},
		{name: "403 action_prohibited", replies: []reply{{status: 403, body: "action_prohibited"}, ok}, wantAttempts: 1, wantStatus: 403, wantBody: "action_prohibited"},
		{name: "403 invalid_token", replies: []reply{{status: 403, body: "invalid_token"}, ok}, wantAttempts: 1, wantStatus: 403, wantBody: "invalid_token"},
		{name: "404 no_service", replies: []reply{{status: 404, body: "no_service"}, ok}, wantAttempts: 1, wantStatus: 404, wantBody: "no_service"},
		{name: "404 channel_not_found", replies: []reply{{status: 404, body: "channel_not_found"}, ok}, wantAttempts: 1, wantStatus: 404, wantBody: "channel_not_found"},
		{name: "410 channel_is_archived", replies: []reply{{status: 410, body: "channel_is_archived"}, ok}, wantAttempts: 1, wantStatus: 410, wantBody: "channel_is_archived"},
		{
			name:         "redirect is not followed",
			replies:      []reply{{status: 302, location: "https://elsewhere.example/collect"}, ok},
			wantAttempts: 1, wantStatus: 302,
		},
		{
			name:         "long HTML body is cut",
			replies:      []reply{{status: 400, body: "<html>" + strings.Repeat("x", 5000) + "</html>"}},
			wantAttempts: 1, wantStatus: 400, wantBody: "<html>" + strings.Repeat("x", 91) + "...",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rcv, url := newReceiver(t, tt.replies...)
			s, sl, logs := newSlack(t, url, fastRetry)

			err := s.Notify(context.Background(), failed())

			if got := rcv.attempts(); got != tt.wantAttempts {
				t.Errorf("attempts = %d, want %d", got, tt.wantAttempts)
			}
			if tt.wantStatus == 0 {
				if err != nil {
					t.Fatalf("Notify: %v", err)
				}
			} else {
				var se *notify.SlackError
				if !errors.As(err, &se) {
					t.Fatalf("Notify error = %v, want *SlackError", err)
				}
				if se.StatusCode != tt.wantStatus || (tt.wantBody != "" && se.Body != tt.wantBody) {
					t.Errorf("SlackError = %d %q, want %d %q", se.StatusCode, se.Body, tt.wantStatus, tt.wantBody)
				}
				if se.Permanent() == tt.wantRetry {
					t.Errorf("Permanent() = %v for %d", se.Permanent(), se.StatusCode)
				}
				if got := notify.Retryable(err); got != tt.wantRetry {
					t.Errorf("Retryable = %v, want %v", got, tt.wantRetry)
				}
				if !strings.Contains(err.Error(), "127.0.0.1") {
					t.Errorf("error does not name the host: %v", err)
				}
				assertNoSecret(t, "error", err.Error())
			}
			if tt.wantWaits != nil && !equalDurations(sl.waits, tt.wantWaits) {
				t.Errorf("waits = %v, want %v", sl.waits, tt.wantWaits)
			}
			if tt.maxWaits != nil {
				if len(sl.waits) != len(tt.maxWaits) {
					t.Fatalf("waits = %v, want %d of them", sl.waits, len(tt.maxWaits))
				}
				for i, w := range sl.waits {
					if w < 0 || w > tt.maxWaits[i] {
						t.Errorf("wait %d = %s, want within [0, %s]", i, w, tt.maxWaits[i])
					}
				}
			}
			if tt.wantWaits == nil && tt.maxWaits == nil && len(sl.waits) != 0 {
				t.Errorf("waits = %v, want none", sl.waits)
			}
			assertNoSecret(t, "log", logs.String())
		})
	}
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSlackConnectionRefusedIsRetried(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/services/" + secret
	srv.Close() // nothing listens on the port any more

	s, sl, logs := newSlack(t, url, fastRetry)
	err := s.Notify(context.Background(), failed())
	if err == nil {
		t.Fatal("Notify to a closed port succeeded")
	}
	if len(sl.waits) != fastRetry.MaxAttempts-1 {
		t.Errorf("waits = %v, want %d (one per retry)", sl.waits, fastRetry.MaxAttempts-1)
	}
	if !notify.Retryable(err) {
		t.Errorf("Retryable(%v) = false, want true", err)
	}
	if !strings.Contains(err.Error(), "4 attempts") {
		t.Errorf("error does not say how often it tried: %v", err)
	}
	assertNoSecret(t, "error", err.Error())
	assertNoSecret(t, "log", logs.String())
	if !strings.Contains(logs.String(), "retrying Slack webhook") {
		t.Errorf("retries were not logged at debug: %s", logs.String())
	}
}

func TestSlackRespectsDeadline(t *testing.T) {
	tests := []struct {
		name    string
		reply   reply
		policy  remote.Policy
		timeout time.Duration
	}{
		{
			name:    "Retry-After past the deadline",
			reply:   reply{status: 429, body: "rate_limited", retryAfter: "20"},
			policy:  remote.Policy{MaxAttempts: 5, BaseDelay: time.Second, MaxDelay: time.Minute},
			timeout: 10 * time.Second,
		},
		{
			name:    "backoff longer than the time left",
			reply:   reply{status: 500, body: "rollup_error"},
			policy:  remote.Policy{MaxAttempts: 5, BaseDelay: time.Hour, MaxDelay: time.Hour},
			timeout: 30 * time.Second,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, url := newReceiver(t, tt.reply)
			s, sl, _ := newSlack(t, url, tt.policy)
			ctx, cancel := context.WithTimeout(context.Background(), tt.timeout)
			defer cancel()

			err := s.Notify(ctx, failed())

			var se *notify.SlackError
			if !errors.As(err, &se) || se.StatusCode != tt.reply.status {
				t.Fatalf("Notify error = %v, want Slack's %d: the real cause, not a deadline", err, tt.reply.status)
			}
			if len(sl.pastDeadline) != 0 {
				t.Errorf("slept %v, past the context's deadline", sl.pastDeadline)
			}
		})
	}
}

func TestSlackStopsWhenCancelled(t *testing.T) {
	rcv, url := newReceiver(t, ok)
	s, _, _ := newSlack(t, url, fastRetry)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	err := s.Notify(ctx, failed())
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Notify error = %v, want context.Canceled", err)
	}
	if notify.Retryable(err) {
		t.Error("Retryable(cancelled) = true")
	}
	if rcv.attempts() != 0 {
		t.Errorf("posted %d times with a cancelled context", rcv.attempts())
	}
	assertNoSecret(t, "error", err.Error())
}

func TestSlackPayload(t *testing.T) {
	rcv, url := newReceiver(t, ok)
	s, _, _ := newSlack(t, url, fastRetry)
	if err := s.Notify(context.Background(), failed()); err != nil {
		t.Fatal(err)
	}
	p := rcv.payload()

	if want := "Tableau refresh failed: Sales &amp; &lt;Margin&gt;"; p.Text != want {
		t.Errorf("text = %q, want %q", p.Text, want)
	}
	if len(p.Blocks) != 1 || p.Blocks[0].Type != "section" || p.Blocks[0].Text.Type != "mrkdwn" {
		t.Fatalf("blocks = %+v, want one section with mrkdwn text", p.Blocks)
	}
	got := p.Blocks[0].Text.Text
	for _, want := range []string{
		":x: *Tableau refresh failed*",
		"*dbt job:* Nightly build (id 70)",
		"*dbt run:* <https://cloud.getdbt.com/deploy/1/projects/2/runs/9001|9001>",
		"*Tableau workbook:* <https://tableau.example.com/#/site/s/workbooks/12|Sales &amp; &lt;Margin&gt;> (id 3f1c)",
		"*Tableau job:* 8d6e",
		"*At:* 2026-01-02T02:04:05Z",
		"*Reason:*\n>Datasource connection failed\n>&lt;!channel&gt; password &amp; user rejected",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("section text lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "<!channel>") {
		t.Errorf("a Tableau note could @channel everyone:\n%s", got)
	}
}

func TestSlackMrkdwnEdgeCases(t *testing.T) {
	tests := []struct {
		name    string
		m       notify.Message
		want    []string
		notWant []string
	}{
		{
			name: "non-http link is not clickable",
			m: notify.Message{Kind: notify.KindTableauRefreshFailed, TableauItemKind: "datasource",
				TableauItemName: "Orders", TableauItemURL: "javascript:alert(1)"},
			want:    []string{"*Tableau data source:* Orders"},
			notWant: []string{"javascript"},
		},
		{
			name: "pipe and angle brackets in a URL",
			m: notify.Message{Kind: notify.KindDBTRunFailed, DBTRunID: "5",
				DBTRunURL: "https://cloud.getdbt.com/runs/5?a=1&b=x|y>z"},
			want: []string{"*dbt run:* <https://cloud.getdbt.com/runs/5?a=1&amp;b=x%7Cy&gt;z|5>"},
		},
		{
			name: "link without a name",
			m:    notify.Message{Kind: notify.KindDBTRunStuck, DBTRunURL: "https://cloud.getdbt.com/runs/6"},
			want: []string{"*dbt run:* <https://cloud.getdbt.com/runs/6|open in dbt Cloud>"},
		},
		{
			name: "success",
			m:    notify.Message{Kind: notify.KindTableauRefreshSucceeded, TableauItemName: "Sales"},
			want: []string{":white_check_mark: *Tableau refresh succeeded*", "*Tableau item:* Sales"},
		},
		{
			name: "stuck is a warning",
			m:    notify.Message{Kind: notify.KindTableauJobStuck},
			want: []string{":warning: *Tableau refresh job is stuck*"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rcv, url := newReceiver(t, ok)
			s, _, _ := newSlack(t, url, fastRetry)
			if err := s.Notify(context.Background(), tt.m); err != nil {
				t.Fatal(err)
			}
			got := rcv.payload().Blocks[0].Text.Text
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("section text lacks %q:\n%s", w, got)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(got, w) {
					t.Errorf("section text holds %q:\n%s", w, got)
				}
			}
		})
	}
}

// Escaping can make a reason five times longer; the section must still fit
// Slack's 3000-character limit and not end in half an entity.
func TestSlackSectionFitsLimit(t *testing.T) {
	m := failed()
	m.TableauItemURL = "https://tableau.example.com/#/workbooks/" + strings.Repeat("9", 900)
	m.DBTRunURL = "https://cloud.getdbt.com/runs/" + strings.Repeat("8", 900)
	m.Reason = strings.Repeat("a&b ", 1000)
	rcv, url := newReceiver(t, ok)
	s, _, _ := newSlack(t, url, fastRetry)
	if err := s.Notify(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	got := rcv.payload().Blocks[0].Text.Text
	if len(got) > 3000 {
		t.Errorf("section text is %d bytes, over Slack's 3000", len(got))
	}
	if !strings.HasSuffix(got, "…") {
		t.Errorf("cut is not marked: ...%q", got[len(got)-20:])
	}
	trimmed := strings.TrimSuffix(got, "…")
	if i := strings.LastIndexByte(trimmed, '&'); i >= 0 && !strings.Contains(trimmed[i:], ";") {
		t.Errorf("cut splits an entity: ...%q", trimmed[max(0, len(trimmed)-10):])
	}
}

func TestNewSlackValidatesURL(t *testing.T) {
	tests := []struct {
		name    string
		url     string
		wantErr bool
	}{
		{"https", "https://hooks.slack.com/services/" + secret, false},
		{"http loopback IPv4", "http://127.0.0.1:8080/services/" + secret, false},
		{"http localhost", "http://localhost/services/" + secret, false},
		{"http loopback IPv6", "http://[::1]:9/services/" + secret, false},
		{"empty", "", true},
		{"http to a real host", "http://hooks.slack.com/services/" + secret, true},
		{"http to a private address", "http://10.0.0.5/services/" + secret, true},
		{"other scheme", "ftp://hooks.slack.com/services/" + secret, true},
		{"relative", "/services/" + secret, true},
		{"not a URL", "https://hooks.slack.com/%zz/" + secret, true},
		{"user info", "https://me:secretpw@hooks.slack.com/services/" + secret, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := notify.NewSlack(tt.url)
			if (err != nil) != tt.wantErr {
				t.Fatalf("NewSlack error = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				assertNoSecret(t, "error", err.Error())
			}
		})
	}
}

func TestNewSlackValidatesOptions(t *testing.T) {
	url := "https://hooks.slack.com/services/" + secret
	tests := []struct {
		name string
		opt  notify.SlackOption
	}{
		{"nil client", notify.WithHTTPClient(nil)},
		{"nil logger", notify.WithLogger(nil)},
		{"no attempts", notify.WithRetryPolicy(remote.Policy{BaseDelay: time.Second, MaxDelay: time.Second})},
		{"zero base delay", notify.WithRetryPolicy(remote.Policy{MaxAttempts: 2, MaxDelay: time.Second})},
		{"max below base", notify.WithRetryPolicy(remote.Policy{MaxAttempts: 2, BaseDelay: time.Second, MaxDelay: time.Millisecond})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := notify.NewSlack(url, tt.opt); err == nil {
				t.Error("NewSlack accepted a bad option")
			}
		})
	}
}

func TestSlackString(t *testing.T) {
	s, err := notify.NewSlack("https://hooks.slack.com/services/" + secret)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.String(); got != "slack" {
		t.Errorf("String() = %q, want the channel named without its URL", got)
	}
}

// A caller's client keeps its transport but loses its redirect policy, on a
// copy: the caller's client itself is not changed.
func TestWithHTTPClientIsNotModified(t *testing.T) {
	rcv, url := newReceiver(t, reply{status: 302, location: "/elsewhere"})
	client := &http.Client{}
	s, err := notify.NewSlack(url, notify.WithHTTPClient(client), notify.WithRetryPolicy(remote.Policy{MaxAttempts: 1, BaseDelay: 1, MaxDelay: 1}))
	if err != nil {
		t.Fatal(err)
	}
	var se *notify.SlackError
	if err := s.Notify(context.Background(), failed()); !errors.As(err, &se) || se.StatusCode != 302 || !se.Permanent() {
		t.Errorf("Notify error = %v, want a permanent 302", err)
	}
	if client.CheckRedirect != nil {
		t.Error("NewSlack changed the caller's client")
	}
	if rcv.attempts() != 1 {
		t.Errorf("attempts = %d, want 1", rcv.attempts())
	}
}

// Slack's notification text keeps what the ASCII-only SNS subject cannot.
func TestSlackTextKeepsUnicode(t *testing.T) {
	rcv, url := newReceiver(t, ok)
	s, _, _ := newSlack(t, url, fastRetry)
	m := notify.Message{Kind: notify.KindTableauRefreshFailed, TableauItemName: "Umsätze <EU>"}
	if err := s.Notify(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if got, want := rcv.payload().Text, "Tableau refresh failed: Umsätze &lt;EU&gt;"; got != want {
		t.Errorf("text = %q, want %q", got, want)
	}
}

// A Slack built on a URL provider follows the secret: no URL yet means the
// message goes to the log (and ErrNoChannel says it was not sent); a URL
// added or rotated later is posted to; a bad one is an error that does not
// quote it.
func TestSlackFromProvider(t *testing.T) {
	first, firstURL := newReceiver(t, ok)
	second, secondURL := newReceiver(t, ok)
	current := ""
	logs := &logBuffer{}
	s, err := notify.NewSlackFromProvider(notify.URLProviderFunc(func(context.Context) (string, error) { return current, nil }),
		notify.WithLogger(debugLogger(logs)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Notify(ctx, failed()); !errors.Is(err, notify.ErrNoChannel) {
		t.Fatalf("no URL yet: %v, want ErrNoChannel", err)
	}
	if !strings.Contains(logs.String(), `"level":"ERROR"`) {
		t.Errorf("the message did not reach the log at error level:\n%s", logs)
	}
	for _, tt := range []struct {
		url  string
		rcv  *receiver
		want int
	}{{firstURL, first, 1}, {secondURL, second, 1}} {
		current = tt.url
		if err := s.Notify(ctx, failed()); err != nil {
			t.Fatal(err)
		}
		if n := tt.rcv.attempts(); n != tt.want {
			t.Errorf("receiver got %d posts, want %d", n, tt.want)
		}
	}
	current = "http://hooks.slack.com/services/" + secret
	err = s.Notify(ctx, failed())
	if err == nil || !strings.Contains(err.Error(), "must use https") {
		t.Fatalf("plain http URL: %v", err)
	}
	assertNoSecret(t, "error", err.Error())
	assertNoSecret(t, "log", logs.String())
}
