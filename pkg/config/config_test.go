package config

import (
	"strings"
	"testing"
	"time"
)

func env(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

func TestFromEnv(t *testing.T) {
	base := map[string]string{
		"TABLEAU_SERVER_URL": "https://tableau.example.com",
		"REFRESH_MAP":        `{"jobs":{"1":[{"workbook":"W"}]}}`,
		"SECRET_ID":          "bridge/credentials",
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
			if c.MaxEventAge != 24*time.Hour || c.Retention != 72*time.Hour || c.PollWindow != 5*time.Minute || c.JobLimit != 2*time.Hour ||
				c.TableauConcurrency != 10 || c.FreshnessSLA != 24*time.Hour || c.QualityWarnings {
				t.Errorf("defaults = %+v", c)
			}
		}},
		{name: "Tableau concurrency", env: with(map[string]string{"TABLEAU_CONCURRENCY": " 4 "}), check: func(t *testing.T, c *Config) {
			if c.TableauConcurrency != 4 {
				t.Errorf("TableauConcurrency = %d, want 4", c.TableauConcurrency)
			}
		}},
		{name: "Tableau concurrency of none", env: with(map[string]string{"TABLEAU_CONCURRENCY": "0"}), wantErr: []string{"TABLEAU_CONCURRENCY: want a whole number from 1 to 100", `got "0"`}},
		{name: "Tableau concurrency too high", env: with(map[string]string{"TABLEAU_CONCURRENCY": "101"}), wantErr: []string{"TABLEAU_CONCURRENCY: want a whole number from 1 to 100"}},
		{name: "Tableau concurrency not a number", env: with(map[string]string{"TABLEAU_CONCURRENCY": "ten"}), wantErr: []string{`TABLEAU_CONCURRENCY: want a whole number from 1 to 100 (Tableau Cloud takes about 20 refreshes at a time per site), got "ten"`}},
		{name: "all set", env: with(map[string]string{"DBT_ACCOUNT_ID": "42", "CANCEL_STUCK": "true", "NOTIFY_SUCCESS": "1", "LOG_LEVEL": "debug", "QUEUE_LIMIT": "45m"}),
			check: func(t *testing.T, c *Config) {
				if c.DBTAccountID != 42 || !c.CancelStuck || !c.NotifySuccess || c.QueueLimit != 45*time.Minute || c.LogLevel.String() != "DEBUG" {
					t.Errorf("config = %+v", c)
				}
			}},
		{name: "status page settings", env: with(map[string]string{"FRESHNESS_SLA": "6h", "TABLEAU_QUALITY_WARNINGS": "true"}),
			check: func(t *testing.T, c *Config) {
				if c.FreshnessSLA != 6*time.Hour || !c.QualityWarnings || !strings.Contains(c.Describe(), "stale after 6h0m0s; warnings in Tableau on") {
					t.Errorf("config = %+v\n%s", c, c.Describe())
				}
			}},
		{name: "status page settings wrong", env: with(map[string]string{"FRESHNESS_SLA": "a day", "TABLEAU_QUALITY_WARNINGS": "sometimes"}),
			wantErr: []string{`FRESHNESS_SLA: want a positive duration such as 24h or 5m, got "a day"`, `TABLEAU_QUALITY_WARNINGS: want true or false, got "sometimes"`}},
		{name: "every problem at once", env: with(map[string]string{
			"TABLEAU_SERVER_URL": "", "REFRESH_MAP": `{"jobs":{"x":[]}}`, "WEBHOOK_MAX_EVENT_AGE": "soon",
			"DBT_ACCOUNT_ID": "-3", "CANCEL_STUCK": "maybe", "LOG_LEVEL": "loud",
		}), wantErr: []string{"TABLEAU_SERVER_URL is not set", `REFRESH_MAP: jobs["x"]`, "WEBHOOK_MAX_EVENT_AGE", "DBT_ACCOUNT_ID", "CANCEL_STUCK", "LOG_LEVEL"}},
		{name: "Tableau URL without a scheme", env: with(map[string]string{"TABLEAU_SERVER_URL": "example.com"}), wantErr: []string{"TABLEAU_SERVER_URL: server URL \"example.com\" has no host"}},
		{name: "Tableau URL over http", env: with(map[string]string{"TABLEAU_SERVER_URL": "http://example.com"}), wantErr: []string{"TABLEAU_SERVER_URL: server URL \"http://example.com\" must use https"}},
		{name: "Tableau URL over http on loopback", env: with(map[string]string{"TABLEAU_SERVER_URL": "http://127.0.0.1:8080"}), check: func(t *testing.T, c *Config) {}},
		{name: "dbt Cloud URL over http", env: with(map[string]string{"DBT_CLOUD_URL": "http://cloud.getdbt.com"}), wantErr: []string{"DBT_CLOUD_URL: "}},
		{name: "no secret and no credentials in the environment", env: with(map[string]string{"SECRET_ID": ""}),
			wantErr: []string{"SECRET_ID is not set, and the environment holds no credentials", "DEMO=true"}},
		{name: "credentials in the environment instead of a secret",
			env:   with(map[string]string{"SECRET_ID": "", "DBT_WEBHOOK_SECRET": "w", "TABLEAU_PAT_NAME": "n", "TABLEAU_PAT_SECRET": "s"}),
			check: func(t *testing.T, c *Config) {}},
		{name: "a Lambda without its state table", env: with(map[string]string{"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001"}),
			wantErr: []string{"STATE_TABLE is not set: a deployed function keeps its state in the DynamoDB table"}},
		{name: "a demo Lambda (sam local invoke) keeps state in memory", env: with(map[string]string{"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001", "DEMO": "true"}),
			check: func(t *testing.T, c *Config) {
				if !c.Demo {
					t.Error("DEMO=true not read")
				}
			}},
		{name: "DEMO must be a boolean", env: with(map[string]string{"DEMO": "yes please"}), wantErr: []string{`DEMO: want true or false, got "yes please"`}},
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

// TestIncrementalNote: the configuration check says what becomes of the
// incremental refreshes the map asks for, and whether the configured REST
// API version is too old for them.
func TestIncrementalNote(t *testing.T) {
	tests := []struct {
		name, refreshMap, version, lineage string
		want                               []string
		tooOld                             bool
	}{
		{name: "none asked", refreshMap: `{"jobs":{"1":[{"workbook":"W"}]}}`},
		{name: "negotiated", refreshMap: `{"jobs":{"1":[{"datasource":"D","incremental":true}]}}`,
			want: []string{"asked for by 1 map entry", "they need REST API 3.25", "read at first use"}},
		{name: "too old", refreshMap: `{"jobs":{"1":[{"datasource":"D","incremental":true},{"workbook":"W","incremental":true}]}}`, version: "3.24",
			want: []string{"asked for by 2 map entries", "TABLEAU_API_VERSION 3.24 predates incremental refreshes (3.25)", "full refreshes, each with a warning"}, tooOld: true},
		{name: "new enough", refreshMap: `{"jobs":{"1":[{"datasource":"D","incremental":true}]}}`, version: "3.25",
			want: []string{"(REST API 3.25 takes them)"}},
		{name: "3.3 is older than 3.25", refreshMap: `{"jobs":{"1":[{"datasource":"D","incremental":true}]}}`, version: "3.3",
			want: []string{"predates"}, tooOld: true},
		{name: "lineage asks", refreshMap: `{"exclude":[],"lineage":{"incremental":true}}`, lineage: "42",
			want: []string{"asked for by lineage's content over models built incrementally;"}},
		{name: "lineage asks but is off", refreshMap: `{"jobs":{"1":[{"datasource":"D","incremental":true}]},"lineage":{"incremental":true}}`, version: "3.10",
			want: []string{"1 map entry and lineage's content over models built incrementally (lineage is off), but"}, tooOld: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := FromEnv(env(map[string]string{
				"TABLEAU_SERVER_URL": "https://tableau.example.com", "SECRET_ID": "s", "REFRESH_MAP": tt.refreshMap,
				"TABLEAU_API_VERSION": tt.version, "DBT_ACCOUNT_ID": tt.lineage,
			}))
			if err != nil {
				t.Fatal(err)
			}
			note, tooOld := c.IncrementalNote()
			if tooOld != tt.tooOld {
				t.Errorf("tooOld = %t, want %t (%s)", tooOld, tt.tooOld, note)
			}
			if len(tt.want) == 0 && note != "" {
				t.Errorf("note %q, want none", note)
			}
			for _, w := range tt.want {
				if !strings.Contains(note, w) {
					t.Errorf("note %q lacks %q", note, w)
				}
			}
			if d := c.Describe(); (note == "") == strings.Contains(d, "incremental:") {
				t.Errorf("Describe() and the note disagree:\n%s", d)
			}
		})
	}
}

// TestSites: TABLEAU_SITES is checked at start with every other variable,
// and check-config says where each site is and where its credentials are.
func TestSites(t *testing.T) {
	base := map[string]string{
		"TABLEAU_SERVER_URL": "https://tableau.example.com", "TABLEAU_SITE": "home", "SECRET_ID": "bridge",
		"REFRESH_MAP":   `{"jobs":{"1":[{"workbook":"W"},{"workbook":"V","site":"home"},{"workbook":"W","site":"apac"},{"datasource":"D","site":"Cloud"}]}}`,
		"TABLEAU_SITES": `{"cloud": {"server_url": "https://prod-useast-a.online.tableau.com", "api_version": "3.24"}, "emea": {}}`,
	}
	c, err := FromEnv(env(base))
	if err != nil {
		t.Fatal(err)
	}
	d := c.Describe()
	for _, want := range []string{
		`Tableau:        https://tableau.example.com, site "home"`,
		`other sites:    "apac" on the same server, REST API version negotiated with the server (the refresh map); ` +
			`"cloud" on https://prod-useast-a.online.tableau.com, REST API version 3.24 (TABLEAU_SITES, the refresh map); ` +
			`"emea" on the same server, REST API version negotiated with the server (TABLEAU_SITES); ` +
			`each signs in with its own credentials, from the secret's tableau_sites (read at first use)`,
		`refresh map:    1 dbt job, 4 targets`,
	} {
		if !strings.Contains(d, want) {
			t.Errorf("Describe() lacks %q:\n%s", want, d)
		}
	}
	if got := c.SiteCredentialsAt("cloud"); !strings.Contains(got, `Secrets Manager secret bridge, under tableau_sites["cloud"]`) || !strings.Contains(got, "make secret-set SITE=cloud KEY=tableau_pat_name") {
		t.Errorf("SiteCredentialsAt(cloud) = %s", got)
	}
	if got := c.SiteCredentialsAt("HOME"); got != c.CredentialsAt() {
		t.Errorf("SiteCredentialsAt(TABLEAU_SITE) = %s, want the default's %s", got, c.CredentialsAt())
	}

	single, err := FromEnv(env(map[string]string{"TABLEAU_SERVER_URL": "https://tableau.example.com", "SECRET_ID": "s", "REFRESH_MAP": `{"jobs":{"1":[{"workbook":"W"}]}}`}))
	if err != nil {
		t.Fatal(err)
	}
	if d := single.Describe(); strings.Contains(d, "other sites") {
		t.Errorf("a single-site deployment's check names other sites:\n%s", d)
	}

	bad := map[string]string{}
	for k, v := range base {
		bad[k] = v
	}
	bad["TABLEAU_SITES"] = `{"emea": {"server_url": "http://emea.example.com", "tableau_pat_secret": "s3cret"}, "home": {}}`
	bad["TABLEAU_SITE"] = "home/x"
	_, err = FromEnv(env(bad))
	if err == nil {
		t.Fatal("FromEnv accepted a bad TABLEAU_SITES")
	}
	msg := err.Error()
	for _, want := range []string{`TABLEAU_SITE: site "home/x": want the bare content URL`, `TABLEAU_SITES["emea"]: server_url: server URL "http://emea.example.com" must use https`,
		`TABLEAU_SITES["emea"]: tableau_pat_secret is a credential: put it in the secret`} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "\n") || strings.Contains(msg, "s3cret") {
		t.Errorf("error %q: want one line, and no credential", msg)
	}
	// Without a secret the environment holds every credential, other
	// sites' too.
	local := map[string]string{"TABLEAU_SERVER_URL": "https://tableau.example.com", "REFRESH_MAP": `{"jobs":{"1":[{"workbook":"W","site":"emea"}]}}`,
		"DBT_WEBHOOK_SECRET": "w", "TABLEAU_PAT_NAME": "n", "TABLEAU_PAT_SECRET": "s",
		"TABLEAU_SITES": `{"emea": {"tableau_pat_name": "e", "tableau_pat_secret": "es"}}`}
	lc, err := FromEnv(env(local))
	if err != nil {
		t.Fatal(err)
	}
	if d := lc.Describe(); !strings.Contains(d, "from TABLEAU_SITES in the environment") {
		t.Errorf("Describe() of a local run:\n%s", d)
	}
}
