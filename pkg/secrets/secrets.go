// Package secrets reads the bridge's credentials: one Secrets Manager secret
// whose SecretString is JSON, cached for a bounded time across warm
// invocations, or environment variables for local runs.
//
// The top-level Tableau keys (tableau_pat_name, ..., or the connected
// app's) sign in to the default site, TABLEAU_SITE. Other sites have theirs
// under "tableau_sites", by content URL, with the same key names (see
// SiteCredentials): Tableau keeps one session per personal access token,
// and a PAT or a connected app belongs to one site.
package secrets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// Credentials are the keys of the secret's JSON. Its String method hides the
// values, so a Credentials that reaches a log by mistake leaks nothing.
type Credentials struct {
	DBTWebhookSecret string `json:"dbt_webhook_secret"`
	TableauPATName   string `json:"tableau_pat_name"`
	TableauPATSecret string `json:"tableau_pat_secret"`
	DBTAPIToken      string `json:"dbt_api_token,omitempty"`
	// Connected app (direct trust), an alternative to the PAT that lets many
	// instances hold sessions at once.
	TableauClientID    string `json:"tableau_client_id,omitempty"`
	TableauSecretID    string `json:"tableau_secret_id,omitempty"`
	TableauSecretValue string `json:"tableau_secret_value,omitempty"`
	TableauUsername    string `json:"tableau_username,omitempty"`
	// Used by later features; read here so that one secret holds everything.
	TableauWebhookToken string `json:"tableau_webhook_token,omitempty"`
	SlackWebhookURL     string `json:"slack_webhook_url,omitempty"`
	// StatusPassword guards the status page (GET /status, /status.json);
	// without it both answer 404.
	StatusPassword string `json:"status_password,omitempty"`
	// TableauSites are the credentials of the Tableau sites other than the
	// default, by content URL (see Site).
	TableauSites map[string]SiteCredentials `json:"tableau_sites,omitempty"`
}

// String implements fmt.Stringer without revealing any value.
func (c Credentials) String() string {
	return fmt.Sprintf("Credentials{pat=%q connectedApp=%t sites=%d}", c.TableauPATName, c.ConnectedApp(), len(c.TableauSites))
}

// LogValue implements slog.LogValuer for the same reason as String.
func (c Credentials) LogValue() slog.Value { return slog.StringValue(c.String()) }

// ConnectedApp reports whether connected-app credentials are given.
func (c Credentials) ConnectedApp() bool {
	return c.TableauClientID != "" && c.TableauSecretID != "" && c.TableauSecretValue != "" && c.TableauUsername != ""
}

// Validate says which required key is missing, naming keys, never values.
func (c Credentials) Validate() error {
	var missing []string
	if c.DBTWebhookSecret == "" {
		missing = append(missing, "dbt_webhook_secret")
	}
	if !c.ConnectedApp() {
		if c.TableauPATName == "" {
			missing = append(missing, "tableau_pat_name")
		}
		if c.TableauPATSecret == "" {
			missing = append(missing, "tableau_pat_secret")
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("secret is missing %s (or the connected-app keys tableau_client_id, tableau_secret_id, tableau_secret_value, tableau_username)", strings.Join(missing, ", "))
	}
	return nil
}

// Parse decodes a SecretString.
func Parse(secretString string) (*Credentials, error) {
	var c Credentials
	if err := json.Unmarshal([]byte(secretString), &c); err != nil {
		// The JSON error may quote the secret's text: do not wrap it.
		return nil, errors.New(`secret is not a JSON object with string values (and "tableau_sites" an object of such objects, by site)`)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Source returns the current credentials.
type Source interface {
	Credentials(ctx context.Context) (*Credentials, error)
}

// GetSecretValueAPI is the Secrets Manager call the cache makes.
type GetSecretValueAPI interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// Cache fetches a secret once and serves it for TTL. Only GetSecretValue is
// called (no DescribeSecret), so the function's policy can grant just that.
type Cache struct {
	api    GetSecretValueAPI
	id     string
	ttl    time.Duration
	now    func() time.Time
	logger *slog.Logger

	mu      sync.Mutex
	creds   *Credentials
	fetched time.Time
}

var _ Source = (*Cache)(nil)

// DefaultTTL bounds how long a rotated secret can go unnoticed.
const DefaultTTL = 5 * time.Minute

// Option configures a Cache.
type Option func(*Cache)

// WithTTL bounds how long a fetched secret is served (default DefaultTTL),
// and so how long a rotation can go unnoticed.
func WithTTL(d time.Duration) Option { return func(c *Cache) { c.ttl = d } }

// WithLogger sets where the Cache logs; by default nowhere.
func WithLogger(l *slog.Logger) Option { return func(c *Cache) { c.logger = l } }

// WithClock sets the Cache's clock, for tests.
func WithClock(now func() time.Time) Option { return func(c *Cache) { c.now = now } }

// NewCache returns a cache of secret id.
func NewCache(api GetSecretValueAPI, id string, opts ...Option) *Cache {
	c := &Cache{api: api, id: id, ttl: DefaultTTL, now: time.Now, logger: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt(c)
	}
	if c.ttl <= 0 {
		c.ttl = DefaultTTL
	}
	return c
}

// Where names the secret, for messages that tell a person where to fix it.
func (c *Cache) Where() string { return "Secrets Manager secret " + c.id }

// Credentials implements Source. Concurrent callers share one fetch. When a
// refresh fails, the previous value is served for up to one more TTL, so that
// a Secrets Manager blip does not fail webhooks that the cached value can
// still serve.
func (c *Cache) Credentials(ctx context.Context) (*Credentials, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if c.creds != nil && now.Sub(c.fetched) < c.ttl {
		return c.creds, nil
	}
	out, err := c.api.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(c.id)})
	if err == nil && out.SecretString == nil {
		err = errors.New("secret has no SecretString (binary secrets are not supported)")
	}
	var creds *Credentials
	if err == nil {
		creds, err = Parse(*out.SecretString)
	}
	if err != nil {
		err = fmt.Errorf("read secret %s: %w", c.id, err)
		if c.creds != nil && now.Sub(c.fetched) < 2*c.ttl {
			c.logger.WarnContext(ctx, "serving cached credentials after a failed refresh", "error", err)
			return c.creds, nil
		}
		return nil, err
	}
	c.creds, c.fetched = creds, now
	return creds, nil
}

// Env reads credentials from environment variables named like the secret's
// keys in upper case (DBT_WEBHOOK_SECRET, TABLEAU_PAT_NAME, ...), for local
// runs without Secrets Manager.
type Env struct {
	Getenv func(string) string
}

var _ Source = Env{}

// Credentials implements Source.
func (e Env) Credentials(context.Context) (*Credentials, error) {
	g := e.Getenv
	sites, err := EnvSites(g("TABLEAU_SITES"))
	if err != nil {
		return nil, fmt.Errorf("environment credentials: %w", err)
	}
	c := &Credentials{
		TableauSites:        sites,
		DBTWebhookSecret:    g("DBT_WEBHOOK_SECRET"),
		TableauPATName:      g("TABLEAU_PAT_NAME"),
		TableauPATSecret:    g("TABLEAU_PAT_SECRET"),
		DBTAPIToken:         g("DBT_API_TOKEN"),
		TableauClientID:     g("TABLEAU_CLIENT_ID"),
		TableauSecretID:     g("TABLEAU_SECRET_ID"),
		TableauSecretValue:  g("TABLEAU_SECRET_VALUE"),
		TableauUsername:     g("TABLEAU_USERNAME"),
		TableauWebhookToken: g("TABLEAU_WEBHOOK_TOKEN"),
		SlackWebhookURL:     g("SLACK_WEBHOOK_URL"),
		StatusPassword:      g("STATUS_PASSWORD"),
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("environment credentials: %w (as upper-case variables, e.g. DBT_WEBHOOK_SECRET)", err)
	}
	return c, nil
}
