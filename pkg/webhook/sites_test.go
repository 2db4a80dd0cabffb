package webhook_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/app"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/config"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dynamo"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/logging"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/remote"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau/tableautest"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/webhook"
)

// sitesWorld is a deployment over three Tableau sites: "analytics" (the
// default, TABLEAU_SITE) and "emea" on one Tableau Server, "cloud" on
// another server (TABLEAU_SITES), each site with its own PAT in the
// secret's tableau_sites, and "apac" on the first server, which the map
// names but the secret has no credentials for.
type sitesWorld struct {
	t                     *testing.T
	analytics, emea, apac *tableautest.Server
	cloud                 *tableautest.Server
	items                 map[string]string // site -> the LUID of its target
	env                   map[string]string
	logs                  *syncBuffer
}

func newSitesWorld(t *testing.T, mapJSON string) *sitesWorld {
	t.Helper()
	ctx := context.Background()
	n := seq.Add(1)
	table := fmt.Sprintf("webhook-sites-%d", n)
	if err := dynamo.CreateTable(ctx, db, table); err != nil {
		t.Fatal(err)
	}
	w := &sitesWorld{t: t, items: map[string]string{}, logs: &syncBuffer{}}
	w.analytics = tableautest.NewServer(tableautest.WithSite("analytics"), tableautest.WithJobTimings(time.Hour, time.Hour))
	t.Cleanup(w.analytics.Close)
	w.emea = w.analytics.AddSite("emea")
	w.apac = w.analytics.AddSite("apac")
	w.cloud = tableautest.NewServer(tableautest.WithSite("cloud"), tableautest.WithJobTimings(time.Hour, time.Hour))
	t.Cleanup(w.cloud.Close)
	for site, s := range map[string]*tableautest.Server{"analytics": w.analytics, "emea": w.emea, "apac": w.apac, "cloud": w.cloud} {
		s.AddPAT(site+"-bot", site+"-secret")
		w.items[site] = s.AddWorkbook("Sales Overview", "Finance")
	}
	secretName := fmt.Sprintf("webhook-sites-secret-%d-%d", n, time.Now().UnixNano())
	secretJSON := fmt.Sprintf(`{"dbt_webhook_secret":%q,"tableau_pat_name":"analytics-bot","tableau_pat_secret":"analytics-secret",
		"tableau_sites":{"emea":{"tableau_pat_name":"emea-bot","tableau_pat_secret":"emea-secret"},
		                 "cloud":{"tableau_pat_name":"cloud-bot","tableau_pat_secret":"cloud-secret"}}}`, webhookSecret)
	if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: &secretName, SecretString: &secretJSON}); err != nil {
		t.Fatal(err)
	}
	w.env = map[string]string{
		"TABLEAU_SERVER_URL": w.analytics.URL(),
		"TABLEAU_SITE":       "analytics",
		"TABLEAU_SITES":      `{"cloud": {"server_url": "` + w.cloud.URL() + `"}}`,
		"SECRET_ID":          secretName,
		"STATE_TABLE":        table,
		"REFRESH_MAP":        mapJSON,
	}
	return w
}

// instance is one function instance (a cold start) of the deployment.
func (w *sitesWorld) instance() (*app.App, *webhook.DBTHandler) {
	w.t.Helper()
	cfg, err := config.FromEnv(func(k string) string { return w.env[k] })
	if err != nil {
		w.t.Fatal(err)
	}
	logger := logging.New(w.logs, slog.LevelDebug)
	a, err := app.Build(context.Background(), cfg, logger, tableau.WithRetryPolicy(remote.Policy{MaxAttempts: 2, BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond}))
	if err != nil {
		w.t.Fatal(err)
	}
	h, err := webhook.NewDBT(a.Secrets, a.Refresher, a.Planner, webhook.WithMaxEventAge(cfg.MaxEventAge), webhook.WithLogger(logger))
	if err != nil {
		w.t.Fatal(err)
	}
	return a, h
}

func deliverTo(t *testing.T, h *webhook.DBTHandler, runID string) (int, webhook.DBTReply) {
	t.Helper()
	w := &world{t: t, handler: h}
	return w.deliver(request(success(runID)))
}

func (w *sitesWorld) signIns() map[string]int {
	return map[string]int{
		"analytics": w.analytics.Count(http.MethodPost, "/auth/signin"), "emea": w.emea.Count(http.MethodPost, "/auth/signin"),
		"apac": w.apac.Count(http.MethodPost, "/auth/signin"), "cloud": w.cloud.Count(http.MethodPost, "/auth/signin"),
	}
}

// TestDeliveryOnSeveralSites: one dbt run whose map names targets on three
// sites of two servers refreshes each once, on its own site, signed in to
// with the site's own PAT; the sessions are shared through the state table
// one per site, so a second instance signs in to none; and the default
// site's target keeps the record key a single-site deployment gave it.
func TestDeliveryOnSeveralSites(t *testing.T) {
	w := newSitesWorld(t, `{"jobs":{"123":[{"workbook":"Sales Overview","project":"Finance"},
		{"workbook":"Sales Overview","project":"Finance","site":"emea"},
		{"workbook":"Sales Overview","project":"Finance","site":"cloud"}]}}`)
	_, first := w.instance()
	status, reply := deliverTo(t, first, "90001")
	if status != http.StatusOK || results(reply) != "refreshed,refreshed,refreshed" {
		t.Fatalf("delivery: %d %+v", status, reply)
	}
	for i, site := range []string{"", "emea", "cloud"} {
		if reply.Targets[i].Site != site {
			t.Errorf("target %d is on site %q, want %q", i, reply.Targets[i].Site, site)
		}
	}
	for site, s := range map[string]*tableautest.Server{"analytics": w.analytics, "emea": w.emea, "cloud": w.cloud} {
		if n := s.RefreshCount(w.items[site]); n != 1 {
			t.Errorf("site %s: %d refreshes, want 1", site, n)
		}
	}
	if got := w.signIns(); got["analytics"] != 1 || got["emea"] != 1 || got["cloud"] != 1 || got["apac"] != 0 {
		t.Errorf("sign-ins %v: want one per site the run touches", got)
	}
	// The record keys: the default site's as it always was.
	a, _ := w.instance()
	for key, site := range map[string]string{
		`workbook:name:"Finance"/"Sales Overview"`:              "analytics",
		`site:"emea"/workbook:name:"Finance"/"Sales Overview"`:  "emea",
		`site:"cloud"/workbook:name:"Finance"/"Sales Overview"`: "cloud",
	} {
		rec, err := a.Store.Get(context.Background(), state.Key{RunID: "90001", Target: key})
		if err != nil || rec == nil || rec.Status != state.StatusCompleted {
			t.Errorf("record %s (site %s) = %+v, %v", key, site, rec, err)
		}
	}
	// One shared session per site in the state table.
	keys := map[string]bool{}
	for _, site := range []string{"", "emea", "cloud"} {
		tc, err := a.Sites.Client(site)
		if err != nil {
			t.Fatal(err)
		}
		// Adopting the stored session names its key.
		if err := tc.SignIn(context.Background()); err != nil {
			t.Fatal(err)
		}
		sess, err := a.Sessions.Load(context.Background(), tc.SessionKey())
		if err != nil || sess == nil {
			t.Errorf("no shared session for site %q under %s: %v", site, tc.SessionKey(), err)
		}
		keys[tc.SessionKey()] = true
	}
	if len(keys) != 3 {
		t.Errorf("session keys %v: want one per site", keys)
	}
	// A second instance adopts them: no sign-in anywhere, and the run's
	// redelivery refreshes nothing.
	_, second := w.instance()
	status, reply = deliverTo(t, second, "90001")
	if status != http.StatusOK || results(reply) != "duplicate,duplicate,duplicate" {
		t.Fatalf("redelivery to a second instance: %d %+v", status, reply)
	}
	status, reply = deliverTo(t, second, "90002")
	if status != http.StatusOK || results(reply) != "already_queued,already_queued,already_queued" {
		t.Fatalf("the next run on a second instance: %d %+v", status, reply)
	}
	if got := w.signIns(); got["analytics"] != 1 || got["emea"] != 1 || got["cloud"] != 1 {
		t.Errorf("sign-ins after a second instance %v: want the shared sessions adopted", got)
	}
}

// TestDeliverySiteWithoutCredentials: a site the secret has no credentials
// for fails its own targets, retryably (a 503: dbt redelivers), with a
// reply and a log line that name the site and the key to add; Tableau is
// not asked, and the other sites' targets are refreshed.
func TestDeliverySiteWithoutCredentials(t *testing.T) {
	w := newSitesWorld(t, `{"jobs":{"123":[{"workbook":"Sales Overview","project":"Finance"},
		{"workbook":"Sales Overview","project":"Finance","site":"apac"}]}}`)
	_, h := w.instance()
	status, reply := deliverTo(t, h, "90003")
	if status != http.StatusServiceUnavailable || results(reply) != "refreshed,failed" {
		t.Fatalf("delivery: %d %+v", status, reply)
	}
	o := reply.Targets[1]
	for _, want := range []string{`Tableau site "apac" has no credentials of its own`, `tableau_sites["apac"]`, "Secrets Manager secret " + w.env["SECRET_ID"]} {
		if !strings.Contains(o.Error, want) {
			t.Errorf("error %q lacks %q", o.Error, want)
		}
	}
	if !o.Retryable || o.Site != "apac" {
		t.Errorf("outcome %+v: want retryable, on apac", o)
	}
	if n := w.apac.Count("", ""); n != 0 {
		t.Errorf("apac was asked %d times", n)
	}
	if logs := w.logs.String(); !strings.Contains(logs, `"msg":"no Tableau credentials for the site"`) || !strings.Contains(logs, `"tableau_site":"apac"`) {
		t.Errorf("no log line names the site:\n%s", logs)
	}
	if strings.Contains(w.logs.String(), "analytics-secret") {
		t.Error("the logs reveal a PAT secret")
	}
}
