package bridge

import (
	"context"
	"strings"
	"testing"
	"time"
)

func env(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

func TestFromEnv(t *testing.T) {
	base := map[string]string{
		"TABLEAU_SERVER_URL": "https://tableau.example.com",
		"REFRESH_MAP":        `{"jobs":{"1":[{"workbook":"W"}]}}`,
	}
	with := func(extra map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range base {
			out[k] = v
		}
		for k, v := range extra {
			if v == "" {
				delete(out, k)
				continue
			}
			out[k] = v
		}
		return out
	}
	tests := []struct {
		name    string
		env     map[string]string
		wantErr []string
		check   func(*testing.T, *Config)
	}{
		{name: "defaults", env: base, check: func(t *testing.T, c *Config) {
			if c.MaxEventAge != 24*time.Hour || c.Retention != 72*time.Hour || c.PollWindow != 5*time.Minute || c.JobLimit != 2*time.Hour {
				t.Errorf("defaults = %+v", c)
			}
		}},
		{name: "all set", env: with(map[string]string{"DBT_ACCOUNT_ID": "42", "CANCEL_STUCK": "true", "NOTIFY_SUCCESS": "1", "LOG_LEVEL": "debug", "QUEUE_LIMIT": "45m"}),
			check: func(t *testing.T, c *Config) {
				if c.DBTAccountID != 42 || !c.CancelStuck || !c.NotifySuccess || c.QueueLimit != 45*time.Minute || c.LogLevel.String() != "DEBUG" {
					t.Errorf("config = %+v", c)
				}
			}},
		{name: "every problem at once", env: with(map[string]string{
			"TABLEAU_SERVER_URL": "", "REFRESH_MAP": `{"jobs":{"x":[]}}`, "WEBHOOK_MAX_EVENT_AGE": "soon",
			"DBT_ACCOUNT_ID": "-3", "CANCEL_STUCK": "maybe", "LOG_LEVEL": "loud",
		}), wantErr: []string{"TABLEAU_SERVER_URL is not set", `REFRESH_MAP: jobs["x"]`, "WEBHOOK_MAX_EVENT_AGE", "DBT_ACCOUNT_ID", "CANCEL_STUCK", "LOG_LEVEL"}},
		{name: "Tableau URL without a scheme", env: with(map[string]string{"TABLEAU_SERVER_URL": "example.com"}), wantErr: []string{"TABLEAU_SERVER_URL: server URL \"example.com\" has no host"}},
		{name: "Tableau URL over http", env: with(map[string]string{"TABLEAU_SERVER_URL": "http://example.com"}), wantErr: []string{"TABLEAU_SERVER_URL: server URL \"http://example.com\" must use https"}},
		{name: "Tableau URL over http on loopback", env: with(map[string]string{"TABLEAU_SERVER_URL": "http://127.0.0.1:8080"}), check: func(t *testing.T, c *Config) {}},
		{name: "dbt Cloud URL over http", env: with(map[string]string{"DBT_CLOUD_URL": "http://cloud.getdbt.com"}), wantErr: []string{"DBT_CLOUD_URL: "}},
		{name: "replays must stay deduplicated", env: with(map[string]string{"WEBHOOK_MAX_EVENT_AGE": "96h"}), wantErr: []string{"IDEMPOTENCY_RETENTION (72h0m0s) must be longer than WEBHOOK_MAX_EVENT_AGE (96h0m0s)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := FromEnv(env(tt.env))
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatal("FromEnv succeeded")
				}
				// The function prints it as it stops: one line, one prefix.
				if msg := err.Error(); strings.Contains(msg, "\n") || strings.Count(msg, "configuration:") != 1 || strings.Contains(msg, "tableau: ") {
					t.Errorf("error %q: want one line with one prefix", msg)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestBuildLocalAndDBT(t *testing.T) {
	kv := map[string]string{
		"TABLEAU_SERVER_URL": "https://tableau.example.com",
		"REFRESH_MAP":        `{"jobs":{"1":[{"workbook":"W"}]}}`,
		"DBT_WEBHOOK_SECRET": "w", "TABLEAU_PAT_NAME": "n", "TABLEAU_PAT_SECRET": "s",
	}
	c, err := FromEnv(env(kv))
	if err != nil {
		t.Fatal(err)
	}
	d, err := Build(context.Background(), c, NewLogger(0))
	if err != nil {
		t.Fatal(err)
	}
	// Without SECRET_ID, credentials come from the same environment.
	creds, err := d.Secrets.Credentials(context.Background())
	if err != nil || creds.TableauPATName != "n" {
		t.Fatalf("credentials = %v, %v", creds, err)
	}
	if dbt := d.DBT(); dbt != nil {
		t.Errorf("DBT() without an account = %v, want nil: the scheduled path is off", dbt)
	}
	c.DBTAccountID = 7
	dbt := d.DBT()
	if err := dbt.Check(context.Background()); err == nil || !strings.Contains(err.Error(), "dbt_api_token") {
		t.Errorf("Check without a token = %v", err)
	}
	if _, err := dbt.GetRun(context.Background(), 1); err == nil || !strings.Contains(err.Error(), "dbt_api_token") {
		t.Errorf("GetRun without a token = %v", err)
	}
}
