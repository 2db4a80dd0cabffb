package status

import (
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
)

// The page and its style are built into the binary: the page loads nothing
// from anywhere, its own host included.
//
//go:embed assets/page.html assets/style.css
var assets embed.FS

// pageTemplate is the parsed page and the policy that admits its style.
type pageTemplate struct {
	t   *template.Template
	css string
	csp string
}

func parsePage() (*pageTemplate, error) {
	css, err := assets.ReadFile("assets/style.css")
	if err != nil {
		return nil, err
	}
	t, err := template.New("page.html").Funcs(funcs).ParseFS(assets, "assets/page.html")
	if err != nil {
		return nil, fmt.Errorf("parse the status page: %w", err)
	}
	sum := sha256.Sum256(css)
	// Only this style may apply: no script, image, font, frame or
	// connection is allowed, from anywhere.
	policy := "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; " +
		"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	return &pageTemplate{t: t, css: string(css), csp: policy}, nil
}

type count struct {
	State   State
	N       int
	Current bool
}

type pageData struct {
	Report *Report
	Filter State
	Total  int
	Counts []count
	CSS    template.CSS
}

func (p *pageTemplate) render(w io.Writer, rep *Report) error {
	d := pageData{Report: rep, CSS: template.CSS(p.css)}
	if rep.Filter != nil {
		d.Filter = *rep.Filter
	}
	for _, s := range States {
		n := rep.Summary.Count(s)
		d.Total += n
		d.Counts = append(d.Counts, count{State: s, N: n, Current: s == d.Filter})
	}
	return p.t.Execute(w, d)
}

var funcs = template.FuncMap{
	"iso":      func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"clock":    clock,
	"at":       at,
	"short":    short,
	"duration": duration,
	"deref":    deref,
	"kind":     kind,
	"words":    words,
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
// "5h 3m", "2d 4h". It takes int64 or *int64.
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
