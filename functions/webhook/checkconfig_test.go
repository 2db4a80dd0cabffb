package main

import (
	"encoding/json"
	"os/exec"
	"runtime"
	"strings"
	"testing"
)

// A wrong TABLEAU_SERVER_URL used to pass start-up and the pre-deploy check,
// then fail every delivery "permanently" with a 200, so that dbt never
// redelivered and the refreshes were lost. Now both the pre-deploy check
// (make check-config) and the deployed function's start stop with one line
// that names the variable.
func TestBadTableauServerURLStopsCheckAndStart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the bootstrap; run without -short")
	}
	bin := buildBootstrap(t, ".", runtime.GOOS, runtime.GOARCH)
	base := []string{"SECRET_ID=bridge/credentials", "STATE_TABLE=t", "REFRESH_MAP_FILE=refresh-map.json", "HOME=" + t.TempDir()}
	tests := []struct {
		name, url string
		wantOK    bool
		want      string
	}{
		{"plain http", "http://example.com", false, `TABLEAU_SERVER_URL: server URL "http://example.com" must use https`},
		{"no scheme", "example.com", false, `TABLEAU_SERVER_URL: server URL "example.com" has no host`},
		{"unset", "", false, "TABLEAU_SERVER_URL is not set"},
		{"https", "https://prod-useast-a.online.tableau.com", true, "configuration OK"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := append([]string{"TABLEAU_SERVER_URL=" + tt.url}, base...)
			for _, mode := range []struct {
				name string
				args []string
				env  []string
			}{
				{"make check-config", []string{"-check-config"}, env},
				// Under Lambda the function must refuse to start, before
				// it asks the Runtime API for an event.
				{"Lambda start", nil, append([]string{"AWS_LAMBDA_RUNTIME_API=127.0.0.1:9", "AWS_REGION=us-east-1"}, env...)},
			} {
				if tt.wantOK && mode.args == nil {
					continue
				}
				cmd := exec.Command(bin, mode.args...)
				cmd.Env = mode.env
				out, err := cmd.CombinedOutput()
				got := strings.TrimSpace(string(out))
				if ok := err == nil; ok != tt.wantOK {
					t.Fatalf("%s: exit ok=%t, want %t: %s", mode.name, ok, tt.wantOK, got)
				}
				if !strings.Contains(got, tt.want) {
					t.Errorf("%s: %q, want it to say %q", mode.name, got, tt.want)
				}
				if !tt.wantOK && strings.Contains(got, "\n") {
					t.Errorf("%s: %q, want one line", mode.name, got)
				}
			}
		})
	}
}

// make invoke prints the function's reply on stdout and nothing else, so
// that it can be piped to jq; the logs go to stderr.
func TestInvokeSeparatesReplyFromLogs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the function; run without -short")
	}
	bin := buildBootstrap(t, ".", runtime.GOOS, runtime.GOARCH)
	cmd := exec.Command(bin, "-event", "../../events/dbt-run-succeeded.json")
	// The demo, as make invoke runs it.
	cmd.Env = []string{"HOME=" + t.TempDir(), "DEMO=true", "WEBHOOK_MAX_EVENT_AGE=876000h", "IDEMPOTENCY_RETENTION=876001h"}
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	var reply struct {
		StatusCode int    `json:"statusCode"`
		Body       string `json:"body"`
	}
	dec := json.NewDecoder(strings.NewReader(stdout.String()))
	if err := dec.Decode(&reply); err != nil || reply.StatusCode != 200 || dec.More() {
		t.Fatalf("stdout is not one reply (%v):\n%s", err, stdout.String())
	}
	if !strings.Contains(stderr.String(), `"msg":"webhook done"`) {
		t.Errorf("stderr lacks the function's logs:\n%s", stderr.String())
	}
}

// make check-config says where each other site is; a bad TABLEAU_SITES
// stops the check and the function's start with one line naming it.
func TestCheckConfigSites(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the bootstrap; run without -short")
	}
	bin := buildBootstrap(t, ".", runtime.GOOS, runtime.GOARCH)
	base := []string{"SECRET_ID=bridge/credentials", "STATE_TABLE=t", "HOME=" + t.TempDir(),
		"TABLEAU_SERVER_URL=https://tableau.example.com", "TABLEAU_SITE=analytics",
		`REFRESH_MAP={"jobs":{"1":[{"workbook":"Sales"},{"workbook":"Sales","site":"emea"},{"datasource":"Orders","site":"cloud"}]}}`}
	tests := []struct {
		name   string
		sites  string
		wantOK bool
		want   []string
	}{
		{"two other sites", `{"cloud": {"server_url": "https://prod-useast-a.online.tableau.com"}}`, true, []string{
			"configuration OK",
			`Tableau:        https://tableau.example.com, site "analytics"`,
			`other sites:    "cloud" on https://prod-useast-a.online.tableau.com, REST API version negotiated with the server (TABLEAU_SITES, the refresh map); ` +
				`"emea" on the same server, REST API version negotiated with the server (the refresh map); each signs in with its own credentials, from the secret's tableau_sites`,
		}},
		{"http to another host", `{"cloud": {"server_url": "http://cloud.example.com"}}`, false, []string{`TABLEAU_SITES["cloud"]: server_url: server URL "http://cloud.example.com" must use https`}},
		{"credentials beside a secret", `{"cloud": {"tableau_pat_secret": "s3cret"}}`, false, []string{`TABLEAU_SITES["cloud"]: tableau_pat_secret is a credential: put it in the secret`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(bin, "-check-config")
			cmd.Env = append([]string{"TABLEAU_SITES=" + tt.sites}, base...)
			out, err := cmd.CombinedOutput()
			got := string(out)
			if ok := err == nil; ok != tt.wantOK {
				t.Fatalf("exit ok=%t, want %t: %s", ok, tt.wantOK, got)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("%q, want it to say %q", got, w)
				}
			}
			if strings.Contains(got, "s3cret") || (!tt.wantOK && strings.Count(strings.TrimSpace(got), "\n") > 0) {
				t.Errorf("%q: want one line, and no credential", got)
			}
		})
	}
}
