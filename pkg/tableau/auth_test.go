package tableau

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/remote"
)

func TestSignInPAT(t *testing.T) {
	env := setup(t)
	env.mux.HandleFunc("POST "+apiPrefix+"/auth/signin", func(w http.ResponseWriter, r *http.Request) {
		checkRequest(t, r, http.MethodPost, "")
		checkJSONBody(t, r, `{"credentials":{"personalAccessTokenName":"refresh-bot","personalAccessTokenSecret":"`+testSecret+`","site":{"contentUrl":"mysite"}}}`)
		writeBytes(w, 200, "application/json", fixture(t, "signin.json"))
	})
	env.mux.HandleFunc("GET "+apiPrefix+"/sites/9a8b7c6d-5e4f-3a2b-1c0d-site00000001/jobs/job-1", func(w http.ResponseWriter, r *http.Request) {
		checkRequest(t, r, http.MethodGet, "FIXTURE-TOKEN-abc123|site")
		writeBytes(w, 200, "application/json", fixture(t, "job_running.json"))
	})
	if err := env.client.SignIn(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := env.client.Job(context.Background(), "job-1"); err != nil {
		t.Fatal(err)
	}
	s := env.client.sess
	if s.SiteID != "9a8b7c6d-5e4f-3a2b-1c0d-site00000001" || s.UserID != "1f2e3d4c-5b6a-7980-a1b2-user00000001" || s.CreatedAt.IsZero() {
		t.Errorf("session = %+v", s)
	}
}

func TestSignInDefaultSite(t *testing.T) {
	env := setup(t, WithSite(""))
	env.mux.HandleFunc("POST "+apiPrefix+"/auth/signin", func(w http.ResponseWriter, r *http.Request) {
		checkJSONBody(t, r, `{"credentials":{"personalAccessTokenName":"refresh-bot","personalAccessTokenSecret":"`+testSecret+`","site":{"contentUrl":""}}}`)
		writeBytes(w, 200, "application/json", fixture(t, "signin.json"))
	})
	if err := env.client.SignIn(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestSignInErrors(t *testing.T) {
	tests := []struct {
		name      string
		reply     func(w http.ResponseWriter)
		wantIs    error
		wantText  string
		retryable bool
	}{
		{
			name: "bad PAT",
			reply: func(w http.ResponseWriter) {
				writeJSON(w, 401, tableauError(401, "401001", "Signin Error", "Error signing in to Tableau Server"))
			},
			wantIs:    ErrBadCredentials,
			wantText:  "401001",
			retryable: false,
		},
		{
			name:      "401000 at sign-in is not healed by retrying",
			reply:     func(w http.ResponseWriter) { writeJSON(w, 401, tableauError(401, "401000", "Signin Error", "")) },
			wantIs:    ErrUnauthorized,
			wantText:  "401000",
			retryable: false,
		},
		{
			name:     "reply without token",
			reply:    func(w http.ResponseWriter) { writeJSON(w, 200, `{"credentials":{"site":{"id":"s"}}}`) },
			wantIs:   ErrBadReply,
			wantText: "without a token",
		},
		{
			name:     "html login page",
			reply:    func(w http.ResponseWriter) { writeBytes(w, 200, "text/html", []byte("<html>SSO</html>")) },
			wantIs:   ErrBadReply,
			wantText: "received an HTML page",
		},
		{
			name:      "server error",
			reply:     func(w http.ResponseWriter) { writeJSON(w, 503, tableauError(503, "503000", "Unavailable", "")) },
			wantIs:    ErrServer,
			wantText:  "503",
			retryable: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := setup(t, WithRetryPolicy(remote.Policy{MaxAttempts: 1}))
			env.mux.HandleFunc("POST "+apiPrefix+"/auth/signin", func(w http.ResponseWriter, r *http.Request) { tt.reply(w) })
			env.mux.HandleFunc("GET "+sitePrefix+"/jobs/job-1", func(w http.ResponseWriter, r *http.Request) {
				t.Error("call made without a session")
			})
			_, err := env.client.Job(context.Background(), "job-1")
			if !errors.Is(err, tt.wantIs) || !strings.Contains(err.Error(), tt.wantText) {
				t.Fatalf("error = %v, want %v containing %q", err, tt.wantIs, tt.wantText)
			}
			if !strings.Contains(err.Error(), "sign in to site \"mysite\"") {
				t.Errorf("error %q does not say it was signing in", err)
			}
			if got := Retryable(err); got != tt.retryable {
				t.Errorf("Retryable = %v, want %v", got, tt.retryable)
			}
		})
	}
}

func TestNoCredentials(t *testing.T) {
	c, err := NewClient("https://tableau.example.com", WithAPIVersion("3.23"))
	if err != nil {
		t.Fatal(err)
	}
	for name, call := range map[string]func() error{
		"SignIn":  func() error { return c.SignIn(context.Background()) },
		"Job":     func() error { _, err := c.Job(context.Background(), "j"); return err },
		"Refresh": func() error { _, err := c.RefreshWorkbook(context.Background(), "w"); return err },
	} {
		if err := call(); !errors.Is(err, ErrNoCredentials) {
			t.Errorf("%s: error = %v, want ErrNoCredentials", name, err)
		}
	}
	if c.SessionKey() != "" {
		t.Errorf("SessionKey = %q without credentials", c.SessionKey())
	}
}

// TestReSignInOnce checks the 401 handling: a session-ended 401 leads to one
// new sign-in and one repeat of the call; a second 401 is returned, not looped
// on; 401001 leads to no new sign-in at all.
func TestReSignInOnce(t *testing.T) {
	tests := []struct {
		name        string
		failures    int    // how many times the job endpoint answers 401
		code        string // its error code
		wantErr     bool
		wantSignIns int32
		wantCalls   int32
	}{
		{name: "401002 then ok", failures: 1, code: "401002", wantSignIns: 2, wantCalls: 2},
		{name: "401000 then ok", failures: 1, code: "401000", wantSignIns: 2, wantCalls: 2},
		{name: "401002 twice is returned", failures: 2, code: "401002", wantErr: true, wantSignIns: 2, wantCalls: 2},
		{name: "401002 forever never loops", failures: 100, code: "401002", wantErr: true, wantSignIns: 2, wantCalls: 2},
		{name: "401001 is not retried", failures: 1, code: "401001", wantErr: true, wantSignIns: 1, wantCalls: 1},
		{name: "401 without code is not retried", failures: 1, code: "", wantErr: true, wantSignIns: 1, wantCalls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := setup(t)
			env.handleSignIn(t)
			var calls atomic.Int32
			env.mux.HandleFunc("GET "+sitePrefix+"/jobs/job-1", func(w http.ResponseWriter, r *http.Request) {
				n := calls.Add(1)
				if want := "tok-" + string(rune('0'+n)); r.Header.Get("X-Tableau-Auth") != want {
					t.Errorf("call %d used token %q, want %q", n, r.Header.Get("X-Tableau-Auth"), want)
				}
				if int(n) <= tt.failures {
					writeJSON(w, 401, tableauError(401, tt.code, "Unauthorized", "Invalid authentication credentials were provided."))
					return
				}
				writeBytes(w, 200, "application/json", fixture(t, "job_running.json"))
			})
			_, err := env.client.Job(context.Background(), "job-1")
			if (err != nil) != tt.wantErr {
				t.Fatalf("error = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrUnauthorized) {
				t.Errorf("error %v does not match ErrUnauthorized", err)
			}
			if got := env.signIns.Load(); got != tt.wantSignIns {
				t.Errorf("sign-ins = %d, want %d", got, tt.wantSignIns)
			}
			if got := calls.Load(); got != tt.wantCalls {
				t.Errorf("calls = %d, want %d", got, tt.wantCalls)
			}
		})
	}
}

// TestConcurrentCallersShareOneSignIn: goroutines of one Client that all need
// a session, or all see it end, cause one sign-in each time, not one each.
func TestConcurrentCallersShareOneSignIn(t *testing.T) {
	env := setup(t)
	env.handleSignIn(t)
	var expired atomic.Bool
	env.mux.HandleFunc("GET "+sitePrefix+"/jobs/job-1", func(w http.ResponseWriter, r *http.Request) {
		if expired.Load() && r.Header.Get("X-Tableau-Auth") == "tok-1" {
			writeJSON(w, 401, tableauError(401, "401002", "Unauthorized", ""))
			return
		}
		writeBytes(w, 200, "application/json", fixture(t, "job_running.json"))
	})
	run := func() {
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				if _, err := env.client.Job(context.Background(), "job-1"); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	run()
	if got := env.signIns.Load(); got != 1 {
		t.Errorf("sign-ins after first wave = %d, want 1", got)
	}
	expired.Store(true)
	run()
	if got := env.signIns.Load(); got != 2 {
		t.Errorf("sign-ins after expiry = %d, want 2", got)
	}
}

func TestSignOut(t *testing.T) {
	env := setup(t)
	env.handleSignIn(t)
	var signOuts atomic.Int32
	env.mux.HandleFunc("POST "+apiPrefix+"/auth/signout", func(w http.ResponseWriter, r *http.Request) {
		signOuts.Add(1)
		checkRequest(t, r, http.MethodPost, "tok-1")
		w.WriteHeader(http.StatusNoContent)
	})
	ctx := context.Background()
	// Not signed in: nothing to do, no request.
	if err := env.client.SignOut(ctx); err != nil || signOuts.Load() != 0 {
		t.Fatalf("SignOut before sign-in: err=%v requests=%d", err, signOuts.Load())
	}
	if err := env.client.SignIn(ctx); err != nil {
		t.Fatal(err)
	}
	if err := env.client.SignOut(ctx); err != nil || signOuts.Load() != 1 {
		t.Fatalf("SignOut: err=%v requests=%d", err, signOuts.Load())
	}
	if env.client.sess != nil {
		t.Error("session kept after SignOut")
	}
	if err := env.client.SignIn(ctx); err != nil || env.signIns.Load() != 2 {
		t.Errorf("SignIn after SignOut: err=%v sign-ins=%d, want a new sign-in", err, env.signIns.Load())
	}
}

func TestSignOutErrors(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		wantErr bool
	}{
		{"already ended counts as done", 401, false},
		{"server error is reported", 500, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := setup(t, WithRetryPolicy(remote.Policy{MaxAttempts: 1}))
			env.handleSignIn(t)
			env.mux.HandleFunc("POST "+apiPrefix+"/auth/signout", func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, tt.status, tableauError(tt.status, "", "x", ""))
			})
			if err := env.client.SignIn(context.Background()); err != nil {
				t.Fatal(err)
			}
			err := env.client.SignOut(context.Background())
			if (err != nil) != tt.wantErr {
				t.Fatalf("SignOut error = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}

func TestSignOutClearsSharedSession(t *testing.T) {
	store := NewMemorySessionStore()
	env := setup(t, WithSessionStore(store))
	env.handleSignIn(t)
	env.mux.HandleFunc("POST "+apiPrefix+"/auth/signout", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	ctx := context.Background()
	if err := env.client.SignIn(ctx); err != nil {
		t.Fatal(err)
	}
	if s, _ := store.Load(ctx, env.client.SessionKey()); s == nil || s.Token != "tok-1" {
		t.Fatalf("stored session = %+v, want tok-1", s)
	}
	if err := env.client.SignOut(ctx); err != nil {
		t.Fatal(err)
	}
	if s, _ := store.Load(ctx, env.client.SessionKey()); s != nil {
		t.Errorf("stored session after SignOut = %+v, want none", s)
	}
}

// decodeJWT splits a JWT and checks its HS256 signature with secret.
func decodeJWT(t *testing.T, tok, secret string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("JWT has %d parts", len(parts))
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(parts[0] + "." + parts[1]))
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || !hmac.Equal(sig, mac.Sum(nil)) {
		t.Fatalf("JWT signature does not verify with the secret value")
	}
	for i, v := range []*map[string]any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatalf("JWT part %d: %v", i, err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("JWT part %d: %v", i, err)
		}
	}
	return header, claims
}

func TestSignInConnectedApp(t *testing.T) {
	app := ConnectedApp{ClientID: "client-123", SecretID: "secret-id-456", SecretValue: "CA-SECRET-VALUE-789", Username: "refresh@example.com"}
	tests := []struct {
		name       string
		scopes     []string
		wantScopes []any
	}{
		{"default scopes", nil, []any{"tableau:content:read", "tableau:tasks:run", "tableau:jobs:read"}},
		{"given scopes", []string{"tableau:tasks:run", "tableau:jobs:update"}, []any{"tableau:tasks:run", "tableau:jobs:update"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := app
			a.Scopes = tt.scopes
			env := setup(t)
			env.client.creds = nil // setup gave a PAT; use the app instead
			if err := WithConnectedApp(a)(env.client); err != nil {
				t.Fatal(err)
			}
			var jtis []string
			env.mux.HandleFunc("POST "+apiPrefix+"/auth/signin", func(w http.ResponseWriter, r *http.Request) {
				var body struct {
					Credentials struct {
						JWT  string `json:"jwt"`
						Site struct {
							ContentURL string `json:"contentUrl"`
						} `json:"site"`
						PAT string `json:"personalAccessTokenName"`
					} `json:"credentials"`
				}
				b, _ := io.ReadAll(r.Body)
				if err := json.Unmarshal(b, &body); err != nil {
					t.Fatal(err)
				}
				if body.Credentials.Site.ContentURL != "mysite" || body.Credentials.PAT != "" {
					t.Errorf("sign-in body = %s", b)
				}
				h, c := decodeJWT(t, body.Credentials.JWT, app.SecretValue)
				if h["alg"] != "HS256" || h["kid"] != app.SecretID || h["iss"] != app.ClientID || h["typ"] != "JWT" {
					t.Errorf("JWT header = %v", h)
				}
				if c["iss"] != app.ClientID || c["sub"] != app.Username || c["aud"] != "tableau" {
					t.Errorf("JWT claims = %v", c)
				}
				exp := time.Unix(int64(c["exp"].(float64)), 0)
				if until := time.Until(exp); until <= 0 || until > 10*time.Minute {
					t.Errorf("exp is %s ahead, want within (0, 10m]", until)
				}
				jti, _ := c["jti"].(string)
				if len(jti) < 32 {
					t.Errorf("jti = %q, want a UUID", jti)
				}
				jtis = append(jtis, jti)
				scp, _ := c["scp"].([]any)
				if len(scp) != len(tt.wantScopes) {
					t.Errorf("scp = %v, want %v", scp, tt.wantScopes)
				}
				for i := range scp {
					if scp[i] != tt.wantScopes[i] {
						t.Errorf("scp = %v, want %v", scp, tt.wantScopes)
					}
				}
				writeBytes(w, 200, "application/json", fixture(t, "signin.json"))
			})
			ctx := context.Background()
			if err := env.client.SignIn(ctx); err != nil {
				t.Fatal(err)
			}
			env.client.sess = nil
			if err := env.client.SignIn(ctx); err != nil {
				t.Fatal(err)
			}
			if len(jtis) != 2 || jtis[0] == jtis[1] {
				t.Errorf("jti values %v, want two different ones", jtis)
			}
		})
	}
}

func TestConnectedAppScopesAreCopied(t *testing.T) {
	scopes := []string{"tableau:tasks:run"}
	c, err := NewClient("https://tableau.example.com", WithConnectedApp(ConnectedApp{ClientID: "c", SecretID: "i", SecretValue: "v", Username: "u", Scopes: scopes}))
	if err != nil {
		t.Fatal(err)
	}
	scopes[0] = "tableau:everything:delete"
	if got := c.creds.(*jwtCredentials).app.Scopes[0]; got != "tableau:tasks:run" {
		t.Errorf("client scopes changed with the caller's slice: %q", got)
	}
}
