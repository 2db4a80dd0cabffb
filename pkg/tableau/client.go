package tableau

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
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

// retryMode says which failures a request may be repeated after.
type retryMode int

const (
	// retryIdempotent: repeating is harmless (GET, PUT, DELETE, sign-in).
	retryIdempotent retryMode = iota
	// retryUnacted: repeat only when the server certainly did not act on the
	// request (429, 503, or a dial failure), e.g. a refresh POST that must not
	// queue twice.
	retryUnacted
)

// request describes one REST call.
type request struct {
	method   string
	path     string // below /api/{version}/; ignored when sitePath is set
	sitePath string // below /api/{version}/sites/{site-luid}/
	query    string // already encoded
	body     any    // marshalled to JSON; nil sends no body
	auth     bool   // needs a session
	mode     retryMode
	out      any  // decode target for a 2xx reply; nil discards the body
	secret   bool // reply may hold a token: never quote it in errors
	version  string
}

// send runs r with a session when it needs one and, when Tableau says the
// session has ended, signs in again once and repeats r once.
func (c *Client) send(ctx context.Context, r *request) error {
	if r.version == "" {
		v, err := c.apiVersion(ctx)
		if err != nil {
			return err
		}
		r.version = v
	}
	if !r.auth {
		return c.exchange(ctx, r, nil)
	}
	sess, err := c.session(ctx)
	if err != nil {
		return err
	}
	err = c.exchange(ctx, r, sess)
	var te *Error
	if !errors.As(err, &te) || !te.sessionEnded() {
		return err
	}
	c.logger.InfoContext(ctx, "tableau session ended; signing in again",
		"code", te.Code, "method", r.method, "path", te.Path)
	sess, err = c.renew(ctx, sess.Token)
	if err != nil {
		return err
	}
	// Once only: a second 401 is returned as it is, never looped on.
	return c.exchange(ctx, r, sess)
}

// endpoint builds the URL of r. Paths are assembled already escaped (ids
// go through url.PathEscape) and kept as RawPath so that nothing is escaped twice.
func (c *Client) endpoint(r *request, sess *Session) *url.URL {
	u := *c.baseURL
	p := r.path
	if r.sitePath != "" {
		p = "sites/" + url.PathEscape(sess.SiteID) + "/" + r.sitePath
	}
	u.RawPath = c.baseURL.EscapedPath() + "/api/" + url.PathEscape(r.version) + "/" + p
	if unescaped, err := url.PathUnescape(u.RawPath); err == nil {
		u.Path = unescaped
	} else {
		u.Path, u.RawPath = u.RawPath, ""
	}
	u.RawQuery = r.query
	return &u
}

// attempt makes one HTTP round trip and maps the reply to r.out or an error.
func (c *Client) attempt(ctx context.Context, r *request, sess *Session) error {
	u := c.endpoint(r, sess)
	var body io.Reader
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			return fmt.Errorf("tableau: encode %s %s: %w", r.method, u.Path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), body)
	if err != nil {
		return fmt.Errorf("tableau: build %s %s: %w", r.method, u.Path, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if sess != nil {
		req.Header.Set("X-Tableau-Auth", sess.Token)
	}
	start := time.Now()
	resp, err := remote.Do(c.hc, req, "tableau:", u.Path)
	if err != nil {
		c.logger.DebugContext(ctx, "tableau request failed", "method", r.method, "path", u.Path, "error", err.Error())
		return err
	}
	defer resp.Body.Close()
	limit := int64(maxReplyBytes)
	if resp.StatusCode >= 300 {
		limit = maxErrorBytes
	}
	data, tooLarge, err := remote.ReadBody(resp, limit)
	c.logger.DebugContext(ctx, "tableau request", "method", r.method, "path", u.Path,
		"status", resp.StatusCode, "bytes", len(data), "duration", time.Since(start).String())
	if err != nil {
		return &remote.TransportError{Service: "tableau:", Method: r.method, Path: u.Path, Sent: true, Err: fmt.Errorf("reading reply: %w", err)}
	}
	if tooLarge && resp.StatusCode < 300 {
		// An error page's start still says enough; a reply cut short does not.
		return &FormatError{StatusCode: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"),
			Method: r.method, Path: u.Path, Received: fmt.Sprintf("a reply larger than %d bytes", limit)}
	}
	if resp.StatusCode >= 300 {
		return replyError(r, u.Path, resp, data)
	}
	if r.out == nil {
		return nil
	}
	if raw, ok := r.out.(*rawReply); ok {
		*raw = rawReply{status: resp.StatusCode, contentType: resp.Header.Get("Content-Type"), path: u.Path, body: data}
		return nil
	}
	return decodeJSON(r, u.Path, resp.StatusCode, resp.Header.Get("Content-Type"), data)
}

// rawReply, as request.out, receives the body undecoded, for the one reply
// (serverinfo) that may legitimately come back as XML.
type rawReply struct {
	status      int
	contentType string
	path        string
	body        []byte
}

func decodeJSON(r *request, path string, status int, contentType string, data []byte) error {
	fe := &FormatError{StatusCode: status, ContentType: contentType, Method: r.method, Path: path}
	trimmed := bytes.TrimSpace(data)
	if kind := nonJSONKind(fe.ContentType, trimmed); kind != "" {
		fe.Received = kind
		if !r.secret {
			fe.Snippet = snippet(trimmed)
		}
		return fe
	}
	if err := json.Unmarshal(trimmed, r.out); err != nil {
		var se *json.SyntaxError
		switch {
		case errors.Is(err, io.ErrUnexpectedEOF) || (errors.As(err, &se) && se.Offset >= int64(len(trimmed))):
			fe.Received = "truncated JSON"
		case json.Valid(trimmed):
			fe.Received = "JSON of an unexpected shape"
		default:
			fe.Received = "malformed JSON"
		}
		if !r.secret {
			fe.Err = err
		} else {
			fe.Err = errors.New("JSON does not decode")
		}
		return fe
	}
	return nil
}

// nonJSONKind names what arrived when it is plainly not JSON, or returns "".
func nonJSONKind(contentType string, body []byte) string {
	ct := strings.ToLower(contentType)
	switch {
	case len(body) == 0:
		return "an empty body"
	case strings.Contains(ct, "html") || hasPrefixFold(body, "<!doctype html") || hasPrefixFold(body, "<html"):
		return "an HTML page"
	case strings.Contains(ct, "xml") || body[0] == '<':
		return "XML"
	case body[0] != '{' && body[0] != '[':
		if ct != "" && !strings.Contains(ct, "json") {
			return "non-JSON content"
		}
		return "text that is not JSON"
	}
	return ""
}

func hasPrefixFold(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && strings.EqualFold(string(b[:len(prefix)]), prefix)
}

func snippet(b []byte) string {
	const n = 120
	s := string(b)
	if len(s) > n {
		s = s[:n] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

// ServerInfo describes the server. See
// https://help.tableau.com/current/api/rest_api/en-us/REST/rest_api_ref_server.htm#server_info.
type ServerInfo struct {
	ProductVersion string // e.g. "2023.3.0"
	Build          string // e.g. "20233.23.1017.0948"
	RestAPIVersion string // e.g. "3.21"
}

// ServerInfo returns the server's product and REST API versions. It needs no
// sign-in.
//
// See https://help.tableau.com/current/api/rest_api/en-us/REST/rest_api_ref_server.htm#server_info.
func (c *Client) ServerInfo(ctx context.Context) (*ServerInfo, error) {
	v, err := c.apiVersion(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	cached := c.serverInfo
	c.mu.Unlock()
	if cached != nil {
		cp := *cached
		return &cp, nil
	}
	return c.fetchServerInfo(ctx, v)
}

func (c *Client) fetchServerInfo(ctx context.Context, version string) (*ServerInfo, error) {
	raw := &rawReply{}
	r := &request{method: http.MethodGet, path: "serverinfo", version: version, out: raw}
	if err := c.exchange(ctx, r, nil); err != nil {
		return nil, fmt.Errorf("get server info: %w", err)
	}
	body := bytes.TrimSpace(raw.body)
	info := &ServerInfo{}
	if kind := nonJSONKind(raw.contentType, body); kind == "XML" {
		// Servers may answer this old-version URL in XML whatever Accept says
		// (the official client only ever reads it as XML); the version is all
		// we need from it.
		var x struct {
			ServerInfo struct {
				ProductVersion struct {
					Value string `xml:",chardata"`
					Build string `xml:"build,attr"`
				} `xml:"productVersion"`
				RestAPIVersion string `xml:"restApiVersion"`
			} `xml:"serverInfo"`
		}
		if err := xml.Unmarshal(body, &x); err != nil {
			return nil, &FormatError{StatusCode: raw.status, ContentType: raw.contentType, Method: r.method,
				Path: raw.path, Received: "malformed XML", Err: err, Snippet: snippet(body)}
		}
		info.ProductVersion = strings.TrimSpace(x.ServerInfo.ProductVersion.Value)
		info.Build = x.ServerInfo.ProductVersion.Build
		info.RestAPIVersion = strings.TrimSpace(x.ServerInfo.RestAPIVersion)
		return info, nil
	}
	var reply struct {
		ServerInfo *struct {
			ProductVersion flexText `json:"productVersion"`
			RestAPIVersion string   `json:"restApiVersion"`
		} `json:"serverInfo"`
	}
	if err := decodeJSON(&request{method: r.method, out: &reply}, raw.path, raw.status, raw.contentType, body); err != nil {
		return nil, fmt.Errorf("get server info: %w", err)
	}
	if reply.ServerInfo == nil {
		return nil, fmt.Errorf("get server info: %w", &FormatError{StatusCode: raw.status, ContentType: raw.contentType,
			Method: r.method, Path: raw.path, Received: "JSON without a serverInfo object", Snippet: snippet(body)})
	}
	info.ProductVersion = reply.ServerInfo.ProductVersion.Value
	info.Build = reply.ServerInfo.ProductVersion.Build
	info.RestAPIVersion = reply.ServerInfo.RestAPIVersion
	return info, nil
}

// apiVersion returns the fixed version, or negotiates it once the way the
// official Python client does: ask /api/2.4/serverinfo, adopt its
// restApiVersion, keep DefaultAPIVersion when the endpoint is missing.
func (c *Client) apiVersion(ctx context.Context) (string, error) {
	if c.fixedVer != "" {
		return c.fixedVer, nil
	}
	c.mu.Lock()
	v := c.version
	c.mu.Unlock()
	if v != "" {
		return v, nil
	}
	if err := c.versionMu.lock(ctx); err != nil {
		return "", fmt.Errorf("tableau: negotiate API version: %w", err)
	}
	defer c.versionMu.unlock()
	c.mu.Lock()
	v = c.version
	c.mu.Unlock()
	if v != "" {
		return v, nil
	}
	info, err := c.fetchServerInfo(ctx, negotiationVersion)
	switch {
	case errors.Is(err, ErrNotFound):
		c.logger.InfoContext(ctx, "tableau serverinfo not found; using default API version", "version", DefaultAPIVersion)
		v = DefaultAPIVersion
	case err != nil:
		// Not cached: the next call asks again, so a blip does not pin a guess.
		return "", fmt.Errorf("tableau: negotiate API version: %w", err)
	case !validVersion(info.RestAPIVersion):
		c.logger.WarnContext(ctx, "tableau serverinfo gave no usable restApiVersion; using default",
			"got", info.RestAPIVersion, "version", DefaultAPIVersion)
		v = DefaultAPIVersion
	default:
		v = info.RestAPIVersion
	}
	c.mu.Lock()
	c.version = v
	if info != nil {
		c.serverInfo = info
	}
	c.mu.Unlock()
	c.logger.DebugContext(ctx, "tableau API version", "version", v)
	return v, nil
}

// requireVersion fails early, with a clear message, for calls the server's
// API version does not have.
func (c *Client) requireVersion(ctx context.Context, call, min string) error {
	v, err := c.apiVersion(ctx)
	if err != nil {
		return err
	}
	if versionLess(v, min) {
		return fmt.Errorf("tableau: %s needs REST API %s or later, client uses %s: %w", call, min, v, ErrUnsupportedVersion)
	}
	return nil
}

// validVersion reports whether v has the MAJOR.MINOR form of an API version.
func validVersion(v string) bool {
	major, minor, ok := strings.Cut(v, ".")
	return ok && allDigits(major) && allDigits(minor)
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func versionLess(a, b string) bool {
	var am, an, bm, bn int
	fmt.Sscanf(a, "%d.%d", &am, &an)
	fmt.Sscanf(b, "%d.%d", &bm, &bn)
	if am != bm {
		return am < bm
	}
	return an < bn
}
