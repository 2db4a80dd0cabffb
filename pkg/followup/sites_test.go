package followup_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dynamo"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/followup"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/localrun"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/logging"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/notify"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refresh"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refreshmap"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/remote"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/sites"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau/tableautest"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/webhook"
)

// siteClients adapts sites.Clients to followup.Sites, as the app does.
type siteClients struct{ *sites.Clients }

func (s siteClients) Client(site string) (followup.Tableau, error) { return s.Clients.Client(site) }

func (s siteClients) BySiteID(luid string) followup.Tableau {
	if tc, _ := s.Clients.BySiteID(luid); tc != nil {
		return tc
	}
	return nil
}

// TestSites: jobs on three sites of two servers are followed each on its
// own site, by the jobs API and by each site's Tableau webhooks; a failure
// is notified once, naming its site; a failure of content the bridge did
// not refresh on another site is described by that site's client.
func TestSites(t *testing.T) {
	ctx := context.Background()
	timings := tableautest.WithJobTimings(10*time.Millisecond, 20*time.Millisecond)
	home := tableautest.NewServer(tableautest.AllowHTTPDestinations(), tableautest.WithSite("home"), timings)
	t.Cleanup(home.Close)
	emea := home.AddSite("emea")
	cloud := tableautest.NewServer(tableautest.AllowHTTPDestinations(), tableautest.WithSite("cloud"), timings)
	t.Cleanup(cloud.Close)
	servers := map[string]*tableautest.Server{"home": home, "emea": emea, "cloud": cloud}
	ids := map[string]string{}
	for name, s := range servers {
		s.AddPAT(name+"-bot", name+"-secret")
		ids[name] = s.AddWorkbook("Sales", "Finance")
	}
	other := cloud.AddWorkbook("Other", "Finance")

	name := fmt.Sprintf("followup-sites-%d", tables.Add(1))
	if err := dynamo.CreateTable(ctx, db, name); err != nil {
		t.Fatal(err)
	}
	table, err := dynamo.New(db, name)
	if err != nil {
		t.Fatal(err)
	}
	logger := logging.New(lockedWriter{&sync.Mutex{}, &bytes.Buffer{}}, slog.LevelDebug)
	cat, err := sites.Parse(`{"cloud": {"server_url": "`+cloud.URL()+`"}}`, sites.Site{ContentURL: "home", ServerURL: home.URL()}, true)
	if err != nil {
		t.Fatal(err)
	}
	clients, err := sites.NewClients(cat, func(s sites.Site) (*tableau.Client, error) {
		return tableau.NewClient(s.ServerURL, tableau.WithSite(s.ContentURL), tableau.WithSessionStore(table),
			tableau.WithPAT(s.ContentURL+"-bot", s.ContentURL+"-secret"),
			tableau.WithRetryPolicy(remote.Policy{MaxAttempts: 2, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond}))
	})
	if err != nil {
		t.Fatal(err)
	}
	sl := newSlack(t)
	notifier, err := notify.NewSlack(sl.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	alerts := followup.NewAlerts(table, map[string]notify.Notifier{"slack": notifier}, followup.WithLogger(logger))
	ref := refresh.New(table, clients.Default(), refresh.WithJobs(table), refresh.WithAlerts(alerts), refresh.WithSite("home"),
		refresh.WithSites(func(site string) (refresh.Tableau, error) { return clients.Client(site) }))
	tracker := followup.NewTracker(table, clients.Default(), alerts, followup.WithSites(siteClients{clients}), followup.WithLogger(logger))
	creds := staticCreds{TableauWebhookToken: hookToken, DBTWebhookSecret: "x"}
	th, err := webhook.NewTableau(creds, table, tracker, webhook.WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	hook := httptest.NewServer(&localrun.Server{Handler: th.Handle, Routes: []string{webhook.TableauRoute}})
	t.Cleanup(hook.Close)
	// Tableau's webhooks on the two other sites only: the default site's
	// job is found ended by the jobs API.
	for _, site := range []string{"emea", "cloud"} {
		tc, err := clients.Client(site)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range []string{tableau.EventWorkbookRefreshFailed, tableau.EventWorkbookRefreshSucceeded} {
			if _, err := tc.CreateWebhook(ctx, tableau.NewWebhook("bridge-"+ev, ev, hook.URL+"/tableau/webhook/"+hookToken)); err != nil {
				t.Fatal(err)
			}
		}
	}

	emea.FailNextRefresh(ids["emea"], "Database login failed for user 'emea_etl'")
	m, err := refreshmap.Parse([]byte(`{"jobs": {"123": [{"workbook": "Sales", "project": "Finance"},
		{"workbook": "Sales", "project": "Finance", "site": "emea"}, {"workbook": "Sales", "project": "Finance", "site": "cloud"}]}}`),
		refreshmap.WithDefaultSite("home"))
	if err != nil {
		t.Fatal(err)
	}
	out := ref.Refresh(ctx, refresh.Run{RunID: "70001", DBTJobID: "123"}, refresh.MapTargets(m.Targets("123"), "123"), time.Now().Add(10*time.Second))
	for _, o := range out {
		if o.Result != state.OutcomeRefreshed {
			t.Fatalf("refresh: %+v", out)
		}
	}
	// Tableau's webhooks close emea's and cloud's jobs, each on its site.
	eventually(t, "the Slack message of emea's failure", func() bool { return len(sl.received()) == 1 })
	eventually(t, "the webhooks' ends", func() bool {
		sum, _ := table.RunSummary(ctx, "70001")
		ended := 0
		for _, s := range sum {
			if s.RefreshState != "" {
				ended++
			}
		}
		return ended >= 2
	})
	// The follow-up closes the default site's, once it has ended.
	var res followup.FollowResult
	eventually(t, "the follow-up to close every job", func() bool {
		if res, err = tracker.Follow(ctx); err != nil {
			t.Fatal(err)
		}
		return res.Open == 0
	})
	sum, err := table.RunSummary(ctx, "70001")
	if err != nil || len(sum) != 3 {
		t.Fatalf("run summary = %+v, %v", sum, err)
	}
	for _, s := range sum {
		want := state.OutcomeSucceeded
		if strings.Contains(s.Target, `"emea"`) {
			want = state.OutcomeFailed
		}
		if s.RefreshState != want {
			t.Errorf("target %s ended %q, want %q (follow-up %+v)", s.Target, s.RefreshState, want, res)
		}
	}
	msgs := sl.received()
	if len(msgs) != 1 || !strings.Contains(msgs[0], `Sales on site \"emea\"`) || !strings.Contains(msgs[0], "emea_etl") {
		t.Errorf("Slack messages %q: want one, naming the site and Tableau's notes", msgs)
	}
	// Each job was read on its own site: the jobs API of the others was
	// never asked about it.
	for site, s := range servers {
		for _, r := range s.Requests() {
			for other, o := range out {
				if strings.Contains(r.Path, "/jobs/"+o.JobID) && []string{"home", "emea", "cloud"}[other] != site {
					t.Errorf("site %s was asked about job %s of another site", site, o.JobID)
				}
			}
		}
	}

	// A failure of content the bridge did not refresh, on cloud: the
	// message links it, as cloud's client describes it.
	body := fmt.Sprintf(`{"resource":"EXTRACTS","event_type":"WorkbookRefreshFailed","resource_name":"Other","site_luid":%q,"resource_luid":%q,"created_at":%q}`,
		cloud.SiteID(), other, time.Now().UTC().Format(time.RFC3339))
	before := len(sl.received())
	resp, err := http.Post(hook.URL+"/tableau/webhook/"+hookToken, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("external failure: %d", resp.StatusCode)
	}
	if _, err := tracker.Follow(ctx); err != nil {
		t.Fatal(err)
	}
	msgs = sl.received()
	if len(msgs) != before+1 || !strings.Contains(msgs[before], cloud.URL()+"/#/site/cloud/workbooks/"+other) {
		t.Errorf("message of the external failure %q: want the item's link on its site", msgs[before:])
	}
}
