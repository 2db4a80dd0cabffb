package tableautest

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Tableau Cloud limits the requests in flight per site to the endpoints
// that start long-running jobs: "Concurrent requests to endpoints that start
// long-running jobs ... are limited to 20 at a time"; one more is answered
// 429 and "should be retried at a later time" (Tableau knowledge base,
// "Concurrency limits in REST APIs on Tableau Cloud"). Of the endpoints the
// simulator serves, the extract refreshes start such jobs. The article shows
// no body; the simulator answers with Tableau's error body and code 429000,
// which Tableau Cloud uses for its rate limits ("Too many requests for
// 'api.rest.refresh_extracts'. Please retry after 29 minutes.",
// tableau/server-client-python issue 952), and a Retry-After header.

// codeTooManyRequests is Tableau's code for a request turned away for the
// site's limits (server-client-python issue 952).
const codeTooManyRequests = "429000"

// WithConcurrencyLimit makes the site turn away, with 429 (code 429000) and
// a Retry-After of retryAfter rounded up to whole seconds, a refresh request
// that arrives while n others of the same site are in flight, as Tableau
// Cloud does (n is about 20 there). The simulator's latency counts as time
// in flight. n of 0, the default, sets no limit.
func WithConcurrencyLimit(n int, retryAfter time.Duration) Option {
	return func(c *config) { c.concurrency, c.concurrencyRetry = n, retryAfter }
}

// SetConcurrencyLimit changes the limit of WithConcurrencyLimit on a running
// server; requests in flight keep their places.
func (s *Server) SetConcurrencyLimit(n int, retryAfter time.Duration) {
	s.limits.set(n, retryAfter)
}

// Throttled reports how many requests the concurrency limit turned away.
func (s *Server) Throttled() int { return s.limits.stats().throttled }

// PeakInFlight reports the most refresh requests that were in flight at once
// on one site, the ones the limit turned away included (each at its
// arrival): what a client sent at once, whatever the limit.
func (s *Server) PeakInFlight() int { return s.limits.stats().peak }

// siteLimits counts the limited requests in flight per site.
type siteLimits struct {
	mu         sync.Mutex
	n          int
	retryAfter time.Duration
	inFlight   map[string]int // site LUID -> admitted requests in flight
	arriving   map[string]int // site LUID -> requests in flight, turned away or not
	throttled  int
	peak       int
}

type limitStats struct{ throttled, peak int }

func (l *siteLimits) set(n int, retryAfter time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n, l.retryAfter = n, retryAfter
}

func (l *siteLimits) stats() limitStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return limitStats{throttled: l.throttled, peak: l.peak}
}

// enter counts r in when it is limited and reports whether it may proceed;
// the caller calls the returned function when the request ends, and, when
// it may not proceed, answers with the error.
func (l *siteLimits) enter(r *http.Request) (leave func(), err *apiError, retryAfter time.Duration) {
	site, ok := limitedSite(r)
	if !ok {
		return func() {}, nil, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inFlight == nil {
		l.inFlight, l.arriving = map[string]int{}, map[string]int{}
	}
	l.arriving[site]++
	l.peak = max(l.peak, l.arriving[site])
	if l.n > 0 && l.inFlight[site] >= l.n {
		l.throttled++
		l.arriving[site]--
		e := newError(http.StatusTooManyRequests, codeTooManyRequests,
			fmt.Sprintf("Too many concurrent requests for this site: %d requests that start long-running jobs are allowed at a time. Retry later.", l.n))
		return func() {}, e, l.retryAfter
	}
	l.inFlight[site]++
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.inFlight[site]--
		l.arriving[site]--
	}, nil, 0
}

// limitedSite reports whether r starts a long-running job (an extract
// refresh), and on which site.
func limitedSite(r *http.Request) (string, bool) {
	if r.Method != http.MethodPost {
		return "", false
	}
	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	// api/{version}/sites/{site}/{workbooks|datasources}/{id}/refresh
	if len(segs) != 7 || !strings.EqualFold(segs[2], "sites") || !strings.EqualFold(segs[6], "refresh") {
		return "", false
	}
	if !strings.EqualFold(segs[4], "workbooks") && !strings.EqualFold(segs[4], "datasources") {
		return "", false
	}
	return segs[3], true
}

// writeThrottled answers a request the limit turned away.
func (s *Server) writeThrottled(w http.ResponseWriter, r *http.Request, e *apiError, retryAfter time.Duration) {
	if retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((retryAfter+time.Second-1)/time.Second)))
	}
	c := &call{w: w, r: r, json: wantsJSON(r), version: versionOf(r.URL.Path, s.cfg.apiVersion)}
	c.fail(e)
}
