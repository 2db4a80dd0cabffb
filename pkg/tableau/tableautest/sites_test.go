package tableautest

import (
	"net/http"
	"strings"
	"testing"
)

// signInTo signs in to site with a PAT and returns the token and the site's
// LUID.
func (e *env) signInTo(site, name, secret string) (token, siteID string, status int) {
	e.t.Helper()
	r := e.post(e.api("auth/signin"), "", patBody(name, secret, site))
	if r.status != http.StatusOK {
		return "", "", r.status
	}
	m := r.json(e.t)
	return dig(m, "credentials", "token").(string), dig(m, "credentials", "site", "id").(string), r.status
}

func TestSites(t *testing.T) {
	e := newEnv(t, WithJobTimings(-1, -1))
	finance := e.srv.AddSite("finance")
	finance.AddPAT("fin-bot", "fin-secret")
	wb := finance.AddWorkbook("Sales", "Reports")
	home := e.srv.AddWorkbook("Sales", "Reports")

	tokHome, idHome, _ := e.signInTo("", testPAT, testPATSecret)
	tokFin, idFin, _ := e.signInTo("FINANCE", "fin-bot", "fin-secret") // content URLs compare without case
	if idHome != e.srv.SiteID() || idFin != finance.SiteID() || idHome == idFin {
		t.Fatalf("site LUIDs: signed in to %s and %s; the sites are %s and %s", idHome, idFin, e.srv.SiteID(), finance.SiteID())
	}
	if got := e.srv.Site("Finance"); got != finance {
		t.Errorf("Site(Finance) = %v, want the added site", got)
	}
	if e.srv.Site("nowhere") != nil || e.srv.Site("") != e.srv {
		t.Error("Site: want nil for an unknown content URL and the server for its own")
	}

	tests := []struct {
		name       string
		method     string
		url        string
		token      string
		body       string
		wantStatus int
		wantCode   string
	}{
		{"a PAT signs in to its own site only", "POST", e.api("auth/signin"), "", patBody("fin-bot", "fin-secret", ""), http.StatusUnauthorized, "401001"},
		{"and not to another's", "POST", e.api("auth/signin"), "", patBody(testPAT, testPATSecret, "finance"), http.StatusUnauthorized, "401001"},
		{"a site's content", "GET", e.api("sites/" + idFin + "/workbooks/" + wb), tokFin, "", http.StatusOK, ""},
		{"not another site's", "GET", e.api("sites/" + idFin + "/workbooks/" + home), tokFin, "", http.StatusNotFound, ""},
		{"a session works on its site alone", "GET", e.api("sites/" + idFin + "/workbooks/" + wb), tokHome, "", http.StatusUnauthorized, "401002"},
		{"the server's own site still answers", "GET", e.api("sites/" + idHome + "/workbooks/" + home), tokHome, "", http.StatusOK, ""},
		{"refresh on the added site", "POST", e.api("sites/" + idFin + "/workbooks/" + wb + "/refresh"), tokFin, "{}", http.StatusAccepted, ""},
		{"one refresh per item per site", "POST", e.api("sites/" + idFin + "/workbooks/" + wb + "/refresh"), tokFin, "{}", http.StatusConflict, "409093"},
		{"the other site's item of the same name is its own", "POST", e.api("sites/" + idHome + "/workbooks/" + home + "/refresh"), tokHome, "{}", http.StatusAccepted, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := send(t, request{method: tt.method, url: tt.url, token: tt.token, body: tt.body})
			if r.status != tt.wantStatus {
				t.Fatalf("%s %s: %d, want %d: %s", tt.method, tt.url, r.status, tt.wantStatus, r.body)
			}
			if tt.wantCode != "" {
				if got := r.code(t); got != tt.wantCode {
					t.Errorf("code %s, want %s", got, tt.wantCode)
				}
			}
		})
	}
	if finance.RefreshCount(wb) != 1 || e.srv.RefreshCount(home) != 1 {
		t.Errorf("refreshes: %d on the added site, %d on the server's; want 1 each", finance.RefreshCount(wb), e.srv.RefreshCount(home))
	}
	if n := finance.Count("POST", "/refresh"); n != 2 {
		t.Errorf("the added site recorded %d refresh requests, want its own 2", n)
	}
	if n := e.srv.Count("POST", "/refresh"); n != 1 {
		t.Errorf("the server's site recorded %d refresh requests, want its own 1", n)
	}
	// Sign-out goes to the token's site.
	if r := e.post(e.api("auth/signout"), tokFin, ""); r.status != http.StatusNoContent {
		t.Fatalf("sign out of the added site: %d %s", r.status, r.body)
	}
	if n := finance.ActiveSessions(); n != 0 {
		t.Errorf("the added site has %d sessions after sign-out", n)
	}
	if n := e.srv.ActiveSessions(); n != 1 {
		t.Errorf("the server's site has %d sessions, want its one", n)
	}
}

func TestSiteWebhooksNameTheirSite(t *testing.T) {
	e := newEnv(t, AllowHTTPDestinations(), WithJobTimings(0, 0))
	rc := newReceiver(t)
	finance := e.srv.AddSite("finance")
	finance.AddPAT("fin-bot", "fin-secret")
	wb := finance.AddWorkbook("Sales", "Reports")
	tok, id, _ := e.signInTo("finance", "fin-bot", "fin-secret")
	r := e.post(e.api("sites/"+id+"/webhooks"), tok, webhookBody("h", "WorkbookRefreshSucceeded", rc.srv.URL))
	if r.status != http.StatusCreated {
		t.Fatalf("create webhook on the added site: %d %s", r.status, r.body)
	}
	if r := e.post(e.api("sites/"+id+"/workbooks/"+wb+"/refresh"), tok, "{}"); r.status != http.StatusAccepted {
		t.Fatalf("refresh: %d %s", r.status, r.body)
	}
	eventually(t, "the delivery", func() bool { return len(rc.events(t)) > 0 })
	ev := rc.events(t)[0]
	if ev["site_luid"] != finance.SiteID() || ev["resource_luid"] != wb {
		t.Errorf("delivery %v: want site_luid %s and resource_luid %s", ev, finance.SiteID(), wb)
	}
	if got := len(e.srv.Deliveries()); got != 0 {
		t.Errorf("the server's own site delivered %d events, want none", got)
	}
	if !strings.HasPrefix(finance.URL(), e.srv.URL()) {
		t.Errorf("the added site's URL %s is not its server's %s", finance.URL(), e.srv.URL())
	}
}

func TestAddSiteTakenContentURL(t *testing.T) {
	srv := NewServer(WithSite("main"))
	defer srv.Close()
	srv.AddSite("finance")
	for _, taken := range []string{"MAIN", "Finance"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("AddSite(%q) did not panic", taken)
				}
			}()
			srv.AddSite(taken)
		}()
	}
}
