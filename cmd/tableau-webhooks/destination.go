package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strings"
)

// route is the path of the bridge's Tableau webhook route, before the token.
const route = "/tableau/webhook"

// minTokenLen keeps the route's token unguessable; the stack generates 40.
const minTokenLen = 16

// parseBaseURL checks the -url flag before anything else happens: Tableau
// delivers only to https URLs with a valid certificate, so anything else would
// be refused by Tableau or never reach the bridge. Plain http is accepted for
// a loopback receiver with allowHTTP, for local testing. The returned URL has
// no trailing slash.
//
// Errors do not repeat the URL: the token may have been pasted into it.
func parseBaseURL(raw string, allowHTTP bool) (*url.URL, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, errors.New("-url is required: the bridge's Tableau webhook route, e.g. https://abc123.execute-api.eu-west-1.amazonaws.com" + route)
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || !u.IsAbs() || u.Hostname() == "":
		return nil, errors.New("-url is not an absolute URL such as https://<api>" + route)
	case u.User != nil:
		return nil, errors.New("-url must not carry a user or password")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, errors.New("-url must not have a query or fragment: the token is added as the last path segment")
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return nil, errors.New("-url is http: Tableau delivers webhooks only to https URLs with a valid certificate")
		}
		if !allowHTTP {
			return nil, errors.New("-url is http: Tableau delivers webhooks only to https URLs; a plain http loopback receiver is allowed with -allow-http, for local testing")
		}
	default:
		return nil, fmt.Errorf("-url has scheme %q: it must be https", u.Scheme)
	}
	return &url.URL{Scheme: strings.ToLower(u.Scheme), Host: u.Host, Path: strings.TrimRight(u.Path, "/")}, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// destination is where the webhooks point: the base URL and the token as
// the last path segment.
func destination(base *url.URL, token string) string {
	return base.String() + "/" + url.PathEscape(token)
}

// checkToken makes sure the route's token is present, long enough to be
// unguessable and safe as a URL path segment. name says where it comes from
// ("TABLEAU_WEBHOOK_TOKEN", "tableau_webhook_token in the secret x"); the
// token itself is never shown.
func checkToken(token, name string) error {
	if token == "" {
		return fmt.Errorf("%s is missing: the bridge accepts Tableau's deliveries only on POST %s/{token}; add a random token of at least %d letters and digits (the stack generates one of 40)", name, route, minTokenLen)
	}
	if len(token) < minTokenLen {
		return fmt.Errorf("%s is too short (%d characters) to be unguessable: use at least %d random letters and digits", name, len(token), minTokenLen)
	}
	for _, r := range token {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.~", r)
		if !ok {
			return fmt.Errorf("%s may hold only letters, digits, '-', '_', '.' and '~': it becomes a URL path segment", name)
		}
	}
	return nil
}

// mask hides a secret, keeping its last four characters when it is long
// enough for that to give nothing away.
func mask(s string) string {
	if len(s) >= 12 {
		return "****" + s[len(s)-4:]
	}
	return "****"
}

// displayURL shows a webhook destination without its secret: the last path
// segment (where such URLs carry their token), query values and any user
// info are masked. It is used for every URL, ours or not: other
// destinations carry secrets the same way.
func displayURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(unparseable URL)"
	}
	segs := strings.Split(u.EscapedPath(), "/")
	for i := len(segs) - 1; i >= 0; i-- {
		if segs[i] != "" {
			segs[i] = mask(segs[i])
			break
		}
	}
	var b strings.Builder
	b.WriteString(u.Scheme + "://")
	if u.User != nil {
		b.WriteString("****@")
	}
	b.WriteString(u.Host + strings.Join(segs, "/"))
	if u.RawQuery != "" {
		q := u.Query()
		keys := make([]string, 0, len(q))
		for k := range q {
			keys = append(keys, url.QueryEscape(k)+"=****")
		}
		sort.Strings(keys)
		b.WriteString("?" + strings.Join(keys, "&"))
	}
	return b.String()
}

// sameURL compares destinations the way Tableau may have normalised them:
// scheme and host case, a trailing slash.
func sameURL(a, b string) bool {
	if a == b {
		return true
	}
	ua, errA := url.Parse(a)
	ub, errB := url.Parse(b)
	if errA != nil || errB != nil {
		return false
	}
	return strings.EqualFold(ua.Scheme, ub.Scheme) && strings.EqualFold(ua.Host, ub.Host) &&
		strings.TrimRight(ua.EscapedPath(), "/") == strings.TrimRight(ub.EscapedPath(), "/") &&
		ua.RawQuery == ub.RawQuery
}

// redactor replaces known secrets in anything about to be printed: the last
// line of defence, behind displayURL, for text that quotes them (an error
// that echoes a URL, a destination's reply body).
type redactor struct{ secrets []string }

// add registers secrets; very short values are skipped, since masking them
// would garble ordinary words and they are no secret worth the name.
func (r *redactor) add(secrets ...string) {
	for _, s := range secrets {
		if len(s) >= 6 {
			r.secrets = append(r.secrets, s)
		}
	}
}

func (r *redactor) redact(s string) string {
	for _, secret := range r.secrets {
		s = strings.ReplaceAll(s, secret, mask(secret))
		// Escaped as in a URL path or query, too.
		for _, esc := range []string{url.PathEscape(secret), url.QueryEscape(secret)} {
			if esc != secret {
				s = strings.ReplaceAll(s, esc, mask(secret))
			}
		}
	}
	return s
}
