package webhook

import (
	"log/slog"
	"time"
)

// Option configures a DBTHandler or a TableauHandler; each takes the
// options that concern it and ignores the others.
type Option func(*options)

type options struct {
	logger         *slog.Logger
	now            func() time.Time
	maxEventAge    time.Duration
	refreshTimeout time.Duration
	dbtCloudURL    string
}

func apply(opts []Option) options {
	o := options{logger: slog.New(slog.DiscardHandler), now: time.Now, maxEventAge: DefaultMaxEventAge, refreshTimeout: DefaultRefreshTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithLogger sets where a handler logs; by default nowhere.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithClock sets a handler's clock, which must be the state table's: claims
// are held until a time on it.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithMaxEventAge sets the age past which a dbt event is acknowledged and
// ignored as a replay (default DefaultMaxEventAge). It must be shorter than
// the refresher's retention.
func WithMaxEventAge(d time.Duration) Option { return func(o *options) { o.maxEventAge = d } }

// WithRefreshTimeout bounds the refreshes of one dbt delivery (default
// DefaultRefreshTimeout), inside dbt's 10 second delivery timeout.
func WithRefreshTimeout(d time.Duration) Option { return func(o *options) { o.refreshTimeout = d } }

// WithDBTCloudURL sets the dbt Cloud host whose run pages the status page
// links to (default dbtcloud.DefaultBaseURL): a webhook names the run, not
// its page.
func WithDBTCloudURL(u string) Option { return func(o *options) { o.dbtCloudURL = u } }
