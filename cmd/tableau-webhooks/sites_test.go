package main

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/secrets"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau/tableautest"
)

const (
	emeaSecret  = "emea-pat-secret-4c3b2a"
	cloudSecret = "cloud-pat-secret-8d7c6b"
)

// TestSiteFlag: -site chooses which site's webhooks a command manages,
// signed in to with that site's own credentials from the secret; the
// default is TABLEAU_SITE; a site on another server is found in
// TABLEAU_SITES; a site without credentials is a clear error.
func TestSiteFlag(t *testing.T) {
	const id = "dbt-tableau-refresh/credentials"
	rcv := newReceiver(t)
	home := tableautest.NewServer(tableautest.WithSite("analytics"), tableautest.WithWebhookClient(rcv.Client()))
	t.Cleanup(home.Close)
	home.AddPAT(adminPAT, adminSecret)
	emea := home.AddSite("emea")
	emea.AddPAT("emea-admin", emeaSecret)
	home.AddSite("apac")
	cloud := tableautest.NewServer(tableautest.WithSite("cloud"), tableautest.WithWebhookClient(rcv.Client()))
	t.Cleanup(cloud.Close)
	cloud.AddPAT("cloud-admin", cloudSecret)
	secret := `{"tableau_pat_name":"` + adminPAT + `","tableau_pat_secret":"` + adminSecret + `","tableau_webhook_token":"` + testToken + `",
		"tableau_sites":{"emea":{"tableau_pat_name":"emea-admin","tableau_pat_secret":"` + emeaSecret + `"},
		                 "cloud":{"tableau_pat_name":"cloud-admin","tableau_pat_secret":"` + cloudSecret + `"}}}`
	e := env{"TABLEAU_SERVER_URL": home.URL(), "TABLEAU_SITE": "analytics", "SECRET_ID": id,
		"TABLEAU_SITES": `{"cloud": {"server_url": "` + cloud.URL() + `"}}`}
	apis := noAWS(t)
	apis.secrets = func(context.Context) (secrets.GetSecretValueAPI, error) {
		return &fakeSecrets{id: id, value: secret}, nil
	}
	base := rcv.URL + "/tableau/webhook"

	tests := []struct {
		name  string
		args  []string
		code  int
		want  []string
		sites map[*tableautest.Server]int // webhooks each site holds afterwards
	}{
		{"create on emea, with emea's PAT", []string{"create", "-site", "emea", "-url", base, "-events", "WorkbookRefreshFailed"}, exitOK,
			[]string{"created"}, map[*tableautest.Server]int{home: 0, emea: 1, cloud: 0}},
		{"create on the default site", []string{"create", "-url", base, "-events", "WorkbookRefreshFailed,DatasourceRefreshFailed"}, exitOK,
			[]string{"created"}, map[*tableautest.Server]int{home: 2, emea: 1, cloud: 0}},
		{"-site naming TABLEAU_SITE is the default site", []string{"list", "-site", "ANALYTICS"}, exitOK,
			[]string{"DatasourceRefreshFailed"}, map[*tableautest.Server]int{home: 2, emea: 1}},
		{"create on another server", []string{"create", "-site", "cloud", "-url", base, "-events", "DatasourceRefreshFailed"}, exitOK,
			[]string{"created"}, map[*tableautest.Server]int{home: 2, emea: 1, cloud: 1}},
		{"list emea's alone", []string{"list", "-site", "emea"}, exitOK, []string{"dbt-tableau-refresh-WorkbookRefreshFailed"}, nil},
		{"test on emea reaches the bridge", []string{"test", "-site", "emea", "-all"}, exitOK, []string{"200"}, nil},
		{"a site without credentials", []string{"list", "-site", "apac"}, exitFail,
			[]string{`Tableau site "apac" has no credentials of its own: add tableau_pat_name and tableau_pat_secret under tableau_sites["apac"]`, "in the secret " + id}, nil},
		{"a bad -site", []string{"list", "-site", "https://x/#/site/emea"}, exitUsage, []string{"-site: site", "want the bare content URL"}, nil},
		{"delete on cloud only", []string{"delete", "-site", "cloud", "-all", "-yes"}, exitOK, []string{"deleted"},
			map[*tableautest.Server]int{home: 2, emea: 1, cloud: 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, e, apis, tt.args...)
			r.want(t, tt.code, tt.want...)
			for s, n := range tt.sites {
				if got := len(s.Webhooks()); got != n {
					t.Errorf("site %s holds %d webhooks, want %d", s.ContentURL(), got, n)
				}
			}
		})
	}
	if out := runCLI(t, e, apis, "list", "-site", "emea").stdout; strings.Contains(out, "DatasourceRefreshFailed") {
		t.Errorf("emea's list shows the default site's webhooks:\n%s", out)
	}
	// Each site was signed in to with its own PAT: a PAT signs in to its
	// own site only, so any other would have failed.
	if home.Count(http.MethodPost, "/auth/signin") == 0 || emea.Count(http.MethodPost, "/auth/signin") == 0 || cloud.Count(http.MethodPost, "/auth/signin") == 0 {
		t.Error("a site was never signed in to")
	}
}

// TestSiteFlagWithoutSecret: in a local run the other sites' credentials
// come from TABLEAU_SITES, as the functions read them.
func TestSiteFlagWithoutSecret(t *testing.T) {
	srv, e := newSim(t, tableautest.AllowHTTPDestinations())
	emea := srv.AddSite("emea")
	emea.AddPAT("emea-admin", emeaSecret)
	e = e.with("TABLEAU_PAT_NAME", "", "TABLEAU_PAT_SECRET", "",
		"TABLEAU_SITES", `{"emea": {"tableau_pat_name": "emea-admin", "tableau_pat_secret": "`+emeaSecret+`"}}`)
	runCLI(t, e, noAWS(t), "create", "-site", "emea", "-url", "http://127.0.0.1:1/tableau/webhook", "-allow-http").want(t, exitOK, "created")
	if len(emea.Webhooks()) != len(defaultEvents) || len(srv.Webhooks()) != 0 {
		t.Errorf("webhooks: %d on emea, %d on the default site", len(emea.Webhooks()), len(srv.Webhooks()))
	}
	runCLI(t, e, noAWS(t), "list").want(t, exitFail, "no Tableau credentials")
}
