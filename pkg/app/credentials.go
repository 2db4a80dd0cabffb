package app

import (
	"context"
	"fmt"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/followup"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/secrets"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/sites"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
)

// The clients ask for their credentials as they need them, the way the AWS
// SDK asks an aws.CredentialsProvider; these read them from the secret (its
// cache decides when to fetch it again), so that a rotated secret takes
// effect in a warm function without rebuilding anything.

// tableauCredentials are a site's PAT in the secret, or its connected app
// when all of the app's keys are there: the top-level keys for the default
// site (site ""), tableau_sites[site] for another; scopes are the app's
// JWT's (nil: the default). where names the secret, for the error of a
// site without credentials.
type tableauCredentials struct {
	src    secrets.Source
	scopes []string
	site   string
	where  string
}

func (t tableauCredentials) Credentials(ctx context.Context) (tableau.Credentials, error) {
	c, err := t.src.Credentials(ctx)
	if err != nil {
		return tableau.Credentials{}, err
	}
	sc, err := c.Site(t.site)
	if err != nil {
		return tableau.Credentials{}, fmt.Errorf("%w, in %s", err, t.where)
	}
	if sc.ConnectedApp() {
		return tableau.Credentials{ConnectedApp: &tableau.ConnectedApp{
			ClientID: sc.ClientID, SecretID: sc.SecretID, SecretValue: sc.SecretValue, Username: sc.Username,
			Scopes: t.scopes,
		}}, nil
	}
	return tableau.Credentials{PATName: sc.PATName, PATSecret: sc.PATSecret}, nil
}

// siteClients are the sites' clients as package followup asks for them.
type siteClients struct{ *sites.Clients }

func (s siteClients) Client(site string) (followup.Tableau, error) { return s.Clients.Client(site) }

func (s siteClients) BySiteID(luid string) followup.Tableau {
	if tc, _ := s.Clients.BySiteID(luid); tc != nil {
		return tc
	}
	return nil
}

// dbtToken is the secret's dbt_api_token.
type dbtToken struct{ src secrets.Source }

func (d dbtToken) Token(ctx context.Context) (string, error) {
	c, err := d.src.Credentials(ctx)
	if err != nil {
		return "", err
	}
	if c.DBTAPIToken == "" {
		return "", errNoDBTToken
	}
	return c.DBTAPIToken, nil
}

// slackURL is the secret's slack_webhook_url, "" when there is none.
type slackURL struct{ src secrets.Source }

func (s slackURL) SlackWebhookURL(ctx context.Context) (string, error) {
	c, err := s.src.Credentials(ctx)
	if err != nil {
		return "", err
	}
	return c.SlackWebhookURL, nil
}
