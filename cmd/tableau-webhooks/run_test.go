package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dynamo"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/motoserver"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/secrets"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau/tableautest"
)

const (
	testToken   = "Zk4pQ8rT2vX6yB1nM5cF9hJ3kL7wS0dG"
	otherToken  = "Hq7Wm2Ns9Lc4Vb8Xz1Kj6Pd3Fg5Rt0Ya"
	adminPAT    = "admin-pat"
	adminSecret = "admin-pat-secret-9f8e7d"
	viewerPAT   = "viewer-pat"
	viewerSec   = "viewer-pat-secret-1a2b3c"
	noSuchID    = "00000000-0000-4000-8000-000000000000"
	caSecret    = "ca-secret-value-5e6f7a8b"
)

// secretValues must never appear in any output.
var secretValues = []string{testToken, otherToken, adminSecret, viewerSec, caSecret, emeaSecret, cloudSecret}

type env map[string]string

func (e env) with(kv ...string) env {
	out := env{}
	for k, v := range e {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(out, kv[i])
		} else {
			out[kv[i]] = kv[i+1]
		}
	}
	return out
}

// newSim starts a simulator with an administrator's and a viewer's PAT and
// returns the environment the command reads to use the administrator's.
func newSim(t *testing.T, opts ...tableautest.Option) (*tableautest.Server, env) {
	t.Helper()
	srv := tableautest.NewServer(opts...)
	t.Cleanup(srv.Close)
	srv.AddPAT(adminPAT, adminSecret)
	srv.AddPATWithRole(viewerPAT, viewerSec, tableautest.RoleViewer)
	return srv, env{
		"TABLEAU_SERVER_URL":    srv.URL(),
		"TABLEAU_PAT_NAME":      adminPAT,
		"TABLEAU_PAT_SECRET":    adminSecret,
		"TABLEAU_WEBHOOK_TOKEN": testToken,
	}
}

// receiver is the bridge's route as Tableau sees it: 200 for the current
// token, 404 for anything else.
type receiver struct {
	*httptest.Server
	mu    sync.Mutex
	paths []string
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	r := &receiver{}
	r.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.paths = append(r.paths, req.URL.Path)
		r.mu.Unlock()
		if req.Method != http.MethodPost || req.URL.Path != "/tableau/webhook/"+testToken {
			http.NotFound(w, req)
			return
		}
		w.Write([]byte(`{"status":"ok"}`))
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) received() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.paths)
}

// newSimWithReceiver starts a simulator that delivers to an https receiver.
// (pkg/tableau refuses http destinations even on loopback, so the round
// trip cannot use AllowHTTPDestinations and -allow-http.)
func newSimWithReceiver(t *testing.T) (*tableautest.Server, env, *receiver) {
	t.Helper()
	rcv := newReceiver(t)
	srv, e := newSim(t, tableautest.WithWebhookClient(rcv.Client()))
	return srv, e, rcv
}

type result struct {
	code           int
	stdout, stderr string
}

// noAWS fails the test if the command reaches for AWS.
func noAWS(t *testing.T) awsAPIs {
	return awsAPIs{
		secrets: func(context.Context) (secrets.GetSecretValueAPI, error) {
			t.Error("the command used Secrets Manager without SECRET_ID")
			return nil, errors.New("no AWS in this test")
		},
		sessions: func(context.Context, string) (tableau.SessionStore, error) {
			t.Error("the command used DynamoDB without STATE_TABLE")
			return nil, errors.New("no AWS in this test")
		},
	}
}

// runCLI runs the command in-process and checks that no secret reached its
// output.
func runCLI(t *testing.T, e env, aws awsAPIs, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := runWith(t.Context(), args, func(k string) string { return e[k] }, &stdout, &stderr, aws)
	r := result{code: code, stdout: stdout.String(), stderr: stderr.String()}
	for _, s := range secretValues {
		if strings.Contains(r.stdout+r.stderr, s) {
			t.Errorf("%v: output contains the secret %s…:\nstdout:\n%s\nstderr:\n%s", args, s[:4], r.stdout, r.stderr)
		}
	}
	if r.code == exitFail {
		// A failure is one readable line, after any warnings, all prefixed.
		for line := range strings.Lines(r.stderr) {
			if !strings.HasPrefix(line, progName+": ") {
				t.Errorf("%v: stderr line %q is not a one-line message", args, line)
			}
		}
	}
	return r
}

func (r result) want(t *testing.T, code int, substrings ...string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit status %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
	for _, s := range substrings {
		if !strings.Contains(r.stdout+r.stderr, s) {
			t.Errorf("output lacks %q\nstdout:\n%s\nstderr:\n%s", s, r.stdout, r.stderr)
		}
	}
}

func countLines(s, sub string) int {
	n := 0
	for line := range strings.Lines(s) {
		if strings.Contains(line, sub) {
			n++
		}
	}
	return n
}

func TestRoundTrip(t *testing.T) {
	srv, e, rcv := newSimWithReceiver(t)
	base := rcv.URL + "/tableau/webhook"
	shown := "/tableau/webhook/****" + testToken[len(testToken)-4:]

	r := runCLI(t, e, noAWS(t), "create", "-url", base)
	r.want(t, exitOK, shown)
	if got := countLines(r.stdout, "created"); got != len(defaultEvents) {
		t.Errorf("created %d webhooks, want %d:\n%s", got, len(defaultEvents), r.stdout)
	}
	hooks := srv.Webhooks()
	if len(hooks) != len(defaultEvents) {
		t.Fatalf("simulator holds %d webhooks, want %d", len(hooks), len(defaultEvents))
	}
	for i, h := range hooks {
		if h.Event != defaultEvents[i] || h.Name != "dbt-tableau-refresh-"+defaultEvents[i] ||
			h.URL != base+"/"+testToken || !h.Enabled {
			t.Errorf("webhook %d = %+v", i, h)
		}
	}

	r = runCLI(t, e, noAWS(t), "list")
	r.want(t, exitOK, "ID", "ENABLED", shown)
	for _, h := range hooks {
		if !strings.Contains(r.stdout, h.ID) || !strings.Contains(r.stdout, h.Name) {
			t.Errorf("list lacks %s %s:\n%s", h.ID, h.Name, r.stdout)
		}
	}

	r = runCLI(t, e, noAWS(t), "test", "-all")
	r.want(t, exitOK)
	if got := countLines(r.stdout, "200 OK"); got != len(hooks) {
		t.Errorf("%d deliveries answered 200, want %d:\n%s", got, len(hooks), r.stdout)
	}
	if got := rcv.received(); len(got) != len(hooks) || got[0] != "/tableau/webhook/"+testToken {
		t.Errorf("receiver got %d deliveries (%v), want %d on the token's path", len(got), len(got) > 0, len(hooks))
	}
	runCLI(t, e, noAWS(t), "test", "-id", hooks[0].ID).want(t, exitOK, hooks[0].Name, "200 OK")

	// Again: nothing new.
	posts := srv.Count(http.MethodPost, "/webhooks")
	r = runCLI(t, e, noAWS(t), "create", "-url", base+"/")
	r.want(t, exitOK)
	if got := countLines(r.stdout, "exists"); got != len(defaultEvents) {
		t.Errorf("%d reported as existing, want %d:\n%s", got, len(defaultEvents), r.stdout)
	}
	if srv.Count(http.MethodPost, "/webhooks") != posts || len(srv.Webhooks()) != len(hooks) {
		t.Errorf("re-create changed the site: %d webhooks", len(srv.Webhooks()))
	}

	// Someone else's webhook survives delete -all.
	runCLI(t, e, noAWS(t), "create", "-url", base, "-name-prefix", "other", "-events", "WorkbookRefreshFailed").
		want(t, exitOK, "created")
	foreign := srv.Webhooks()[len(hooks)]

	r = runCLI(t, e, noAWS(t), "delete", "-all")
	r.want(t, exitFail, "would delete", "re-run with -yes")
	if len(srv.Webhooks()) != len(hooks)+1 {
		t.Fatalf("delete without -yes deleted something")
	}
	r = runCLI(t, e, noAWS(t), "delete", "-all", "-yes")
	r.want(t, exitOK)
	if got := countLines(r.stdout, "deleted"); got != len(hooks) {
		t.Errorf("deleted %d, want %d:\n%s", got, len(hooks), r.stdout)
	}
	if left := srv.Webhooks(); len(left) != 1 || left[0].ID != foreign.ID {
		t.Fatalf("left after delete -all: %+v", left)
	}
	runCLI(t, e, noAWS(t), "delete", "-id", foreign.ID).want(t, exitFail, "would delete", "other-WorkbookRefreshFailed")
	runCLI(t, e, noAWS(t), "delete", "-id", foreign.ID, "-yes").want(t, exitOK, "deleted")
	runCLI(t, e, noAWS(t), "delete", "-all", "-yes").want(t, exitOK, "nothing to delete")
	runCLI(t, e, noAWS(t), "list").want(t, exitOK, "no webhooks on this site")
	if n := srv.ActiveSessions(); n != 0 {
		t.Errorf("%d sessions left open; the command should sign out", n)
	}
}

func TestCreateConflicts(t *testing.T) {
	ctx := t.Context()
	failed := "dbt-tableau-refresh-" + tableau.EventWorkbookRefreshFailed
	succeeded := "dbt-tableau-refresh-" + tableau.EventWorkbookRefreshSucceeded
	tests := []struct {
		name string
		// setup creates what is on the site, given the client and the base URL.
		setup    func(t *testing.T, c *tableau.Client, base string)
		wantErr  []string // without -replace
		wantWarn string
	}{
		{
			name: "rotated token",
			setup: func(t *testing.T, c *tableau.Client, base string) {
				mustCreate(t, c, failed, tableau.EventWorkbookRefreshFailed, base+"/"+otherToken)
			},
			wantErr: []string{`"` + failed + `"`, "URL https://", "****" + otherToken[len(otherToken)-4:], "delete -id", "-replace", "nothing was changed"},
		},
		{
			name: "other event under our name",
			setup: func(t *testing.T, c *tableau.Client, base string) {
				mustCreate(t, c, failed, tableau.EventWorkbookRefreshSucceeded, base+"/"+testToken)
			},
			wantErr: []string{"event WorkbookRefreshSucceeded"},
		},
		{
			name: "disabled by Tableau",
			setup: func(t *testing.T, c *tableau.Client, base string) {
				w := mustCreate(t, c, failed, tableau.EventWorkbookRefreshFailed, base+"/"+testToken)
				off := false
				if _, err := c.UpdateWebhook(ctx, w.ID, &tableau.Webhook{IsEnabled: &off}); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: []string{"is disabled by Tableau"},
		},
		{
			name: "same target under another name",
			setup: func(t *testing.T, c *tableau.Client, base string) {
				mustCreate(t, c, "hand-made", tableau.EventWorkbookRefreshSucceeded, base+"/"+testToken)
			},
			wantWarn: `"hand-made"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, e, rcv := newSimWithReceiver(t)
			base := rcv.URL + "/tableau/webhook"
			c, err := tableau.NewClient(srv.URL(), tableau.WithPAT(adminPAT, adminSecret))
			if err != nil {
				t.Fatal(err)
			}
			tt.setup(t, c, base)
			before := srv.Webhooks()
			args := []string{"create", "-url", base, "-events", "WorkbookRefreshFailed,WorkbookRefreshSucceeded"}

			r := runCLI(t, e, noAWS(t), args...)
			if tt.wantErr == nil {
				r.want(t, exitOK, "warning", tt.wantWarn, "each event twice")
				if got := countLines(r.stdout, "created"); got != 2 {
					t.Errorf("created %d, want 2:\n%s", got, r.stdout)
				}
				return
			}
			r.want(t, exitFail, tt.wantErr...)
			if after := srv.Webhooks(); !slices.Equal(after, before) {
				t.Fatalf("a refused create changed the site:\nbefore %+v\nafter  %+v", before, after)
			}

			r = runCLI(t, e, noAWS(t), append(args, "-replace")...)
			r.want(t, exitOK, "deleted", "created")
			hooks := srv.Webhooks()
			if len(hooks) != 2 {
				t.Fatalf("after -replace: %+v", hooks)
			}
			for _, h := range hooks {
				if h.ID == before[0].ID || !h.Enabled || h.URL != base+"/"+testToken || h.Name != "dbt-tableau-refresh-"+h.Event {
					t.Errorf("after -replace: %+v", h)
				}
			}
			if !slices.ContainsFunc(hooks, func(h tableautest.WebhookInfo) bool { return h.Name == succeeded }) {
				t.Errorf("after -replace: no %s", succeeded)
			}
		})
	}
}

func mustCreate(t *testing.T, c *tableau.Client, name, event, url string) *tableau.Webhook {
	t.Helper()
	w, err := c.CreateWebhook(t.Context(), tableau.NewWebhook(name, event, url))
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestErrors(t *testing.T) {
	const admin = "the signed-in user must be a site administrator to manage webhooks"
	viewer := func(e env) env { return e.with("TABLEAU_PAT_NAME", viewerPAT, "TABLEAU_PAT_SECRET", viewerSec) }
	tests := []struct {
		name string
		env  func(env) env
		args []string
		code int
		want []string
		// offline: the command must fail before any request to Tableau.
		offline bool
	}{
		{name: "viewer lists", env: viewer, args: []string{"list"}, code: exitFail,
			want: []string{admin, `personal access token "viewer-pat"`}},
		{name: "viewer creates", env: viewer, args: []string{"create", "-url", "https://api.example.com/tableau/webhook"}, code: exitFail, want: []string{admin}},
		{name: "viewer tests", env: viewer, args: []string{"test", "-all"}, code: exitFail, want: []string{admin}},
		{name: "viewer deletes", env: viewer, args: []string{"delete", "-all", "-yes"}, code: exitFail, want: []string{admin}},

		{name: "http URL", args: []string{"create", "-url", "http://api.example.com/tableau/webhook"}, code: exitUsage,
			want: []string{"only to https"}, offline: true},
		{name: "http URL with -allow-http", args: []string{"create", "-allow-http", "-url", "http://api.example.com/tableau/webhook"}, code: exitUsage,
			want: []string{"only to https"}, offline: true},
		{name: "loopback http without -allow-http", args: []string{"create", "-url", "http://127.0.0.1:9/tableau/webhook"}, code: exitUsage,
			want: []string{"-allow-http"}, offline: true},
		{name: "other scheme", args: []string{"create", "-url", "ftp://api.example.com/tableau/webhook"}, code: exitUsage,
			want: []string{"must be https"}, offline: true},
		{name: "no URL", args: []string{"create"}, code: exitUsage, want: []string{"-url is required"}, offline: true},
		{name: "URL with query", args: []string{"create", "-url", "https://api.example.com/tableau/webhook?token=" + testToken}, code: exitUsage,
			want: []string{"query"}, offline: true},
		{name: "URL with the token", args: []string{"create", "-url", "https://api.example.com/tableau/webhook/" + testToken}, code: exitUsage,
			want: []string{"already ends with the token"}, offline: true},

		{name: "unknown event", args: []string{"create", "-url", "https://api.example.com/tableau/webhook", "-events", "WorkbookRefreshFailed,WorkbookExploded"}, code: exitUsage,
			want: []string{`unknown event "WorkbookExploded"`, "valid events: WorkbookRefreshStarted, WorkbookRefreshSucceeded, WorkbookRefreshFailed, DatasourceRefreshStarted, DatasourceRefreshSucceeded, DatasourceRefreshFailed"}, offline: true},
		{name: "not a refresh event", args: []string{"create", "-url", "https://api.example.com/tableau/webhook", "-events", "workbookcreated"}, code: exitUsage,
			want: []string{"WorkbookCreated is not a refresh event"}, offline: true},
		{name: "empty event", args: []string{"create", "-url", "https://api.example.com/tableau/webhook", "-events", "WorkbookRefreshFailed,"}, code: exitUsage,
			want: []string{"empty name"}, offline: true},
		{name: "empty prefix", args: []string{"create", "-url", "https://api.example.com/tableau/webhook", "-name-prefix", " "}, code: exitUsage,
			want: []string{"-name-prefix"}, offline: true},

		{name: "missing token", env: func(e env) env { return e.with("TABLEAU_WEBHOOK_TOKEN", "") },
			args: []string{"create", "-url", "https://api.example.com/tableau/webhook"}, code: exitFail,
			want: []string{"TABLEAU_WEBHOOK_TOKEN is missing"}, offline: true},
		{name: "short token", env: func(e env) env { return e.with("TABLEAU_WEBHOOK_TOKEN", "abc123") },
			args: []string{"create", "-url", "https://api.example.com/tableau/webhook"}, code: exitFail,
			want: []string{"too short"}, offline: true},
		{name: "token not URL-safe", env: func(e env) env { return e.with("TABLEAU_WEBHOOK_TOKEN", testToken[:20]+"/+"+testToken[20:]) },
			args: []string{"create", "-url", "https://api.example.com/tableau/webhook"}, code: exitFail,
			want: []string{"URL path segment"}, offline: true},

		{name: "unknown id to test", args: []string{"test", "-id", noSuchID}, code: exitFail, want: []string{`no webhook with id "` + noSuchID + `"`}},
		{name: "unknown id to delete", args: []string{"delete", "-id", noSuchID, "-yes"}, code: exitFail, want: []string{`no webhook with id "` + noSuchID + `"`}},
		{name: "unknown id to delete without -yes", args: []string{"delete", "-id", noSuchID}, code: exitFail, want: []string{`no webhook with id "` + noSuchID + `"`}},
		{name: "id that is no id", args: []string{"test", "-id", "a/b"}, code: exitUsage, want: []string{"not a webhook id"}, offline: true},
		{name: "id and all", args: []string{"delete", "-id", noSuchID, "-all"}, code: exitUsage, want: []string{"not both", "usage: tableau-webhooks delete"}, offline: true},
		{name: "neither id nor all", args: []string{"test"}, code: exitUsage, want: []string{"give -id ID", "usage: tableau-webhooks test"}, offline: true},
		{name: "test -all with none", args: []string{"test", "-all"}, code: exitFail, want: []string{"no webhooks named dbt-tableau-refresh-*"}},

		{name: "no server URL", env: func(e env) env { return e.with("TABLEAU_SERVER_URL", "") }, args: []string{"list"}, code: exitFail,
			want: []string{"TABLEAU_SERVER_URL is not set"}, offline: true},
		{name: "plain http server", env: func(e env) env { return e.with("TABLEAU_SERVER_URL", "http://tableau.example.com") }, args: []string{"list"}, code: exitFail,
			want: []string{"TABLEAU_SERVER_URL", "must use https"}, offline: true},
		{name: "no credentials", env: func(e env) env { return e.with("TABLEAU_PAT_SECRET", "") }, args: []string{"list"}, code: exitFail,
			want: []string{"no Tableau credentials", "TABLEAU_PAT_SECRET"}, offline: true},
		{name: "wrong PAT secret", env: func(e env) env { return e.with("TABLEAU_PAT_SECRET", "not-the-secret-at-all") }, args: []string{"list"}, code: exitFail,
			want: []string{"Tableau rejected the sign-in", `"admin-pat"`}},
		{name: "API version without webhooks", env: func(e env) env { return e.with("TABLEAU_API_VERSION", "3.5") }, args: []string{"list"}, code: exitFail,
			want: []string{"3.6"}, offline: true},

		{name: "no command", args: nil, code: exitUsage, want: []string{"usage: tableau-webhooks <command>"}, offline: true},
		{name: "unknown command", args: []string{"lsit"}, code: exitUsage, want: []string{`unknown command "lsit"`, "usage:"}, offline: true},
		{name: "stray argument", args: []string{"list", "all"}, code: exitUsage, want: []string{`unexpected argument "all"`}, offline: true},
		{name: "unknown flag", args: []string{"list", "-all"}, code: exitUsage, want: []string{"flag provided but not defined: -all", "usage: tableau-webhooks list"}, offline: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, e := newSim(t)
			if tt.env != nil {
				e = tt.env(e)
			}
			r := runCLI(t, e, noAWS(t), tt.args...)
			r.want(t, tt.code, tt.want...)
			if tt.offline {
				if reqs := srv.Requests(); len(reqs) > 0 {
					t.Errorf("%d requests reached Tableau, first %s %s", len(reqs), reqs[0].Method, reqs[0].Path)
				}
			}
			if len(srv.Webhooks()) != 0 {
				t.Errorf("a failed command created webhooks: %+v", srv.Webhooks())
			}
		})
	}
}

func TestTestReportsFailedDeliveries(t *testing.T) {
	srv, e, rcv := newSimWithReceiver(t)
	// A stale route: the receiver answers 404, as the bridge does for a
	// wrong path or token.
	runCLI(t, e, noAWS(t), "create", "-url", rcv.URL+"/old/tableau/webhook", "-events", "WorkbookRefreshFailed").want(t, exitOK, "created")
	// A destination that is gone.
	gone := httptest.NewTLSServer(http.NotFoundHandler())
	goneURL := gone.URL
	gone.Close()
	runCLI(t, e, noAWS(t), "create", "-url", goneURL+"/tableau/webhook", "-name-prefix", "dbt-tableau-refresh-gone", "-events", "WorkbookRefreshFailed").want(t, exitOK, "created")

	r := runCLI(t, e, noAWS(t), "test", "-all")
	r.want(t, exitFail, "404 Not Found", "unreachable", "2 of 2 test deliveries failed", "-replace")
	if len(srv.Webhooks()) != 2 {
		t.Errorf("test changed the site")
	}
}

// fakeSecrets is Secrets Manager holding one secret.
type fakeSecrets struct {
	id, value string
	calls     int
}

func (f *fakeSecrets) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	f.calls++
	if aws.ToString(in.SecretId) != f.id {
		return nil, errors.New("ResourceNotFoundException: Secrets Manager can't find the specified secret")
	}
	return &secretsmanager.GetSecretValueOutput{SecretString: aws.String(f.value)}, nil
}

func TestSecretsManager(t *testing.T) {
	const id = "dbt-tableau-refresh/credentials"
	tests := []struct {
		name   string
		secret string
		env    []string // added to the environment
		args   []string
		code   int
		want   []string
	}{
		{name: "token from the secret",
			secret: `{"dbt_webhook_secret":"","tableau_pat_name":"admin-pat","tableau_pat_secret":"` + adminSecret + `","tableau_webhook_token":"` + testToken + `"}`,
			args:   []string{"create", "-url", "{base}"}, code: exitOK, want: []string{"created"}},
		{name: "missing token in the secret",
			secret: `{"dbt_webhook_secret":"x","tableau_pat_name":"admin-pat","tableau_pat_secret":"` + adminSecret + `"}`,
			env:    []string{"TABLEAU_WEBHOOK_TOKEN", otherToken}, // ignored: the deployed route checks the secret's
			args:   []string{"create", "-url", "{base}"}, code: exitFail,
			want: []string{"tableau_webhook_token in the secret " + id + " is missing"}},
		{name: "administrator's PAT from the environment",
			secret: `{"tableau_pat_name":"viewer-pat","tableau_pat_secret":"` + viewerSec + `","tableau_webhook_token":"` + testToken + `"}`,
			env:    []string{"TABLEAU_PAT_NAME", adminPAT, "TABLEAU_PAT_SECRET", adminSecret},
			args:   []string{"create", "-url", "{base}"}, code: exitOK, want: []string{"created", "credentials from the environment"}},
		{name: "bridge PAT is no administrator",
			secret: `{"tableau_pat_name":"viewer-pat","tableau_pat_secret":"` + viewerSec + `","tableau_webhook_token":"` + testToken + `"}`,
			args:   []string{"list"}, code: exitFail, want: []string{"must be a site administrator"}},
		{name: "no Tableau credentials",
			secret: `{"tableau_webhook_token":"` + testToken + `"}`,
			args:   []string{"list"}, code: exitFail, want: []string{"the secret " + id + " has no Tableau credentials"}},
		{name: "not JSON",
			secret: `tableau_webhook_token=` + testToken,
			args:   []string{"list"}, code: exitFail, want: []string{"is not a JSON object"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _, rcv := newSimWithReceiver(t)
			e := env{"TABLEAU_SERVER_URL": srv.URL(), "SECRET_ID": id}.with(tt.env...)
			sm := &fakeSecrets{id: id, value: tt.secret}
			apis := noAWS(t)
			apis.secrets = func(context.Context) (secrets.GetSecretValueAPI, error) { return sm, nil }
			args := slices.Clone(tt.args)
			for i := range args {
				args[i] = strings.ReplaceAll(args[i], "{base}", rcv.URL+"/tableau/webhook")
			}
			r := runCLI(t, e, apis, args...)
			r.want(t, tt.code, tt.want...)
			if sm.calls != 1 {
				t.Errorf("secret read %d times, want 1", sm.calls)
			}
			if tt.code == exitOK && strings.HasPrefix(tt.name, "token") {
				for _, h := range srv.Webhooks() {
					if h.URL != rcv.URL+"/tableau/webhook/"+testToken {
						t.Errorf("webhook %s does not carry the secret's token", h.Name)
					}
				}
			}
		})
	}
}

// With STATE_TABLE the command adopts the functions' stored session and
// leaves it open; without, it signs in and out on its own.
func TestSharedSession(t *testing.T) {
	srv, e := newSim(t)
	store := tableau.NewMemorySessionStore()
	apis := noAWS(t)
	apis.sessions = func(_ context.Context, table string) (tableau.SessionStore, error) {
		if table != "bridge-state" {
			t.Errorf("table %q", table)
		}
		return store, nil
	}
	runCLI(t, e.with("STATE_TABLE", "bridge-state"), apis, "list").want(t, exitOK)
	if n := srv.ActiveSessions(); n != 1 {
		t.Errorf("%d active sessions after a shared run, want the stored one left open", n)
	}
	signIns := srv.Count(http.MethodPost, "/auth/signin")
	runCLI(t, e.with("STATE_TABLE", "bridge-state"), apis, "list").want(t, exitOK)
	if got := srv.Count(http.MethodPost, "/auth/signin"); got != signIns {
		t.Errorf("second shared run signed in again instead of adopting the stored session")
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"help"}, {"list", "-h"}, {"create", "-h"}, {"test", "-help"}, {"delete", "-h"}} {
		var stdout, stderr bytes.Buffer
		code := runWith(t.Context(), args, func(string) string { return "" }, &stdout, &stderr, noAWS(t))
		if code != exitOK || !strings.HasPrefix(stdout.String(), "usage: tableau-webhooks") || stderr.Len() > 0 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, stdout.String(), stderr.String())
		}
	}
}

func TestCreateWarnsOffRoute(t *testing.T) {
	srv, e, rcv := newSimWithReceiver(t)
	r := runCLI(t, e, noAWS(t), "create", "-url", rcv.URL+"/dbt/webhook", "-events", "DatasourceRefreshFailed")
	r.want(t, exitOK, "warning: -url does not end in /tableau/webhook", "created")
	if hooks := srv.Webhooks(); len(hooks) != 1 || hooks[0].URL != rcv.URL+"/dbt/webhook/"+testToken {
		t.Errorf("webhooks = %+v", hooks)
	}
}

// TestSharedSessionInDynamoDB: the command's own AWS wiring (defaultAWS, as
// in a real run) stores the session in the functions' table and adopts it
// the next time.
func TestSharedSessionInDynamoDB(t *testing.T) {
	ctx := t.Context()
	moto, err := motoserver.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(moto.Stop)
	moto.SetEnv(t.Setenv)
	awsCfg, err := moto.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := dynamo.CreateTable(ctx, dynamodb.NewFromConfig(awsCfg), "bridge-state"); err != nil {
		t.Fatal(err)
	}
	srv, e := newSim(t)
	e = e.with("STATE_TABLE", "bridge-state")
	runCLI(t, e, defaultAWS(), "list").want(t, exitOK)
	signIns := srv.Count(http.MethodPost, "/auth/signin")
	runCLI(t, e, defaultAWS(), "list").want(t, exitOK)
	if got := srv.Count(http.MethodPost, "/auth/signin"); got != signIns || signIns != 1 {
		t.Errorf("sign-ins %d then %d, want the second run to adopt the session stored in DynamoDB", signIns, got)
	}
}

// TestConnectedApp: with a connected app the command asks for the webhook
// scopes, which Tableau requires of a JWT session that manages webhooks.
func TestConnectedApp(t *testing.T) {
	srv, e := newSim(t, tableautest.AllowHTTPDestinations())
	srv.AddUser("admin@example.com", tableautest.RoleSiteAdministratorCreator)
	srv.AddConnectedApp("client-1", "secret-id-1", caSecret)
	ca := e.with("TABLEAU_PAT_NAME", "", "TABLEAU_PAT_SECRET", "", "TABLEAU_CLIENT_ID", "client-1", "TABLEAU_SECRET_ID", "secret-id-1",
		"TABLEAU_SECRET_VALUE", caSecret, "TABLEAU_USERNAME", "admin@example.com")
	runCLI(t, ca, noAWS(t), "create", "-url", "http://127.0.0.1:1/tableau/webhook", "-allow-http").want(t, exitOK)
	runCLI(t, ca, noAWS(t), "list").want(t, exitOK, "dbt-tableau-refresh-")
	runCLI(t, ca, noAWS(t), "delete", "-all", "-yes").want(t, exitOK)
	if n := len(srv.Webhooks()); n != 0 {
		t.Errorf("%d webhooks left", n)
	}
	if n := srv.Count(http.MethodPost, "/auth/signin"); n != 3 {
		t.Errorf("%d sign-ins for three runs, want 3 (no session refused for want of a scope)", n)
	}
}
