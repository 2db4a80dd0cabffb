// Package bridge wires the parts of the bridge together from configuration:
// the same environment variables in template.yaml, in local runs and in
// tests. The functions' main packages call it and nothing else.
package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dbtcloud"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/demo"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dynamo"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/followup"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/logging"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/notify"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refresh"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refreshmap"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/secrets"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
)

// Config is the functions' configuration.
type Config struct {
	TableauServerURL  string // TABLEAU_SERVER_URL
	TableauSite       string // TABLEAU_SITE: content URL, "" for the default site
	TableauAPIVersion string // TABLEAU_API_VERSION: "" negotiates

	SecretID       string        // SECRET_ID: "" reads credentials from the environment (local runs)
	SecretCacheTTL time.Duration // SECRET_CACHE_TTL
	StateTable     string        // STATE_TABLE: "" keeps state in memory (local runs)

	Map *refreshmap.Map // REFRESH_MAP or REFRESH_MAP_FILE

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

	MaxEventAge time.Duration // WEBHOOK_MAX_EVENT_AGE, default 24h
	Retention   time.Duration // IDEMPOTENCY_RETENTION, default 72h
	LogLevel    slog.Level    // LOG_LEVEL: debug, info, warn, error

	// getenv is where FromEnv read from; credentials without SECRET_ID are
	// read from the same place.
	getenv func(string) string
}

// FromEnv reads Config. Every problem is reported at once, naming the
// variable, so a deployment is fixed in one pass.
func FromEnv(getenv func(string) string) (*Config, error) {
	c := &Config{
		TableauServerURL:  strings.TrimSpace(getenv("TABLEAU_SERVER_URL")),
		TableauSite:       strings.TrimSpace(getenv("TABLEAU_SITE")),
		TableauAPIVersion: strings.TrimSpace(getenv("TABLEAU_API_VERSION")),
		SecretID:          strings.TrimSpace(getenv("SECRET_ID")),
		StateTable:        strings.TrimSpace(getenv("STATE_TABLE")),
		getenv:            getenv,
	}
	var errs []error
	var err error
	if c.Map, err = refreshmap.Load(getenv); err != nil {
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
	}
	for _, d := range durations {
		*d.dst = d.def
		if v := getenv(d.name); v != "" {
			if *d.dst, err = time.ParseDuration(v); err != nil || *d.dst <= 0 {
				errs = append(errs, fmt.Errorf("%s: want a positive duration such as 24h or 5m, got %q", d.name, v))
			}
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
	}{{"CANCEL_STUCK", &c.CancelStuck}, {"NOTIFY_SUCCESS", &c.NotifySuccess}} {
		if v := strings.TrimSpace(getenv(b.name)); v != "" {
			if *b.dst, err = strconv.ParseBool(v); err != nil {
				errs = append(errs, fmt.Errorf("%s: want true or false, got %q", b.name, v))
			}
		}
	}
	c.NotifyTopicARN = strings.TrimSpace(getenv("NOTIFY_TOPIC_ARN"))
	if c.TableauServerURL == "" {
		errs = append(errs, errors.New("TABLEAU_SERVER_URL is not set"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	return c, nil
}

// NewLogger returns the JSON logger the functions write with.
func NewLogger(level slog.Level) *slog.Logger {
	return logging.New(os.Stdout, level)
}

// Start is what a function's main does first: read the configuration and
// build Deps. With neither TABLEAU_SERVER_URL nor SECRET_ID set — no real
// deployment has both unset — it is a local run: it starts the Tableau and
// dbt Cloud simulators with demo content and fills in the variables the user
// left unset. stop ends the simulators.
func Start(ctx context.Context) (deps *Deps, d *demo.Demo, stop func(), err error) {
	stop = func() {}
	if os.Getenv("TABLEAU_SERVER_URL") == "" && os.Getenv("SECRET_ID") == "" {
		d = demo.Start()
		stop = d.Close
		d.Apply()
		fmt.Fprintln(os.Stderr, "TABLEAU_SERVER_URL and SECRET_ID are unset: using the Tableau simulator with demo content at", d.Tableau.URL())
	}
	cfg, err := FromEnv(os.Getenv)
	if err != nil {
		stop()
		return nil, nil, func() {}, err
	}
	deps, err = Build(ctx, cfg, NewLogger(cfg.LogLevel))
	if err != nil {
		stop()
		return nil, nil, func() {}, err
	}
	return deps, d, stop, nil
}

// Deps are the long-lived parts a function needs, built once per process.
type Deps struct {
	Config    *Config
	Logger    *slog.Logger
	Secrets   secrets.Source
	Store     state.Idempotency
	Runs      state.ScheduledRuns
	Jobs      state.TableauJobs
	Outbox    state.Outbox
	Sessions  tableau.SessionStore
	Tableau   *Clients
	Refresher *refresh.Refresher
	Alerts    *followup.Alerts
	Tracker   *followup.Tracker
}

// Build makes Deps. It does no network I/O, so cold starts stay short: the
// secret is read and Tableau signed in to on first use.
func Build(ctx context.Context, cfg *Config, logger *slog.Logger, opts ...tableau.Option) (*Deps, error) {
	d := &Deps{Config: cfg, Logger: logger}
	var awsCfg aws.Config
	if cfg.SecretID != "" || cfg.StateTable != "" || cfg.NotifyTopicARN != "" {
		var err error
		if awsCfg, err = loadAWSConfig(ctx); err != nil {
			return nil, fmt.Errorf("load AWS configuration: %w", err)
		}
	}
	if cfg.SecretID != "" {
		d.Secrets = secrets.NewCache(secretsmanager.NewFromConfig(awsCfg), cfg.SecretID, cfg.SecretCacheTTL, logger)
	} else {
		getenv := cfg.getenv
		if getenv == nil {
			getenv = os.Getenv
		}
		d.Secrets = secrets.Env{Getenv: getenv}
	}
	if cfg.StateTable != "" {
		tbl, err := dynamo.New(dynamo.NewClient(awsCfg), cfg.StateTable, nil)
		if err != nil {
			return nil, err
		}
		d.Store, d.Runs, d.Jobs, d.Outbox, d.Sessions = tbl, tbl.Runs(), tbl, tbl, tbl
	} else {
		mem := state.NewMemory(nil)
		d.Store, d.Runs, d.Jobs, d.Outbox, d.Sessions = mem, mem.Runs(), mem, mem, tableau.NewMemorySessionStore()
	}
	d.Tableau = &Clients{cfg: cfg, secrets: d.Secrets, sessions: d.Sessions, logger: logger, opts: opts}

	channels := map[string]followup.Notifier{"slack": &slackChannel{secrets: d.Secrets, logger: logger}}
	if cfg.NotifyTopicARN != "" {
		sn, err := notify.NewSNS(&lazySNS{cfg: awsCfg}, cfg.NotifyTopicARN)
		if err != nil {
			return nil, fmt.Errorf("configuration: NOTIFY_TOPIC_ARN: %w", err)
		}
		channels["sns"] = sn
	}
	d.Alerts = followup.NewAlerts(d.Outbox, channels, followup.AlertOptions{NotifySuccess: cfg.NotifySuccess, Logger: logger})
	d.Refresher = refresh.New(d.Store, func(ctx context.Context) (refresh.Tableau, error) {
		return d.Tableau.Client(ctx)
	}, refresh.Options{Retention: cfg.Retention, Jobs: d.Jobs, Alerts: d.Alerts, Logger: logger})
	d.Tracker = followup.NewTracker(d.Jobs, func(ctx context.Context) (followup.Tableau, error) {
		return d.Tableau.Client(ctx)
	}, d.Alerts, followup.TrackerOptions{JobLimit: cfg.JobLimit, Logger: logger})
	return d, nil
}

// lazySNS builds the SNS client on the first message: a function that
// never has a failure to report never needs it, and a cold start does not
// pay for it.
type lazySNS struct {
	cfg    aws.Config
	once   sync.Once
	client *sns.Client
}

func (l *lazySNS) Publish(ctx context.Context, in *sns.PublishInput, optFns ...func(*sns.Options)) (*sns.PublishOutput, error) {
	l.once.Do(func() { l.client = sns.NewFromConfig(l.cfg) })
	return l.client.Publish(ctx, in, optFns...)
}

// slackChannel posts to the Slack webhook named in the secret, which may
// change or be absent; absent, it logs the message at error level instead,
// so that a failure is never silent.
type slackChannel struct {
	secrets secrets.Source
	logger  *slog.Logger

	mu    sync.Mutex
	url   string
	slack *notify.Slack
}

func (c *slackChannel) Notify(ctx context.Context, m notify.Message) error {
	creds, err := c.secrets.Credentials(ctx)
	if err != nil {
		return err
	}
	if creds.SlackWebhookURL == "" {
		return notify.LogNotifier{Logger: c.logger}.Notify(ctx, m)
	}
	c.mu.Lock()
	if c.slack == nil || c.url != creds.SlackWebhookURL {
		s, err := notify.NewSlack(creds.SlackWebhookURL, notify.WithLogger(c.logger))
		if err != nil {
			c.mu.Unlock()
			return fmt.Errorf("slack_webhook_url in the secret: %w", err)
		}
		c.url, c.slack = creds.SlackWebhookURL, s
	}
	s := c.slack
	c.mu.Unlock()
	return s.Notify(ctx, m)
}

// Clients keeps one Tableau client for the current credentials, so that a
// warm function reuses its session, and makes a new one when the secret
// rotates.
type Clients struct {
	cfg      *Config
	secrets  secrets.Source
	sessions tableau.SessionStore
	logger   *slog.Logger
	opts     []tableau.Option

	mu     sync.Mutex
	creds  secrets.Credentials
	client *tableau.Client
}

// Client returns the client for the current credentials.
func (c *Clients) Client(ctx context.Context) (*tableau.Client, error) {
	creds, err := c.secrets.Credentials(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.client != nil && c.creds == *creds {
		return c.client, nil
	}
	opts := []tableau.Option{
		tableau.WithSite(c.cfg.TableauSite),
		tableau.WithLogger(c.logger),
		tableau.WithSessionStore(c.sessions),
	}
	if c.cfg.TableauAPIVersion != "" {
		opts = append(opts, tableau.WithAPIVersion(c.cfg.TableauAPIVersion))
	}
	if creds.ConnectedApp() {
		opts = append(opts, tableau.WithConnectedApp(tableau.ConnectedApp{
			ClientID: creds.TableauClientID, SecretID: creds.TableauSecretID,
			SecretValue: creds.TableauSecretValue, Username: creds.TableauUsername,
		}))
	} else {
		opts = append(opts, tableau.WithPAT(creds.TableauPATName, creds.TableauPATSecret))
	}
	client, err := tableau.NewClient(c.cfg.TableauServerURL, append(opts, c.opts...)...)
	if err != nil {
		return nil, fmt.Errorf("Tableau client: %w", err)
	}
	c.creds, c.client = *creds, client
	return client, nil
}

// DBT returns a dbt Cloud client that follows the secret's dbt_api_token, for
// the scheduled function. It fails at once, before anything runs, when
// DBT_ACCOUNT_ID is missing.
func (d *Deps) DBT(opts ...dbtcloud.Option) (*DBTClients, error) {
	if d.Config.DBTAccountID == 0 {
		return nil, errors.New("configuration: DBT_ACCOUNT_ID is not set")
	}
	if d.Config.DBTCloudURL != "" {
		// Checked now so a bad URL fails the deployment, not the first run.
		if _, err := dbtcloud.NewClient(dbtcloud.WithBaseURL(d.Config.DBTCloudURL), dbtcloud.WithAccountID(1), dbtcloud.WithToken("x")); err != nil {
			return nil, fmt.Errorf("configuration: DBT_CLOUD_URL: %w", err)
		}
	}
	return &DBTClients{cfg: d.Config, secrets: d.Secrets, logger: d.Logger, opts: opts}, nil
}

// DBTClients is a dbt Cloud client that rebuilds itself when the token in the
// secret changes.
type DBTClients struct {
	cfg     *Config
	secrets secrets.Source
	logger  *slog.Logger
	opts    []dbtcloud.Option

	mu     sync.Mutex
	token  string
	client *dbtcloud.Client
}

func (c *DBTClients) get(ctx context.Context) (*dbtcloud.Client, error) {
	creds, err := c.secrets.Credentials(ctx)
	if err != nil {
		return nil, err
	}
	if creds.DBTAPIToken == "" {
		return nil, errors.New("the credentials have no dbt_api_token (a dbt Cloud service token with job admin rights)")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.client != nil && c.token == creds.DBTAPIToken {
		return c.client, nil
	}
	opts := []dbtcloud.Option{dbtcloud.WithAccountID(c.cfg.DBTAccountID), dbtcloud.WithToken(creds.DBTAPIToken), dbtcloud.WithLogger(c.logger)}
	if c.cfg.DBTCloudURL != "" {
		opts = append(opts, dbtcloud.WithBaseURL(c.cfg.DBTCloudURL))
	}
	client, err := dbtcloud.NewClient(append(opts, c.opts...)...)
	if err != nil {
		return nil, fmt.Errorf("dbt Cloud client: %w", err)
	}
	c.token, c.client = creds.DBTAPIToken, client
	return client, nil
}

// TriggerRun implements scheduler.DBT.
func (c *DBTClients) TriggerRun(ctx context.Context, jobID int64, req *dbtcloud.TriggerRunRequest) (*dbtcloud.Run, error) {
	client, err := c.get(ctx)
	if err != nil {
		return nil, err
	}
	return client.TriggerRun(ctx, jobID, req)
}

// GetRun implements scheduler.DBT.
func (c *DBTClients) GetRun(ctx context.Context, runID int64) (*dbtcloud.Run, error) {
	client, err := c.get(ctx)
	if err != nil {
		return nil, err
	}
	return client.GetRun(ctx, runID)
}

// ListRuns implements scheduler.DBT.
func (c *DBTClients) ListRuns(ctx context.Context, jobID int64, opts *dbtcloud.ListRunsOptions) ([]*dbtcloud.Run, error) {
	client, err := c.get(ctx)
	if err != nil {
		return nil, err
	}
	return client.ListRuns(ctx, jobID, opts)
}

// CancelRun implements scheduler.DBT.
func (c *DBTClients) CancelRun(ctx context.Context, runID int64) (*dbtcloud.Run, error) {
	client, err := c.get(ctx)
	if err != nil {
		return nil, err
	}
	return client.CancelRun(ctx, runID)
}
