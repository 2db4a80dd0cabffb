package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dynamo"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/secrets"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/sites"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
)

// The command reads the functions' environment variables itself rather than
// through config.FromEnv, which insists on a refresh map (or lineage) this
// tool has no use for, and decodes the secret itself rather than through
// secrets.Parse, which insists on dbt_webhook_secret.

// awsAPIs makes the AWS clients the command may need; tests replace it.
type awsAPIs struct {
	secrets  func(ctx context.Context) (secrets.GetSecretValueAPI, error)
	sessions func(ctx context.Context, table string) (tableau.SessionStore, error)
}

// defaultAWS loads the AWS configuration (region, credentials) on first use
// only, so that runs without SECRET_ID and STATE_TABLE need no AWS at all.
func defaultAWS() awsAPIs {
	var (
		once sync.Once
		cfg  aws.Config
		err  error
	)
	load := func(ctx context.Context) (aws.Config, error) {
		once.Do(func() { cfg, err = config.LoadDefaultConfig(ctx) })
		if err != nil {
			return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
		}
		return cfg, nil
	}
	return awsAPIs{
		secrets: func(ctx context.Context) (secrets.GetSecretValueAPI, error) {
			cfg, err := load(ctx)
			if err != nil {
				return nil, err
			}
			return secretsmanager.NewFromConfig(cfg), nil
		},
		sessions: func(ctx context.Context, table string) (tableau.SessionStore, error) {
			cfg, err := load(ctx)
			if err != nil {
				return nil, err
			}
			return dynamo.New(dynamo.NewClient(cfg), table)
		},
	}
}

// settings are what the command reads from the environment, for the site
// it manages.
type settings struct {
	serverURL  string // TABLEAU_SERVER_URL, or the site's in TABLEAU_SITES
	site       string // -site, else TABLEAU_SITE
	siteKey    string // "" for TABLEAU_SITE, else site: whose credentials
	apiVersion string // TABLEAU_API_VERSION, or the site's in TABLEAU_SITES
	secretID   string // SECRET_ID
	stateTable string // STATE_TABLE
}

func (c *cli) settings() (*settings, error) {
	get := func(k string) string { return strings.TrimSpace(c.env(k)) }
	s := &settings{
		serverURL:  get("TABLEAU_SERVER_URL"),
		site:       get("TABLEAU_SITE"),
		apiVersion: get("TABLEAU_API_VERSION"),
		secretID:   get("SECRET_ID"),
		stateTable: get("STATE_TABLE"),
	}
	if s.serverURL == "" {
		return nil, errors.New("TABLEAU_SERVER_URL is not set: the Tableau Server or Tableau Cloud pod, e.g. https://prod-useast-a.online.tableau.com")
	}
	// The site, and where it is, as the functions see it (package sites).
	catalog, err := sites.Parse(get("TABLEAU_SITES"), sites.Site{ContentURL: s.site, ServerURL: s.serverURL, APIVersion: s.apiVersion}, s.secretID == "")
	if err != nil {
		return nil, errors.New(oneLine(err.Error()))
	}
	site := catalog.Site(c.site)
	s.site, s.siteKey, s.serverURL, s.apiVersion = site.ContentURL, site.Key(), site.ServerURL, site.APIVersion
	c.serverURL = s.serverURL
	return s, nil
}

// credentials are what the command signs in with, and the route's token.
type credentials struct {
	secrets.Credentials
	tokenName string // where the token comes from, for messages
}

// credentials reads the secret (SECRET_ID) or, without one, the upper-case
// environment variables. Sign-in credentials in the environment win over
// the secret's: the bridge's own PAT need not be a site administrator, and
// an administrator can run the command with theirs while the token still
// comes from the deployed secret.
func (c *cli) credentials(ctx context.Context, s *settings) (*credentials, error) {
	fromEnv := envCredentials(c.env)
	var cr credentials
	if s.secretID == "" {
		cr = credentials{Credentials: fromEnv, tokenName: "TABLEAU_WEBHOOK_TOKEN"}
		if s.siteKey != "" && !hasSignIn(fromEnv) {
			// Another site's credentials, from TABLEAU_SITES as the
			// functions read them without a secret.
			all, err := secrets.EnvSites(c.env("TABLEAU_SITES"))
			if err != nil {
				return nil, err
			}
			stored := secrets.Credentials{TableauSites: all}
			sc, err := stored.Site(s.siteKey)
			if err != nil {
				return nil, fmt.Errorf("%w, in TABLEAU_SITES; or set TABLEAU_PAT_NAME and TABLEAU_PAT_SECRET to a PAT of the site", err)
			}
			setSignIn(&cr.Credentials, sc)
		}
		if !hasSignIn(cr.Credentials) {
			return nil, errors.New("no Tableau credentials: set TABLEAU_PAT_NAME and TABLEAU_PAT_SECRET (or TABLEAU_CLIENT_ID, TABLEAU_SECRET_ID, TABLEAU_SECRET_VALUE and TABLEAU_USERNAME), or SECRET_ID")
		}
	} else {
		stored, err := c.readSecret(ctx, s.secretID)
		if err != nil {
			return nil, err
		}
		cr = credentials{Credentials: *stored, tokenName: "tableau_webhook_token in the secret " + s.secretID}
		switch {
		case hasSignIn(fromEnv):
			setSignIn(&cr.Credentials, siteOf(fromEnv))
			c.warnf("signing in with the Tableau credentials from the environment, not the secret's\n")
		case s.siteKey != "":
			sc, err := stored.Site(s.siteKey)
			if err != nil {
				return nil, fmt.Errorf("%w, in the secret %s; or set TABLEAU_PAT_NAME and TABLEAU_PAT_SECRET to a PAT of the site", err, s.secretID)
			}
			setSignIn(&cr.Credentials, sc)
		case !hasSignIn(*stored):
			return nil, fmt.Errorf("the secret %s has no Tableau credentials: it needs tableau_pat_name and tableau_pat_secret (or tableau_client_id, tableau_secret_id, tableau_secret_value and tableau_username), or set TABLEAU_PAT_NAME and TABLEAU_PAT_SECRET", s.secretID)
		}
	}
	c.red.add(cr.TableauWebhookToken, cr.TableauPATSecret, cr.TableauSecretValue)
	if cr.ConnectedApp() {
		c.who = fmt.Sprintf("connected app user %q", cr.TableauUsername)
	} else {
		c.who = fmt.Sprintf("personal access token %q", cr.TableauPATName)
	}
	if s.siteKey != "" {
		c.who += fmt.Sprintf(" on site %q", s.site)
	}
	return &cr, nil
}

// envCredentials reads the variables secrets.Env reads, without its demand
// for DBT_WEBHOOK_SECRET, which managing Tableau webhooks does not need.
func envCredentials(getenv func(string) string) secrets.Credentials {
	g := func(k string) string { return strings.TrimSpace(getenv(k)) }
	return secrets.Credentials{
		TableauPATName:      g("TABLEAU_PAT_NAME"),
		TableauPATSecret:    g("TABLEAU_PAT_SECRET"),
		TableauClientID:     g("TABLEAU_CLIENT_ID"),
		TableauSecretID:     g("TABLEAU_SECRET_ID"),
		TableauSecretValue:  g("TABLEAU_SECRET_VALUE"),
		TableauUsername:     g("TABLEAU_USERNAME"),
		TableauWebhookToken: g("TABLEAU_WEBHOOK_TOKEN"),
	}
}

func hasSignIn(cr secrets.Credentials) bool {
	return cr.ConnectedApp() || (cr.TableauPATName != "" && cr.TableauPATSecret != "")
}

// siteOf is the top-level sign-in of cr, as a site's.
func siteOf(cr secrets.Credentials) secrets.SiteCredentials {
	sc, _ := cr.Site("") // the top-level keys: cannot fail
	return sc
}

// setSignIn makes sc the sign-in of cr.
func setSignIn(cr *secrets.Credentials, sc secrets.SiteCredentials) {
	cr.TableauPATName, cr.TableauPATSecret = sc.PATName, sc.PATSecret
	cr.TableauClientID, cr.TableauSecretID, cr.TableauSecretValue, cr.TableauUsername = sc.ClientID, sc.SecretID, sc.SecretValue, sc.Username
}

// readSecret fetches and decodes the credentials secret.
func (c *cli) readSecret(ctx context.Context, id string) (*secrets.Credentials, error) {
	api, err := c.aws.secrets(ctx)
	if err != nil {
		return nil, err
	}
	out, err := api.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
	if err != nil {
		return nil, fmt.Errorf("read secret %s: %w", id, err)
	}
	if out.SecretString == nil {
		return nil, fmt.Errorf("read secret %s: it has no SecretString (binary secrets are not supported)", id)
	}
	var cr secrets.Credentials
	if err := json.Unmarshal([]byte(*out.SecretString), &cr); err != nil {
		// The JSON error may quote the secret's text: do not wrap it.
		return nil, fmt.Errorf("read secret %s: it is not a JSON object with string values", id)
	}
	return &cr, nil
}

// connect reads the configuration and credentials and returns a Tableau
// client, and a function that ends what it started. It makes no request to
// Tableau: the client signs in on first use.
func (c *cli) connect(ctx context.Context, s *settings, cr *credentials) (*tableau.Client, func(), error) {
	opts := []tableau.Option{tableau.WithSite(s.site)}
	if s.apiVersion != "" {
		opts = append(opts, tableau.WithAPIVersion(s.apiVersion))
	}
	if cr.ConnectedApp() {
		opts = append(opts, tableau.WithConnectedApp(tableau.ConnectedApp{
			ClientID: cr.TableauClientID, SecretID: cr.TableauSecretID,
			SecretValue: cr.TableauSecretValue, Username: cr.TableauUsername,
			Scopes: tableau.WebhookScopes(),
		}))
	} else {
		opts = append(opts, tableau.WithPAT(cr.TableauPATName, cr.TableauPATSecret))
	}
	shared := s.stateTable != ""
	if shared {
		// Adopt the functions' stored session: signing in with their PAT
		// would end the session they are using.
		store, err := c.aws.sessions(ctx, s.stateTable)
		if err != nil {
			return nil, nil, fmt.Errorf("STATE_TABLE %s: %w", s.stateTable, err)
		}
		opts = append(opts, tableau.WithSessionStore(store))
	}
	client, err := tableau.NewClient(s.serverURL, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("TABLEAU_SERVER_URL, TABLEAU_SITE (or -site), TABLEAU_SITES or TABLEAU_API_VERSION: %w", err)
	}
	done := func() {
		if !shared {
			// A shared session belongs to the functions too: leave it be.
			// An interrupted run still signs out, briefly.
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			_ = client.SignOut(ctx)
		}
	}
	return client, done, nil
}

// session is what every command starts with: configuration, credentials and
// a client.
func (c *cli) session(ctx context.Context) (*tableau.Client, *credentials, func(), error) {
	s, err := c.settings()
	if err != nil {
		return nil, nil, nil, err
	}
	cr, err := c.credentials(ctx, s)
	if err != nil {
		return nil, nil, nil, err
	}
	client, done, err := c.connect(ctx, s, cr)
	if err != nil {
		return nil, nil, nil, err
	}
	return client, cr, done, nil
}
