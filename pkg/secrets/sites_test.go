package secrets_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/secrets"
)

const withSites = `{"dbt_webhook_secret":"whsec","tableau_pat_name":"bridge","tableau_pat_secret":"pat-s3cret",
 "tableau_sites":{
   "emea":{"tableau_pat_name":"emea-bot","tableau_pat_secret":"emea-s3cret"},
   "APAC":{"tableau_client_id":"c","tableau_secret_id":"i","tableau_secret_value":"app-s3cret","tableau_username":"u"},
   "half":{"tableau_pat_name":"half-bot"},
   "app-half":{"tableau_client_id":"c","tableau_pat_secret":"x"}}}`

func TestSiteCredentials(t *testing.T) {
	id := createSecret(t, withSites)
	c, err := secrets.NewCache(sm, id).Credentials(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		site        string
		want        secrets.SiteCredentials
		wantMissing []string
		noEntry     bool
	}{
		{"the default site: the top-level keys", "", secrets.SiteCredentials{PATName: "bridge", PATSecret: "pat-s3cret"}, nil, false},
		{"a site's PAT", "emea", secrets.SiteCredentials{PATName: "emea-bot", PATSecret: "emea-s3cret"}, nil, false},
		{"a site's connected app, in any case", "apac", secrets.SiteCredentials{ClientID: "c", SecretID: "i", SecretValue: "app-s3cret", Username: "u"}, nil, false},
		{"a site without credentials: never the default's", "sandbox", secrets.SiteCredentials{}, []string{"tableau_pat_name", "tableau_pat_secret"}, true},
		{"half a PAT", "half", secrets.SiteCredentials{}, []string{"tableau_pat_secret"}, false},
		{"half a connected app", "app-half", secrets.SiteCredentials{}, []string{"tableau_pat_name"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.Site(tt.site)
			if tt.wantMissing == nil {
				if err != nil || got != tt.want {
					t.Fatalf("Site(%q) = %+v, %v; want %+v", tt.site, got, err, tt.want)
				}
				return
			}
			var me *secrets.MissingSiteCredentialsError
			if !errors.As(err, &me) || !reflect.DeepEqual(me.Missing, tt.wantMissing) || me.NoEntry != tt.noEntry || me.Site != tt.site {
				t.Fatalf("Site(%q) error = %#v, want the missing keys %v", tt.site, err, tt.wantMissing)
			}
			if msg := err.Error(); !strings.Contains(msg, fmt.Sprintf("tableau_sites[%q]", tt.site)) || strings.Contains(msg, "s3cret") {
				t.Errorf("message %q: want the key to add, and no value", msg)
			}
		})
	}
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%v %+v", *c, *c), c.LogValue().String(), fmt.Sprint(c.TableauSites), fmt.Sprintf("%+v", c.TableauSites["emea"])} {
		if strings.Contains(s, "s3cret") {
			t.Errorf("printed credentials reveal a secret: %s", s)
		}
	}
}

func TestSitesNotObjects(t *testing.T) {
	for _, v := range []string{
		`{"dbt_webhook_secret":"w","tableau_pat_name":"n","tableau_pat_secret":"s","tableau_sites":"emea"}`,
		`{"dbt_webhook_secret":"w","tableau_pat_name":"n","tableau_pat_secret":"s","tableau_sites":{"emea":"pat-s3cret"}}`,
		`{"dbt_webhook_secret":"w","tableau_pat_name":"n","tableau_pat_secret":"s","tableau_sites":{"emea":{"tableau_pat_secret":7}}}`,
	} {
		_, err := secrets.Parse(v)
		if err == nil || !strings.Contains(err.Error(), "tableau_sites") || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Parse(%s) error = %v, want one that names tableau_sites and no value", v, err)
		}
	}
}

func TestEnvSites(t *testing.T) {
	env := map[string]string{
		"DBT_WEBHOOK_SECRET": "w", "TABLEAU_PAT_NAME": "n", "TABLEAU_PAT_SECRET": "s",
		"TABLEAU_SITES": `{"emea": {"server_url": "https://emea.example.com", "tableau_pat_name": "e", "tableau_pat_secret": "es"}, "apac": {}}`,
	}
	c, err := secrets.Env{Getenv: func(k string) string { return env[k] }}.Credentials(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.Site("emea"); err != nil || got.PATName != "e" || got.PATSecret != "es" {
		t.Errorf("Site(emea) = %+v, %v", got, err)
	}
	if _, err := c.Site("apac"); err == nil {
		t.Error("Site(apac): an entry without credentials has none")
	}
	env["TABLEAU_SITES"] = `{"emea": {"tableau_pat_name": 1}}`
	if _, err := (secrets.Env{Getenv: func(k string) string { return env[k] }}).Credentials(context.Background()); err == nil || !strings.Contains(err.Error(), `TABLEAU_SITES["emea"]`) {
		t.Errorf("a number for a PAT name: error = %v", err)
	}
	env["TABLEAU_SITES"] = `[1]`
	if _, err := (secrets.Env{Getenv: func(k string) string { return env[k] }}).Credentials(context.Background()); err == nil || !strings.Contains(err.Error(), "TABLEAU_SITES") {
		t.Errorf("not an object: error = %v", err)
	}
}
