package refresh

import (
	"context"
	"sync"
	"time"
)

// DefaultConcurrency is how many targets one process queues at a time on one
// Tableau site unless WithConcurrency says otherwise (TABLEAU_CONCURRENCY).
// Tableau Cloud answers 429 beyond about 20 concurrent requests that start
// jobs on a site; 10 leaves room for a second instance and for people.
const DefaultConcurrency = 10

// DeferReserve is the time kept, at the end of the time an invocation has to
// queue its targets, to record those it could not queue (see Deferrals), so
// that its reply is not late for them.
const DeferReserve = time.Second

// WithConcurrency bounds the targets this process queues at a time on one
// Tableau site to n (default DefaultConcurrency): the others wait for a
// place, and, with WithDeferrals, those still waiting when the invocation's
// time runs out are deferred to the follow-up. The bound is per process: a
// Lambda instance serves one invocation at a time, so k invocations at once
// may send k·n; Tableau's 429s beyond its own limit are honoured (their
// Retry-After) and, past the invocation's time, defer the target too.
func WithConcurrency(n int) Option { return func(r *Refresher) { r.concurrency = max(n, 1) } }

// WithSite names the default Tableau site by its content URL (TABLEAU_SITE):
// a target whose Site names it is refreshed with New's client, as one with
// no Site. The concurrency bound is kept per site.
func WithSite(contentURL string) Option { return func(r *Refresher) { r.site = contentURL } }

// siteLimits holds one semaphore per Tableau site.
type siteLimits struct {
	n    int
	mu   sync.Mutex
	sems map[string]chan struct{}
}

func newSiteLimits(n int) *siteLimits {
	return &siteLimits{n: n, sems: make(map[string]chan struct{})}
}

// acquire waits for a place on site, and returns the function that gives it
// back, or nil when ctx ended first.
func (l *siteLimits) acquire(ctx context.Context, site string) func() {
	l.mu.Lock()
	sem, ok := l.sems[site]
	if !ok {
		sem = make(chan struct{}, l.n)
		l.sems[site] = sem
	}
	l.mu.Unlock()
	if ctx.Err() != nil {
		// A free place must not win over an ended wait: the time to start
		// refreshes is over.
		return nil
	}
	select {
	case sem <- struct{}{}:
		var once sync.Once
		return func() { once.Do(func() { <-sem }) }
	case <-ctx.Done():
		return nil
	}
}

// queueBy is the context that bounds the wait for a place: ctx's deadline
// less the reserve to record what was not queued (a quarter of the time left
// when that is short).
func queueBy(ctx context.Context) (context.Context, context.CancelFunc) {
	d, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	reserve := min(DeferReserve, time.Until(d)/4)
	return context.WithDeadline(ctx, d.Add(-reserve))
}
