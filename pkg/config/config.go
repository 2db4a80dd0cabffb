// Package config reads the functions' configuration from environment
// variables: the same ones in template.yaml, in local runs and in tests.
// Every problem is reported at once, each naming its variable.
package config

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dbtcloud"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refresh"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refreshmap"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/relname"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/secrets"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/sites"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
)

// Config is the functions' configuration.
type Config struct {
	TableauServerURL  string // TABLEAU_SERVER_URL
	TableauSite       string // TABLEAU_SITE: content URL, "" for the default site
	TableauAPIVersion string // TABLEAU_API_VERSION: "" negotiates
	// TableauConcurrency bounds the targets a function instance queues at
	// a time per site (TABLEAU_CONCURRENCY, default 10).
	TableauConcurrency int
	// Sites are the Tableau sites: the default (the three above) and those
	// TABLEAU_SITES lists (its server and REST API version); any other
	// site a map entry names is on the default's server.
	Sites *sites.Catalog

	SecretID       string        // SECRET_ID: "" reads credentials from the environment (local runs)
	SecretCacheTTL time.Duration // SECRET_CACHE_TTL
	StateTable     string        // STATE_TABLE: "" keeps state in memory (local runs)

	Map *refreshmap.Map // REFRESH_MAP or REFRESH_MAP_FILE; empty when neither is set and lineage is on

	// Lineage is whether a run's targets are also found from dbt's
	// artifacts and Tableau's lineage; LineageWhy says why, for the
	// start-up log line.
	Lineage        bool            // LINEAGE: "off" turns it off; on when DBT_ACCOUNT_ID is set
	LineageWhy     string          //
	LineageAliases relname.Aliases // LINEAGE_DATABASE_ALIASES: dbt database name -> Tableau's

	// The scheduled function's dbt Cloud settings; the token is the secret's
	// dbt_api_token.
	DBTCloudURL  string        // DBT_CLOUD_URL, default https://cloud.getdbt.com
	DBTAccountID int64         // DBT_ACCOUNT_ID
	PollWindow   time.Duration // POLL_WINDOW: how long one invocation waits for runs, default 5m
	QueueLimit   time.Duration // QUEUE_LIMIT: a run queued longer is reported as stuck, default 30m
	CancelStuck  bool          // CANCEL_STUCK: also cancel such a run

	// Closing the loop.
	NotifyTopicARN string        // NOTIFY_TOPIC_ARN: SNS topic for failure messages
	NotifySuccess  bool          // NOTIFY_SUCCESS: also send a message when a refresh succeeds
	JobLimit       time.Duration // JOB_LIMIT: a Tableau refresh job unfinished after this is reported, default 2h

	// The status page and the warnings on the dashboards.
	FreshnessSLA    time.Duration // FRESHNESS_SLA: a target not refreshed successfully for longer is stale, default 24h
	QualityWarnings bool          // TABLEAU_QUALITY_WARNINGS: put a data quality warning on content whose refresh failed or went stale

	MaxEventAge time.Duration // WEBHOOK_MAX_EVENT_AGE, default 24h
	Retention   time.Duration // IDEMPOTENCY_RETENTION, default 72h
	LogLevel    slog.Level    // LOG_LEVEL: debug, info, warn, error

	// Demo is DEMO=true: the functions run against the in-process
	// simulators with demo content (make run, make invoke, sam local invoke).
	Demo bool

	// Getenv is where FromEnv read from; credentials without SECRET_ID are
	// read from the same place.
	Getenv func(string) string
}

// MaxTableauConcurrency is the largest TABLEAU_CONCURRENCY accepted.
const MaxTableauConcurrency = 100

// FromEnv reads Config. Every problem is reported at once, naming the
// variable, so a deployment is fixed in one pass.
func FromEnv(getenv func(string) string) (*Config, error) {
	c := &Config{
		TableauServerURL:  strings.TrimSpace(getenv("TABLEAU_SERVER_URL")),
		TableauSite:       strings.TrimSpace(getenv("TABLEAU_SITE")),
		TableauAPIVersion: strings.TrimSpace(getenv("TABLEAU_API_VERSION")),
		SecretID:          strings.TrimSpace(getenv("SECRET_ID")),
		StateTable:        strings.TrimSpace(getenv("STATE_TABLE")),
		Getenv:            getenv,
	}
	var errs []error
	var err error
	c.Map, err = refreshmap.Load(getenv)
	mapNotSet := errors.Is(err, refreshmap.ErrNotSet)
	if err != nil && !mapNotSet {
		errs = append(errs, err)
	}
	durations := []struct {
		name string
		dst  *time.Duration
		def  time.Duration
	}{
		{"SECRET_CACHE_TTL", &c.SecretCacheTTL, secrets.DefaultTTL},
		{"WEBHOOK_MAX_EVENT_AGE", &c.MaxEventAge, 24 * time.Hour},
		{"IDEMPOTENCY_RETENTION", &c.Retention, refresh.DefaultRetention},
		{"POLL_WINDOW", &c.PollWindow, 5 * time.Minute},
		{"QUEUE_LIMIT", &c.QueueLimit, 30 * time.Minute},
		{"JOB_LIMIT", &c.JobLimit, 2 * time.Hour},
		{"FRESHNESS_SLA", &c.FreshnessSLA, 24 * time.Hour},
	}
	for _, d := range durations {
		*d.dst = d.def
		if v := getenv(d.name); v != "" {
			if *d.dst, err = time.ParseDuration(v); err != nil || *d.dst <= 0 {
				errs = append(errs, fmt.Errorf("%s: want a positive duration such as 24h or 5m, got %q", d.name, v))
			}
		}
	}
	c.TableauConcurrency = refresh.DefaultConcurrency
	if v := strings.TrimSpace(getenv("TABLEAU_CONCURRENCY")); v != "" {
		// Tableau Cloud turns away more than about 20 at a time per site;
		// a Tableau Server may take more, but not hundreds.
		if c.TableauConcurrency, err = strconv.Atoi(v); err != nil || c.TableauConcurrency < 1 || c.TableauConcurrency > MaxTableauConcurrency {
			errs = append(errs, fmt.Errorf("TABLEAU_CONCURRENCY: want a whole number from 1 to %d (Tableau Cloud takes about 20 refreshes at a time per site), got %q", MaxTableauConcurrency, v))
		}
	}
	if c.Retention <= c.MaxEventAge {
		errs = append(errs, fmt.Errorf("IDEMPOTENCY_RETENTION (%s) must be longer than WEBHOOK_MAX_EVENT_AGE (%s), or a replay could refresh twice", c.Retention, c.MaxEventAge))
	}
	if v := getenv("LOG_LEVEL"); v != "" {
		if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
			errs = append(errs, fmt.Errorf("LOG_LEVEL: want debug, info, warn or error, got %q", v))
		}
	}
	c.DBTCloudURL = strings.TrimSpace(getenv("DBT_CLOUD_URL"))
	if v := strings.TrimSpace(getenv("DBT_ACCOUNT_ID")); v != "" {
		if c.DBTAccountID, err = strconv.ParseInt(v, 10, 64); err != nil || c.DBTAccountID <= 0 {
			errs = append(errs, fmt.Errorf("DBT_ACCOUNT_ID: want a positive integer, got %q", v))
		}
	}
	for _, b := range []struct {
		name string
		dst  *bool
	}{{"CANCEL_STUCK", &c.CancelStuck}, {"NOTIFY_SUCCESS", &c.NotifySuccess}, {"DEMO", &c.Demo}, {"TABLEAU_QUALITY_WARNINGS", &c.QualityWarnings}} {
		if v := strings.TrimSpace(getenv(b.name)); v != "" {
			if *b.dst, err = strconv.ParseBool(v); err != nil {
				errs = append(errs, fmt.Errorf("%s: want true or false, got %q", b.name, v))
			}
		}
	}
	c.NotifyTopicARN = strings.TrimSpace(getenv("NOTIFY_TOPIC_ARN"))
	switch mode := strings.ToLower(strings.TrimSpace(getenv("LINEAGE"))); {
	case mode != "" && mode != "auto" && mode != "off":
		errs = append(errs, fmt.Errorf("LINEAGE: want auto or off, got %q", getenv("LINEAGE")))
	case mode == "off":
		c.LineageWhy = "off: LINEAGE=off"
	case c.DBTAccountID == 0:
		c.LineageWhy = "off: DBT_ACCOUNT_ID is not set (lineage reads the runs' artifacts from dbt Cloud)"
	default:
		c.Lineage = true
		c.LineageWhy = "on: DBT_ACCOUNT_ID is set; needs the secret's dbt_api_token, and a Tableau user who may see lineage"
	}
	if c.LineageAliases, err = relname.ParseAliases(getenv("LINEAGE_DATABASE_ALIASES")); err != nil {
		errs = append(errs, fmt.Errorf("LINEAGE_DATABASE_ALIASES: %s", strings.TrimPrefix(err.Error(), "relname: ")))
	}
	if mapNotSet && !c.Lineage {
		errs = append(errs, fmt.Errorf("%w, and lineage is %s: nothing would ever be refreshed", refreshmap.ErrNotSet, c.LineageWhy))
	}
	switch {
	case c.TableauServerURL == "":
		errs = append(errs, errors.New("TABLEAU_SERVER_URL is not set: the Tableau Server or Tableau Cloud pod, e.g. https://prod-useast-a.online.tableau.com"))
	default:
		// Checked now: a URL the client refuses would otherwise fail every
		// delivery, after start-up and check-config had passed.
		if _, err := tableau.NewClient(c.TableauServerURL); err != nil {
			errs = append(errs, fmt.Errorf("TABLEAU_SERVER_URL: %s", strings.TrimPrefix(err.Error(), "tableau: ")))
		}
	}
	if c.TableauSite != "" {
		if err := refreshmap.CheckSite(c.TableauSite); err != nil {
			errs = append(errs, fmt.Errorf("TABLEAU_SITE: %w", err))
		}
	}
	def := sites.Site{ContentURL: c.TableauSite, ServerURL: c.TableauServerURL, APIVersion: c.TableauAPIVersion}
	if c.Sites, err = sites.Parse(getenv("TABLEAU_SITES"), def, c.SecretID == ""); err != nil {
		// One problem per entry, each in the one line the function prints.
		if multi, ok := err.(interface{ Unwrap() []error }); ok {
			errs = append(errs, multi.Unwrap()...)
		} else {
			errs = append(errs, err)
		}
	}
	if c.DBTCloudURL != "" {
		if _, err := dbtcloud.NewClient(dbtcloud.WithBaseURL(c.DBTCloudURL), dbtcloud.WithAccountID(1), dbtcloud.WithToken("x")); err != nil {
			errs = append(errs, fmt.Errorf("DBT_CLOUD_URL: %s", strings.TrimPrefix(err.Error(), "dbtcloud: ")))
		}
	}
	errs = append(errs, c.checkRequired()...)
	if len(errs) > 0 {
		return nil, &Error{Problems: errs}
	}
	return c, nil
}

// checkRequired insists, outside demo mode, on what a deployed function
// cannot run without, so that it stops at start instead of failing its
// first delivery.
func (c *Config) checkRequired() []error {
	var errs []error
	if c.SecretID == "" {
		// Local runs against a real Tableau may keep the credentials in
		// the environment, under the secret's keys in upper case.
		if _, err := (secrets.Env{Getenv: c.Getenv}).Credentials(context.Background()); err != nil {
			errs = append(errs, fmt.Errorf("SECRET_ID is not set, and the environment holds no credentials (%s); set DEMO=true to try the bridge against its simulators", strings.TrimPrefix(err.Error(), "environment credentials: ")))
		}
	}
	if c.StateTable == "" && c.Getenv("AWS_LAMBDA_RUNTIME_API") != "" && !c.Demo {
		errs = append(errs, errors.New("STATE_TABLE is not set: a deployed function keeps its state in the DynamoDB table (memory is not shared between Lambda instances, so refreshes could repeat)"))
	}
	return errs
}

// CredentialsAt says where a person fixes the Tableau credentials of the
// default site.
func (c *Config) CredentialsAt() string { return c.SiteCredentialsAt("") }

// SiteCredentialsAt says where a person fixes the Tableau credentials of
// the site with the given content URL ("" for the default site).
func (c *Config) SiteCredentialsAt(site string) string {
	if site == "" || refreshmap.SameSite(site, c.TableauSite) {
		if c.SecretID != "" {
			return fmt.Sprintf("Secrets Manager secret %s (keys tableau_pat_name and tableau_pat_secret, or the connected-app keys)", c.SecretID)
		}
		return "the environment (TABLEAU_PAT_NAME and TABLEAU_PAT_SECRET)"
	}
	if c.SecretID != "" {
		return fmt.Sprintf("Secrets Manager secret %s, under tableau_sites[%q] (tableau_pat_name and tableau_pat_secret, or the connected-app keys; make secret-set SITE=%s KEY=tableau_pat_name)", c.SecretID, site, site)
	}
	return fmt.Sprintf("the environment, TABLEAU_SITES[%q] (tableau_pat_name and tableau_pat_secret)", site)
}

// Describe says in a few lines what a function with this configuration
// will do, for `make check-config`. It reads nothing over the network: the
// secret's contents are checked at first use.
func (c *Config) Describe() string {
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, "  "+format+"\n", args...) }
	b.WriteString("configuration OK\n")
	if c.Demo {
		line("demo:           on (DEMO=true): the simulators stand in for Tableau and dbt Cloud")
	}
	version := "negotiated with the server"
	if c.TableauAPIVersion != "" {
		version = c.TableauAPIVersion
	}
	site := "the default site"
	if c.TableauSite != "" {
		site = fmt.Sprintf("site %q", c.TableauSite)
	}
	line("Tableau:        %s, %s, REST API version %s", c.TableauServerURL, site, version)
	if others := c.describeSites(); others != "" {
		line("other sites:    %s", others)
	}
	line("concurrency:    %d refreshes at a time per site and function instance; what dbt's time cannot take is deferred to the follow-up", c.TableauConcurrency)
	if c.SecretID != "" {
		line("credentials:    Secrets Manager secret %s (read at first use, cached %s)", c.SecretID, c.SecretCacheTTL)
	} else {
		line("credentials:    environment variables (DBT_WEBHOOK_SECRET, TABLEAU_PAT_NAME, ...)")
	}
	if c.StateTable != "" {
		line("state:          DynamoDB table %s", c.StateTable)
	} else {
		line("state:          in memory (STATE_TABLE is not set: local runs only)")
	}
	line("refresh map:    %s", c.Map)
	if note, _ := c.IncrementalNote(); note != "" {
		line("incremental:    %s", note)
	}
	line("lineage:        %s", c.LineageWhy)
	if c.LineageAliases.Len() > 0 {
		line("aliases:        %s", c.LineageAliases)
	}
	if c.DBTAccountID != 0 {
		host := c.DBTCloudURL
		if host == "" {
			host = "https://cloud.getdbt.com"
		}
		line("scheduled path: on (dbt Cloud %s, account %d; token: the secret's dbt_api_token)", host, c.DBTAccountID)
	} else {
		line("scheduled path: off (DBT_ACCOUNT_ID is not set); follow-ups still follow Tableau refresh jobs")
	}
	if c.NotifyTopicARN != "" {
		line("notifications:  SNS topic %s, and Slack when the secret has slack_webhook_url", c.NotifyTopicARN)
	} else {
		line("notifications:  Slack when the secret has slack_webhook_url, else the log")
	}
	line("replays:        events older than %s are ignored; runs are remembered for %s", c.MaxEventAge, c.Retention)
	warnings := "off (TABLEAU_QUALITY_WARNINGS)"
	if c.QualityWarnings {
		warnings = "on: a data quality warning on data sources whose refresh failed or went stale"
	}
	line("status page:    GET /status and /status.json once the secret has status_password; stale after %s; warnings in Tableau %s", c.FreshnessSLA, warnings)
	return b.String()
}

// OtherSites are the sites other than the default the functions may work
// on: those TABLEAU_SITES lists and those the refresh map names, by
// content URL.
func (c *Config) OtherSites() []sites.Site {
	var out []sites.Site
	seen := map[string]bool{}
	add := func(s sites.Site) {
		if k := strings.ToLower(s.ContentURL); !s.Default && !seen[k] {
			seen[k] = true
			out = append(out, s)
		}
	}
	if c.Sites != nil {
		for _, s := range c.Sites.Listed() {
			add(s)
		}
		for _, name := range c.Map.Sites() {
			add(c.Sites.Site(name))
		}
	}
	sort.Slice(out, func(i, j int) bool { return strings.ToLower(out[i].ContentURL) < strings.ToLower(out[j].ContentURL) })
	return out
}

// describeSites says where the other sites are and whose credentials they
// take, for check-config; "" when there are none.
func (c *Config) describeSites() string {
	others := c.OtherSites()
	if len(others) == 0 {
		return ""
	}
	named := map[string]bool{}
	for _, s := range c.Map.Sites() {
		named[strings.ToLower(s)] = true
	}
	parts := make([]string, len(others))
	for i, s := range others {
		where := "on the same server"
		if s.ServerURL != c.TableauServerURL {
			where = "on " + s.ServerURL
		}
		version := "REST API version negotiated with the server"
		if s.APIVersion != "" {
			version = "REST API version " + s.APIVersion
		}
		var from []string
		if s.Listed {
			from = append(from, "TABLEAU_SITES")
		}
		if named[strings.ToLower(s.ContentURL)] {
			from = append(from, "the refresh map")
		}
		parts[i] = fmt.Sprintf("%q %s, %s (%s)", s.ContentURL, where, version, strings.Join(from, ", "))
	}
	where := "the secret's tableau_sites"
	if c.SecretID == "" {
		where = "TABLEAU_SITES in the environment"
	}
	return strings.Join(parts, "; ") + "; each signs in with its own credentials, from " + where + " (read at first use)"
}

// IncrementalNote says what becomes of the incremental refreshes the map
// asks for ("" when it asks for none), and reports whether
// TABLEAU_API_VERSION is older than the REST API version that takes them:
// they are then full refreshes, each with a warning in the log. Not an
// error: a full refresh brings the extract up to date too, only slower.
func (c *Config) IncrementalNote() (note string, tooOld bool) {
	entries, lineage := c.Map.Incremental()
	if entries == 0 && !lineage {
		return "", false
	}
	var asked []string
	if entries == 1 {
		asked = append(asked, "1 map entry")
	} else if entries > 1 {
		asked = append(asked, fmt.Sprintf("%d map entries", entries))
	}
	if lineage {
		what := "lineage's content over models built incrementally"
		if !c.Lineage {
			what += " (lineage is off)"
		}
		asked = append(asked, what)
	}
	req := "asked for by " + strings.Join(asked, " and ")
	switch v := c.TableauAPIVersion; {
	case v != "" && versionBefore(v, tableau.IncrementalRefreshVersion):
		return fmt.Sprintf("%s, but TABLEAU_API_VERSION %s predates incremental refreshes (%s): they run as full refreshes, each with a warning",
			req, v, tableau.IncrementalRefreshVersion), true
	case v != "":
		return req + " (REST API " + v + " takes them)", false
	}
	return fmt.Sprintf("%s; they need REST API %s, and the server's version is read at first use: an older server refreshes in full, with a warning",
		req, tableau.IncrementalRefreshVersion), false
}

// versionBefore compares MAJOR.MINOR versions; one that does not parse is
// not before anything (the client refuses it at start anyway).
func versionBefore(a, b string) bool {
	am, an, aok := versionParts(a)
	bm, bn, bok := versionParts(b)
	return aok && bok && (am < bm || (am == bm && an < bn))
}

func versionParts(v string) (major, minor int, ok bool) {
	ma, mi, cut := strings.Cut(v, ".")
	major, err1 := strconv.Atoi(ma)
	minor, err2 := strconv.Atoi(mi)
	return major, minor, cut && err1 == nil && err2 == nil
}

// Error lists every problem with the configuration, each naming its
// variable, so that a deployment is fixed in one pass. Its message is one
// line: it is what a function prints when it refuses to start.
type Error struct {
	Problems []error
}

func (e *Error) Error() string {
	msgs := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		msgs[i] = p.Error()
	}
	return "configuration: " + strings.Join(msgs, "; ")
}

// Unwrap lets errors.Is and errors.As see each problem.
func (e *Error) Unwrap() []error { return e.Problems }
