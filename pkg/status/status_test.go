package status_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refreshmap"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/secrets"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/status"
)

const password = "correct horse battery staple"

type creds struct {
	c   *secrets.Credentials
	err error
}

func (c creds) Credentials(context.Context) (*secrets.Credentials, error) { return c.c, c.err }

func withPassword(pw string) creds {
	return creds{c: &secrets.Credentials{DBTWebhookSecret: "s", TableauPATName: "p", TableauPATSecret: "x", StatusPassword: pw}}
}

var now = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// The refresh map of the fixture: Inventory is never refreshed, Leads has
// a one-hour objective.
const testMap = `{"jobs":{
 "123":[{"workbook":"Sales Overview","project":"Finance"},{"datasource":"Orders"}],
 "456":[{"workbook":"Executive KPIs","project":"Finance"},{"datasource":"Customers","project":"Marketing"},{"datasource":"Leads","freshness_sla":"1h"}],
 "789":[{"datasource":"Inventory"}]}}`

func key(kind refreshmap.Kind, name, project string) string {
	return refreshmap.Target{Kind: kind, Name: name, Project: project}.Key()
}

// fixture is a store with one target in each state.
func fixture(t *testing.T) (*state.Memory, *refreshmap.Map) {
	t.Helper()
	ctx := context.Background()
	m, err := refreshmap.Parse([]byte(testMap))
	if err != nil {
		t.Fatal(err)
	}
	mem := state.NewMemory(state.WithClock(func() time.Time { return now }))
	rec := func(k, kind, name, project, item string, r state.TargetRun) {
		t.Helper()
		st := state.StatusTarget{Key: k, Kind: kind, Name: name, Project: project, ItemID: item, URL: "https://tableau.example.com/#/site/demo/" + kind + "s/" + item}
		if err := mem.RecordRun(ctx, st, r); err != nil {
			t.Fatal(err)
		}
	}
	done := func(run string, dbtAgo, finishedAgo time.Duration, result state.Outcome, notes string) state.TargetRun {
		dbt := now.Add(-dbtAgo)
		return state.TargetRun{
			RunID: run, DBTJobID: "123", DBTRunURL: "https://cloud.getdbt.com/deploy/1/projects/2/runs/" + run, DBTFinishedAt: dbt,
			At: dbt.Add(10 * time.Second), JobID: "job-" + run, QueuedAt: dbt.Add(10 * time.Second), FinishedAt: now.Add(-finishedAgo),
			Result: result, Notes: notes,
		}
	}
	sales := key(refreshmap.Workbook, "Sales Overview", "Finance")
	// Fresh: succeeded 40 minutes ago, 3m 10s after dbt finished; an older
	// failure before it.
	rec(sales, "workbook", "Sales Overview", "Finance", "wb-sales", done("9000", 26*time.Hour, 26*time.Hour-time.Minute, state.OutcomeFailed, "timeout"))
	rec(sales, "workbook", "Sales Overview", "Finance", "wb-sales", done("9001", 43*time.Minute+10*time.Second, 40*time.Minute, state.OutcomeSucceeded, ""))
	// Failing: the latest refresh failed with Tableau's notes.
	kpis := key(refreshmap.Workbook, "Executive KPIs", "Finance")
	rec(kpis, "workbook", "Executive KPIs", "Finance", "wb-kpis", done("8800", 5*time.Hour, 5*time.Hour-2*time.Minute, state.OutcomeSucceeded, ""))
	rec(kpis, "workbook", "Executive KPIs", "Finance", "wb-kpis", done("8890", 2*time.Hour, 2*time.Hour-time.Minute, state.OutcomeFailed, "Database login failed for user 'etl'"))
	// Stale: last success 30 hours ago, against 24h.
	customers := key(refreshmap.Datasource, "Customers", "Marketing")
	rec(customers, "datasource", "Customers", "Marketing", "ds-customers", done("7000", 30*time.Hour+5*time.Minute, 30*time.Hour, state.OutcomeSucceeded, ""))
	// Stale against its own one-hour objective, though two hours is fine
	// by the default; its latest run found a refresh already queued.
	leads := key(refreshmap.Datasource, "Leads", "")
	rec(leads, "datasource", "Leads", "", "ds-leads", done("6000", 2*time.Hour+3*time.Minute, 2*time.Hour, state.OutcomeSucceeded, ""))
	rec(leads, "datasource", "Leads", "", "ds-leads", state.TargetRun{RunID: "6001", DBTJobID: "456", At: now.Add(-10 * time.Minute), Result: state.OutcomeAlreadyQueued})
	// Running: an open job, after a cancelled refresh.
	orders := key(refreshmap.Datasource, "Orders", "")
	rec(orders, "datasource", "Orders", "Finance", "ds-orders", done("9002", 3*time.Hour, 3*time.Hour-time.Minute, state.OutcomeCancelled, ""))
	k := state.Key{RunID: "9003", Target: orders}
	if err := mem.Begin(ctx, state.Claim{Key: k, Owner: "o", DBTJobID: "123", HoldUntil: now.Add(time.Minute), Retention: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if err := mem.CompleteJob(ctx, "o", state.TableauJob{JobID: "job-9003", Run: k, DBTJobID: "123", ItemKind: "datasource", ItemID: "ds-orders",
		QueuedAt: now.Add(-time.Minute), DBTFinishedAt: now.Add(-70 * time.Second), DBTRunURL: "https://cloud.getdbt.com/deploy/1/projects/2/runs/9003"}); err != nil {
		t.Fatal(err)
	}
	// Recorded but gone from the map (lineage, say), stuck.
	rec("datasource:id:ds-legacy", "datasource", "Legacy", "Archive", "ds-legacy", done("5000", 4*time.Hour, time.Hour, state.OutcomeStuck, "not finished 2h0m0s after it was queued (progress 40%)"))
	return mem, m
}

func newPage(t *testing.T, src secrets.Source) *status.Page {
	t.Helper()
	mem, m := fixture(t)
	p, err := status.New(src, mem, mem, status.WithMap(m), status.WithSite("demo"), status.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func basic(user, pw string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pw))
}

func get(t testing.TB, p *status.Page, route, query, authorization string) events.APIGatewayV2HTTPResponse {
	t.Helper()
	path := strings.TrimPrefix(route, "GET ")
	req := events.APIGatewayV2HTTPRequest{Version: "2.0", RouteKey: route, RawPath: path, RawQueryString: query, Headers: map[string]string{}}
	if authorization != "" {
		req.Headers["authorization"] = authorization
	}
	if query != "" {
		k, v, _ := strings.Cut(query, "=")
		req.QueryStringParameters = map[string]string{k: v}
	}
	h := p.HTML
	if route == status.JSONRoute {
		h = p.JSON
	}
	resp, err := h(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestAuthentication(t *testing.T) {
	tests := []struct {
		name   string
		src    secrets.Source
		auth   string
		status int
	}{
		{"no password in the secret", withPassword(""), basic("x", ""), http.StatusNotFound},
		{"no Authorization header", withPassword(password), "", http.StatusUnauthorized},
		{"wrong password", withPassword(password), basic("ops", "correct horse"), http.StatusUnauthorized},
		{"password with a suffix", withPassword(password), basic("ops", password+"!"), http.StatusUnauthorized},
		{"not Basic", withPassword(password), "Bearer " + password, http.StatusUnauthorized},
		{"not base64", withPassword(password), "Basic %%%", http.StatusUnauthorized},
		{"no colon", withPassword(password), "Basic " + base64.StdEncoding.EncodeToString([]byte(password)), http.StatusUnauthorized},
		{"any user name", withPassword(password), basic("anyone at all", password), http.StatusOK},
		{"empty user name, scheme in lower case", withPassword(password), "basic " + base64.StdEncoding.EncodeToString([]byte(":"+password)), http.StatusOK},
		{"password holding a colon", withPassword("a:b"), basic("u", "a:b"), http.StatusOK},
		{"secret unavailable", creds{err: errors.New("throttled")}, basic("u", password), http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		for _, route := range []string{status.Route, status.JSONRoute} {
			t.Run(tt.name+" "+route, func(t *testing.T) {
				resp := get(t, newPage(t, tt.src), route, "", tt.auth)
				if resp.StatusCode != tt.status {
					t.Fatalf("status = %d, want %d: %s", resp.StatusCode, tt.status, resp.Body)
				}
				switch resp.StatusCode {
				case http.StatusNotFound:
					// Exactly what an unknown route answers.
					if resp.Body != `{"message":"Not Found"}` || len(resp.Headers) != 1 {
						t.Errorf("404 = %v %q, want the router's", resp.Headers, resp.Body)
					}
					return
				case http.StatusUnauthorized:
					if resp.Headers["WWW-Authenticate"] != `Basic realm="dbt-tableau-refresh status", charset="UTF-8"` || resp.Body != "Unauthorized\n" {
						t.Errorf("401 = %v %q, want a Basic challenge and no detail", resp.Headers, resp.Body)
					}
				}
				if resp.Headers["Cache-Control"] != "no-store" || !strings.Contains(resp.Headers["Content-Security-Policy"], "default-src 'none'") {
					t.Errorf("headers = %v, want no-store and a strict CSP", resp.Headers)
				}
			})
		}
	}
}

func TestJSON(t *testing.T) {
	resp := get(t, newPage(t, withPassword(password)), status.JSONRoute, "", basic("u", password))
	if resp.StatusCode != http.StatusOK || resp.Headers["Content-Type"] != "application/json" {
		t.Fatalf("reply = %d %v", resp.StatusCode, resp.Headers)
	}
	var doc struct {
		GeneratedAt string           `json:"generated_at"`
		Summary     map[string]int   `json:"summary"`
		Targets     []map[string]any `json:"targets"`
	}
	if err := json.Unmarshal([]byte(resp.Body), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.GeneratedAt != "2026-11-30T12:00:00Z" {
		t.Errorf("generated_at = %q", doc.GeneratedAt)
	}
	wantSummary := map[string]int{"fresh": 1, "stale": 3, "failing": 2, "running": 1}
	for k, v := range wantSummary {
		if doc.Summary[k] != v {
			t.Errorf("summary = %v, want %v", doc.Summary, wantSummary)
			break
		}
	}
	// Every target carries every field of the contract, absent ones null.
	fields := []string{"type", "name", "project", "site", "luid", "url", "dbt_job_id", "dbt_run_id", "dbt_run_url", "dbt_finished_at",
		"refresh_job_id", "refresh_queued_at", "refresh_finished_at", "result", "notes", "lag_seconds", "stale", "history"}
	byName := map[string]map[string]any{}
	var order []string
	for _, tg := range doc.Targets {
		for _, f := range fields {
			if _, ok := tg[f]; !ok {
				t.Errorf("target %v has no %q", tg["name"], f)
			}
		}
		byName[tg["name"].(string)] = tg
		order = append(order, tg["name"].(string))
	}
	// Failing first, then stale, running, fresh.
	if got := strings.Join(order, ", "); got != "Executive KPIs, Legacy, Customers, Inventory, Leads, Orders, Sales Overview" {
		t.Errorf("order = %s", got)
	}
	tests := []struct {
		name string
		want map[string]any
	}{
		{"Sales Overview", map[string]any{
			"type": "workbook", "project": "Finance", "site": "demo", "luid": "wb-sales", "url": "https://tableau.example.com/#/site/demo/workbooks/wb-sales",
			"dbt_job_id": "123", "dbt_run_id": "9001", "dbt_run_url": "https://cloud.getdbt.com/deploy/1/projects/2/runs/9001",
			"dbt_finished_at": "2026-11-30T11:16:50Z", "refresh_job_id": "job-9001", "refresh_queued_at": "2026-11-30T11:17:00Z",
			"refresh_finished_at": "2026-11-30T11:20:00Z", "result": "succeeded", "notes": nil, "lag_seconds": 190.0, "stale": false, "state": "fresh",
		}},
		{"Executive KPIs", map[string]any{"result": "failed", "notes": "Database login failed for user 'etl'", "lag_seconds": nil, "stale": false, "state": "failing"}},
		{"Customers", map[string]any{"result": "succeeded", "stale": true, "state": "stale", "last_success_at": "2026-11-29T06:00:00Z"}},
		{"Leads", map[string]any{"result": "already_queued", "refresh_job_id": nil, "refresh_queued_at": nil, "stale": true, "state": "stale", "freshness_sla_seconds": 3600.0}},
		{"Inventory", map[string]any{"result": "not_refreshed", "dbt_job_id": "789", "dbt_run_id": nil, "url": nil, "luid": nil, "project": nil, "stale": true, "state": "stale"}},
		{"Orders", map[string]any{"result": "running", "dbt_run_id": "9003", "refresh_job_id": "job-9003", "refresh_finished_at": nil, "state": "running", "stale": true,
			"dbt_run_url": "https://cloud.getdbt.com/deploy/1/projects/2/runs/9003", "dbt_finished_at": "2026-11-30T11:58:50Z"}},
		{"Legacy", map[string]any{"result": "failed", "notes": "stuck: not finished 2h0m0s after it was queued (progress 40%)", "state": "failing"}},
	}
	for _, tt := range tests {
		tg := byName[tt.name]
		if tg == nil {
			t.Errorf("no target %q", tt.name)
			continue
		}
		for k, v := range tt.want {
			if tg[k] != v {
				t.Errorf("%s: %s = %#v, want %#v", tt.name, k, tg[k], v)
			}
		}
	}
	// History: newest first, the running job on top of the cancelled one.
	h := byName["Orders"]["history"].([]any)
	if len(h) != 2 || h[0].(map[string]any)["result"] != "running" || h[1].(map[string]any)["result"] != "failed" || h[1].(map[string]any)["notes"] != "cancelled" {
		t.Errorf("Orders history = %v", h)
	}
	if h := byName["Sales Overview"]["history"].([]any); len(h) != 2 || h[1].(map[string]any)["dbt_run_id"] != "9000" {
		t.Errorf("Sales Overview history = %v", h)
	}
	if h := byName["Inventory"]["history"].([]any); len(h) != 0 {
		t.Errorf("Inventory history = %v, want empty", h)
	}

	// A filter keeps the summary whole.
	resp = get(t, newPage(t, withPassword(password)), status.JSONRoute, "state=failing", basic("u", password))
	var filtered struct {
		Summary map[string]int   `json:"summary"`
		Filter  string           `json:"filter"`
		Targets []map[string]any `json:"targets"`
	}
	if err := json.Unmarshal([]byte(resp.Body), &filtered); err != nil {
		t.Fatal(err)
	}
	if filtered.Filter != "failing" || len(filtered.Targets) != 2 || filtered.Summary["stale"] != 3 {
		t.Errorf("filtered = %+v", filtered)
	}
}

func TestHTML(t *testing.T) {
	p := newPage(t, withPassword(password))
	resp := get(t, p, status.Route, "", basic("u", password))
	if resp.StatusCode != http.StatusOK || resp.Headers["Content-Type"] != "text/html; charset=utf-8" {
		t.Fatalf("reply = %d %v", resp.StatusCode, resp.Headers)
	}
	body := resp.Body
	// The policy admits the page's one style, by hash, and nothing else.
	m := regexp.MustCompile(`(?s)<style>(.*?)</style>`).FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no <style> in the page")
	}
	sum := sha256.Sum256([]byte(m[1]))
	wantCSP := "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	if got := resp.Headers["Content-Security-Policy"]; got != wantCSP {
		t.Errorf("CSP = %q\nwant %q", got, wantCSP)
	}
	for _, bad := range []string{"<script", " style=", "<img", "<link", "@import", "url(", "<iframe", "<form"} {
		if strings.Contains(body, bad) {
			t.Errorf("page holds %q: it must load nothing", bad)
		}
	}
	for _, want := range []string{
		`<html lang="en">`, `name="viewport"`, `<nav aria-label="Filter by state">`,
		`<a href="status" aria-current="page"><span class="n">7</span> all targets</a>`,
		`<a href="status?state=failing"><span class="n">2</span> failing</a>`,
		`<a href="status?state=stale"><span class="n">3</span> stale</a>`,
		`<a href="https://tableau.example.com/#/site/demo/workbooks/wb-sales">Sales Overview</a> <span class="badge fresh">fresh</span>`,
		`<a href="https://cloud.getdbt.com/deploy/1/projects/2/runs/9001">run 9001</a> of job 123`,
		`failed: <span class="notes">Database login failed for user &#39;etl&#39;</span>`,
		`3m 10s from dbt's finish to the extract's`,
		`<time datetime="2026-11-30T12:00:00Z">2026-11-30 12:00 UTC</time>`,
		`<th scope="col">dbt run</th>`, `Inventory <span class="badge stale">stale</span>`, `not refreshed`, `already queued`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}

	resp = get(t, p, status.Route, "state=running", basic("u", password))
	if !strings.Contains(resp.Body, `<a href="status?state=running" aria-current="page">`) || strings.Contains(resp.Body, "Sales Overview") ||
		!strings.Contains(resp.Body, "Orders") {
		t.Errorf("filtered page:\n%s", resp.Body)
	}
	resp = get(t, p, status.Route, "state=broken", basic("u", password))
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(resp.Body, `unknown state "broken"`) {
		t.Errorf("bad filter = %d %q", resp.StatusCode, resp.Body)
	}
}

// TestEmpty: a bridge with nothing refreshed and an empty map says so.
func TestEmpty(t *testing.T) {
	mem := state.NewMemory()
	p, err := status.New(withPassword(password), mem, mem)
	if err != nil {
		t.Fatal(err)
	}
	resp := get(t, p, status.Route, "", basic("u", password))
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Body, "No target is known yet") {
		t.Errorf("empty page = %d\n%s", resp.StatusCode, resp.Body)
	}
	resp = get(t, p, status.JSONRoute, "", basic("u", password))
	if !strings.Contains(resp.Body, `"targets":[]`) || !strings.Contains(resp.Body, `"summary":{"fresh":0,"stale":0,"failing":0,"running":0}`) {
		t.Errorf("empty JSON = %s", resp.Body)
	}
}

// TestHTMLEscapes: names, notes and links come from Tableau and dbt, and
// anyone who can publish to Tableau chooses a name; none of it may become
// markup, and only http(s) links become links.
func TestHTMLEscapes(t *testing.T) {
	mem := state.NewMemory(state.WithClock(func() time.Time { return now }))
	evil := state.StatusTarget{Key: "workbook:id:x", Kind: "workbook", Name: `<script>alert(1)</script>`, Project: `"><img src=x onerror=alert(1)>`,
		ItemID: "x", URL: "javascript:alert(1)"}
	run := state.TargetRun{RunID: `1"><b>`, DBTJobID: "<i>", DBTRunURL: "data:text/html,<script>alert(1)</script>", At: now, FinishedAt: now,
		Result: state.OutcomeFailed, Notes: `</span><script>alert(2)</script>&amp;`}
	if err := mem.RecordRun(context.Background(), evil, run); err != nil {
		t.Fatal(err)
	}
	p, err := status.New(withPassword(password), mem, mem, status.WithSite(`"demo"<x>`), status.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	body := get(t, p, status.Route, "", basic("u", password)).Body
	for _, bad := range []string{"<script", "<img", "<b>", "<i>", "<x>", "javascript:", "data:text", `href="1`} {
		if strings.Contains(body, bad) {
			t.Errorf("page holds %q", bad)
		}
	}
	for _, want := range []string{
		`&lt;script&gt;alert(1)&lt;/script&gt; <span class="badge failing">`,
		`in project &#34;&gt;&lt;img src=x onerror=alert(1)&gt;`,
		`<span class="notes">&lt;/span&gt;&lt;script&gt;alert(2)&lt;/script&gt;&amp;amp;</span>`,
		`run 1&#34;&gt;&lt;b&gt; of job &lt;i&gt;`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
}

// TestSites: every row names its site: the target's own, or the default
// site for targets that name none; whether the bridge recorded it, is
// refreshing it, or never refreshed it.
func TestSites(t *testing.T) {
	ctx := context.Background()
	m, err := refreshmap.Parse([]byte(`{"jobs":{"1":[
		{"workbook":"Sales","project":"Finance"},
		{"workbook":"Sales","project":"Finance","site":"emea"},
		{"datasource":"Orders","site":"emea"},
		{"datasource":"Orders","site":"cloud"},
		{"datasource":"Orders","site":"home"}]}}`), refreshmap.WithDefaultSite("home"))
	if err != nil {
		t.Fatal(err)
	}
	ts := m.Targets("1")
	mem := state.NewMemory(state.WithClock(func() time.Time { return now }))
	// Sales on the default site and on emea: recorded.
	for _, tg := range ts[:2] {
		st := state.StatusTarget{Key: tg.Key(), Kind: string(tg.Kind), Name: tg.Name, Project: tg.Project, Site: tg.Site}
		if err := mem.RecordRun(ctx, st, state.TargetRun{RunID: "1", DBTJobID: "1", At: now.Add(-time.Hour), FinishedAt: now.Add(-time.Hour), Result: state.OutcomeSucceeded}); err != nil {
			t.Fatal(err)
		}
	}
	// Orders on emea: running.
	k := state.Key{RunID: "2", Target: ts[2].Key()}
	if err := mem.Begin(ctx, state.Claim{Key: k, Owner: "o", DBTJobID: "1", HoldUntil: now.Add(time.Minute), Retention: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if err := mem.CompleteJob(ctx, "o", state.TableauJob{JobID: "j", Run: k, DBTJobID: "1", ItemKind: "datasource", ItemID: "ds", QueuedAt: now, Site: "emea"}); err != nil {
		t.Fatal(err)
	}
	// Orders on cloud and on the default site: never refreshed.
	p, err := status.New(withPassword(password), mem, mem, status.WithMap(m), status.WithSite("home"), status.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := p.Report(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, tg := range rep.Targets {
		got[tg.Name+"@"+tg.Site+"/"+string(tg.Result)]++
	}
	want := map[string]int{
		"Sales@home/succeeded": 1, "Sales@emea/succeeded": 1,
		"Orders@emea/running": 1, "Orders@cloud/not_refreshed": 1, "Orders@home/not_refreshed": 1,
	}
	if len(got) != len(want) {
		t.Errorf("rows %v, want %v", got, want)
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("rows %v, want %v", got, want)
			break
		}
	}
	page := get(t, p, status.Route, "", basic("x", password))
	if !strings.Contains(page.Body, ", site emea") || !strings.Contains(page.Body, ", site cloud") {
		t.Errorf("the page does not name the sites emea and cloud:\n%s", page.Body)
	}
}
