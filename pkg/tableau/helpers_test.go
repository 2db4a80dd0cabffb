package tableau

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/remote"
)

// Unit tests in this package talk to an httptest server whose handlers check
// each request (method, path, headers, body) and answer with fixtures from
// testdata/, in the manner of go-github. Behaviour across many calls
// (sessions shared by many instances, paging, faults) is tested against the
// tableautest simulator in package tableau_test.

const (
	testVersion = "3.23"
	testSite    = "mysite"
	testPATName = "refresh-bot"
	testSecret  = "PAT-SECRET-do-not-log-4711"
	apiPrefix   = "/api/" + testVersion
	sitePrefix  = apiPrefix + "/sites/site-luid"
)

// fixture reads testdata/name.
func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	return b
}

// sleepRecorder stands in for Client.sleep: it records the waits asked for and
// returns at once, so tests check backoff values without taking time.
type sleepRecorder struct {
	mu     sync.Mutex
	delays []time.Duration
}

func (s *sleepRecorder) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.delays = append(s.delays, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleepRecorder) got() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.delays...)
}

type testEnv struct {
	client  *Client
	mux     *http.ServeMux
	server  *httptest.Server
	sleeps  *sleepRecorder
	signIns atomic.Int32
}

// setup returns a Client pointed at a fresh httptest server with a mux. The
// Client uses a fixed API version, a PAT, and a retry policy whose waits are
// recorded instead of slept. Extra options are applied after the defaults.
func setup(t *testing.T, opts ...Option) *testEnv {
	t.Helper()
	env := &testEnv{mux: http.NewServeMux(), sleeps: &sleepRecorder{}}
	env.server = httptest.NewServer(env.mux)
	t.Cleanup(env.server.Close)
	base := []Option{
		WithAPIVersion(testVersion),
		WithSite(testSite),
		WithPAT(testPATName, testSecret),
		WithRetryPolicy(remote.Policy{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: 10 * time.Second}),
	}
	c, err := NewClient(env.server.URL, append(base, opts...)...)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	c.sleep = env.sleeps.sleep
	env.client = c
	return env
}

// handleSignIn answers sign-ins with tokens tok-1, tok-2, ... for site-luid,
// checking the request as Tableau would need it.
func (e *testEnv) handleSignIn(t *testing.T) {
	t.Helper()
	e.mux.HandleFunc("POST "+apiPrefix+"/auth/signin", func(w http.ResponseWriter, r *http.Request) {
		n := e.signIns.Add(1)
		if r.Header.Get("X-Tableau-Auth") != "" {
			t.Errorf("sign-in carried an X-Tableau-Auth header")
		}
		writeJSON(w, http.StatusOK, fmt.Sprintf(
			`{"credentials":{"site":{"id":"site-luid","contentUrl":"mysite"},"user":{"id":"user-luid"},"token":"tok-%d","estimatedTimeToExpiration":"239:59:59"}}`, n))
	})
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

func writeBytes(w http.ResponseWriter, status int, contentType string, body []byte) {
	if contentType != "" {
		w.Header().Set("Content-Type", contentType)
	}
	w.WriteHeader(status)
	w.Write(body)
}

func tableauError(status int, code, summary, detail string) string {
	b, _ := json.Marshal(map[string]any{"error": map[string]string{"code": code, "summary": summary, "detail": detail}})
	return string(b)
}

// checkRequest asserts the headers every JSON REST call carries.
func checkRequest(t *testing.T, r *http.Request, method, token string) {
	t.Helper()
	if r.Method != method {
		t.Errorf("method = %s, want %s", r.Method, method)
	}
	if got := r.Header.Get("Accept"); got != "application/json" {
		t.Errorf("Accept = %q, want application/json", got)
	}
	if got := r.Header.Get("X-Tableau-Auth"); got != token {
		t.Errorf("X-Tableau-Auth = %q, want %q", got, token)
	}
}

// checkJSONBody asserts the request body equals want as JSON and that it was
// sent as JSON.
func checkJSONBody(t *testing.T, r *http.Request, want string) {
	t.Helper()
	if got := r.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", got)
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	var g, w any
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatalf("request body is not JSON: %v: %s", err, b)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want: %v", err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if string(gb) != string(wb) {
		t.Errorf("body = %s\nwant   %s", gb, wb)
	}
}

func contains(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
