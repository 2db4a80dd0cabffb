package status

import (
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"fmt"
	"html"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
)

// The page is written by hand, every value through html.EscapeString and
// every link through safeURL, rather than with html/template: executing a
// text/template reaches reflect's MethodByName, after which the linker
// keeps every exported method of every type in the binary, and the
// webhook's bootstrap grew from 10.3 MB to 17.2 MB with it (amd64; the
// function that serves dbt's webhook pays that at each cold start). The
// policy backs the escaping: the page may run no script at all.

// style is the page's only style, built into the binary: the page loads
// nothing from anywhere, its own host included.
//
//go:embed assets/style.css
var style string

// pagePolicy admits that style, by hash, and nothing else: no script,
// image, font, frame or connection, from anywhere.
func pagePolicy() string {
	sum := sha256.Sum256([]byte(style))
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; " +
		"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}

// page writes the report as HTML.
type page struct {
	b   strings.Builder
	now time.Time
}

func (p *page) raw(parts ...string) {
	for _, s := range parts {
		p.b.WriteString(s)
	}
}

// text writes s escaped, for element content and quoted attribute values.
func (p *page) text(s string) { p.b.WriteString(html.EscapeString(s)) }

// link writes an anchor to href with text, or the text alone when href is
// not an http(s) URL (a javascript: URL in Tableau's reply, say).
func (p *page) link(href, text string) {
	if !safeURL(href) {
		p.text(text)
		return
	}
	p.raw(`<a href="`)
	p.text(href)
	p.raw(`">`)
	p.text(text)
	p.raw(`</a>`)
}

func safeURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

// renderPage returns the page. (A string: it is what the reply carries,
// and the builder hands it over without a copy.)
func renderPage(rep *Report) string {
	p := &page{now: rep.GeneratedAt}
	p.b.Grow(8<<10 + 3<<10*len(rep.Targets)) // about what a target with ten runs takes
	filter := State("")
	if rep.Filter != nil {
		filter = *rep.Filter
	}
	p.raw("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
		"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<meta name=\"robots\" content=\"noindex\">\n<title>Tableau freshness")
	if filter != "" {
		p.raw(": ", string(filter))
	}
	p.raw("</title>\n<style>", style, "</style>\n</head>\n<body>\n<header>\n<h1>Tableau freshness</h1>\n")
	p.raw(`<p class="meta">As of <time datetime="`, rep.GeneratedAt.UTC().Format(time.RFC3339), `">`, clock(rep.GeneratedAt), `</time>. `,
		"A target is stale when no refresh succeeded within its freshness objective (", duration(rep.FreshnessSLASeconds),
		" unless the refresh map says otherwise).</p>\n</header>\n")

	total := 0
	for _, s := range States {
		total += rep.Summary.Count(s)
	}
	current := func(on bool) string {
		if on {
			return ` aria-current="page"`
		}
		return ""
	}
	p.raw("<nav aria-label=\"Filter by state\">\n<ul class=\"summary\">\n")
	p.raw(`<li><a href="status"`, current(filter == ""), `><span class="n">`, strconv.Itoa(total), "</span> all targets</a></li>\n")
	for _, s := range States {
		p.raw(`<li class="`, string(s), `"><a href="status?state=`, string(s), `"`, current(filter == s), `><span class="n">`,
			strconv.Itoa(rep.Summary.Count(s)), "</span> ", string(s), "</a></li>\n")
	}
	p.raw("</ul>\n</nav>\n<main>\n<h2 id=\"targets\">")
	if filter != "" {
		p.raw("Targets ", string(filter))
	} else {
		p.raw("All targets")
	}
	p.raw(" (", strconv.Itoa(len(rep.Targets)), ")</h2>\n")
	if len(rep.Targets) == 0 {
		if filter != "" {
			p.raw(`<p class="empty">No target is `, string(filter), ".</p>\n")
		} else {
			p.raw(`<p class="empty">No target is known yet: the refresh map is empty and nothing was refreshed.</p>` + "\n")
		}
	}
	p.raw("<ul class=\"targets\" aria-labelledby=\"targets\">\n")
	for i, t := range rep.Targets {
		p.target(i, t)
	}
	p.raw("</ul>\n</main>\n<footer><p>The same as JSON: <a href=\"status.json")
	if filter != "" {
		p.raw("?state=", string(filter))
	}
	p.raw("\">status.json</a>. Times are UTC.</p></footer>\n</body>\n</html>\n")
	return p.b.String()
}

func (p *page) target(i int, t Target) {
	id := "t" + strconv.Itoa(i)
	st := string(t.State)
	p.raw(`<li class="target `, st, "\">\n", `<article aria-labelledby="`, id, "\">\n", `<h3 id="`, id, `">`)
	p.link(deref(t.URL), t.Name)
	p.raw(` <span class="badge `, st, `">`, st, "</span></h3>\n<dl>\n")

	p.raw("<dt>Type</dt><dd>", kind(t.Type))
	if t.Project != nil {
		p.raw(" in project ")
		p.text(*t.Project)
	}
	if t.Site != "" {
		p.raw(", site ")
		p.text(t.Site)
	}
	p.raw("</dd>\n<dt>dbt run</dt><dd>")
	switch {
	case t.DBTRunID != nil:
		p.link(deref(t.DBTRunURL), "run "+*t.DBTRunID)
		if t.DBTJobID != nil {
			p.raw(" of job ")
			p.text(*t.DBTJobID)
		}
	default:
		p.raw("none on record")
		if t.DBTJobID != nil {
			p.raw(" (job ")
			p.text(*t.DBTJobID)
			p.raw(")")
		}
	}
	p.raw("</dd>\n")
	p.raw("<dt>dbt finished</dt><dd>", at(p.now, t.DBTFinishedAt), "</dd>\n")
	p.raw("<dt>Refresh queued</dt><dd>", at(p.now, t.RefreshQueuedAt), "</dd>\n")
	p.raw("<dt>Refresh finished</dt><dd>", at(p.now, t.RefreshFinishedAt), "</dd>\n")
	p.raw("<dt>Result</dt><dd>")
	p.result(t.Run)
	p.raw("</dd>\n<dt>Lag</dt><dd>")
	if t.LagSeconds != nil {
		p.raw(duration(t.LagSeconds), " from dbt's finish to the extract's")
	} else {
		p.raw("–")
	}
	p.raw("</dd>\n<dt>Last success</dt><dd>")
	if t.LastSuccessAt != nil {
		p.raw(at(p.now, t.LastSuccessAt))
	} else {
		p.raw("none on record")
	}
	if t.Stale {
		p.raw("; <strong>stale</strong>")
	} else {
		p.raw("; fresh")
	}
	p.raw(" against ", duration(t.FreshnessSLASeconds), "</dd>\n</dl>\n")

	if len(t.History) > 0 {
		runs := "runs"
		if len(t.History) == 1 {
			runs = "run"
		}
		p.raw("<details>\n<summary>Last ", strconv.Itoa(len(t.History)), " ", runs, `<span class="visually-hidden"> of `)
		p.text(t.Name)
		p.raw("</span></summary>\n<div class=\"scroll\">\n<table>\n<caption>Runs of ")
		p.text(t.Name)
		p.raw(", newest first</caption>\n<thead><tr>")
		for _, h := range []string{"dbt run", "dbt finished", "Queued", "Finished", "Result", "Lag"} {
			p.raw(`<th scope="col">`, h, "</th>")
		}
		p.raw("</tr></thead>\n<tbody>\n")
		for _, r := range t.History {
			p.raw("<tr><td>")
			p.link(deref(r.DBTRunURL), deref(r.DBTRunID))
			p.raw("</td><td>", short(r.DBTFinishedAt), "</td><td>", short(r.RefreshQueuedAt), "</td><td>", short(r.RefreshFinishedAt), "</td><td>")
			p.result(r)
			p.raw("</td><td>", duration(r.LagSeconds), "</td></tr>\n")
		}
		p.raw("</tbody>\n</table>\n</div>\n</details>\n")
	}
	p.raw("</article>\n</li>\n")
}

// result writes "failed: <notes>" and the like.
func (p *page) result(r Run) {
	p.raw(words(r.Result))
	if r.Notes != nil {
		p.raw(`: <span class="notes">`)
		p.text(*r.Notes)
		p.raw("</span>")
	}
}

func clock(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// at says when, and how long before now: "2026-11-30 14:05 UTC (3h 5m
// ago)"; a dash when it is unknown.
func at(now time.Time, t *time.Time) string {
	if t == nil {
		return "–"
	}
	d := now.Sub(*t)
	switch {
	case d < 0:
		return clock(*t)
	case d < time.Minute:
		return clock(*t) + " (just now)"
	}
	return clock(*t) + " (" + duration(int64(d/time.Second)) + " ago)"
}

func short(t *time.Time) string {
	if t == nil {
		return "–"
	}
	return t.UTC().Format("2006-01-02 15:04")
}

// duration writes seconds the way people read them: "45s", "3m 12s",
// "5h 3m", "2d 4h". It takes int64 or *int64 (a dash for nil).
func duration(v any) string {
	var s int64
	switch x := v.(type) {
	case int64:
		s = x
	case *int64:
		if x == nil {
			return "–"
		}
		s = *x
	default:
		return fmt.Sprint(v)
	}
	sign := ""
	if s < 0 {
		sign, s = "-", -s
	}
	d, h, m, sec := s/86400, s/3600%24, s/60%60, s%60
	// Two units at most, the second left out when it is zero.
	two := func(a int64, ua string, b int64, ub string) string {
		if b == 0 {
			return fmt.Sprintf("%s%d%s", sign, a, ua)
		}
		return fmt.Sprintf("%s%d%s %d%s", sign, a, ua, b, ub)
	}
	switch {
	case d > 0:
		return two(d, "d", h, "h")
	case h > 0:
		return two(h, "h", m, "m")
	case m > 0:
		return two(m, "m", sec, "s")
	}
	return fmt.Sprintf("%s%ds", sign, sec)
}

func kind(k string) string {
	switch k {
	case "workbook":
		return "Workbook"
	case "datasource":
		return "Data source"
	}
	return html.EscapeString(k)
}

func words(o state.Outcome) string { return html.EscapeString(strings.ReplaceAll(string(o), "_", " ")) }
