package tableau

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/remote"
)

// How one REST call is made: the request, its URL, one HTTP round trip and
// the decoding of its reply, repeated by exchange as the retry policy and
// the request's mode allow, and repeated once more by send after a
// re-sign-in when Tableau says the session ended.

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
	// scope is the connected-app scope the call needs (Scope...), named
	// when Tableau refuses a JWT session for want of it.
	scope string
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
	err = c.exchange(ctx, r, sess)
	if errors.As(err, &te) && te.sessionEnded() {
		if cr, _ := c.auth(); cr != nil {
			if j, ok := cr.(*jwtCredentials); ok {
				// A session a connected app has just opened is refused: Tableau's
				// answer to a JWT without the scope the method needs.
				return &ScopeError{Need: r.scope, Granted: append([]string(nil), j.app.Scopes...), Err: err}
			}
		}
	}
	return err
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

// exchange runs one request, repeating it as the retry policy and the
// request's mode allow (see remote.Retrier). sess may be nil for calls that
// need no session.
//
// Requests that are not safe to repeat (a refresh POST, creating a webhook)
// are repeated only when the server certainly did not act: 429, 503, or a
// connection that could not be made.
func (c *Client) exchange(ctx context.Context, r *request, sess *Session) error {
	rt := remote.Retrier{
		Policy:    c.retry,
		Retryable: func(err error) bool { return retryAllowed(r.mode, err) },
		Sleep:     c.sleep,
		OnRetry: func(ctx context.Context, attempt int, wait time.Duration, err error) {
			c.logger.DebugContext(ctx, "tableau retrying", "method", r.method, "attempt", attempt,
				"retry_in", wait.String(), "error", err.Error())
		},
	}
	return rt.Do(ctx, func(ctx context.Context) error { return c.attempt(ctx, r, sess) })
}

// retryAllowed decides whether err, for a request of the given mode, is worth
// repeating.
func retryAllowed(mode retryMode, err error) bool {
	var te *Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusTooManyRequests, http.StatusServiceUnavailable:
			// The server turned the request away without acting on it.
			return true
		case http.StatusInternalServerError, http.StatusBadGateway, http.StatusGatewayTimeout:
			// The server (or the one behind the gateway) may have acted.
			return mode == retryIdempotent
		}
		return false
	}
	var tr *remote.TransportError
	if errors.As(err, &tr) {
		return tr.Transient() && (!tr.Sent || mode == retryIdempotent)
	}
	var fe *FormatError
	if errors.As(err, &fe) {
		// A cut-off body may come whole next time; for a POST, the server acted.
		return fe.truncated() && mode == retryIdempotent
	}
	return false
}
