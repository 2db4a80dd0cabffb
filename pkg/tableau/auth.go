package tableau

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Connected-app scopes this package's calls need. Names are from Tableau's scope list and its REST reference ("JWT
// Access Scope"), https://help.tableau.com/current/online/en-us/connected_apps_scopes.htm,
// and the clients that use them (Dagster's and Tableau's MCP server).
const (
	// ScopeContentRead: find and read workbooks and data sources (Query
	// Workbooks, Query Data Sources, Get Workbook, Query Data Source), and
	// the Metadata API (lineage).
	ScopeContentRead = "tableau:content:read"
	// ScopeTasksRun: Update Workbook Now, Update Data Source Now.
	ScopeTasksRun = "tableau:tasks:run"
	// ScopeJobsRead: Query Job (with a JWT from REST API 3.25) and Query
	// Jobs (from 3.27).
	ScopeJobsRead = "tableau:jobs:read"
	// ScopeJobsUpdate: Cancel Job.
	ScopeJobsUpdate = "tableau:jobs:update"
	// Webhook management, named by Tableau's tableau:<resource>:<action>
	// pattern: these four could not be confirmed in Tableau's published
	// material, so a JWT without them is refused by the simulator alone
	// and the README says so. Webhooks are set up once, by a site
	// administrator, usually with a PAT.
	ScopeWebhooksCreate = "tableau:webhooks:create"
	ScopeWebhooksRead   = "tableau:webhooks:read"
	ScopeWebhooksUpdate = "tableau:webhooks:update"
	ScopeWebhooksDelete = "tableau:webhooks:delete"
	// Data quality warnings (the status page's TABLEAU_QUALITY_WARNINGS),
	// named by the same pattern and just as unconfirmed: the simulator
	// holds a JWT to them, the strictest reading.
	ScopeQualityWarningsCreate = "tableau:data_quality_warnings:create"
	ScopeQualityWarningsRead   = "tableau:data_quality_warnings:read"
	ScopeQualityWarningsUpdate = "tableau:data_quality_warnings:update"
	ScopeQualityWarningsDelete = "tableau:data_quality_warnings:delete"
)

// jwtLifetime is how far ahead the JWT's exp lies. Tableau rejects more than
// 10 minutes; the token is spent at once, so a short life costs nothing and
// leaves room for clock skew.
const jwtLifetime = 5 * time.Minute

// DefaultScopes returns the scopes a connected-app JWT carries when
// ConnectedApp.Scopes is empty: the least the bridge's functions need — find
// content and read lineage, start refreshes, follow their jobs and find the
// job a refresh that was already queued rides on. Webhook management is a
// site-administrator task done once at setup, usually with a PAT; a
// connected app that must do it needs the webhook scopes listed in its
// Scopes explicitly.
func DefaultScopes() []string {
	return []string{ScopeContentRead, ScopeTasksRun, ScopeJobsRead}
}

// WebhookScopes returns the scopes managing webhooks takes (list, create,
// test, update, delete), for a connected app that does it.
func WebhookScopes() []string {
	return []string{ScopeWebhooksRead, ScopeWebhooksCreate, ScopeWebhooksUpdate, ScopeWebhooksDelete}
}

// QualityWarningScopes returns the scopes putting, updating and removing
// data quality warnings takes, which the functions add to DefaultScopes when
// TABLEAU_QUALITY_WARNINGS is on.
func QualityWarningScopes() []string {
	return []string{ScopeQualityWarningsRead, ScopeQualityWarningsCreate, ScopeQualityWarningsUpdate, ScopeQualityWarningsDelete}
}

// ConnectedApp holds the direct-trust connected app settings used to sign
// JWTs. Username is the Tableau user the app acts as (the JWT's sub).
//
// See https://help.tableau.com/current/online/en-us/connected_apps_direct.htm.
type ConnectedApp struct {
	ClientID    string
	SecretID    string
	SecretValue string
	Username    string
	Scopes      []string
}

func (a ConnectedApp) validate() error {
	var missing []string
	for _, f := range []struct{ name, v string }{
		{"ClientID", a.ClientID}, {"SecretID", a.SecretID}, {"SecretValue", a.SecretValue}, {"Username", a.Username},
	} {
		if strings.TrimSpace(f.v) == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("connected app: %s required", strings.Join(missing, ", "))
	}
	for _, s := range a.Scopes {
		if !strings.HasPrefix(s, "tableau:") || strings.Count(s, ":") != 2 {
			return fmt.Errorf("connected app: scope %q: want tableau:<resource>:<action>", s)
		}
	}
	return nil
}

// Credentials are what a Client signs in with: a personal access token, or
// a connected app when ConnectedApp is set.
type Credentials struct {
	PATName      string
	PATSecret    string
	ConnectedApp *ConnectedApp
}

// CredentialsProvider returns the credentials to sign in with now. A Client
// asks before it uses its session, so credentials that rotate (a secret
// updated in Secrets Manager) take effect without a new Client: when they
// change, the Client drops its session and signs in with the new ones. The
// provider should cache: it is asked on every call.
type CredentialsProvider interface {
	Credentials(ctx context.Context) (Credentials, error)
}

// CredentialsProviderFunc adapts a function to CredentialsProvider.
type CredentialsProviderFunc func(ctx context.Context) (Credentials, error)

// Credentials implements CredentialsProvider.
func (f CredentialsProviderFunc) Credentials(ctx context.Context) (Credentials, error) { return f(ctx) }

// equal compares two answers of a provider, secrets and scopes too.
func (cr Credentials) equal(o Credentials) bool {
	if cr.PATName != o.PATName || cr.PATSecret != o.PATSecret || (cr.ConnectedApp == nil) != (o.ConnectedApp == nil) {
		return false
	}
	if cr.ConnectedApp == nil {
		return true
	}
	a, b := *cr.ConnectedApp, *o.ConnectedApp
	return a.ClientID == b.ClientID && a.SecretID == b.SecretID && a.SecretValue == b.SecretValue &&
		a.Username == b.Username && slices.Equal(a.Scopes, b.Scopes)
}

// build checks the credentials and returns the way of signing in they name.
func (cr Credentials) build() (credentials, error) {
	if cr.ConnectedApp != nil {
		app := *cr.ConnectedApp
		if err := app.validate(); err != nil {
			return nil, err
		}
		app.Scopes = append([]string(nil), app.Scopes...)
		if len(app.Scopes) == 0 {
			app.Scopes = DefaultScopes()
		}
		return &jwtCredentials{app: app}, nil
	}
	if cr.PATName == "" || cr.PATSecret == "" {
		return nil, errors.New("personal access token: name and secret are both required")
	}
	return &patCredentials{name: cr.PATName, secret: cr.PATSecret}, nil
}

// credentials is one way of signing in.
type credentials interface {
	// identity names the credentials without revealing any secret; it keys
	// the shared session.
	identity() string
	// kind is for logs.
	kind() string
	// describe names the credentials for a person who must fix them, e.g.
	// personal access token "refresh-bot"; never a secret.
	describe() string
	// same reports whether o signs in exactly as these do, secrets too.
	same(o credentials) bool
	// signInBody returns the credentials object of the sign-in request.
	signInBody(site string, now time.Time) (any, error)
}

type siteRef struct {
	ContentURL string `json:"contentUrl"`
}

type patCredentials struct{ name, secret string }

func (p *patCredentials) identity() string { return "pat=" + p.name }
func (p *patCredentials) kind() string     { return "personal access token" }
func (p *patCredentials) describe() string { return fmt.Sprintf("personal access token %q", p.name) }
func (p *patCredentials) same(o credentials) bool {
	q, ok := o.(*patCredentials)
	return ok && *p == *q
}
func (p *patCredentials) signInBody(site string, _ time.Time) (any, error) {
	return struct {
		Name   string  `json:"personalAccessTokenName"`
		Secret string  `json:"personalAccessTokenSecret"`
		Site   siteRef `json:"site"`
	}{p.name, p.secret, siteRef{site}}, nil
}

type jwtCredentials struct{ app ConnectedApp }

// identity includes the scopes: a session opened for one set of scopes is
// no use to a Client that needs another (the webhooks CLI and the
// functions share a session store).
func (j *jwtCredentials) identity() string {
	return "connected-app=" + j.app.ClientID + "/" + j.app.Username + "/" + strings.Join(j.app.Scopes, ",")
}
func (j *jwtCredentials) kind() string { return "connected app" }
func (j *jwtCredentials) describe() string {
	return fmt.Sprintf("connected app %q acting as %q", j.app.ClientID, j.app.Username)
}
func (j *jwtCredentials) same(o credentials) bool {
	k, ok := o.(*jwtCredentials)
	return ok && Credentials{ConnectedApp: &j.app}.equal(Credentials{ConnectedApp: &k.app})
}
func (j *jwtCredentials) signInBody(site string, now time.Time) (any, error) {
	tok, err := j.app.jwt(now)
	if err != nil {
		return nil, err
	}
	return struct {
		JWT  string  `json:"jwt"`
		Site siteRef `json:"site"`
	}{tok, siteRef{site}}, nil
}

// jwt builds the HS256 token Tableau's direct trust expects: kid and iss in
// the header; iss, sub, aud, exp, jti and scp in the claims.
func (a ConnectedApp) jwt(now time.Time) (string, error) {
	header := struct {
		Alg string `json:"alg"`
		Typ string `json:"typ"`
		Kid string `json:"kid"`
		Iss string `json:"iss"`
	}{"HS256", "JWT", a.SecretID, a.ClientID}
	claims := struct {
		Iss string   `json:"iss"`
		Sub string   `json:"sub"`
		Aud string   `json:"aud"`
		Exp int64    `json:"exp"`
		Jti string   `json:"jti"`
		Scp []string `json:"scp"`
	}{a.ClientID, a.Username, "tableau", now.UTC().Add(jwtLifetime).Unix(), newUUID(), a.Scopes}
	h, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	c, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	mac := hmac.New(sha256.New, []byte(a.SecretValue))
	mac.Write([]byte(signing))
	return signing + "." + enc.EncodeToString(mac.Sum(nil)), nil
}

// newUUID returns a random (version 4) UUID, unique per JWT so that Tableau's
// replay check accepts each one.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// signIn starts a new session with the configured credentials. It does not
// touch the Client's cached or shared session: callers decide that.
//
// See https://help.tableau.com/current/api/rest_api/en-us/REST/rest_api_ref_authentication.htm#sign_in.
func (c *Client) signIn(ctx context.Context, cr credentials) (*Session, error) {
	if cr == nil {
		return nil, ErrNoCredentials
	}
	creds, err := cr.signInBody(c.site, time.Now())
	if err != nil {
		return nil, fmt.Errorf("tableau: sign in to site %q: %w", c.site, err)
	}
	var reply struct {
		Credentials *struct {
			Token string `json:"token"`
			Site  struct {
				ID string `json:"id"`
			} `json:"site"`
			User struct {
				ID string `json:"id"`
			} `json:"user"`
		} `json:"credentials"`
	}
	r := &request{
		method: http.MethodPost,
		path:   "auth/signin",
		body: struct {
			Credentials any `json:"credentials"`
		}{creds},
		mode:   retryIdempotent, // a repeated sign-in just yields another session
		out:    &reply,
		secret: true,
	}
	if err := c.send(ctx, r); err != nil {
		return nil, &SignInError{Site: c.site, Credentials: cr.describe(), Err: err}
	}
	if reply.Credentials == nil || reply.Credentials.Token == "" || reply.Credentials.Site.ID == "" {
		return nil, fmt.Errorf("tableau: sign in to site %q: %w", c.site,
			&FormatError{StatusCode: http.StatusOK, Method: r.method, Path: "auth/signin",
				Received: "a reply without a token and site id"})
	}
	s := &Session{
		Token:     reply.Credentials.Token,
		SiteID:    reply.Credentials.Site.ID,
		UserID:    reply.Credentials.User.ID,
		CreatedAt: time.Now().UTC(),
	}
	c.logger.InfoContext(ctx, "tableau signed in", "site", c.site, "site_id", s.SiteID,
		"user_id", s.UserID, "auth", cr.kind())
	return s, nil
}

// SignIn makes sure the Client has a session now instead of on first use.
// With a SessionStore it adopts the session another instance stored rather
// than starting a new one, so it is safe to call from every Lambda instance.
//
// See https://help.tableau.com/current/api/rest_api/en-us/REST/rest_api_ref_authentication.htm#sign_in.
func (c *Client) SignIn(ctx context.Context) error {
	_, err := c.session(ctx)
	return err
}

// SignOut ends the Client's session. With a shared SessionStore this ends the
// session for every instance that shares it (they will sign in again on their
// next call), so Lambda handlers should not call it; it is for tools and
// tests that want to leave nothing behind.
//
// See https://help.tableau.com/current/api/rest_api/en-us/REST/rest_api_ref_authentication.htm#sign_out.
func (c *Client) SignOut(ctx context.Context) error {
	c.mu.Lock()
	s := c.sess
	c.sess = nil
	c.mu.Unlock()
	if s == nil {
		return nil
	}
	v, err := c.apiVersion(ctx)
	if err != nil {
		return err
	}
	r := &request{method: http.MethodPost, path: "auth/signout", version: v, mode: retryIdempotent}
	err = c.exchange(ctx, r, s)
	if errors.Is(err, ErrUnauthorized) {
		err = nil // already ended: the goal is reached
	}
	if err != nil {
		return fmt.Errorf("tableau: sign out: %w", err)
	}
	if _, key := c.auth(); c.store != nil {
		stored, lerr := c.store.Load(ctx, key)
		if lerr == nil && stored != nil && stored.Token == s.Token {
			if serr := c.store.Save(ctx, key, &Session{}); serr != nil {
				return &storeError{op: "clear", err: serr}
			}
		}
	}
	c.logger.InfoContext(ctx, "tableau signed out", "site", c.site)
	return nil
}
