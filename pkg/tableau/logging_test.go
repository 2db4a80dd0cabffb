package tableau

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/remote"
)

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLogsHoldNoSecrets runs whole sessions, including sign-ins, a replaced
// session, retries, failures and sign-out, with Debug logging on, and checks
// that neither the log nor any returned error contains a session token, the
// PAT secret, the connected app secret or a JWT.
func TestLogsHoldNoSecrets(t *testing.T) {
	const caSecret = "CONNECTED-APP-SECRET-VALUE-0042"
	tests := []struct {
		name string
		cred Option
	}{
		{"personal access token", nil},
		{"connected app", WithConnectedApp(ConnectedApp{ClientID: "cid", SecretID: "sid", SecretValue: caSecret, Username: "bot@example.com"})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs syncBuffer
			logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			env := setup(t, WithLogger(logger), WithSessionStore(NewMemorySessionStore()))
			if tt.cred != nil {
				env.client.creds = nil
				if err := tt.cred(env.client); err != nil {
					t.Fatal(err)
				}
			}
			var (
				mu      sync.Mutex
				secrets = []string{testSecret, caSecret}
				n       atomic.Int32
			)
			env.mux.HandleFunc("POST "+apiPrefix+"/auth/signin", func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				var body struct {
					Credentials struct {
						JWT string `json:"jwt"`
					} `json:"credentials"`
				}
				json.Unmarshal(b, &body)
				tok := "SESSION-TOKEN-" + string(rune('A'+n.Add(1)))
				mu.Lock()
				if body.Credentials.JWT != "" {
					secrets = append(secrets, body.Credentials.JWT)
					// Each part alone would also give the JWT away.
					secrets = append(secrets, strings.Split(body.Credentials.JWT, ".")...)
				}
				secrets = append(secrets, tok)
				mu.Unlock()
				writeJSON(w, 200, `{"credentials":{"site":{"id":"site-luid","contentUrl":"mysite"},"user":{"id":"user-luid"},"token":"`+tok+`"}}`)
			})
			var calls atomic.Int32
			env.mux.HandleFunc("GET "+sitePrefix+"/jobs/job-1", func(w http.ResponseWriter, r *http.Request) {
				switch calls.Add(1) {
				case 2:
					writeJSON(w, 401, tableauError(401, "401002", "Unauthorized", "Invalid authentication credentials were provided."))
				case 3:
					writeJSON(w, 503, tableauError(503, "503000", "Unavailable", ""))
				default:
					writeBytes(w, 200, "application/json", fixture(t, "job_running.json"))
				}
			})
			env.mux.HandleFunc("POST "+sitePrefix+"/workbooks/wb-1/refresh", func(w http.ResponseWriter, r *http.Request) {
				writeBytes(w, 409, "application/json", fixture(t, "error_409093.json"))
			})
			env.mux.HandleFunc("GET "+sitePrefix+"/workbooks/bad", func(w http.ResponseWriter, r *http.Request) {
				writeBytes(w, 200, "text/html", []byte("<html>proxy login</html>"))
			})
			env.mux.HandleFunc("POST "+apiPrefix+"/auth/signout", func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusNoContent)
			})
			ctx := context.Background()
			var errs []error
			record := func(err error) {
				if err != nil {
					errs = append(errs, err)
				}
			}
			for range 3 {
				_, err := env.client.Job(ctx, "job-1")
				record(err)
			}
			_, err := env.client.RefreshWorkbook(ctx, "wb-1")
			record(err)
			_, err = env.client.Workbook(ctx, "bad")
			record(err)
			record(env.client.SignOut(ctx))
			if n.Load() < 2 {
				t.Fatalf("only %d sign-ins: the session was not replaced", n.Load())
			}
			out := logs.String()
			if !strings.Contains(out, "tableau signed in") || !strings.Contains(out, "tableau request") {
				t.Fatalf("expected log lines missing:\n%s", out)
			}
			mu.Lock()
			defer mu.Unlock()
			for _, s := range secrets {
				if s == "" {
					continue
				}
				if strings.Contains(out, s) {
					t.Errorf("log contains secret %q", s)
				}
				for _, e := range errs {
					if strings.Contains(e.Error(), s) {
						t.Errorf("error %q contains secret %q", e, s)
					}
				}
			}
		})
	}
}

// TestSignInErrorsHoldNoSecrets: a sign-in reply that fails to decode must not
// quote the body, which may hold a token.
func TestSignInErrorsHoldNoSecrets(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{"truncated", `{"credentials":{"token":"LEAKY-TOKEN-1","site":{"id":"s"`},
		{"wrong shape", `{"credentials":{"token":"LEAKY-TOKEN-1","site":"s"}}`},
		{"text", `token=LEAKY-TOKEN-1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := setup(t, WithRetryPolicy(remote.Policy{MaxAttempts: 1}))
			env.mux.HandleFunc("POST "+apiPrefix+"/auth/signin", func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, 200, tt.body)
			})
			err := env.client.SignIn(context.Background())
			if err == nil {
				t.Fatal("no error")
			}
			if strings.Contains(err.Error(), "LEAKY") || strings.Contains(err.Error(), testSecret) {
				t.Errorf("error leaks: %v", err)
			}
		})
	}
}
