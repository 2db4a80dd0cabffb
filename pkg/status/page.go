package status

import (
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
)

// The page is html/template's (assets/page.html.tmpl): it escapes each
// value for where it lands, and the policy backs it, the page running no
// script at all. Only http(s) URLs become links (safeURL), so a
// javascript: URL in Tableau's reply stays text.

// style is the page's only style, built into the binary: the page loads
// nothing from anywhere, its own host included.
//
//go:embed assets/style.css
var style string

//go:embed assets/page.html.tmpl
var pageSource string

// pageTemplate is parsed once, when the package is initialised: a template
// that does not parse is a bug the tests meet at once. Everything it shows
// is worked out beforehand (pageTarget), so that executing it is mostly
// printing strings: reflection over the report itself made a 500-target
// page five times slower.
var pageTemplate = template.Must(template.New("status").Parse(pageSource))

// pagePolicy admits that style, by hash, and nothing else: no script,
// image, font, frame or connection, from anywhere.
func pagePolicy() string {
	sum := sha256.Sum256([]byte(style))
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; " +
		"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}

// pageView is what the page template reads.
type pageView struct {
	Now      string // RFC 3339
	NowClock string
	Filter   State
	Style    template.CSS // the embedded style, the policy's hash is of
	SLA      string
	Total    int
	States   []pageState
	Targets  []pageTarget
}

type pageState struct {
	Name    State
	Count   int
	Current bool
}

// pageLink is a link, or its text alone when URL is "" (no URL, or not an
// http(s) one).
type pageLink struct{ URL, Text string }

func newLink(u *string, text string) pageLink {
	if u == nil || !safeURL(*u) {
		return pageLink{Text: text}
	}
	return pageLink{URL: *u, Text: text}
}

// pageTarget is one target's row, ready to print.
type pageTarget struct {
	ID, State                     string
	Name                          pageLink
	Kind, Project, Site           string
	Run                           pageLink // "" Text: none on record
	JobID                         string
	DBTFinished, Queued, Finished string
	Result                        pageResult
	Lag                           string // "" when there is none
	LastSuccess                   string // "" when there is none
	Stale                         bool
	SLA                           string
	History                       []pageRun
}

type pageResult struct{ Words, Notes string }

type pageRun struct {
	Run                           pageLink
	DBTFinished, Queued, Finished string
	Result                        pageResult
	Lag                           string
}

func newResult(r Run) pageResult { return pageResult{Words: words(r.Result), Notes: deref(r.Notes)} }

func newPageTarget(i int, t Target, now time.Time) pageTarget {
	p := pageTarget{
		ID: "t" + strconv.Itoa(i), State: string(t.State), Name: newLink(t.URL, t.Name),
		Kind: kind(t.Type), Project: deref(t.Project), Site: t.Site, JobID: deref(t.DBTJobID),
		DBTFinished: at(now, t.DBTFinishedAt), Queued: at(now, t.RefreshQueuedAt), Finished: at(now, t.RefreshFinishedAt),
		Result: newResult(t.Run), Stale: t.Stale, SLA: duration(t.FreshnessSLASeconds),
	}
	if t.DBTRunID != nil {
		p.Run = newLink(t.DBTRunURL, "run "+*t.DBTRunID)
	}
	if t.LagSeconds != nil {
		p.Lag = duration(t.LagSeconds)
	}
	if t.LastSuccessAt != nil {
		p.LastSuccess = at(now, t.LastSuccessAt)
	}
	for _, r := range t.History {
		p.History = append(p.History, pageRun{
			Run: newLink(r.DBTRunURL, deref(r.DBTRunID)), DBTFinished: short(r.DBTFinishedAt),
			Queued: short(r.RefreshQueuedAt), Finished: short(r.RefreshFinishedAt), Result: newResult(r), Lag: duration(r.LagSeconds),
		})
	}
	return p
}

func safeURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

// renderPage returns the page. (A string: it is what the reply carries.)
func renderPage(rep *Report) (string, error) {
	v := pageView{Now: rep.GeneratedAt.UTC().Format(time.RFC3339), NowClock: clock(rep.GeneratedAt), Style: template.CSS(style),
		SLA: duration(rep.FreshnessSLASeconds), Targets: make([]pageTarget, len(rep.Targets))}
	for i, t := range rep.Targets {
		v.Targets[i] = newPageTarget(i, t, rep.GeneratedAt)
	}
	if rep.Filter != nil {
		v.Filter = *rep.Filter
	}
	for _, s := range States {
		n := rep.Summary.Count(s)
		v.Total += n
		v.States = append(v.States, pageState{Name: s, Count: n, Current: v.Filter == s})
	}
	var b strings.Builder
	b.Grow(8<<10 + 3<<10*len(rep.Targets)) // about what a target with ten runs takes
	if err := pageTemplate.ExecuteTemplate(&b, "page", v); err != nil {
		return "", fmt.Errorf("status page: %w", err)
	}
	return b.String(), nil
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
	return k
}

func words(o state.Outcome) string { return strings.ReplaceAll(string(o), "_", " ") }
