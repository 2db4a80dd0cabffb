package dbtcloud

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/remote"
)

const testToken = "dbtc_Test-Token_0123456789"

// testPolicy has small, distinct delays so each backoff step is recognisable.
var testPolicy = remote.Policy{MaxAttempts: 4, BaseDelay: 10 * time.Millisecond, MaxDelay: 80 * time.Millisecond}

// sleeps records the waits the client asked for; the client never really
// waits in these tests.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) get() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}

// setup returns a client pointed at a test server and the server's mux, in
// the manner of go-github's tests. Jitter is replaced by its ceiling so the
// backoff sequence is deterministic.
func setup(t *testing.T, opts ...Option) (*Client, *http.ServeMux, *sleeps) {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	base := []Option{WithBaseURL(srv.URL), WithAccountID(1), WithToken(testToken), WithRetryPolicy(testPolicy)}
	c, err := NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	rec := &sleeps{}
	c.sleep = func(ctx context.Context, d time.Duration) error {
		rec.mu.Lock()
		rec.d = append(rec.d, d)
		rec.mu.Unlock()
		return ctx.Err()
	}
	c.jitter = func(ceiling time.Duration) time.Duration { return ceiling }
	return c, mux, rec
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func reply(w http.ResponseWriter, code int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

func testMethod(t *testing.T, r *http.Request, want string) {
	t.Helper()
	if r.Method != want {
		t.Errorf("method = %s, want %s", r.Method, want)
	}
}

func testHeaders(t *testing.T, r *http.Request, withBody bool) {
	t.Helper()
	if got := r.Header.Get("Authorization"); got != "Token "+testToken {
		t.Errorf("Authorization = %q", got)
	}
	if got := r.Header.Get("Accept"); got != "application/json" {
		t.Errorf("Accept = %q", got)
	}
	if got := r.Header.Get("User-Agent"); !strings.HasPrefix(got, "dbt-tableau-refresh") {
		t.Errorf("User-Agent = %q", got)
	}
	if got, want := r.Header.Get("Content-Type"), map[bool]string{true: "application/json"}[withBody]; got != want {
		t.Errorf("Content-Type = %q, want %q", got, want)
	}
}

func testJSONBody(t *testing.T, r *http.Request, want string) {
	t.Helper()
	b, _ := io.ReadAll(r.Body)
	var got, exp any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("body %q is not JSON: %v", b, err)
	}
	_ = json.Unmarshal([]byte(want), &exp)
	if !reflect.DeepEqual(got, exp) {
		t.Errorf("body = %s, want %s", b, want)
	}
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestNewClient(t *testing.T) {
	required := []Option{WithAccountID(1), WithToken("t")}
	tests := []struct {
		name     string
		opts     []Option
		wantErr  string
		wantBase string
	}{
		{name: "defaults", opts: required, wantBase: "https://cloud.getdbt.com"},
		{name: "cell host", opts: append(required, WithBaseURL("https://ab123.us1.dbt.com")), wantBase: "https://ab123.us1.dbt.com"},
		{name: "region host with slash", opts: append(required, WithBaseURL("https://emea.dbt.com/")), wantBase: "https://emea.dbt.com"},
		{name: "single tenant with port", opts: append(required, WithBaseURL("https://dbt.acme.example:8443")), wantBase: "https://dbt.acme.example:8443"},
		{name: "loopback http", opts: append(required, WithBaseURL("http://127.0.0.1:8089")), wantBase: "http://127.0.0.1:8089"},
		{name: "missing account and token", wantErr: "account id is required"},
		{name: "missing token", opts: []Option{WithAccountID(1)}, wantErr: "API token is required"},
		{name: "zero account", opts: []Option{WithAccountID(0), WithToken("t")}, wantErr: "account id must be positive"},
		{name: "token with prefix", opts: []Option{WithAccountID(1), WithToken("Token abc")}, wantErr: "without a \"Token \" prefix"},
		{name: "token with newline", opts: []Option{WithAccountID(1), WithToken("abc\r\nX-Evil: 1")}, wantErr: "control characters"},
		{name: "http to a remote host", opts: append(required, WithBaseURL("http://cloud.getdbt.com")), wantErr: "must use https"},
		{name: "no scheme", opts: append(required, WithBaseURL("cloud.getdbt.com")), wantErr: "has no host"},
		{name: "api path", opts: append(required, WithBaseURL("https://cloud.getdbt.com/api/v2")), wantErr: "scheme and host only"},
		{name: "query", opts: append(required, WithBaseURL("https://cloud.getdbt.com?x=1")), wantErr: "scheme and host only"},
		{name: "credentials", opts: append(required, WithBaseURL("https://user:pw@cloud.getdbt.com")), wantErr: "must not carry a user or password"},
		{name: "nil HTTP client", opts: append(required, WithHTTPClient(nil)), wantErr: "HTTP client is nil"},
		{name: "nil logger", opts: append(required, WithLogger(nil)), wantErr: "logger is nil"},
		{name: "no attempts", opts: append(required, WithRetryPolicy(remote.Policy{MaxAttempts: 0, BaseDelay: 1, MaxDelay: 1})), wantErr: "MaxAttempts 0: want at least 1"},
		{name: "zero delay", opts: append(required, WithRetryPolicy(remote.Policy{MaxAttempts: 2, MaxDelay: 1})), wantErr: "want a positive delay"},
		{name: "max below base", opts: append(required, WithRetryPolicy(remote.Policy{MaxAttempts: 2, BaseDelay: 2, MaxDelay: 1})), wantErr: "MaxDelay"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewClient(tt.opts...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("NewClient() error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewClient() error = %v", err)
			}
			if c.BaseURL() != tt.wantBase {
				t.Errorf("BaseURL() = %q, want %q", c.BaseURL(), tt.wantBase)
			}
		})
	}
}

func TestNewClientReportsEveryProblem(t *testing.T) {
	_, err := NewClient(WithBaseURL("http://cloud.getdbt.com"), WithAccountID(-1))
	for _, want := range []string{"https", "account id must be positive", "API token is required"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %q", err, want)
		}
	}
}

func TestTriggerRun(t *testing.T) {
	c, mux, _ := setup(t)
	mux.HandleFunc("/api/v2/accounts/1/jobs/123/run/", func(w http.ResponseWriter, r *http.Request) {
		testMethod(t, r, "POST")
		testHeaders(t, r, true)
		testJSONBody(t, r, `{"cause":"dbt-tableau-refresh schedule 2024-03-19T11:57Z","git_branch":"main",
			"threads_override":8,"generate_docs_override":false,"steps_override":["dbt build --select tag:tableau"]}`)
		reply(w, 200, fixture(t, "trigger_run.json"))
	})

	run, err := c.TriggerRun(context.Background(), 123, &TriggerRunRequest{
		Cause:                "dbt-tableau-refresh schedule 2024-03-19T11:57Z",
		GitBranch:            "main",
		ThreadsOverride:      new(8),
		GenerateDocsOverride: new(false),
		StepsOverride:        []string{"dbt build --select tag:tableau"},
	})
	if err != nil {
		t.Fatalf("TriggerRun: %v", err)
	}
	if run.ID != 70403103939 || run.JobDefinitionID != 123 || run.AccountID != 1 || run.Status != StatusQueued ||
		run.StatusHumanized != "Queued" || !run.InProgress || run.IsComplete || run.StartedAt != nil || run.FinishedAt != nil ||
		run.GitSHA != "" || run.StatusMessage != "" || run.Href == "" {
		t.Errorf("run = %+v", run)
	}
	if !run.CreatedAt.Equal(utc("2024-03-19T11:57:15.55997Z")) {
		t.Errorf("CreatedAt = %v", run.CreatedAt)
	}
	tr := run.Trigger
	if tr == nil || tr.Cause != "dbt-tableau-refresh schedule 2024-03-19T11:57Z" || tr.ThreadsOverride == nil || *tr.ThreadsOverride != 8 ||
		tr.GenerateDocsOverride != nil || len(tr.StepsOverride) != 1 || tr.GitSHA != "" {
		t.Errorf("trigger = %+v", tr)
	}
}

func TestTriggerRunRejectsBadInput(t *testing.T) {
	c, mux, _ := setup(t)
	var calls atomic.Int32
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { calls.Add(1) })
	tests := []struct {
		name    string
		job     int64
		req     *TriggerRunRequest
		wantErr string
	}{
		{"nil request", 1, nil, "cause is required"},
		{"empty cause", 1, &TriggerRunRequest{}, "cause is required"},
		{"blank cause", 1, &TriggerRunRequest{Cause: " \t"}, "cause is required"},
		{"zero job", 0, &TriggerRunRequest{Cause: "x"}, "job id must be positive"},
		{"zero threads", 1, &TriggerRunRequest{Cause: "x", ThreadsOverride: new(0)}, "threads_override"},
		{"negative timeout", 1, &TriggerRunRequest{Cause: "x", TimeoutSecondsOverride: new(-1)}, "timeout_seconds_override"},
		{"empty step", 1, &TriggerRunRequest{Cause: "x", StepsOverride: []string{"dbt build", ""}}, "steps_override[1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := c.TriggerRun(context.Background(), tt.job, tt.req); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("TriggerRun() error = %v, want %q", err, tt.wantErr)
			}
		})
	}
	if calls.Load() != 0 {
		t.Errorf("invalid input reached the server %d times", calls.Load())
	}
}

func TestGetRun(t *testing.T) {
	c, mux, _ := setup(t)
	mux.HandleFunc("/api/v2/accounts/1/runs/36053848/", func(w http.ResponseWriter, r *http.Request) {
		testMethod(t, r, "GET")
		testHeaders(t, r, false)
		if got := r.URL.Query().Get("include_related"); got != `["trigger"]` {
			t.Errorf("include_related = %q", got)
		}
		reply(w, 200, fixture(t, "get_run_success.json"))
	})
	run, err := c.GetRun(context.Background(), 36053848)
	if err != nil {
		t.Fatal(err)
	}
	if run.Status != StatusSuccess || !run.Status.Terminal() || !run.IsSuccess || !run.IsComplete || run.InProgress ||
		run.GitSHA != "981c5cf1ba299e942c6c277c38c8dec9b0738dd0" || run.RunDuration != "00:00:12" ||
		run.Trigger == nil || run.Trigger.Cause != "Kicked off from UI by someone@example.com" {
		t.Errorf("run = %+v", run)
	}
	if run.StartedAt == nil || !run.StartedAt.Equal(utc("2021-12-07T10:34:01.982824Z")) ||
		run.FinishedAt == nil || !run.FinishedAt.Equal(utc("2021-12-07T10:34:14.435474Z")) {
		t.Errorf("StartedAt = %v, FinishedAt = %v", run.StartedAt, run.FinishedAt)
	}
	if _, err := c.GetRun(context.Background(), 0); err == nil {
		t.Error("GetRun(0) succeeded")
	}
}

func TestListRuns(t *testing.T) {
	c, mux, _ := setup(t)
	mux.HandleFunc("/api/v2/accounts/1/runs/", func(w http.ResponseWriter, r *http.Request) {
		testMethod(t, r, "GET")
		testHeaders(t, r, false)
		want := map[string]string{"job_definition_id": "123", "include_related": `["trigger"]`, "order_by": "-id", "limit": "2", "offset": "4", "status": "20"}
		q := r.URL.Query()
		if len(q) != len(want) {
			t.Errorf("query = %v", q)
		}
		for k, v := range want {
			if q.Get(k) != v {
				t.Errorf("%s = %q, want %q", k, q.Get(k), v)
			}
		}
		reply(w, 200, fixture(t, "list_runs.json"))
	})
	runs, err := c.ListRuns(context.Background(), 123, &ListRunsOptions{Limit: 2, Offset: 4, Status: StatusError})
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 || runs[0].ID != 36053851 || runs[0].Status != StatusError || !runs[0].IsError ||
		!strings.Contains(runs[0].StatusMessage, "relation \"raw.jaffle_shop.orders\" does not exist") ||
		runs[1].Status != StatusRunning || runs[1].FinishedAt != nil || runs[1].Trigger.Cause != "dbt-tableau-refresh schedule 2024-03-19T06:00Z" {
		t.Errorf("runs = %+v, %+v", runs[0], runs[1])
	}
}

func TestListRunsDefaults(t *testing.T) {
	c, mux, _ := setup(t)
	mux.HandleFunc("/api/v2/accounts/1/runs/", func(w http.ResponseWriter, r *http.Request) {
		if got := r.URL.RawQuery; got != "include_related=%5B%22trigger%22%5D&order_by=-id" {
			t.Errorf("query = %s", got)
		}
		reply(w, 200, []byte(`{"status":{"code":200,"is_success":true,"user_message":"Success!","developer_message":""},"data":[]}`))
	})
	runs, err := c.ListRuns(context.Background(), 0, nil)
	if err != nil || len(runs) != 0 {
		t.Errorf("ListRuns = %v, %v", runs, err)
	}
}

func TestListRunsRejectsBadOptions(t *testing.T) {
	c, mux, _ := setup(t)
	var calls atomic.Int32
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { calls.Add(1) })
	tests := []struct {
		name string
		job  int64
		opts *ListRunsOptions
	}{
		{"limit over 100", 1, &ListRunsOptions{Limit: 101}},
		{"negative limit", 1, &ListRunsOptions{Limit: -1}},
		{"negative offset", 1, &ListRunsOptions{Offset: -5}},
		{"negative job", -1, nil},
	}
	for _, tt := range tests {
		if _, err := c.ListRuns(context.Background(), tt.job, tt.opts); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
	if calls.Load() != 0 {
		t.Errorf("invalid options reached the server %d times", calls.Load())
	}
}

func TestCancelRun(t *testing.T) {
	c, mux, _ := setup(t)
	mux.HandleFunc("/api/v2/accounts/1/runs/36053849/cancel/", func(w http.ResponseWriter, r *http.Request) {
		testMethod(t, r, "POST")
		testHeaders(t, r, false)
		reply(w, 200, fixture(t, "cancel_run.json"))
	})
	run, err := c.CancelRun(context.Background(), 36053849)
	if err != nil {
		t.Fatal(err)
	}
	if run.Status != StatusCancelled || !run.IsCancelled || run.StatusMessage != "Cancelled by user." || run.StartedAt != nil || run.Trigger != nil {
		t.Errorf("run = %+v", run)
	}
	if _, err := c.CancelRun(context.Background(), -3); err == nil {
		t.Error("CancelRun(-3) succeeded")
	}
}

func TestErrorReplies(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		header      map[string]string
		body        []byte
		wantIs      error
		wantMessage string
		wantRetry   bool
		wantAfter   time.Duration
		wantCalls   int
	}{
		{name: "401 invalid token", status: 401, body: fixture(t, "error_401.json"), wantIs: ErrUnauthorized, wantMessage: "Invalid token.", wantCalls: 1},
		{name: "403 wrong account", status: 403, body: fixture(t, "error_403.json"), wantIs: ErrUnauthorized, wantMessage: "Access denied: Token is not scoped to account.", wantCalls: 1},
		{name: "404", status: 404, body: fixture(t, "error_404.json"), wantIs: ErrNotFound,
			wantMessage: "The requested resource was not found. Please check that you have the proper permissions.", wantCalls: 1},
		{name: "400 with detail", status: 400, body: fixture(t, "error_400_cause.json"),
			wantMessage: "The request was invalid. Please double check the provided data and try again.: 'cause' is a required property", wantCalls: 1},
		{name: "400 limit", status: 400, body: fixture(t, "error_400_limit.json"), wantMessage: "Limit must not exceed 100", wantCalls: 1},
		// testPolicy waits at most 80ms: a longer Retry-After is left to
		// the caller's own, slower retry.
		{name: "429 asking for a longer wait than the policy allows", status: 429, header: map[string]string{"Retry-After": "3"},
			body:   []byte(`{"status":{"code":429,"is_success":false,"user_message":"Too many requests","developer_message":""},"data":null}`),
			wantIs: ErrRateLimited, wantMessage: "Too many requests", wantRetry: true, wantAfter: 3 * time.Second, wantCalls: 1},
		{name: "500 html", status: 500, body: []byte("<html><body>Server Error</body></html>"), wantMessage: "Internal Server Error", wantRetry: true, wantCalls: 4},
		{name: "502 empty", status: 502, wantMessage: "Bad Gateway", wantRetry: true, wantCalls: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, mux, _ := setup(t)
			var calls atomic.Int32
			mux.HandleFunc("/api/v2/accounts/1/runs/5/", func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				reply(w, tt.status, tt.body)
			})
			_, err := c.GetRun(context.Background(), 5)
			var apiErr *Error
			if !errors.As(err, &apiErr) {
				t.Fatalf("error %v is not an *Error", err)
			}
			if apiErr.StatusCode != tt.status || apiErr.Message != tt.wantMessage || apiErr.Method != "GET" ||
				apiErr.Path != "/api/v2/accounts/1/runs/5/" || apiErr.RetryAfter != tt.wantAfter {
				t.Errorf("*Error = %+v", apiErr)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.wantIs)
			}
			for _, other := range []error{ErrUnauthorized, ErrNotFound, ErrRateLimited, ErrTriggerOutcomeUnknown} {
				if other != tt.wantIs && errors.Is(err, other) {
					t.Errorf("error also matches %v", other)
				}
			}
			if got := Retryable(err); got != tt.wantRetry {
				t.Errorf("Retryable = %v, want %v", got, tt.wantRetry)
			}
			if int(calls.Load()) != tt.wantCalls {
				t.Errorf("%d calls, want %d", calls.Load(), tt.wantCalls)
			}
			if !strings.Contains(err.Error(), "get dbt Cloud run 5") || !strings.Contains(err.Error(), fmt.Sprint(tt.status)) {
				t.Errorf("error text %q lacks context", err)
			}
		})
	}
}

func TestUnreadableReplies(t *testing.T) {
	tests := []struct{ name, body string }{
		{"not json", "<html>maintenance</html>"},
		{"no data", `{"status":{"code":200,"is_success":true,"user_message":"Success!","developer_message":""},"data":null}`},
		{"wrong shape", `{"status":{"code":200,"is_success":true},"data":{"id":"abc"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, mux, _ := setup(t)
			var calls atomic.Int32
			mux.HandleFunc("/api/v2/accounts/1/runs/5/", func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				reply(w, 200, []byte(tt.body))
			})
			_, err := c.GetRun(context.Background(), 5)
			if err == nil || Retryable(err) || calls.Load() != 1 {
				t.Errorf("err = %v, retryable %v, %d calls", err, Retryable(err), calls.Load())
			}
		})
	}
}

// dbt's verdict is the envelope; a 200 that says it failed is a failure.
func TestEnvelopeFailureOn200(t *testing.T) {
	c, mux, _ := setup(t)
	mux.HandleFunc("/api/v2/accounts/1/runs/5/", func(w http.ResponseWriter, r *http.Request) {
		reply(w, 200, []byte(`{"status":{"code":404,"is_success":false,"user_message":"gone","developer_message":""},"data":null}`))
	})
	_, err := c.GetRun(context.Background(), 5)
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("err = %v", err)
	}
}

// script answers successive requests with the given statuses; 0 drops the
// connection, and the last entry repeats.
func script(t *testing.T, calls *atomic.Int32, okBody []byte, statuses ...int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		n := int(calls.Add(1))
		status := statuses[min(n, len(statuses))-1]
		switch status {
		case 0:
			conn, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			conn.Close()
		case 200:
			reply(w, 200, okBody)
		case 429:
			w.Header().Set("Retry-After", "7")
			reply(w, 429, []byte(`{"status":{"code":429,"is_success":false,"user_message":"Too many requests","developer_message":""},"data":null}`))
		default:
			reply(w, status, []byte(fmt.Sprintf(`{"status":{"code":%d,"is_success":false,"user_message":"%s","developer_message":""},"data":null}`, status, http.StatusText(status))))
		}
	}
}

func TestRetriesForReads(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name       string
		statuses   []int
		policy     remote.Policy
		wantOK     bool
		wantSleeps []time.Duration
	}{
		{"503 then ok", []int{503, 503, 200}, testPolicy, true, []time.Duration{10 * ms, 20 * ms}},
		{"429 waits for Retry-After", []int{429, 200}, remote.Policy{MaxAttempts: 4, BaseDelay: 10 * ms, MaxDelay: 10 * time.Second}, true, []time.Duration{7 * time.Second}},
		// dbt redelivers and the scheduler's follow-ups come back later: a
		// wait longer than the policy allows is theirs, not this call's.
		{"429 asking for more than MaxDelay is not waited for", []int{429, 200}, testPolicy, false, nil},
		{"500 until attempts run out", []int{500}, testPolicy, false, []time.Duration{10 * ms, 20 * ms, 40 * ms}},
		{"MaxDelay caps the backoff", []int{500}, remote.Policy{MaxAttempts: 5, BaseDelay: 10 * ms, MaxDelay: 25 * ms}, false,
			[]time.Duration{10 * ms, 20 * ms, 25 * ms, 25 * ms}},
		{"single attempt", []int{500, 200}, remote.Policy{MaxAttempts: 1, BaseDelay: ms, MaxDelay: ms}, false, nil},
		{"404 is final", []int{404, 200}, testPolicy, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, mux, rec := setup(t, WithRetryPolicy(tt.policy))
			var calls atomic.Int32
			mux.HandleFunc("/api/v2/accounts/1/runs/36053848/", script(t, &calls, fixture(t, "get_run_success.json"), tt.statuses...))
			_, err := c.GetRun(context.Background(), 36053848)
			if (err == nil) != tt.wantOK {
				t.Fatalf("GetRun() error = %v", err)
			}
			if got := rec.get(); !reflect.DeepEqual(got, tt.wantSleeps) {
				t.Errorf("waits = %v, want %v", got, tt.wantSleeps)
			}
			if want := len(tt.wantSleeps) + 1; int(calls.Load()) != want {
				t.Errorf("%d requests, want %d", calls.Load(), want)
			}
		})
	}
}

func TestDroppedConnectionIsRetriedForReads(t *testing.T) {
	c, mux, _ := setup(t)
	var calls atomic.Int32
	mux.HandleFunc("/api/v2/accounts/1/runs/36053848/", script(t, &calls, fixture(t, "get_run_success.json"), 0, 200))
	if _, err := c.GetRun(context.Background(), 36053848); err != nil {
		t.Fatalf("GetRun: %v", err)
	}
	if calls.Load() != 2 {
		t.Errorf("%d requests", calls.Load())
	}
}

func TestCancelIsRetriedLikeARead(t *testing.T) {
	c, mux, _ := setup(t)
	var calls atomic.Int32
	mux.HandleFunc("/api/v2/accounts/1/runs/36053849/cancel/", script(t, &calls, fixture(t, "cancel_run.json"), 502, 200))
	if _, err := c.CancelRun(context.Background(), 36053849); err != nil || calls.Load() != 2 {
		t.Errorf("CancelRun: %v after %d requests", err, calls.Load())
	}
}

// A duplicated trigger starts two dbt runs, so only refusals are retried.
func TestTriggerRetries(t *testing.T) {
	tests := []struct {
		name        string
		statuses    []int
		body        []byte
		wantOK      bool
		wantCalls   int
		wantUnknown bool
	}{
		{name: "429 is retried", statuses: []int{429, 200}, wantOK: true, wantCalls: 2},
		{name: "503 is retried", statuses: []int{503, 503, 200}, wantOK: true, wantCalls: 3},
		{name: "503 until attempts run out", statuses: []int{503}, wantCalls: 4},
		{name: "500 may have queued the run", statuses: []int{500, 200}, wantCalls: 1, wantUnknown: true},
		{name: "502 may have queued the run", statuses: []int{502, 200}, wantCalls: 1, wantUnknown: true},
		{name: "504 may have queued the run", statuses: []int{504, 200}, wantCalls: 1, wantUnknown: true},
		{name: "dropped connection", statuses: []int{0, 200}, wantCalls: 1, wantUnknown: true},
		{name: "unreadable 200", statuses: []int{200}, body: []byte("{"), wantCalls: 1, wantUnknown: true},
		{name: "400 is final", statuses: []int{400, 200}, wantCalls: 1},
		{name: "404 is final", statuses: []int{404, 200}, wantCalls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Patient enough for the 429's Retry-After of 7 s (never slept).
			c, mux, _ := setup(t, WithRetryPolicy(remote.Policy{MaxAttempts: 4, BaseDelay: 10 * time.Millisecond, MaxDelay: 10 * time.Second}))
			var calls atomic.Int32
			body := tt.body
			if body == nil {
				body = fixture(t, "trigger_run.json")
			}
			mux.HandleFunc("/api/v2/accounts/1/jobs/123/run/", script(t, &calls, body, tt.statuses...))
			_, err := c.TriggerRun(context.Background(), 123, &TriggerRunRequest{Cause: "test"})
			if (err == nil) != tt.wantOK {
				t.Fatalf("TriggerRun() error = %v", err)
			}
			if int(calls.Load()) != tt.wantCalls {
				t.Errorf("%d requests, want %d", calls.Load(), tt.wantCalls)
			}
			if got := errors.Is(err, ErrTriggerOutcomeUnknown); got != tt.wantUnknown {
				t.Errorf("errors.Is(ErrTriggerOutcomeUnknown) = %v: %v", got, err)
			}
			if tt.wantUnknown && Retryable(err) {
				t.Errorf("Retryable(%v) = true for an ambiguous trigger", err)
			}
		})
	}
}

// A refused connection never reached dbt, so even a trigger is retried.
func TestTriggerRetriesWhenTheConnectionIsRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c, _, rec := setup(t, WithBaseURL("http://"+addr))
	_, err = c.TriggerRun(context.Background(), 1, &TriggerRunRequest{Cause: "x"})
	if err == nil || errors.Is(err, ErrTriggerOutcomeUnknown) || !Retryable(err) {
		t.Fatalf("err = %v (unknown %v, retryable %v)", err, errors.Is(err, ErrTriggerOutcomeUnknown), Retryable(err))
	}
	if n := len(rec.get()); n != testPolicy.MaxAttempts-1 {
		t.Errorf("%d retries, want %d", n, testPolicy.MaxAttempts-1)
	}
}

func TestRetryNeverWaitsPastTheDeadline(t *testing.T) {
	// A policy that would wait for the Retry-After, but not past the deadline.
	c, mux, rec := setup(t, WithRetryPolicy(remote.Policy{MaxAttempts: 4, BaseDelay: 10 * time.Millisecond, MaxDelay: time.Hour}))
	var calls atomic.Int32
	mux.HandleFunc("/api/v2/accounts/1/runs/5/", func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Retry-After", "120")
		reply(w, 429, []byte(`{"status":{"code":429,"is_success":false,"user_message":"slow down","developer_message":""},"data":null}`))
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := c.GetRun(ctx, 5)
	var apiErr *Error
	if !errors.As(err, &apiErr) || apiErr.RetryAfter != 2*time.Minute || !errors.Is(err, ErrRateLimited) {
		t.Fatalf("err = %v", err)
	}
	if calls.Load() != 1 || len(rec.get()) != 0 {
		t.Errorf("%d requests, waits %v", calls.Load(), rec.get())
	}
	if !strings.Contains(err.Error(), "deadline") {
		t.Errorf("error %q does not say why it stopped", err)
	}
}

func TestCancelledContext(t *testing.T) {
	c, mux, _ := setup(t)
	var calls atomic.Int32
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { calls.Add(1) })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.GetRun(ctx, 5)
	if !errors.Is(err, context.Canceled) || Retryable(err) {
		t.Errorf("err = %v, retryable %v", err, Retryable(err))
	}
	if calls.Load() != 0 {
		t.Errorf("%d requests with a cancelled context", calls.Load())
	}
}

func TestContextEndsDuringBackoff(t *testing.T) {
	c, mux, _ := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	c.sleep = func(context.Context, time.Duration) error { cancel(); return context.Canceled }
	var calls atomic.Int32
	mux.HandleFunc("/api/v2/accounts/1/runs/5/", script(t, &calls, nil, 503))
	_, err := c.GetRun(ctx, 5)
	var apiErr *Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 503 || calls.Load() != 1 {
		t.Errorf("err = %v after %d requests", err, calls.Load())
	}
}

func TestTokenNeverLeaks(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, mux, _ := setup(t, WithLogger(logger))
	mux.HandleFunc("/api/v2/accounts/1/runs/5/", func(w http.ResponseWriter, r *http.Request) {
		// A misbehaving proxy echoing the request's credentials.
		reply(w, 500, []byte(`{"status":{"code":500,"is_success":false,"user_message":"bad header `+r.Header.Get("Authorization")+`","developer_message":""},"data":null}`))
	})
	_, err := c.GetRun(context.Background(), 5)
	if err == nil {
		t.Fatal("no error")
	}
	printed := fmt.Sprintf("%v %+v %#v %s", c, c, c, c)
	for what, text := range map[string]string{"error": err.Error(), "logs": logs.String(), "printed client": printed} {
		if strings.Contains(text, testToken) {
			t.Errorf("%s contains the token: %s", what, text)
		}
	}
	if !strings.Contains(logs.String(), "retrying") {
		t.Errorf("retries were not logged: %s", logs.String())
	}
}

func TestRetryable(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"429", &Error{StatusCode: 429}, true},
		{"500", &Error{StatusCode: 500}, true},
		{"503 wrapped", fmt.Errorf("get run: %w", &Error{StatusCode: 503}), true},
		{"400", &Error{StatusCode: 400}, false},
		{"401", &Error{StatusCode: 401}, false},
		{"404", &Error{StatusCode: 404}, false},
		{"connection reset", &remote.TransportError{Sent: true, Err: errors.New("connection reset by peer")}, true},
		{"refused", &remote.TransportError{Err: &net.OpError{Op: "dial", Err: errors.New("connection refused")}}, true},
		{"caller cancelled", fmt.Errorf("x: %w", &remote.TransportError{Sent: true, Err: context.Canceled}), false},
		{"caller deadline", context.DeadlineExceeded, false},
		{"ambiguous trigger", fmt.Errorf("%w: %w", ErrTriggerOutcomeUnknown, &Error{StatusCode: 502}), false},
		{"decode", &decodeError{err: errors.New("bad json")}, false},
		{"other", errors.New("boom"), false},
	}
	for _, tt := range tests {
		if got := Retryable(tt.err); got != tt.want {
			t.Errorf("%s: Retryable(%v) = %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
}

func TestTimestamp(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{`"2021-11-26 16:48:41.431645+00:00"`, utc("2021-11-26T16:48:41.431645Z"), false},
		{`"2021-11-26 16:48:41+00:00"`, utc("2021-11-26T16:48:41Z"), false},
		{`"2021-11-26 18:48:41.5+02:00"`, utc("2021-11-26T16:48:41.5Z"), false},
		{`"2024-01-01T00:00:00Z"`, utc("2024-01-01T00:00:00Z"), false},
		{`"2024-03-19T11:57:15.559970Z"`, utc("2024-03-19T11:57:15.55997Z"), false},
		{`null`, time.Time{}, false},
		{`"yesterday"`, time.Time{}, true},
		{`1642377765`, time.Time{}, true},
	}
	for _, tt := range tests {
		var ts Timestamp
		err := json.Unmarshal([]byte(tt.in), &ts)
		if (err != nil) != tt.wantErr || !ts.Equal(tt.want) {
			t.Errorf("%s: got %v, %v", tt.in, ts, err)
		}
	}
	b, _ := json.Marshal(Timestamp{utc("2021-11-26T16:48:41.431645Z")})
	if string(b) != `"2021-11-26 16:48:41.431645+00:00"` {
		t.Errorf("MarshalJSON = %s", b)
	}
}

func TestRunRoundTrip(t *testing.T) {
	var env struct {
		Data Run `json:"data"`
	}
	if err := json.Unmarshal(fixture(t, "get_run_success.json"), &env); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(env.Data)
	if err != nil {
		t.Fatal(err)
	}
	var again Run
	if err := json.Unmarshal(b, &again); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(normalize(env.Data), normalize(again)) {
		t.Errorf("round trip changed the run:\n%+v\n%+v", env.Data, again)
	}
}

// normalize drops monotonic and location details that encoding cannot keep.
func normalize(r Run) string {
	b, _ := json.Marshal(r)
	return string(b)
}

// Nothing leaves the client with a spent context, so a trigger is not
// reported as possibly started.
func TestTriggerWithCancelledContextIsUnambiguous(t *testing.T) {
	c, mux, _ := setup(t)
	var calls atomic.Int32
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { calls.Add(1) })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.TriggerRun(ctx, 1, &TriggerRunRequest{Cause: "x"})
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrTriggerOutcomeUnknown) || calls.Load() != 0 {
		t.Errorf("err = %v after %d requests", err, calls.Load())
	}
}

func TestTransportErrorMessage(t *testing.T) {
	c, mux, _ := setup(t, WithRetryPolicy(remote.Policy{MaxAttempts: 1, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond}))
	var calls atomic.Int32
	mux.HandleFunc("/api/v2/accounts/1/runs/5/", script(t, &calls, nil, 0))
	_, err := c.GetRun(context.Background(), 5)
	if err == nil || strings.Contains(err.Error(), "http://") || !strings.Contains(err.Error(), "GET /api/v2/accounts/1/runs/5/") {
		t.Errorf("err = %v", err)
	}
}

// A token rotated in the secret is used by the next request of the same
// Client; a provider that has none fails the call, and Check, before any
// request.
func TestTokenProvider(t *testing.T) {
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	var seen []string
	mux.HandleFunc("/api/v2/accounts/1/runs/5/", func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Header.Get("Authorization"))
		reply(w, 200, fixture(t, "get_run_success.json"))
	})
	token := "first-token"
	c, err := NewClient(WithBaseURL(srv.URL), WithAccountID(1), WithRetryPolicy(testPolicy),
		WithTokenProvider(TokenProviderFunc(func(context.Context) (string, error) { return token, nil })))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tok := range []string{"first-token", "rotated-token"} {
		token = tok
		if err := c.Check(ctx); err != nil {
			t.Fatalf("Check with %s: %v", tok, err)
		}
		if _, err := c.GetRun(ctx, 5); err != nil {
			t.Fatal(err)
		}
	}
	if want := []string{"Token first-token", "Token rotated-token"}; !reflect.DeepEqual(seen, want) {
		t.Errorf("Authorization headers %v, want %v", seen, want)
	}
	for _, bad := range []string{"", "Token abc"} {
		token = bad
		if err := c.Check(ctx); err == nil {
			t.Errorf("Check with token %q succeeded", bad)
		}
		if _, err := c.GetRun(ctx, 5); err == nil || len(seen) != 2 {
			t.Errorf("GetRun with token %q: %v after %d requests; want an error and no request", bad, err, len(seen))
		}
	}
	if _, err := NewClient(WithAccountID(1), WithToken("a"), WithTokenProvider(TokenProviderFunc(nil))); err == nil || !strings.Contains(err.Error(), "token given twice") {
		t.Errorf("two token options: %v", err)
	}
}
