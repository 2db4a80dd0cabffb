package refresh_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refresh"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refreshmap"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/remote"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/secrets"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state/statetest"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau/tableautest"
)

// multiSite is a Tableau Server with two sites ("home", the default, and
// "emea"), a second server with a site "cloud", the same workbook on each,
// and a refresher whose clients sign in to each site with that site's own
// PAT, read from a secret laid out as the bridge's is.
type multiSite struct {
	home, emea, cloud *tableautest.Server
	items             map[string]string // site -> the workbook's LUID there
	mem               *state.Memory
	al                *alerts
	r                 *refresh.Refresher
	store             *tableau.MemorySessionStore
}

func newMultiSite(t *testing.T, secret string, mem *state.Memory, opts ...refresh.Option) *multiSite {
	t.Helper()
	w := &multiSite{home: tableautest.NewServer(tableautest.WithSite("home"), tableautest.WithJobTimings(-1, -1)), items: map[string]string{}}
	t.Cleanup(w.home.Close)
	w.emea = w.home.AddSite("emea")
	w.cloud = tableautest.NewServer(tableautest.WithSite("cloud"), tableautest.WithJobTimings(-1, -1))
	t.Cleanup(w.cloud.Close)
	for name, s := range map[string]*tableautest.Server{"home": w.home, "emea": w.emea, "cloud": w.cloud} {
		s.AddPAT(name+"-bot", name+"-secret")
		w.items[name] = s.AddWorkbook("Sales", "Finance")
	}
	creds, err := secrets.Parse(secret)
	if err != nil {
		t.Fatal(err)
	}
	w.store = tableau.NewMemorySessionStore()
	client := func(server *tableautest.Server, site string) *tableau.Client {
		tc, err := tableau.NewClient(server.URL(), tableau.WithSite(site), tableau.WithSessionStore(w.store),
			tableau.WithRetryPolicy(remote.Policy{MaxAttempts: 1}),
			tableau.WithCredentialsProvider(tableau.CredentialsProviderFunc(func(context.Context) (tableau.Credentials, error) {
				key := site
				if site == "home" {
					key = "" // the default site: the top-level keys
				}
				sc, err := creds.Site(key)
				if err != nil {
					return tableau.Credentials{}, err
				}
				return tableau.Credentials{PATName: sc.PATName, PATSecret: sc.PATSecret}, nil
			})))
		if err != nil {
			t.Fatal(err)
		}
		return tc
	}
	others := map[string]*tableau.Client{"emea": client(w.home, "emea"), "cloud": client(w.cloud, "cloud")}
	if w.mem = mem; w.mem == nil {
		w.mem = state.NewMemory()
	}
	w.al = &alerts{}
	w.r = refresh.New(w.mem, client(w.home, "home"), append([]refresh.Option{refresh.WithJobs(w.mem), refresh.WithAlerts(w.al), refresh.WithSite("home"),
		refresh.WithSites(func(site string) (refresh.Tableau, error) {
			tc, ok := others[strings.ToLower(site)]
			if !ok {
				return nil, errors.New("no such site")
			}
			return tc, nil
		}),
		refresh.WithSiteCredentialsAt(func(site string) string { return "the secret's tableau_sites[\"" + site + "\"]" })}, opts...)...)
	return w
}

const allSites = `{"dbt_webhook_secret": "w", "tableau_pat_name": "home-bot", "tableau_pat_secret": "home-secret",
 "tableau_sites": {"emea": {"tableau_pat_name": "emea-bot", "tableau_pat_secret": "emea-secret"},
                   "cloud": {"tableau_pat_name": "cloud-bot", "tableau_pat_secret": "cloud-secret"}}}`

// targets are the same workbook, by name, on each of the three sites.
func (w *multiSite) targets() []refresh.Target {
	m, err := refreshmap.Parse([]byte(`{"jobs": {"123": [
		{"workbook": "Sales", "project": "Finance"},
		{"workbook": "Sales", "project": "Finance", "site": "emea"},
		{"workbook": "Sales", "project": "Finance", "site": "cloud"}]}}`), refreshmap.WithDefaultSite("home"))
	if err != nil {
		panic(err)
	}
	return refresh.MapTargets(m.Targets("123"), "123")
}

// TestSites: one run whose targets are on three sites of two servers
// refreshes each on its own site, once, each site signed in to with its
// own PAT and one session; a redelivery refreshes nothing.
func TestSites(t *testing.T) {
	w := newMultiSite(t, allSites, nil)
	ctx := context.Background()
	run := refresh.Run{RunID: "70001", DBTJobID: "123"}
	out := w.r.Refresh(ctx, run, w.targets(), time.Now().Add(time.Minute))
	wantSite := []string{"", "emea", "cloud"}
	for i, o := range out {
		if o.Result != state.OutcomeRefreshed || o.JobID == "" || o.Site != wantSite[i] {
			t.Errorf("outcome %d = %+v, want refreshed on site %q", i, o, wantSite[i])
		}
	}
	if out[1].Name != `workbook "Sales" in project "Finance" on site "emea"` {
		t.Errorf("the reply names the target %q", out[1].Name)
	}
	for name, s := range map[string]*tableautest.Server{"home": w.home, "emea": w.emea, "cloud": w.cloud} {
		if n := s.RefreshCount(w.items[name]); n != 1 {
			t.Errorf("site %s: %d refreshes, want 1", name, n)
		}
		if n := s.Count("POST", "/auth/signin"); n != 1 {
			t.Errorf("site %s: %d sign-ins, want one session", name, n)
		}
	}
	// The default site's record has the key it always had.
	if rec, err := w.mem.Get(ctx, state.Key{RunID: "70001", Target: `workbook:name:"Finance"/"Sales"`}); err != nil || rec == nil || rec.JobID != out[0].JobID {
		t.Errorf("the default site's record = %+v, %v", rec, err)
	}
	if rec, err := w.mem.Get(ctx, state.Key{RunID: "70001", Target: `site:"emea"/workbook:name:"Finance"/"Sales"`}); err != nil || rec == nil || rec.JobID != out[1].JobID {
		t.Errorf("emea's record = %+v, %v", rec, err)
	}
	open, err := w.mem.OpenJobs(ctx)
	if err != nil || len(open) != 3 {
		t.Fatalf("open jobs = %+v, %v", open, err)
	}
	for _, j := range open {
		if want := map[string]string{out[0].JobID: "", out[1].JobID: "emea", out[2].JobID: "cloud"}[j.JobID]; j.Site != want {
			t.Errorf("job %s is recorded on site %q, want %q", j.JobID, j.Site, want)
		}
	}
	// Another run: the sessions are reused, nobody signs in again.
	again := w.r.Refresh(ctx, refresh.Run{RunID: "70002", DBTJobID: "123"}, w.targets(), time.Now().Add(time.Minute))
	for i, o := range again {
		if o.Result != state.OutcomeAlreadyQueued {
			t.Errorf("second run, outcome %d = %+v, want already_queued (the first refresh is still queued)", i, o)
		}
	}
	if n := w.home.Count("POST", "/auth/signin") + w.emea.Count("POST", "/auth/signin") + w.cloud.Count("POST", "/auth/signin"); n != 3 {
		t.Errorf("%d sign-ins after two runs, want 3", n)
	}
	// A redelivery of the first run refreshes nothing.
	for i, o := range w.r.Refresh(ctx, run, w.targets(), time.Now().Add(time.Minute)) {
		if o.Result != state.OutcomeDuplicate {
			t.Errorf("redelivery, outcome %d = %+v, want duplicate", i, o)
		}
	}
}

// TestSiteWithoutCredentials: a site with no credentials of its own fails
// its own targets, retryably, with one notification that names the site and
// the key to add; the other sites' targets are refreshed.
func TestSiteWithoutCredentials(t *testing.T) {
	w := newMultiSite(t, `{"dbt_webhook_secret": "w", "tableau_pat_name": "home-bot", "tableau_pat_secret": "home-secret",
		"tableau_sites": {"emea": {"tableau_pat_name": "emea-bot", "tableau_pat_secret": "emea-secret"}}}`, nil)
	out := w.r.Refresh(context.Background(), refresh.Run{RunID: "70001", DBTJobID: "123"}, w.targets(), time.Now().Add(time.Minute))
	if out[0].Result != state.OutcomeRefreshed || out[1].Result != state.OutcomeRefreshed {
		t.Errorf("the sites with credentials: %+v, %+v", out[0], out[1])
	}
	o := out[2]
	if o.Result != state.OutcomeFailed || !o.Retryable || !strings.Contains(o.Error, `Tableau site "cloud" has no credentials of its own`) {
		t.Errorf("the site without credentials: %+v", o)
	}
	if w.cloud.RefreshCount(w.items["cloud"]) != 0 || w.cloud.Count("", "") != 0 {
		t.Errorf("Tableau was asked %d times for a site the bridge has no credentials for", w.cloud.Count("", ""))
	}
	if len(w.al.msgs) != 1 || !strings.Contains(w.al.msgs[0].Reason, `no credentials for Tableau site "cloud": put them in the secret's tableau_sites["cloud"]`) ||
		!strings.Contains(w.al.keys[0], `site "cloud"`) {
		t.Errorf("alerts %v %+v: want one naming the site and where to put them", w.al.keys, w.al.msgs)
	}
	// Nothing was claimed: once the credentials are there, a redelivery
	// refreshes it.
	if rec, _ := w.mem.Get(context.Background(), state.Key{RunID: "70001", Target: `site:"cloud"/workbook:name:"Finance"/"Sales"`}); rec != nil {
		t.Errorf("a claim was left for the site without credentials: %+v", rec)
	}
}

// TestSiteDeferred: a target on another site that Tableau turns away for
// longer than the invocation has is deferred with its site, and the
// follow-up queues it there.
func TestSiteDeferred(t *testing.T) {
	clock := statetest.NewClock()
	mem := state.NewMemory(state.WithClock(clock.Now))
	w := newMultiSite(t, allSites, mem, refresh.WithDeferrals(mem), refresh.WithClock(clock.Now))
	w.emea.Inject(tableautest.Fault{Method: "POST", Path: "/refresh", Status: 429, RetryAfter: time.Hour, Times: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out := w.r.Refresh(ctx, refresh.Run{RunID: "70001", DBTJobID: "123"}, w.targets(), clock.Now().Add(time.Minute))
	if out[1].Result != state.OutcomeDeferred || out[1].Site != "emea" || out[0].Result != state.OutcomeRefreshed || out[2].Result != state.OutcomeRefreshed {
		t.Fatalf("outcomes %+v: want emea's deferred, the others refreshed", out)
	}
	clock.Advance(2 * time.Hour)
	res, err := w.r.QueueDeferred(context.Background(), clock.Now().Add(time.Minute))
	if err != nil || res.Queued != 1 {
		t.Fatalf("QueueDeferred = %+v, %v", res, err)
	}
	if n := w.emea.RefreshCount(w.items["emea"]); n != 1 {
		t.Errorf("emea's item refreshed %d times, want once, on its site", n)
	}
	if n := w.home.RefreshCount(w.items["home"]) + w.cloud.RefreshCount(w.items["cloud"]); n != 2 {
		t.Errorf("the other sites' items refreshed %d times, want once each", n)
	}
}
