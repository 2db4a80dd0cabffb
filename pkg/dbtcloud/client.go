package dbtcloud

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/remote"
)

// DefaultBaseURL is the multi-tenant North America host. Accounts in other
// regions or cells have their own access URL (Account settings > Access URLs),
// for example https://ab123.us1.dbt.com or https://emea.dbt.com; pass it with
// WithBaseURL. See https://docs.getdbt.com/docs/cloud/about-cloud/access-regions-ip-addresses.
const DefaultBaseURL = "https://cloud.getdbt.com"

const (
	userAgent = "dbt-tableau-refresh-dbtcloud/1"
	// service prefixes the errors of requests that got no reply.
	service = "dbt Cloud API"
	// A page of 100 runs with their triggers is well under 1 MiB; the cap only
	// protects the Lambda's memory from a misbehaving proxy.
	maxBodyBytes int64 = 8 << 20
	// Error bodies are a small envelope; anything longer is not worth reading.
	maxErrorBodyBytes int64 = 64 << 10
)

// Client calls the dbt Cloud Administrative API v2 for one account.
// Build it with NewClient; it is safe for concurrent use.
// See https://docs.getdbt.com/dbt-cloud/api-v2.
type Client struct {
	baseURL    *url.URL
	accountID  int64
	tokens     TokenProvider
	httpClient *http.Client
	logger     *slog.Logger
	retry      remote.Policy

	// Replaced in this package's tests so that backoff can be observed without
	// waiting for it.
	sleep  func(ctx context.Context, d time.Duration) error
	jitter func(ceiling time.Duration) time.Duration
}

// Option configures a Client. Options check their input and NewClient reports
// every invalid option at once.
type Option func(*Client) error

// NewClient returns a client for the account set by WithAccountID,
// authenticated with the token set by WithToken; both are required.
func NewClient(opts ...Option) (*Client, error) {
	base, _ := url.Parse(DefaultBaseURL)
	c := &Client{
		baseURL:    base,
		httpClient: remote.NewHTTPClient(),
		logger:     slog.New(slog.DiscardHandler),
		retry:      remote.DefaultPolicy(),
		sleep:      remote.Sleep,
		jitter:     remote.Jitter,
	}
	var errs []error
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(c); err != nil {
			errs = append(errs, err)
		}
	}
	if c.accountID == 0 {
		errs = append(errs, errors.New("dbtcloud: account id is required (WithAccountID)"))
	}
	if c.tokens == nil {
		errs = append(errs, errors.New("dbtcloud: API token is required (WithToken or WithTokenProvider)"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

// WithBaseURL sets the account's access URL, scheme and host only, for
// example https://ab123.us1.dbt.com. HTTPS is required so the token never
// crosses the network in clear text; plain http is accepted only for loopback
// hosts (127.0.0.0/8, ::1, localhost), where simulators run.
func WithBaseURL(rawURL string) Option {
	return func(c *Client) error {
		u, err := parseBaseURL(rawURL)
		if err != nil {
			return err
		}
		c.baseURL = u
		return nil
	}
}

func parseBaseURL(rawURL string) (*url.URL, error) {
	u, err := remote.CheckURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("dbtcloud: base URL %q %w", strings.TrimSpace(rawURL), err)
	}
	if strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "" {
		// "https://cloud.getdbt.com/api/v2" is a common mistake that would
		// otherwise surface later as a confusing 404.
		return nil, fmt.Errorf("dbtcloud: base URL %q must be scheme and host only, like %s", rawURL, DefaultBaseURL)
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host}, nil
}

// WithAccountID sets the numeric dbt Cloud account id that every request is
// made for.
func WithAccountID(id int64) Option {
	return func(c *Client) error {
		if id <= 0 {
			return fmt.Errorf("dbtcloud: account id must be positive, got %d", id)
		}
		c.accountID = id
		return nil
	}
}

// WithToken sets the service account token (or personal access token) sent as
// "Authorization: Token <token>".
// See https://docs.getdbt.com/docs/dbt-cloud-apis/service-tokens.
func WithToken(token string) Option {
	return func(c *Client) error {
		if err := checkToken(token); err != nil {
			return err
		}
		return setTokens(c, staticToken(token))
	}
}

// TokenProvider returns the API token to send now. The Client asks before
// each request, so a token rotated in a secret takes effect without a new
// Client; the provider should cache.
type TokenProvider interface {
	Token(ctx context.Context) (string, error)
}

// TokenProviderFunc adapts a function to TokenProvider.
type TokenProviderFunc func(ctx context.Context) (string, error)

// Token implements TokenProvider.
func (f TokenProviderFunc) Token(ctx context.Context) (string, error) { return f(ctx) }

type staticToken string

func (t staticToken) Token(context.Context) (string, error) { return string(t), nil }

// WithTokenProvider sends the token p returns (see TokenProvider).
func WithTokenProvider(p TokenProvider) Option {
	return func(c *Client) error {
		if p == nil {
			return errors.New("dbtcloud: token provider is nil")
		}
		return setTokens(c, p)
	}
}

func setTokens(c *Client, p TokenProvider) error {
	if c.tokens != nil {
		return errors.New("dbtcloud: token given twice: use one of WithToken or WithTokenProvider")
	}
	c.tokens = p
	return nil
}

func checkToken(token string) error {
	if token == "" {
		return errors.New("dbtcloud: API token is empty")
	}
	for _, r := range token {
		// A space usually means the caller passed "Token abc" or "Bearer abc";
		// control characters would let a value smuggle extra headers.
		if r <= ' ' || r == 0x7f {
			return errors.New("dbtcloud: API token contains spaces or control characters; pass the bare token without a \"Token \" prefix")
		}
	}
	return nil
}

// token returns the token to send now, checked.
func (c *Client) token(ctx context.Context) (string, error) {
	t, err := c.tokens.Token(ctx)
	if err != nil {
		return "", fmt.Errorf("dbtcloud: API token: %w", err)
	}
	if err := checkToken(t); err != nil {
		return "", err
	}
	return t, nil
}

// Check reports whether the client has a usable API token now, without
// calling dbt Cloud: a scheduled tick checks it before it touches any job.
func (c *Client) Check(ctx context.Context) error {
	_, err := c.token(ctx)
	return err
}

// WithHTTPClient sets the HTTP client used for requests, for custom transports
// or proxies. The default is remote.NewHTTPClient's (a 30 second timeout per
// attempt as a safety net; the context passed to each call is the real
// bound). Redirects are refused either way: one would carry the token to
// another host.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) error {
		if hc == nil {
			return errors.New("dbtcloud: HTTP client is nil")
		}
		c.httpClient = remote.RefuseRedirects(hc)
		return nil
	}
}

// WithLogger sets where retries and failed requests are logged. By default
// nothing is logged. The token is never logged.
func WithLogger(l *slog.Logger) Option {
	return func(c *Client) error {
		if l == nil {
			return errors.New("dbtcloud: logger is nil")
		}
		c.logger = l
		return nil
	}
}

// WithRetryPolicy sets how transient failures are retried (default
// remote.DefaultPolicy): 429 replies (waiting for Retry-After when the
// server sends one no longer than MaxDelay), 5xx replies and connection
// failures. TriggerRun is retried only when dbt Cloud certainly did not act
// (429, 503, or a failed connection), because a repeated trigger starts a
// second run.
func WithRetryPolicy(p remote.Policy) Option {
	return func(c *Client) error {
		if err := p.Validate(); err != nil {
			return fmt.Errorf("dbtcloud: %w", err)
		}
		c.retry = p
		return nil
	}
}

// BaseURL returns the access URL the client sends requests to.
func (c *Client) BaseURL() string { return c.baseURL.String() }

// AccountID returns the account the client acts for.
func (c *Client) AccountID() int64 { return c.accountID }

// String describes the client without its token, so that printing it with %v
// or %+v cannot leak the credential.
func (c *Client) String() string {
	return fmt.Sprintf("dbtcloud.Client{baseURL: %s, accountID: %d}", c.baseURL, c.accountID)
}

// GoString is String for %#v.
func (c *Client) GoString() string { return c.String() }

// repeatability says whether sending a request twice is harmless.
type repeatability int

const (
	// idempotent requests (reads, cancel) are retried on any transient failure.
	idempotent repeatability = iota
	// oneShot requests (trigger) are retried only when the server certainly
	// did not act on them; a duplicated trigger starts a second dbt run.
	oneShot
)

// envelope is the wrapper around every Admin API v2 reply.
type envelope struct {
	Status struct {
		Code             int     `json:"code"`
		IsSuccess        bool    `json:"is_success"`
		UserMessage      string  `json:"user_message"`
		DeveloperMessage *string `json:"developer_message"`
	} `json:"status"`
	Data json.RawMessage `json:"data"`
}

// do sends one API call with retries and decodes the reply's data into out.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any, mode repeatability) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("encode request body: %w", err)
		}
	}
	u := *c.baseURL
	u.Path = path
	u.RawQuery = query.Encode()
	target := u.String()

	rt := remote.Retrier{
		Policy: c.retry,
		Retryable: func(err error) bool {
			retry, _ := retryDecision(err, mode)
			return retry
		},
		Sleep:  c.sleep,
		Jitter: c.jitter,
		OnRetry: func(ctx context.Context, attempt int, wait time.Duration, err error) {
			c.logger.WarnContext(ctx, "dbt Cloud request failed; retrying",
				"method", method, "path", path, "attempt", attempt, "retry_in", wait.String(), "error", err)
		},
	}
	err := rt.Do(ctx, func(ctx context.Context) error { return c.send(ctx, method, target, path, body, out) })
	if err != nil && mode == oneShot && outcomeUnknown(err) {
		// The request may have landed: the caller must look before
		// triggering again.
		return fmt.Errorf("%w: %w", ErrTriggerOutcomeUnknown, err)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		c.logger.WarnContext(ctx, "dbt Cloud request failed", "method", method, "path", path, "error", err)
	}
	return err
}

// send makes a single HTTP exchange.
func (c *Client) send(ctx context.Context, method, target, path string, body []byte, out any) error {
	var rdr io.Reader
	if body != nil {
		rdr = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rdr)
	if err != nil {
		return fmt.Errorf("build request %s %s: %w", method, path, err)
	}
	token, err := c.token(ctx)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Token "+token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}

	resp, err := remote.Do(c.httpClient, req, service, path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		raw, _, _ := remote.ReadBody(resp, maxErrorBodyBytes)
		return c.newError(resp, raw, method, path, token)
	}
	raw, tooLarge, err := remote.ReadBody(resp, maxBodyBytes)
	if err != nil {
		return &remote.TransportError{Service: service, Method: method, Path: path, Sent: true, Err: err}
	}
	if tooLarge {
		return &decodeError{method: method, path: path, err: fmt.Errorf("reply is larger than %d bytes", maxBodyBytes)}
	}
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return &decodeError{method: method, path: path, err: err}
	}
	if env.Status.Code != 0 && !env.Status.IsSuccess {
		// The envelope, not the HTTP status, is dbt's verdict.
		return c.newError(resp, raw, method, path, token)
	}
	if out == nil {
		return nil
	}
	if len(env.Data) == 0 || string(env.Data) == "null" {
		return &decodeError{method: method, path: path, err: errors.New(`reply has no "data"`)}
	}
	if err := json.Unmarshal(env.Data, out); err != nil {
		return &decodeError{method: method, path: path, err: err}
	}
	return nil
}

// newError turns a failed reply into *Error, using dbt's own words when the
// body is the usual envelope.
func (c *Client) newError(resp *http.Response, raw []byte, method, path, token string) *Error {
	e := &Error{StatusCode: resp.StatusCode, Method: method, Path: path}
	var env envelope
	if json.Unmarshal(raw, &env) == nil {
		if env.Status.Code >= 400 && resp.StatusCode < 400 {
			e.StatusCode = env.Status.Code
		}
		parts := []string{strings.TrimSpace(env.Status.UserMessage)}
		if env.Status.DeveloperMessage != nil {
			parts = append(parts, strings.TrimSpace(*env.Status.DeveloperMessage))
		}
		// Validation failures explain themselves in "data" as a string, e.g.
		// "'cause' is a required property".
		var detail string
		if json.Unmarshal(env.Data, &detail) == nil {
			parts = append(parts, strings.TrimSpace(detail))
		}
		e.Message = joinNonEmpty(parts)
	}
	if e.Message == "" {
		e.Message = http.StatusText(e.StatusCode)
	}
	// dbt has no reason to echo the token, but a proxy might; never let it
	// into an error that gets logged.
	e.Message = strings.ReplaceAll(e.Message, token, "[redacted]")
	if len(e.Message) > 1000 {
		e.Message = e.Message[:1000] + "…"
	}
	e.RetryAfter = remote.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	if loc := resp.Header.Get("Location"); resp.StatusCode >= 300 && resp.StatusCode < 400 && loc != "" {
		// Redirects are refused (they would carry the token); say where to.
		if u, err := url.Parse(loc); err == nil && u.Host != "" {
			e.Message += "; redirected to " + u.Host + ": check the access URL (DBT_CLOUD_URL)"
		}
	}
	return e
}

func joinNonEmpty(parts []string) string {
	var kept []string
	for _, p := range parts {
		if p != "" && !containsString(kept, p) {
			kept = append(kept, p)
		}
	}
	return strings.Join(kept, ": ")
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
