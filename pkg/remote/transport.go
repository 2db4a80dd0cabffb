package remote

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultTimeout bounds one attempt of a call made with NewHTTPClient's
// client. The caller's context is the real bound; this ends an attempt that
// hangs when the context has no deadline.
const DefaultTimeout = 30 * time.Second

// NewHTTPClient returns the HTTP client the bridge's clients call with:
// DefaultTimeout per attempt, redirects refused, and enough idle
// connections per host for a run that refreshes many items at once.
func NewHTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 32
	return &http.Client{Timeout: DefaultTimeout, CheckRedirect: refuseRedirect, Transport: tr}
}

// RefuseRedirects returns hc, or a copy of it that refuses redirects when it
// follows them: a redirect would carry the request's credentials to another
// host. The 3xx reply is returned to the caller, which reports it.
func RefuseRedirects(hc *http.Client) *http.Client {
	if hc == nil {
		return NewHTTPClient()
	}
	if hc.CheckRedirect != nil {
		return hc
	}
	cp := *hc
	cp.CheckRedirect = refuseRedirect
	return &cp
}

func refuseRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// CheckURL checks the base URL of a service: absolute, with a host, no user
// information, https — or http on a loopback host, where simulators and
// local runs live. Its errors never quote the URL, which may be a secret
// (a Slack webhook URL) or carry one.
func CheckURL(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	switch {
	case strings.TrimSpace(raw) == "":
		return nil, errors.New("is empty")
	case err != nil || u.Opaque != "":
		return nil, errors.New("is not a URL")
	case u.Host == "" || u.Hostname() == "":
		return nil, errors.New("has no host; want e.g. https://host.example.com")
	case u.User != nil:
		return nil, errors.New("must not carry a user or password")
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
	case "http":
		if !IsLoopback(u.Hostname()) {
			return nil, errors.New("must use https (http is allowed only for loopback hosts)")
		}
	default:
		return nil, fmt.Errorf("has scheme %q: it must be https", u.Scheme)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	return u, nil
}

// IsLoopback reports whether host is localhost or a loopback address.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// TransportError is a call that got no HTTP reply: the connection could not
// be made, was cut, or timed out. Its message names the service and the
// request, never the URL (its *url.Error is unwrapped).
type TransportError struct {
	Service string // e.g. "tableau", "dbt Cloud API"
	Method  string
	Path    string // empty when the path is a secret (Slack)
	// Sent is false only when the request certainly never reached the
	// server: the name lookup, the dial or the TLS handshake failed. After
	// that the server may have acted on it.
	Sent bool
	Err  error
}

func (e *TransportError) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("%s: %s: %v", e.Service, e.Method, e.Err)
	}
	return fmt.Sprintf("%s: %s %s: %v", e.Service, e.Method, e.Path, e.Err)
}

// Unwrap returns the network error.
func (e *TransportError) Unwrap() error { return e.Err }

// Permanent reports a failure no retry fixes: the server's certificate did
// not verify (unknown authority, wrong host name, expired).
func (e *TransportError) Permanent() bool {
	var certErr *tls.CertificateVerificationError
	var authErr x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	return errors.As(e.Err, &certErr) || errors.As(e.Err, &authErr) || errors.As(e.Err, &hostErr) || errors.As(e.Err, &invalid)
}

// Transient reports whether a later attempt may succeed: not a certificate
// problem, and not the caller cancelling.
func (e *TransportError) Transient() bool {
	return !e.Permanent() && !errors.Is(e.Err, context.Canceled)
}

// Do sends req with hc. A failure to get a reply becomes a *TransportError
// for service, naming path (pass "" when the path is a secret).
func Do(hc *http.Client, req *http.Request, service, path string) (*http.Response, error) {
	resp, err := hc.Do(req)
	if err == nil {
		return resp, nil
	}
	inner := err
	var ue *url.Error
	if errors.As(err, &ue) {
		inner = ue.Err // its message repeats the whole URL
	}
	return nil, &TransportError{Service: service, Method: req.Method, Path: path, Sent: !notSent(err), Err: inner}
}

// notSent reports a failure before any byte of the request could reach the
// server: a failed name lookup, dial or TLS handshake.
func notSent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return true
	}
	var rec tls.RecordHeaderError
	var certErr *tls.CertificateVerificationError
	var authErr x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	if errors.As(err, &rec) || errors.As(err, &certErr) || errors.As(err, &authErr) || errors.As(err, &hostErr) || errors.As(err, &invalid) {
		return true
	}
	return strings.Contains(err.Error(), "TLS handshake timeout")
}

// ReadBody reads at most limit bytes of resp's body and reports whether
// there was more. The rest is drained (up to a bound) so that the
// connection can be reused.
func ReadBody(resp *http.Response, limit int64) (data []byte, tooLarge bool, err error) {
	data, err = io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if int64(len(data)) > limit {
		data, tooLarge = data[:limit], true
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return data, tooLarge, err
}
