package app

import (
	"context"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/secrets"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
)

// The clients ask for their credentials as they need them, the way the AWS
// SDK asks an aws.CredentialsProvider; these read them from the secret (its
// cache decides when to fetch it again), so that a rotated secret takes
// effect in a warm function without rebuilding anything.

// tableauCredentials are the secret's PAT, or its connected app when all of
// the app's keys are there; scopes are the app's JWT's (nil: the default).
type tableauCredentials struct {
	src    secrets.Source
	scopes []string
}

func (t tableauCredentials) Credentials(ctx context.Context) (tableau.Credentials, error) {
	c, err := t.src.Credentials(ctx)
	if err != nil {
		return tableau.Credentials{}, err
	}
	if c.ConnectedApp() {
		return tableau.Credentials{ConnectedApp: &tableau.ConnectedApp{
			ClientID: c.TableauClientID, SecretID: c.TableauSecretID, SecretValue: c.TableauSecretValue, Username: c.TableauUsername,
			Scopes: t.scopes,
		}}, nil
	}
	return tableau.Credentials{PATName: c.TableauPATName, PATSecret: c.TableauPATSecret}, nil
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
