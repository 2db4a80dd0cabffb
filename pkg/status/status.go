// Package status shows where every Tableau target stands: GET /status, a
// page for people, and GET /status.json, the same for programs. Each
// target's row names the dbt run that last fed it (with a link to the run in
// dbt Cloud), when dbt finished, when the refresh was queued and finished,
// the result with Tableau's notes, the lag from dbt's finish to the
// extract's, and whether the target is stale against its freshness
// objective; a summary counts the targets fresh, stale, failing and running.
//
// Both routes are private: HTTP Basic authentication against the secret's
// status_password (any user name), compared in constant time; without that
// key they answer 404 like any unknown route. Replies are never cached and
// carry a Content-Security-Policy that lets the page load nothing but its
// own inline style (by hash): no scripts at all, nothing from other hosts.
// The page is rendered on the server (page.go), escaped by hand: it works
// with JavaScript off.
//
// A page view reads the state table with two queries, never a scan: the
// targets' statuses (package dynamo keeps them in buckets) and the
// open-jobs index (the running refreshes). The Recorder keeps those items, and, when asked, puts
// Tableau data quality warnings on content whose refresh failed or went
// stale (warnings.go).
package status

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/logging"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refreshmap"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/secrets"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/webhook"
)

// The HTTP API routes of the page and its JSON.
const (
	Route     = "GET /status"
	JSONRoute = "GET /status.json"
)

// DefaultFreshnessSLA is the default freshness objective (FRESHNESS_SLA).
const DefaultFreshnessSLA = 24 * time.Hour

// realm is what the browser's password prompt shows.
const realm = `Basic realm="dbt-tableau-refresh status", charset="UTF-8"`

// Option configures a Page or a Recorder; each takes the options that
// concern it and ignores the others.
type Option func(*options)

type options struct {
	m        *refreshmap.Map
	sla      time.Duration
	site     string
	logger   *slog.Logger
	now      func() time.Time
	warnings Warnings
	// siteWarnings: see WithSiteWarnings.
	siteWarnings func(site string) (Warnings, error)
}

func apply(opts []Option) options {
	o := options{sla: DefaultFreshnessSLA, logger: slog.New(slog.DiscardHandler), now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithMap lists the map's targets, so that those never refreshed show as
// not_refreshed, and gives their freshness_sla objectives.
func WithMap(m *refreshmap.Map) Option { return func(o *options) { o.m = m } }

// WithFreshnessSLA sets the default freshness objective (default
// DefaultFreshnessSLA): a target whose last successful refresh is older is
// stale.
func WithFreshnessSLA(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.sla = d
		}
	}
}

// WithSite names the default Tableau site (TABLEAU_SITE, its content URL):
// the site of a row whose target names none.
func WithSite(contentURL string) Option { return func(o *options) { o.site = contentURL } }

// WithLogger sets where a Page or a Recorder logs; by default nowhere.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithClock sets the clock staleness is judged by, the state table's.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// Page answers Route and JSONRoute.
type Page struct {
	secrets secrets.Source
	store   state.TargetStatuses
	jobs    state.TableauJobs
	o       options
	obj     Objectives

	// The policy is hashed at the first page view, not at start: a cold
	// start that serves dbt's webhook should not pay for it.
	once   sync.Once
	policy string
}

// New returns a Page over the targets' statuses in store and the open jobs
// in jobs. It takes WithMap, WithFreshnessSLA, WithSite, WithLogger and
// WithClock.
func New(src secrets.Source, store state.TargetStatuses, jobs state.TableauJobs, opts ...Option) (*Page, error) {
	if src == nil || store == nil || jobs == nil {
		return nil, errors.New("status: secrets, target statuses and jobs are required")
	}
	o := apply(opts)
	return &Page{secrets: src, store: store, jobs: jobs, o: o, obj: NewObjectives(o.sla, o.m)}, nil
}

// Report reads every target's status now, filtered by s ("" for all).
func (p *Page) Report(ctx context.Context, s State) (*Report, error) {
	var (
		wg       sync.WaitGroup
		statuses []state.TargetStatus
		open     []state.TableauJob
		sErr     error
		oErr     error
	)
	wg.Add(2)
	go func() { defer wg.Done(); statuses, sErr = p.store.TargetStatuses(ctx) }()
	go func() { defer wg.Done(); open, oErr = p.jobs.OpenJobs(ctx) }()
	wg.Wait()
	if err := errors.Join(sErr, oErr); err != nil {
		return nil, err
	}
	rep := build(p.o.now(), p.o.site, p.obj, statuses, open, p.o.m)
	rep.filter(s)
	return rep, nil
}

// HTML is the Lambda handler of Route.
func (p *Page) HTML(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	return p.serve(ctx, req, false), nil
}

// JSON is the Lambda handler of JSONRoute.
func (p *Page) JSON(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	return p.serve(ctx, req, true), nil
}

func (p *Page) serve(ctx context.Context, req events.APIGatewayV2HTTPRequest, asJSON bool) events.APIGatewayV2HTTPResponse {
	ctx = logging.With(ctx, "request_id", req.RequestContext.RequestID)
	log := p.o.logger
	creds, err := p.secrets.Credentials(ctx)
	if err != nil {
		log.ErrorContext(ctx, "credentials unavailable", "error", err)
		return reply(http.StatusServiceUnavailable, "text/plain; charset=utf-8", "Service Unavailable: credentials unavailable; retry later\n")
	}
	if creds.StatusPassword == "" {
		// Off until a password is set, and then indistinguishable from a
		// route that does not exist.
		return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusNotFound, Headers: map[string]string{"Content-Type": "application/json"}, Body: `{"message":"Not Found"}`}
	}
	if !passwordMatches(webhook.Header(req.Headers, "Authorization"), creds.StatusPassword) {
		log.WarnContext(ctx, "status page: missing or wrong password", "path", req.RawPath)
		r := reply(http.StatusUnauthorized, "text/plain; charset=utf-8", "Unauthorized\n")
		r.Headers["WWW-Authenticate"] = realm
		return r
	}
	st, ok := ParseState(req.QueryStringParameters["state"])
	if !ok {
		return reply(http.StatusBadRequest, "text/plain; charset=utf-8",
			fmt.Sprintf("unknown state %q: filter by fresh, stale, failing or running\n", req.QueryStringParameters["state"]))
	}
	rep, err := p.Report(ctx, st)
	if err != nil {
		log.ErrorContext(ctx, "status page: state table unavailable", "error", err)
		return reply(http.StatusServiceUnavailable, "text/plain; charset=utf-8", "Service Unavailable: the state table could not be read; retry later\n")
	}
	if asJSON {
		// Encoded straight into the string the reply carries: 500
		// targets make 2 MB, not worth copying twice.
		var body strings.Builder
		body.Grow(4 << 10 * len(rep.Targets))
		if err := json.NewEncoder(&body).Encode(rep); err != nil {
			log.ErrorContext(ctx, "status page: encode", "error", err)
			return reply(http.StatusInternalServerError, "text/plain; charset=utf-8", "Internal Server Error\n")
		}
		return reply(http.StatusOK, "application/json", body.String())
	}
	p.once.Do(func() { p.policy = pagePolicy() })
	html, err := renderPage(rep)
	if err != nil {
		log.ErrorContext(ctx, "status page: render", "error", err)
		return reply(http.StatusInternalServerError, "text/plain; charset=utf-8", "Internal Server Error\n")
	}
	r := reply(http.StatusOK, "text/html; charset=utf-8", html)
	r.Headers["Content-Security-Policy"] = p.policy
	return r
}

// csp is the policy of every reply but the page's own (which adds its
// style's hash): nothing may load at all.
const csp = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// reply is a response with the headers every reply of these routes
// carries: the page names content, so no cache may keep it.
func reply(status int, contentType, body string) events.APIGatewayV2HTTPResponse {
	return events.APIGatewayV2HTTPResponse{
		StatusCode: status,
		Headers: map[string]string{
			"Content-Type":            contentType,
			"Cache-Control":           "no-store",
			"Content-Security-Policy": csp,
			"X-Content-Type-Options":  "nosniff",
			"Referrer-Policy":         "no-referrer",
			"X-Frame-Options":         "DENY",
		},
		Body: body,
	}
}

// passwordMatches checks an Authorization header's Basic credentials
// against want, whatever the user name. The two are hashed first so that
// the comparison takes the same time whatever their lengths.
func passwordMatches(authorization, want string) bool {
	scheme, encoded, ok := strings.Cut(strings.TrimSpace(authorization), " ")
	if !ok || !strings.EqualFold(scheme, "Basic") {
		return false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(encoded))
	if err != nil {
		return false
	}
	_, got, ok := strings.Cut(string(raw), ":")
	if !ok {
		return false
	}
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}
