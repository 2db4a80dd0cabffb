package followup

import (
	"log/slog"
	"time"
)

// Option configures Alerts and a Tracker; each takes the options that
// concern it and ignores the others.
type Option func(*options)

type options struct {
	logger        *slog.Logger
	now           func() time.Time
	maxAttempts   int
	retryDelay    time.Duration
	notifySuccess bool
	jobLimit      time.Duration
	status        Status
	sites         Sites
}

func apply(opts []Option) options {
	o := options{
		logger: slog.New(slog.DiscardHandler), now: time.Now,
		maxAttempts: 6, retryDelay: time.Minute, jobLimit: 2 * time.Hour,
	}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithLogger sets where Alerts and a Tracker log; by default nowhere.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithClock sets the clock, the state table's.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithMaxAttempts bounds deliveries of one notification before it is given
// up on, loudly: an error log and the NotificationsLost metric (default 6).
func WithMaxAttempts(n int) Option { return func(o *options) { o.maxAttempts = n } }

// WithRetryDelay sets the wait before the first retry of a notification,
// doubling after (default 1 minute).
func WithRetryDelay(d time.Duration) Option { return func(o *options) { o.retryDelay = d } }

// WithNotifySuccess also sends a message when a refresh succeeds.
func WithNotifySuccess(on bool) Option { return func(o *options) { o.notifySuccess = on } }

// WithJobLimit sets how long a refresh job may stay unfinished before it is
// reported as stuck (default 2 hours).
func WithJobLimit(d time.Duration) Option { return func(o *options) { o.jobLimit = d } }

// WithSites has a Tracker follow each job on its own site with that
// site's client; without it every job is on the default site.
func WithSites(s Sites) Option { return func(o *options) { o.sites = s } }

// WithStatus has a Tracker keep the status page's history: each job's end
// is recorded in its target's status before the job is closed, told to st
// once closed (for the data quality warnings), and each Follow gives st a
// Sweep.
func WithStatus(st Status) Option { return func(o *options) { o.status = st } }
