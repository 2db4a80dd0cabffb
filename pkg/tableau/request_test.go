package tableau

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/remote"
)

// reply is one scripted answer of a test handler.
type reply struct {
	status     int
	retryAfter string
	body       string // default: a Tableau error body for status >= 300
}

func TestRetries(t *testing.T) {
	const ok = "ok"
	tests := []struct {
		name         string
		refresh      bool // POST .../refresh instead of GET .../jobs/x
		replies      []reply
		wantAttempts int32
		wantErr      error // nil: success
		wantDelays   []time.Duration
	}{
		{name: "GET 503 twice then ok", replies: []reply{{status: 503}, {status: 503}, {status: 200, body: ok}}, wantAttempts: 3},
		{name: "GET 500 then ok", replies: []reply{{status: 500}, {status: 200, body: ok}}, wantAttempts: 2},
		{name: "GET 502 then ok", replies: []reply{{status: 502}, {status: 200, body: ok}}, wantAttempts: 2},
		{name: "GET 504 then ok", replies: []reply{{status: 504}, {status: 200, body: ok}}, wantAttempts: 2},
		{name: "GET gives up after MaxAttempts", replies: []reply{{status: 503}, {status: 503}, {status: 503}, {status: 200, body: ok}}, wantAttempts: 3, wantErr: ErrServer},
		{name: "GET truncated reply then ok", replies: []reply{{status: 200, body: `{"job":{"id":"jo`}, {status: 200, body: ok}}, wantAttempts: 2},
		{name: "GET 400 not retried", replies: []reply{{status: 400}, {status: 200, body: ok}}, wantAttempts: 1, wantErr: errAny},
		{name: "GET 404 not retried", replies: []reply{{status: 404}, {status: 200, body: ok}}, wantAttempts: 1, wantErr: ErrNotFound},
		{name: "GET 403 not retried", replies: []reply{{status: 403}, {status: 200, body: ok}}, wantAttempts: 1, wantErr: ErrForbidden},
		{name: "GET 429 honours Retry-After seconds", replies: []reply{{status: 429, retryAfter: "2"}, {status: 200, body: ok}}, wantAttempts: 2, wantDelays: []time.Duration{2 * time.Second}},
		{name: "GET 429 Retry-After beyond MaxDelay gives up", replies: []reply{{status: 429, retryAfter: "60"}, {status: 200, body: ok}}, wantAttempts: 1, wantErr: ErrRateLimited},
		{name: "refresh 503 retried", refresh: true, replies: []reply{{status: 503}, {status: 202, body: ok}}, wantAttempts: 2},
		{name: "refresh 429 retried after Retry-After", refresh: true, replies: []reply{{status: 429, retryAfter: "3"}, {status: 202, body: ok}}, wantAttempts: 2, wantDelays: []time.Duration{3 * time.Second}},
		{name: "refresh 500 not retried: may have queued", refresh: true, replies: []reply{{status: 500}, {status: 202, body: ok}}, wantAttempts: 1, wantErr: ErrServer},
		{name: "refresh 502 not retried", refresh: true, replies: []reply{{status: 502}, {status: 202, body: ok}}, wantAttempts: 1, wantErr: ErrServer},
		{name: "refresh 504 not retried", refresh: true, replies: []reply{{status: 504}, {status: 202, body: ok}}, wantAttempts: 1, wantErr: ErrServer},
		{name: "refresh truncated reply not retried", refresh: true, replies: []reply{{status: 202, body: `{"job":{"id":"jo`}, {status: 202, body: ok}}, wantAttempts: 1, wantErr: ErrBadReply},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := setup(t)
			env.handleSignIn(t)
			var attempts atomic.Int32
			handler := func(w http.ResponseWriter, r *http.Request) {
				n := int(attempts.Add(1)) - 1
				rep := tt.replies[min(n, len(tt.replies)-1)]
				if rep.retryAfter != "" {
					w.Header().Set("Retry-After", rep.retryAfter)
				}
				switch {
				case rep.body == ok:
					writeBytes(w, rep.status, "application/json", fixture(t, "refresh_workbook.json"))
				case rep.body != "":
					writeJSON(w, rep.status, rep.body)
				default:
					writeJSON(w, rep.status, tableauError(rep.status, strconv.Itoa(rep.status)+"000", http.StatusText(rep.status), ""))
				}
			}
			var err error
			if tt.refresh {
				env.mux.HandleFunc("POST "+sitePrefix+"/workbooks/wb-1/refresh", handler)
				_, err = env.client.RefreshWorkbook(context.Background(), "wb-1")
			} else {
				env.mux.HandleFunc("GET "+sitePrefix+"/jobs/job-1", handler)
				_, err = env.client.Job(context.Background(), "job-1")
			}
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("error = %v", err)
			case tt.wantErr == errAny && err == nil, tt.wantErr != nil && tt.wantErr != errAny && !errors.Is(err, tt.wantErr):
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			if got := attempts.Load(); got != tt.wantAttempts {
				t.Errorf("attempts = %d, want %d", got, tt.wantAttempts)
			}
			delays := env.sleeps.got()
			if tt.wantErr == nil && int32(len(delays)) != tt.wantAttempts-1 {
				t.Errorf("waits = %v for %d attempts", delays, tt.wantAttempts)
			}
			for i, want := range tt.wantDelays {
				if i >= len(delays) || delays[i] != want {
					t.Errorf("waits = %v, want %v", delays, tt.wantDelays)
					break
				}
			}
		})
	}
}

// errAny in a test table means "some error".
var errAny = errors.New("any error")

func TestRetryAfterCarriedOnError(t *testing.T) {
	env := setup(t)
	env.handleSignIn(t)
	env.mux.HandleFunc("POST "+sitePrefix+"/workbooks/wb-1/refresh", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "600")
		writeJSON(w, 429, tableauError(429, "429000", "Too many requests", "Too many requests. Retry after 10 minutes."))
	})
	_, err := env.client.RefreshWorkbook(context.Background(), "wb-1")
	var te *Error
	if !errors.As(err, &te) || te.RetryAfter != 10*time.Minute || te.Code != "429000" {
		t.Fatalf("error = %#v", err)
	}
	if !Retryable(err) || !strings.Contains(err.Error(), "retry after 10m0s") {
		t.Errorf("error %q: want retryable and naming the wait", err)
	}
}

// TestRetryNeverSleepsPastDeadline: when the next wait would end after the
// caller's deadline, the last error comes back at once.
func TestRetryNeverSleepsPastDeadline(t *testing.T) {
	env := setup(t)
	env.handleSignIn(t)
	var attempts atomic.Int32
	env.mux.HandleFunc("GET "+sitePrefix+"/jobs/job-1", func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		w.Header().Set("Retry-After", "5")
		writeJSON(w, 503, tableauError(503, "503000", "Service Unavailable", ""))
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := env.client.Job(ctx, "job-1")
	var te *Error
	if !errors.As(err, &te) || te.StatusCode != 503 {
		t.Fatalf("error = %v, want the 503 itself (not a deadline error)", err)
	}
	if attempts.Load() != 1 || len(env.sleeps.got()) != 0 {
		t.Errorf("attempts = %d, waits = %v; want 1 attempt and no wait", attempts.Load(), env.sleeps.got())
	}
}

func TestRetryDialFailure(t *testing.T) {
	// A port with nothing listening: the dial fails, so nothing was sent and
	// even a refresh POST may be repeated.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	rec := &sleepRecorder{}
	c, err := NewClient("http://"+addr, WithAPIVersion(testVersion), WithPAT("n", "s"),
		WithRetryPolicy(remote.Policy{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	c.sleep = rec.sleep
	c.sess = &Session{Token: "t", SiteID: "site-luid"}
	_, err = c.RefreshWorkbook(context.Background(), "wb-1")
	var tr *remote.TransportError
	if !errors.As(err, &tr) || tr.Sent {
		t.Fatalf("error = %#v, want an unsent *remote.TransportError", err)
	}
	if got := len(rec.got()); got != 2 {
		t.Errorf("waits = %d, want 2 (3 attempts)", got)
	}
	if !Retryable(err) {
		t.Error("dial failure should be retryable")
	}
	if strings.Contains(err.Error(), "X-Tableau-Auth") {
		t.Error("error mentions the auth header")
	}
}

// TestRetryDroppedConnection: the server reads the request and hangs up. A
// GET is repeated; a refresh POST is not, because the server may have queued it.
func TestRetryDroppedConnection(t *testing.T) {
	tests := []struct {
		name    string
		refresh bool
		wantMin int32
		wantMax int32
	}{
		{"GET repeated", false, 2, 10},
		{"refresh not repeated", true, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := setup(t)
			env.handleSignIn(t)
			var attempts atomic.Int32
			drop := func(w http.ResponseWriter, r *http.Request) {
				attempts.Add(1)
				conn, _, err := http.NewResponseController(w).Hijack()
				if err != nil {
					t.Error(err)
					return
				}
				conn.Close()
			}
			var err error
			if tt.refresh {
				env.mux.HandleFunc("POST "+sitePrefix+"/workbooks/wb-1/refresh", drop)
				_, err = env.client.RefreshWorkbook(context.Background(), "wb-1")
			} else {
				env.mux.HandleFunc("GET "+sitePrefix+"/jobs/job-1", drop)
				_, err = env.client.Job(context.Background(), "job-1")
			}
			var tr *remote.TransportError
			if !errors.As(err, &tr) || !tr.Sent {
				t.Fatalf("error = %#v, want a sent *remote.TransportError", err)
			}
			if n := attempts.Load(); n < tt.wantMin || n > tt.wantMax {
				t.Errorf("attempts = %d, want %d..%d", n, tt.wantMin, tt.wantMax)
			}
			if !Retryable(err) {
				t.Error("a dropped connection is retryable later")
			}
		})
	}
}

func TestErrorIsAndText(t *testing.T) {
	tests := []struct {
		err   *Error
		is    []error
		isNot []error
		text  string
		retry bool
	}{
		{&Error{StatusCode: 404, Code: "404031", Summary: "Resource Not Found", Detail: "Workbook 'x' could not be found.", Method: "GET", Path: "/api/3.23/sites/s/workbooks/x"},
			[]error{ErrNotFound}, []error{ErrUnauthorized, ErrNoExtract}, `tableau: GET /api/3.23/sites/s/workbooks/x: 404 (code 404031) Resource Not Found: Workbook 'x' could not be found.`, false},
		{&Error{StatusCode: 409, Code: "409090", Summary: "Bad Request", Method: "POST", Path: "/p"},
			[]error{ErrNoExtract, ErrConflict}, []error{ErrNotFound}, "409 (code 409090)", false},
		{&Error{StatusCode: 409, Code: "409093", Method: "POST", Path: "/p"},
			[]error{ErrConflict}, []error{ErrNoExtract}, "409093", false},
		{&Error{StatusCode: 401, Code: "401001", Method: "POST", Path: "/api/3.23/auth/signin"},
			[]error{ErrUnauthorized, ErrBadCredentials}, []error{ErrForbidden}, "401", false},
		{&Error{StatusCode: 401, Code: "401002", Method: "GET", Path: "/api/3.23/sites/s/jobs/j"},
			[]error{ErrUnauthorized}, []error{ErrBadCredentials}, "401002", true},
		{&Error{StatusCode: 403, Code: "403004", Method: "POST", Path: "/p"},
			[]error{ErrForbidden}, []error{ErrUnauthorized}, "403", false},
		{&Error{StatusCode: 400, Code: "400000", Method: "POST", Path: "/p"},
			nil, []error{ErrNotFound, ErrServer}, "400", false},
		{&Error{StatusCode: 429, Code: "429000", Method: "POST", Path: "/p", RetryAfter: time.Minute},
			[]error{ErrRateLimited}, []error{ErrServer}, "retry after 1m0s", true},
		{&Error{StatusCode: 500, Method: "GET", Path: "/p"}, []error{ErrServer}, nil, "500", true},
		{&Error{StatusCode: 503, Method: "GET", Path: "/p"}, []error{ErrServer}, nil, "503", true},
		{&Error{StatusCode: 408, Method: "GET", Path: "/p"}, nil, []error{ErrServer}, "408", true},
	}
	for _, tt := range tests {
		t.Run(tt.err.Error(), func(t *testing.T) {
			wrapped := fmt.Errorf("refresh workbook: %w", tt.err)
			for _, s := range tt.is {
				if !errors.Is(wrapped, s) {
					t.Errorf("not Is %v", s)
				}
			}
			for _, s := range tt.isNot {
				if errors.Is(wrapped, s) {
					t.Errorf("Is %v", s)
				}
			}
			if !strings.Contains(tt.err.Error(), tt.text) {
				t.Errorf("Error() = %q, want containing %q", tt.err.Error(), tt.text)
			}
			if got := Retryable(wrapped); got != tt.retry {
				t.Errorf("Retryable = %v, want %v", got, tt.retry)
			}
		})
	}
}

func TestRetryableOtherErrors(t *testing.T) {
	running := FinishCode(1)
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain error", errors.New("boom"), false},
		{"not found by name", &NotFoundError{Kind: "workbook", Name: "x"}, false},
		{"ambiguous", &AmbiguousError{Kind: "workbook", Name: "x", Matches: []Project{{Name: "a"}, {Name: "b"}}}, false},
		{"html reply", &FormatError{StatusCode: 200, Received: "an HTML page"}, false},
		{"truncated reply", &FormatError{StatusCode: 200, Received: "truncated JSON"}, true},
		{"job failed", &JobError{Job: &Job{ID: "j", FinishCode: &running}}, false},
		{"connection refused", &remote.TransportError{Err: errors.New("connection refused")}, true},
		{"cancelled", &remote.TransportError{Err: context.Canceled}, false},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), true},
		{"canceled bare", context.Canceled, false},
		{"store outage", &storeError{op: "load", err: errors.New("throttled")}, true},
		{"no credentials", ErrNoCredentials, false},
		{"version too old", fmt.Errorf("x: %w", ErrUnsupportedVersion), false},
		{"net timeout", &net.OpError{Op: "read", Err: timeoutErr{}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Retryable(tt.err); got != tt.want {
				t.Errorf("Retryable(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestErrorTexts(t *testing.T) {
	cancelled := FinishCancelled
	failed := FinishFailed
	tests := []struct {
		err  error
		want []string
		is   error
	}{
		{&NotFoundError{Kind: "workbook", Name: "Sales", Project: "Finance"}, []string{`no workbook named "Sales" in project "Finance"`}, ErrNotFound},
		{&NotFoundError{Kind: "datasource", Name: "Orders"}, []string{`no datasource named "Orders"`}, ErrNotFound},
		{&AmbiguousError{Kind: "workbook", Name: "Sales", Matches: []Project{{ID: "1", Name: "Finance"}, {ID: "2", Name: "Marketing"}}},
			[]string{`2 workbooks named "Sales"`, `"Finance"`, `"Marketing"`, "give a project name"}, ErrAmbiguous},
		{&AmbiguousError{Kind: "workbook", Name: "Sales", Project: "Finance", Matches: []Project{{ID: "1", Name: "Finance"}, {ID: "2", Name: "Finance"}}},
			[]string{"project id 1", "project id 2", "use the LUID"}, ErrAmbiguous},
		{&JobError{Job: &Job{ID: "j1", FinishCode: &failed, Notes: "Login failed"}}, []string{"job j1 failed: Login failed"}, ErrJobFailed},
		{&JobError{Job: &Job{ID: "j2", FinishCode: &cancelled}}, []string{"job j2 was cancelled"}, ErrJobCancelled},
		{&FormatError{Method: "GET", Path: "/p", StatusCode: 200, ContentType: "text/html", Received: "an HTML page", Snippet: "<html>"},
			[]string{"expected JSON, received an HTML page", "text/html", "<html>"}, ErrBadReply},
	}
	for _, tt := range tests {
		t.Run(tt.err.Error(), func(t *testing.T) {
			if !contains(tt.err.Error(), tt.want...) {
				t.Errorf("Error() = %q, want %q", tt.err.Error(), tt.want)
			}
			if !errors.Is(tt.err, tt.is) {
				t.Errorf("not Is %v", tt.is)
			}
		})
	}
}

func TestRetryableCertificateErrors(t *testing.T) {
	env := setup(t)
	tlsSrv := httptest.NewUnstartedServer(env.mux)
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0) // the failed handshake is the point
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)
	// The default client does not trust the test server's certificate.
	c, err := NewClient(tlsSrv.URL, WithAPIVersion(testVersion), WithPAT("n", "s"), WithRetryPolicy(remote.Policy{MaxAttempts: 1}))
	if err != nil {
		t.Fatal(err)
	}
	err = c.SignIn(context.Background())
	var tr *remote.TransportError
	if !errors.As(err, &tr) {
		t.Fatalf("error = %v, want a *remote.TransportError", err)
	}
	if Retryable(err) {
		t.Errorf("untrusted certificate reported retryable: %v", err)
	}
}
