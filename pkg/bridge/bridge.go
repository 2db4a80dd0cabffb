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
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dynamo"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/logging"
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

	MaxEventAge time.Duration // WEBHOOK_MAX_EVENT_AGE, default 24h
	Retention   time.Duration // IDEMPOTENCY_RETENTION, default 72h
	LogLevel    slog.Level    // LOG_LEVEL: debug, info, warn, error
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

// Deps are the long-lived parts a function needs, built once per process.
type Deps struct {
	Config    *Config
	Logger    *slog.Logger
	Secrets   secrets.Source
	Store     state.Idempotency
	Sessions  tableau.SessionStore
	Tableau   *Clients
	Refresher *refresh.Refresher
}

// Build makes Deps. It does no network I/O, so cold starts stay short: the
// secret is read and Tableau signed in to on first use.
func Build(ctx context.Context, cfg *Config, logger *slog.Logger, opts ...tableau.Option) (*Deps, error) {
	d := &Deps{Config: cfg, Logger: logger}
	var awsCfg aws.Config
	if cfg.SecretID != "" || cfg.StateTable != "" {
		var err error
		if awsCfg, err = config.LoadDefaultConfig(ctx); err != nil {
			return nil, fmt.Errorf("load AWS configuration: %w", err)
		}
	}
	if cfg.SecretID != "" {
		d.Secrets = secrets.NewCache(secretsmanager.NewFromConfig(awsCfg), cfg.SecretID, cfg.SecretCacheTTL, logger)
	} else {
		d.Secrets = secrets.Env{Getenv: os.Getenv}
	}
	if cfg.StateTable != "" {
		tbl, err := dynamo.New(dynamodb.NewFromConfig(awsCfg), cfg.StateTable, nil)
		if err != nil {
			return nil, err
		}
		d.Store, d.Sessions = tbl, tbl
	} else {
		d.Store, d.Sessions = state.NewMemory(nil), tableau.NewMemorySessionStore()
	}
	d.Tableau = &Clients{cfg: cfg, secrets: d.Secrets, sessions: d.Sessions, logger: logger, opts: opts}
	d.Refresher = refresh.New(d.Store, func(ctx context.Context) (refresh.Tableau, error) {
		return d.Tableau.Client(ctx)
	}, refresh.Options{Retention: cfg.Retention, Logger: logger})
	return d, nil
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
