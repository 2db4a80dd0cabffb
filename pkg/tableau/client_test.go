package tableau

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/remote"
)

// The URL rule itself (https, or http on loopback) is remote.CheckURL's,
// tested there; these are Tableau's own: a prefix path kept, a trailing
// slash dropped, no query, and the rule applied.
func TestNewClientServerURL(t *testing.T) {
	tests := []struct {
		name    string
		url     string
		wantErr string // substring; empty means accepted
		wantURL string
	}{
		{name: "https trailing slash", url: "https://tableau.example.com/", wantURL: "https://tableau.example.com"},
		{name: "https with port and prefix", url: "https://tableau.example.com:8443/proxy/", wantURL: "https://tableau.example.com:8443/proxy"},
		{name: "http loopback", url: "http://127.0.0.1:1234", wantURL: "http://127.0.0.1:1234"},
		{name: "http public host", url: "http://example.com", wantErr: `server URL "http://example.com" must use https`},
		{name: "no scheme", url: "tableau.example.com", wantErr: "has no host"},
		{name: "credentials in URL", url: "https://user:pw@tableau.example.com", wantErr: "must not carry a user or password"},
		{name: "query", url: "https://tableau.example.com/?x=1", wantErr: "query or fragment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewClient(tt.url)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("NewClient(%q) error = %v, want containing %q", tt.url, err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "pw@") {
					t.Errorf("error repeats URL credentials: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewClient(%q): %v", tt.url, err)
			}
			if got := c.baseURL.String(); got != tt.wantURL {
				t.Errorf("base URL = %q, want %q", got, tt.wantURL)
			}
		})
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name    string
		opts    []Option
		wantErr string
	}{
		{"nil option", []Option{nil}, "nil option"},
		{"site with slash", []Option{WithSite("a/b")}, "bare content URL"},
		{"site with spaces", []Option{WithSite(" mysite")}, "bare content URL"},
		{"version without minor", []Option{WithAPIVersion("3")}, "MAJOR.MINOR"},
		{"version garbage", []Option{WithAPIVersion("latest")}, "MAJOR.MINOR"},
		{"nil http client", []Option{WithHTTPClient(nil)}, "HTTP client is nil"},
		{"PAT without name", []Option{WithPAT("", "s")}, "name and secret"},
		{"PAT without secret", []Option{WithPAT("n", "")}, "name and secret"},
		{"two credentials", []Option{WithPAT("n", "s"), WithConnectedApp(ConnectedApp{ClientID: "c", SecretID: "i", SecretValue: "v", Username: "u"})}, "credentials given twice"},
		{"two PATs", []Option{WithPAT("n", "s"), WithPAT("m", "t")}, "credentials given twice"},
		{"connected app missing fields", []Option{WithConnectedApp(ConnectedApp{ClientID: "c"})}, "SecretID, SecretValue, Username required"},
		{"connected app bad scope", []Option{WithConnectedApp(ConnectedApp{ClientID: "c", SecretID: "i", SecretValue: "v", Username: "u", Scopes: []string{"content:read"}})}, "tableau:<resource>:<action>"},
		{"nil logger", []Option{WithLogger(nil)}, "logger is nil"},
		{"nil store", []Option{WithSessionStore(nil)}, "session store is nil"},
		{"zero attempts", []Option{WithRetryPolicy(remote.Policy{MaxAttempts: 0})}, "MaxAttempts"},
		{"negative delay", []Option{WithRetryPolicy(remote.Policy{MaxAttempts: 2, BaseDelay: -1})}, "want a positive delay"},
		{"max below base", []Option{WithRetryPolicy(remote.Policy{MaxAttempts: 2, BaseDelay: time.Second, MaxDelay: time.Millisecond})}, "less than BaseDelay"},
		{"page size zero", []Option{WithPageSize(0)}, "1 to 1000"},
		{"page size too big", []Option{WithPageSize(1001)}, "1 to 1000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewClient("https://tableau.example.com", tt.opts...)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestOptionsAccepted(t *testing.T) {
	hc := &http.Client{}
	c, err := NewClient("https://tableau.example.com",
		WithSite(""), WithAPIVersion("3.23"), WithHTTPClient(hc),
		WithConnectedApp(ConnectedApp{ClientID: "c", SecretID: "i", SecretValue: "v", Username: "u"}),
		WithLogger(slog.Default()), WithSessionStore(NewMemorySessionStore()),
		WithRetryPolicy(remote.Policy{MaxAttempts: 1}), WithPageSize(1000))
	if err != nil {
		t.Fatal(err)
	}
	if c.hc == hc {
		t.Error("client uses the caller's http.Client itself; want a copy that refuses redirects")
	}
	if hc.CheckRedirect != nil {
		t.Error("caller's http.Client was modified")
	}
	if got := c.SessionKey(); got != "tableau-session|https://tableau.example.com||connected-app=c/u/tableau:content:read,tableau:tasks:run,tableau:jobs:read" {
		t.Errorf("SessionKey = %q", got)
	}
}

// TestRequestShape checks what goes on the wire for an authenticated GET and
// a POST with a body.
func TestRequestShape(t *testing.T) {
	env := setup(t)
	env.handleSignIn(t)
	env.mux.HandleFunc("GET "+sitePrefix+"/workbooks/wb-1", func(w http.ResponseWriter, r *http.Request) {
		checkRequest(t, r, http.MethodGet, "tok-1")
		if r.Header.Get("Content-Type") != "" {
			t.Errorf("GET carries Content-Type %q", r.Header.Get("Content-Type"))
		}
		if ua := r.Header.Get("User-Agent"); !strings.Contains(ua, "dbt-tableau-refresh") {
			t.Errorf("User-Agent = %q", ua)
		}
		writeBytes(w, 200, "application/json", fixture(t, "workbook.json"))
	})
	env.mux.HandleFunc("POST "+sitePrefix+"/workbooks/wb-1/refresh", func(w http.ResponseWriter, r *http.Request) {
		checkRequest(t, r, http.MethodPost, "tok-1")
		checkJSONBody(t, r, `{}`)
		writeBytes(w, http.StatusAccepted, "application/json", fixture(t, "refresh_workbook.json"))
	})
	ctx := context.Background()
	if _, err := env.client.Workbook(ctx, "wb-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := env.client.RefreshWorkbook(ctx, "wb-1"); err != nil {
		t.Fatal(err)
	}
	if n := env.signIns.Load(); n != 1 {
		t.Errorf("sign-ins = %d, want 1 (session reused)", n)
	}
}

func TestVersionNegotiation(t *testing.T) {
	tests := []struct {
		name        string
		serverinfo  func(w http.ResponseWriter)
		wantVersion string
		wantErr     bool
	}{
		{
			name:        "json",
			serverinfo:  func(w http.ResponseWriter) { writeBytes(w, 200, "application/json", fixtureBytes["serverinfo.json"]) },
			wantVersion: "3.23",
		},
		{
			name:        "xml despite Accept",
			serverinfo:  func(w http.ResponseWriter) { writeBytes(w, 200, "application/xml", fixtureBytes["serverinfo.xml"]) },
			wantVersion: "3.19",
		},
		{
			name: "404 keeps default",
			serverinfo: func(w http.ResponseWriter) {
				writeJSON(w, 404, tableauError(404, "404003", "Not Found", "Unknown resource"))
			},
			wantVersion: DefaultAPIVersion,
		},
		{
			name: "404 html page keeps default",
			serverinfo: func(w http.ResponseWriter) {
				writeBytes(w, 404, "text/html", []byte("<html><body>Not found</body></html>"))
			},
			wantVersion: DefaultAPIVersion,
		},
		{
			name:        "no usable version keeps default",
			serverinfo:  func(w http.ResponseWriter) { writeJSON(w, 200, `{"serverInfo":{"restApiVersion":"next"}}`) },
			wantVersion: DefaultAPIVersion,
		},
		{
			name: "html page is an error",
			serverinfo: func(w http.ResponseWriter) {
				writeBytes(w, 200, "text/html", []byte("<!DOCTYPE html><html>login</html>"))
			},
			wantErr: true,
		},
		{
			name:       "json without serverInfo is an error",
			serverinfo: func(w http.ResponseWriter) { writeJSON(w, 200, `{"something":{}}`) },
			wantErr:    true,
		},
		{
			name:       "server error is an error",
			serverinfo: func(w http.ResponseWriter) { writeJSON(w, 500, tableauError(500, "500000", "Internal", "")) },
			wantErr:    true,
		},
	}
	loadFixtures(t, "serverinfo.json", "serverinfo.xml")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := setup(t)
			c, err := NewClient(env.server.URL, WithRetryPolicy(remote.Policy{MaxAttempts: 1}))
			if err != nil {
				t.Fatal(err)
			}
			var calls atomic.Int32
			env.mux.HandleFunc("GET /api/2.4/serverinfo", func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				checkRequest(t, r, http.MethodGet, "")
				tt.serverinfo(w)
			})
			v, err := c.apiVersion(context.Background())
			if tt.wantErr {
				if err == nil {
					t.Fatalf("apiVersion = %q, want error", v)
				}
				// A failure is not cached: the next call asks again.
				if _, err2 := c.apiVersion(context.Background()); err2 == nil || calls.Load() != 2 {
					t.Errorf("second negotiation: err=%v calls=%d, want error and 2 calls", err2, calls.Load())
				}
				return
			}
			if err != nil || v != tt.wantVersion {
				t.Fatalf("apiVersion = %q, %v; want %q", v, err, tt.wantVersion)
			}
			if v2, _ := c.apiVersion(context.Background()); v2 != v || calls.Load() != 1 {
				t.Errorf("second negotiation gave %q after %d calls, want cached %q after 1", v2, calls.Load(), v)
			}
		})
	}
}

// fixtureBytes is filled by loadFixtures for handlers that have no *testing.T.
var fixtureBytes = map[string][]byte{}

func loadFixtures(t *testing.T, names ...string) {
	for _, n := range names {
		fixtureBytes[n] = fixture(t, n)
	}
}

func TestNegotiatedVersionIsUsed(t *testing.T) {
	env := setup(t)
	c, err := NewClient(env.server.URL, WithPAT(testPATName, testSecret), WithSite(testSite))
	if err != nil {
		t.Fatal(err)
	}
	env.mux.HandleFunc("GET /api/2.4/serverinfo", func(w http.ResponseWriter, r *http.Request) {
		writeBytes(w, 200, "application/json", fixture(t, "serverinfo.json"))
	})
	env.handleSignIn(t) // registered at /api/3.23, the negotiated version
	env.mux.HandleFunc("GET "+sitePrefix+"/jobs/job-1", func(w http.ResponseWriter, r *http.Request) {
		writeBytes(w, 200, "application/json", fixture(t, "job_running.json"))
	})
	if _, err := c.Job(context.Background(), "job-1"); err != nil {
		t.Fatal(err)
	}
	info, err := c.ServerInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := ServerInfo{ProductVersion: "2024.2.0", Build: "20242.24.0613.1930", RestAPIVersion: "3.23"}
	if *info != want {
		t.Errorf("ServerInfo = %+v, want %+v", *info, want)
	}
}

func TestServerInfoFixedVersion(t *testing.T) {
	env := setup(t)
	env.mux.HandleFunc("GET "+apiPrefix+"/serverinfo", func(w http.ResponseWriter, r *http.Request) {
		checkRequest(t, r, http.MethodGet, "") // no sign-in needed
		writeBytes(w, 200, "application/json", fixture(t, "serverinfo.json"))
	})
	info, err := env.client.ServerInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.RestAPIVersion != "3.23" || info.ProductVersion != "2024.2.0" {
		t.Errorf("ServerInfo = %+v", info)
	}
	if env.signIns.Load() != 0 {
		t.Error("ServerInfo signed in")
	}
}

// TestNotJSONReplies covers replies that are not the JSON asked for: each must
// be a clear error (never a panic) that says what arrived.
func TestNotJSONReplies(t *testing.T) {
	big := make([]byte, maxReplyBytes+10)
	for i := range big {
		big[i] = ' '
	}
	big[0] = '{'
	tests := []struct {
		name        string
		status      int
		contentType string
		body        []byte
		wantIs      error
		wantText    []string
		retryable   bool
	}{
		{"xml", 200, "application/xml;charset=UTF-8", []byte(`<?xml version="1.0"?><tsResponse><workbook id="x"/></tsResponse>`), ErrBadReply, []string{"expected JSON, received XML", "tsResponse"}, false},
		{"xml without content type", 200, "", []byte(`<tsResponse/>`), ErrBadReply, []string{"received XML"}, false},
		{"html page", 200, "text/html", []byte("<!DOCTYPE html><html><body>Sign in to Okta</body></html>"), ErrBadReply, []string{"received an HTML page", "Okta"}, false},
		{"html mislabelled as json", 200, "application/json", []byte("<html><body>proxy</body></html>"), ErrBadReply, []string{"received an HTML page"}, false},
		{"truncated json", 200, "application/json", []byte(`{"workbook":{"id":"x","na`), ErrBadReply, []string{"received truncated JSON"}, true},
		{"malformed json", 200, "application/json", []byte(`{"workbook":{"id":}}`), ErrBadReply, []string{"received malformed JSON"}, false},
		{"wrong json shape", 200, "application/json", []byte(`{"workbook":"not an object"}`), ErrBadReply, []string{"received JSON of an unexpected shape"}, false},
		{"empty body", 200, "application/json", nil, ErrBadReply, []string{"received an empty body"}, false},
		{"plain text", 200, "text/plain", []byte("Service temporarily unavailable"), ErrBadReply, []string{"non-JSON content", "Service temporarily"}, false},
		{"too large", 200, "application/json", big, ErrBadReply, []string{"larger than"}, false},
		{"error as html page", 502, "text/html", []byte("<html><title>502 Bad Gateway</title></html>"), ErrServer, []string{"502", "received an HTML page", "Bad Gateway"}, true},
		{"error as xml", 409, "application/xml", fixture(t, "error_409090.xml"), ErrNoExtract, []string{"409090", "no extract"}, false},
		{"error without body", 404, "", nil, ErrNotFound, []string{"404", "Not Found", "empty body"}, false},
		{"error json without error object", 403, "application/json", []byte(`{"oops":1}`), ErrForbidden, []string{"403", "without an error object"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := setup(t, WithRetryPolicy(remote.Policy{MaxAttempts: 1}))
			env.handleSignIn(t)
			env.mux.HandleFunc("GET "+sitePrefix+"/workbooks/wb-1", func(w http.ResponseWriter, r *http.Request) {
				writeBytes(w, tt.status, tt.contentType, tt.body)
			})
			_, err := env.client.Workbook(context.Background(), "wb-1")
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, tt.wantIs) {
				t.Errorf("error %v does not match %v", err, tt.wantIs)
			}
			if !contains(err.Error(), tt.wantText...) {
				t.Errorf("error %q lacks %q", err, tt.wantText)
			}
			if got := Retryable(err); got != tt.retryable {
				t.Errorf("Retryable = %v, want %v", got, tt.retryable)
			}
		})
	}
}

func TestRedirectRefused(t *testing.T) {
	env := setup(t)
	env.handleSignIn(t)
	env.mux.HandleFunc("GET "+sitePrefix+"/workbooks/wb-1", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://evil.example.com/steal", http.StatusFound)
	})
	_, err := env.client.Workbook(context.Background(), "wb-1")
	var te *Error
	if !errors.As(err, &te) || te.StatusCode != http.StatusFound || !strings.Contains(te.Detail, "evil.example.com") {
		t.Fatalf("error = %v, want *Error 302 naming the target", err)
	}
}

func TestContextIsHonoured(t *testing.T) {
	env := setup(t)
	env.handleSignIn(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	env.mux.HandleFunc("GET "+sitePrefix+"/workbooks/wb-1", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := env.client.Workbook(ctx, "wb-1")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want context.Canceled", err)
	}
	if Retryable(err) {
		t.Error("a cancelled call is not retryable")
	}
}

func TestPathEscaping(t *testing.T) {
	env := setup(t)
	env.handleSignIn(t)
	env.mux.HandleFunc("GET "+sitePrefix+"/workbooks/{id}", func(w http.ResponseWriter, r *http.Request) {
		if got := r.PathValue("id"); got != "odd id+ü" {
			t.Errorf("id = %q", got)
		}
		if got := r.URL.EscapedPath(); got != sitePrefix+"/workbooks/odd%20id+%C3%BC" {
			t.Errorf("escaped path = %q", got)
		}
		writeBytes(w, 200, "application/json", fixture(t, "workbook.json"))
	})
	if _, err := env.client.Workbook(context.Background(), "odd id+ü"); err != nil {
		t.Fatal(err)
	}
}

func TestBasePathPrefix(t *testing.T) {
	env := setup(t)
	c, err := NewClient(env.server.URL+"/tableau/", WithAPIVersion(testVersion), WithPAT("n", "s"))
	if err != nil {
		t.Fatal(err)
	}
	env.mux.HandleFunc("GET /tableau"+apiPrefix+"/serverinfo", func(w http.ResponseWriter, r *http.Request) {
		writeBytes(w, 200, "application/json", fixture(t, "serverinfo.json"))
	})
	if _, err := c.ServerInfo(context.Background()); err != nil {
		t.Fatal(err)
	}
}
