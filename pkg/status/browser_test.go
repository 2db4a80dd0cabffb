package status_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/app"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/config"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/demo"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/localrun"
)

// screenshots is where the browser test leaves its pictures: beside the
// test, ignored by git.
const screenshots = "screenshots"

// TestStatusPageInBrowser opens the status page of `make run` (the demo's
// simulators and content, the webhook function's router, the local HTTP
// API) in headless Chromium as a person would: on a phone, with JavaScript
// off, answering the browser's password prompt. It reads the summary and
// the rows, checks that the page is readable (no sideways scrolling, the
// style applied under its policy, names for links and landmarks) and
// loads nothing from anywhere else, and that a wrong password, or none,
// is refused.
//
// Without a Chromium it is skipped, with the reason, except in CI (CI set),
// where that is a failure: make deps and .ci/run install Debian's.
func TestStatusPageInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium; run without -short")
	}
	bin, err := findChromium()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%v: in CI the browser test must run", err)
		}
		t.Skipf("browser test not run: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	d := demo.Start()
	defer d.Close()
	cfg, err := config.FromEnv(func(k string) string { return d.Env[k] })
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.Build(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Seed(ctx, a.Store.(demo.Store), time.Now()); err != nil {
		t.Fatal(err)
	}
	router, err := a.WebhookRouter()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(&localrun.Server{Handler: router.Handle, Routes: router.Routes(), Timeout: 10 * time.Second})
	defer srv.Close()
	b := startBrowser(t, bin)

	t.Run("the page, signed in, on a phone, without JavaScript", func(t *testing.T) {
		p, err := b.newPage(ctx, &credentials{"anyone", demo.StatusPassword})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			method string
			params map[string]any
		}{
			{"Emulation.setDeviceMetricsOverride", map[string]any{"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": true}},
			{"Emulation.setScriptExecutionDisabled", map[string]any{"value": true}},
		} {
			if err := b.call(ctx, p.session, c.method, c.params, nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.navigate(ctx, srv.URL+"/status"); err != nil {
			t.Fatal(err)
		}
		var got struct {
			Lang, Title string
			Counts      map[string]int
			Rows        []struct{ Name, State, Result string }
			ScrollWidth int
			Width       int
			Uppercase   bool
			Scripts     int
			Unnamed     int
			NoScope     int
			Histories   int
		}
		const read = `(() => {
			const q = s => Array.from(document.querySelectorAll(s));
			const field = (li, name) => { const dt = Array.from(li.querySelectorAll('dt')).find(x => x.textContent === name); return dt ? dt.nextElementSibling.textContent : ''; };
			return {
				lang: document.documentElement.lang, title: document.title,
				counts: Object.fromEntries(q('nav .summary li[class]').map(li => [li.className, +li.querySelector('.n').textContent])),
				rows: q('li.target').map(li => { const h = li.querySelector('h3'), a = h.querySelector('a');
					return {name: (a ? a.textContent : h.firstChild.textContent).trim(), state: li.classList[1], result: field(li, 'Result')}; }),
				scrollWidth: document.documentElement.scrollWidth, width: window.innerWidth,
				uppercase: getComputedStyle(document.querySelector('.badge')).textTransform === 'uppercase',
				scripts: document.scripts.length,
				unnamed: q('a').filter(a => !a.textContent.trim()).length,
				noScope: q('th:not([scope])').length,
				histories: q('details table tbody tr').length,
			};
		})()`
		if err := p.eval(ctx, read, &got); err != nil {
			t.Fatal(err)
		}
		if st := p.statuses(); len(st) == 0 || st[len(st)-1] != 200 {
			t.Errorf("response statuses = %v, want the page's 200 after the challenge", st)
		}
		if got.Lang != "en" || got.Title != "Tableau freshness" {
			t.Errorf("lang %q, title %q", got.Lang, got.Title)
		}
		want := map[string]int{"failing": 1, "stale": 2, "running": 1, "fresh": 2}
		for k, v := range want {
			if got.Counts[k] != v {
				t.Errorf("summary = %v, want %v", got.Counts, want)
				break
			}
		}
		rows := make([]string, 0, len(got.Rows))
		for _, r := range got.Rows {
			rows = append(rows, r.Name+": "+r.State+": "+r.Result)
		}
		wantRows := []string{
			"Executive KPIs: failing: failed: Database login failed for user 'etl_reader'. The embedded credentials of the data source may have expired.",
			"Customers: stale: already queued",
			"Inventory: stale: not refreshed",
			"Orders: running: running",
			"Executive Summary: fresh: succeeded",
			"Sales Overview: fresh: succeeded",
		}
		if strings.Join(rows, "\n") != strings.Join(wantRows, "\n") {
			t.Errorf("rows:\n  %s\nwant:\n  %s", strings.Join(rows, "\n  "), strings.Join(wantRows, "\n  "))
		}
		if got.ScrollWidth > got.Width {
			t.Errorf("the page is %dpx wide on a %dpx phone: it scrolls sideways", got.ScrollWidth, got.Width)
		}
		if !got.Uppercase {
			t.Error("the page's style did not apply: its policy refused it?")
		}
		if got.Scripts != 0 || got.Unnamed != 0 || got.NoScope != 0 {
			t.Errorf("%d scripts, %d links without a name, %d headers without a scope", got.Scripts, got.Unnamed, got.NoScope)
		}
		if got.Histories < 15 {
			t.Errorf("%d history rows, want the demo's runs", got.Histories)
		}
		for _, u := range p.requested() {
			if !strings.HasPrefix(u, srv.URL+"/") {
				t.Errorf("the page loaded %s, from elsewhere", u)
			}
		}
		for _, l := range p.logged() {
			if strings.Contains(l, "Content Security Policy") || strings.Contains(l, "Refused") {
				t.Errorf("browser log: %s", l)
			}
		}
		// Landmarks and names as a screen reader gets them.
		var ax struct {
			Nodes []struct {
				Role struct{ Value string } `json:"role"`
				Name struct{ Value string } `json:"name"`
			} `json:"nodes"`
		}
		if err := b.call(ctx, p.session, "Accessibility.getFullAXTree", nil, &ax); err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, n := range ax.Nodes {
			names = append(names, n.Role.Value+": "+n.Name.Value)
		}
		tree := strings.Join(names, "\n")
		for _, w := range []string{"navigation: Filter by state", "heading: Tableau freshness", "article: Executive KPIs", "link: 1 failing", "link: run 51203", "DisclosureTriangle: Last 7 runs of Sales Overview"} {
			if !strings.Contains("\n"+tree, "\n"+w) {
				t.Errorf("accessibility tree has no %q", w)
			}
		}
		if err := p.screenshot(ctx, filepath.Join(screenshots, "status-phone.png")); err != nil {
			t.Error(err)
		}
		// The filter is a plain link.
		if err := p.navigate(ctx, srv.URL+"/status?state=failing"); err != nil {
			t.Fatal(err)
		}
		names = nil
		if err := p.eval(ctx, `Array.from(document.querySelectorAll('li.target h3')).map(h => h.textContent)`, &names); err != nil {
			t.Fatal(err)
		}
		if len(names) != 1 || !strings.HasPrefix(names[0], "Executive KPIs") {
			t.Errorf("filtered by failing: %v", names)
		}
		if err := b.call(ctx, p.session, "Emulation.setDeviceMetricsOverride", map[string]any{"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": false}, nil); err != nil {
			t.Fatal(err)
		}
		if err := p.navigate(ctx, srv.URL+"/status"); err != nil {
			t.Fatal(err)
		}
		if err := p.screenshot(ctx, filepath.Join(screenshots, "status-desktop.png")); err != nil {
			t.Error(err)
		}
	})

	for _, c := range []struct {
		name  string
		creds *credentials
	}{
		{"a wrong password is refused", &credentials{"anyone", "not-the-password"}},
		{"no password is refused", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := b.newPage(ctx, c.creds)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.navigate(ctx, srv.URL+"/status"); err != nil {
				t.Fatal(err)
			}
			var body string
			if err := p.eval(ctx, `document.body.innerText`, &body); err != nil {
				t.Fatal(err)
			}
			st := p.statuses()
			if strings.TrimSpace(body) != "Unauthorized" || len(st) == 0 || st[len(st)-1] != 401 {
				t.Errorf("page = %q, statuses %v; want the bare 401", body, st)
			}
		})
	}
}
