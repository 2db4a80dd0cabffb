package sites_test

import (
	"strings"
	"testing"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/sites"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau/tableautest"
)

var def = sites.Site{ContentURL: "home", ServerURL: "https://tableau.example.com", APIVersion: "3.23"}

func TestParse(t *testing.T) {
	c, err := sites.Parse(`{"emea": {}, "cloud": {"server_url": "https://prod-useast-a.online.tableau.com"}, "old": {"server_url": "https://old.example.com", "api_version": "3.19"}}`, def, false)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		site      string
		wantKey   string
		server    string
		version   string
		isDefault bool
		listed    bool
	}{
		{"the default site by \"\"", "", "", def.ServerURL, "3.23", true, false},
		{"the default site by TABLEAU_SITE", "HOME", "", def.ServerURL, "3.23", true, false},
		{"listed, on the same server", "emea", "emea", def.ServerURL, "3.23", false, true},
		{"listed, on another server: its version asked of it", "Cloud", "cloud", "https://prod-useast-a.online.tableau.com", "", false, true},
		{"listed with a version", "old", "old", "https://old.example.com", "3.19", false, true},
		{"not listed: the default's server", "apac", "apac", def.ServerURL, "3.23", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := c.Site(tt.site)
			if s.Key() != tt.wantKey || s.ServerURL != tt.server || s.APIVersion != tt.version || s.Default != tt.isDefault || s.Listed != tt.listed {
				t.Errorf("Site(%q) = %+v (key %q)", tt.site, s, s.Key())
			}
		})
	}
	if got := len(c.Listed()); got != 3 {
		t.Errorf("Listed() = %d sites, want 3", got)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, raw string
		creds     bool
		want      []string
	}{
		{"not an object", `["emea"]`, false, []string{"TABLEAU_SITES: want a JSON object"}},
		{"trailing data", `{} {}`, false, []string{"TABLEAU_SITES: want a JSON object"}},
		{"entry not an object", `{"emea": "https://x"}`, false, []string{"TABLEAU_SITES: want a JSON object"}},
		{"http to another host", `{"emea": {"server_url": "http://emea.example.com"}}`, false, []string{`TABLEAU_SITES["emea"]: server_url: server URL "http://emea.example.com" must use https`}},
		{"bad version", `{"emea": {"api_version": "latest"}}`, false, []string{`TABLEAU_SITES["emea"]: api_version: API version "latest"`}},
		{"unknown key", `{"emea": {"server": "https://x"}}`, false, []string{`TABLEAU_SITES["emea"]: unknown key "server"`}},
		{"not a string", `{"emea": {"server_url": 5}}`, false, []string{`TABLEAU_SITES["emea"]: server_url must be a string`}},
		{"the default site", `{"HOME": {}}`, false, []string{`TABLEAU_SITES["HOME"]: that is the default site`}},
		{"the empty content URL", `{"": {}}`, false, []string{`TABLEAU_SITES[""]: that is the default site`}},
		{"a URL for a content URL", `{"https://x/#/site/emea": {}}`, false, []string{`want the bare content URL`}},
		{"twice in two cases", `{"emea": {}, "EMEA": {}}`, false, []string{`TABLEAU_SITES["emea"]: the same site as "EMEA"`}},
		{"credentials beside a secret", `{"emea": {"tableau_pat_name": "n", "tableau_pat_secret": "s3cret"}}`, false, []string{
			`TABLEAU_SITES["emea"]: tableau_pat_name is a credential: put it in the secret, under tableau_sites["emea"]`,
			`tableau_pat_secret is a credential`}},
		{"every problem at once", `{"a": {"x": "1"}, "b": {"server_url": "ftp://b"}}`, false, []string{`TABLEAU_SITES["a"]: unknown key "x"`, `TABLEAU_SITES["b"]: server_url`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sites.Parse(tt.raw, def, tt.creds)
			if err == nil {
				t.Fatal("Parse() accepted it")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q, want %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error %q reveals a credential", err)
			}
		})
	}
	if _, err := sites.Parse(`{"emea": {"tableau_pat_name": "n", "tableau_pat_secret": "s"}}`, def, true); err != nil {
		t.Errorf("credentials in a local run without a secret: %v", err)
	}
}

// Two sites on one server and a third on another: one client per site,
// whatever case it is asked in, each signed in to its own site.
func TestClients(t *testing.T) {
	srv := tableautest.NewServer(tableautest.WithSite("home"))
	defer srv.Close()
	emea := srv.AddSite("emea")
	other := tableautest.NewServer(tableautest.WithSite("cloud"))
	defer other.Close()
	srv.AddPAT("home-bot", "h")
	emea.AddPAT("emea-bot", "e")
	other.AddPAT("cloud-bot", "c")
	pats := map[string][2]string{"home": {"home-bot", "h"}, "emea": {"emea-bot", "e"}, "cloud": {"cloud-bot", "c"}}

	cat, err := sites.Parse(`{"cloud": {"server_url": "`+other.URL()+`"}}`, sites.Site{ContentURL: "home", ServerURL: srv.URL()}, false)
	if err != nil {
		t.Fatal(err)
	}
	store := tableau.NewMemorySessionStore()
	made := 0
	cs, err := sites.NewClients(cat, func(s sites.Site) (*tableau.Client, error) {
		made++
		p := pats[strings.ToLower(s.ContentURL)]
		return tableau.NewClient(s.ServerURL, tableau.WithSite(s.ContentURL), tableau.WithPAT(p[0], p[1]), tableau.WithSessionStore(store))
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for _, tt := range []struct {
		site   string
		siteID string
	}{{"", srv.SiteID()}, {"home", srv.SiteID()}, {"emea", emea.SiteID()}, {"EMEA", emea.SiteID()}, {"cloud", other.SiteID()}} {
		tc, err := cs.Client(tt.site)
		if err != nil {
			t.Fatalf("Client(%q): %v", tt.site, err)
		}
		if err := tc.SignIn(ctx); err != nil {
			t.Fatalf("Client(%q).SignIn: %v", tt.site, err)
		}
		if tc.SiteID() != tt.siteID {
			t.Errorf("Client(%q) is signed in to %s, want %s", tt.site, tc.SiteID(), tt.siteID)
		}
	}
	if made != 3 {
		t.Errorf("made %d clients, want one per site: 3", made)
	}
	if tc, key := cs.BySiteID(emea.SiteID()); tc == nil || key != "emea" {
		t.Errorf("BySiteID(emea's LUID) = %v, %q", tc, key)
	}
	if tc, key := cs.BySiteID(srv.SiteID()); tc != cs.Default() || key != "" {
		t.Errorf("BySiteID(the default's LUID) = %v, %q", tc, key)
	}
	if tc, _ := cs.BySiteID("nope"); tc != nil {
		t.Error("BySiteID(an unknown LUID) found a client")
	}
	// One session per (server, site, credentials) in the shared store.
	keys := map[string]bool{}
	for _, s := range []string{"", "emea", "cloud"} {
		tc, _ := cs.Client(s)
		keys[tc.SessionKey()] = true
	}
	if len(keys) != 3 {
		t.Errorf("session keys %v: want three apart", keys)
	}
}
