package tableau

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/remote"
)

const (
	// DefaultAPIVersion is the REST API version used when the server cannot
	// tell us its own (serverinfo answers 404). 3.6 is the oldest version that
	// has every call this package makes except UpdateWebhook (3.8).
	DefaultAPIVersion = "3.6"

	// negotiationVersion is where the official Python client starts: serverinfo
	// exists from 2.4 on, so asking there works on every server that has it.
	negotiationVersion = "2.4"

	// Reply size caps. A list page of 1000 items is well under a megabyte;
	// anything near these sizes is not a Tableau reply.
	maxReplyBytes = 8 << 20
	maxErrorBytes = 64 << 10

	defaultPageSize = 1000
	userAgent       = "dbt-tableau-refresh (go)"
)

// Client talks to one site of one Tableau Server or Tableau Cloud pod. It is
// safe for concurrent use and meant to live for the whole process, so a warm
// Lambda reuses its session. Build it with NewClient.
//
// See https://help.tableau.com/current/api/rest_api/en-us/REST/rest_api.htm.
type Client struct {
	baseURL      *url.URL // scheme://host[:port][/prefix], no trailing slash
	site         string   // site content URL; "" is the default site
	hc           *http.Client
	logger       *slog.Logger
	provider     CredentialsProvider
	store        SessionStore
	owner        string // identifies this Client when it holds the sign-in lease
	retry        remote.Policy
	pageSize     int
	fixedVer     string
	sleep        func(ctx context.Context, d time.Duration) error // replaced in tests to record waits
	leaseTTL     time.Duration
	leaseWait    time.Duration // longest wait for another instance's sign-in
	leasePoll    time.Duration // first poll interval while waiting for it
	leasePollMax time.Duration

	mu         sync.Mutex
	creds      credentials // what sign-ins use; from the provider when there is one
	storeKey   string      // the key of creds' shared session
	given      Credentials // the provider's last answer, so that an unchanged one costs nothing
	sess       *Session
	version    string
	serverInfo *ServerInfo

	signInMu  ctxMutex // one sign-in at a time per Client
	versionMu ctxMutex // one version negotiation at a time
}

// Option configures a Client. Options check their arguments and NewClient
// returns the first error.
type Option func(*Client) error

// WithSite selects the site by its content URL (the part after /site/ in the
// browser). The empty string, the default, is the Default site.
func WithSite(contentURL string) Option {
	return func(c *Client) error {
		if strings.ContainsAny(contentURL, "/?#") || strings.TrimSpace(contentURL) != contentURL {
			return fmt.Errorf("site content URL %q: want the bare content URL, e.g. \"mysite\"", contentURL)
		}
		c.site = contentURL
		return nil
	}
}

// WithAPIVersion fixes the REST API version, e.g. "3.23", and skips
// negotiation. Without it the Client asks the server (GET /api/2.4/serverinfo)
// on first use, as the official Python client does.
//
// See https://help.tableau.com/current/api/rest_api/en-us/REST/rest_api_concepts_versions.htm.
func WithAPIVersion(v string) Option {
	return func(c *Client) error {
		if !validVersion(v) {
			return fmt.Errorf("API version %q: want MAJOR.MINOR, e.g. \"3.23\"", v)
		}
		c.fixedVer = v
		return nil
	}
}

// WithHTTPClient sets the HTTP client. If it has no CheckRedirect the Client
// works on a copy that refuses redirects, because a redirect would carry the
// X-Tableau-Auth header to wherever it points.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) error {
		if hc == nil {
			return errors.New("HTTP client is nil")
		}
		c.hc = hc
		return nil
	}
}

// WithPAT signs in with a personal access token. Tableau allows one session
// per PAT: see WithSessionStore for running several instances on one PAT.
//
// See https://help.tableau.com/current/api/rest_api/en-us/REST/rest_api_concepts_auth.htm.
func WithPAT(name, secret string) Option {
	return withCredentials(Credentials{PATName: name, PATSecret: secret})
}

// WithConnectedApp signs in with a connected app using direct trust: the
// Client signs a short-lived JWT with the app's secret at each sign-in.
// Empty Scopes means DefaultScopes.
//
// See https://help.tableau.com/current/online/en-us/connected_apps_direct.htm.
func WithConnectedApp(app ConnectedApp) Option {
	return withCredentials(Credentials{ConnectedApp: &app})
}

func withCredentials(cr Credentials) Option {
	return func(c *Client) error {
		built, err := cr.build()
		if err != nil {
			return err
		}
		if c.creds != nil || c.provider != nil {
			return errors.New("credentials given twice: use one of WithPAT, WithConnectedApp or WithCredentialsProvider")
		}
		c.creds = built
		return nil
	}
}

// WithCredentialsProvider signs in with what p returns, asked before each
// use of the session, so that rotated credentials take effect (see
// CredentialsProvider).
func WithCredentialsProvider(p CredentialsProvider) Option {
	return func(c *Client) error {
		if p == nil {
			return errors.New("credentials provider is nil")
		}
		if c.creds != nil || c.provider != nil {
			return errors.New("credentials given twice: use one of WithPAT, WithConnectedApp or WithCredentialsProvider")
		}
		c.provider = p
		return nil
	}
}

// WithLogger sets where the Client logs. It logs requests at Debug and
// sign-ins at Info, never a token, secret or JWT. The default discards.
func WithLogger(l *slog.Logger) Option {
	return func(c *Client) error {
		if l == nil {
			return errors.New("logger is nil")
		}
		c.logger = l
		return nil
	}
}

// WithSessionStore shares the session among every Client (every Lambda
// instance) that uses the same server, site and credentials, so that they
// do not end each other's PAT sessions. See SessionStore.
func WithSessionStore(s SessionStore) Option {
	return func(c *Client) error {
		if s == nil {
			return errors.New("session store is nil")
		}
		c.store = s
		return nil
	}
}

// WithRetryPolicy sets how failed requests are retried (default
// remote.DefaultPolicy). Whatever the policy, a request that must not be
// repeated (a refresh) is repeated only when Tableau certainly did not act
// on it: 429, 503, or a connection that could not be made.
func WithRetryPolicy(p remote.Policy) Option {
	return func(c *Client) error {
		if err := p.Validate(); err != nil {
			return err
		}
		c.retry = p
		return nil
	}
}

// WithPageSize sets how many items each list request asks for (1 to 1000;
// default 1000).
//
// See https://help.tableau.com/current/api/rest_api/en-us/REST/rest_api_concepts_paging.htm.
func WithPageSize(n int) Option {
	return func(c *Client) error {
		if n < 1 || n > 1000 {
			return fmt.Errorf("page size %d: want 1 to 1000", n)
		}
		c.pageSize = n
		return nil
	}
}

// NewClient returns a Client for the server at serverURL, which must be https
// (http is allowed only for loopback hosts, for simulators and local runs).
//
// See https://help.tableau.com/current/api/rest_api/en-us/REST/rest_api.htm.
func NewClient(serverURL string, opts ...Option) (*Client, error) {
	u, err := parseServerURL(serverURL)
	if err != nil {
		return nil, err
	}
	c := &Client{
		baseURL:      u,
		logger:       slog.New(slog.DiscardHandler),
		retry:        remote.DefaultPolicy(),
		pageSize:     defaultPageSize,
		sleep:        remote.Sleep,
		leaseTTL:     30 * time.Second,
		leaseWait:    60 * time.Second,
		leasePoll:    25 * time.Millisecond,
		leasePollMax: time.Second,
		signInMu:     newCtxMutex(),
		versionMu:    newCtxMutex(),
	}
	for _, opt := range opts {
		if opt == nil {
			return nil, errors.New("tableau: nil option")
		}
		if err := opt(c); err != nil {
			return nil, fmt.Errorf("tableau: %w", err)
		}
	}
	c.hc = remote.RefuseRedirects(c.hc)
	c.owner = randomID()
	if c.creds != nil {
		c.storeKey = sessionKey(c.baseURL.String(), c.site, c.creds.identity())
	}
	return c, nil
}

// parseServerURL insists on https so that tokens and PAT secrets never cross
// the network in clear; loopback http is fine because it never leaves the host.
func parseServerURL(raw string) (*url.URL, error) {
	u, err := remote.CheckURL(raw)
	if err != nil {
		shown := fmt.Sprintf("%q", strings.TrimSpace(raw))
		if strings.Contains(raw, "@") {
			shown = "(not shown: it may carry a password)"
		}
		return nil, fmt.Errorf("tableau: server URL %s %w", shown, err)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("tableau: server URL %q must not have a query or fragment", raw)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}

// ctxMutex is a mutex whose Lock gives up when the context ends, so a caller
// waiting behind a slow sign-in still honours its deadline.
type ctxMutex chan struct{}

func newCtxMutex() ctxMutex { return make(ctxMutex, 1) }

func (m ctxMutex) lock(ctx context.Context) error {
	select {
	case m <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (m ctxMutex) unlock() { <-m }
