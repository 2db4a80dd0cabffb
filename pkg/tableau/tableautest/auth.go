package tableautest

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Site roles that matter to the simulator. Tableau has more; any string is
// accepted and roles outside these behave like Explorer.
const (
	RoleServerAdministrator      = "ServerAdministrator"
	RoleSiteAdministratorCreator = "SiteAdministratorCreator"
	RoleCreator                  = "Creator"
	RoleExplorer                 = "Explorer"
	RoleViewer                   = "Viewer"
	RoleUnlicensed               = "Unlicensed"
)

// jwtMaxLifetime is how far ahead a connected-app JWT may expire. A few seconds
// of slack stand in for clock skew so a client that asks for exactly ten minutes
// is not refused for the time the request spent in flight.
const (
	jwtMaxLifetime = 10 * time.Minute
	jwtSkew        = 5 * time.Second
)

type user struct {
	id       string
	name     string
	siteRole string
}

func (u *user) isAdmin() bool {
	return u.siteRole == RoleServerAdministrator || strings.HasPrefix(u.siteRole, "SiteAdministrator")
}

// canRefresh approximates Tableau's permission model: viewers and unlicensed
// users cannot run extract refreshes.
func (u *user) canRefresh() bool {
	return u.siteRole != RoleViewer && u.siteRole != RoleUnlicensed
}

type pat struct {
	name   string
	secret string
	user   *user
}

type connectedApp struct {
	clientID    string
	secretID    string
	secretValue string
}

type session struct {
	token   string
	siteID  string
	user    *user
	patName string // "" for connected-app sessions
	scopes  []string
	expires time.Time
}

// AddUser adds a site user and returns its LUID. The username is what a
// connected-app JWT names in its sub claim. Adding an existing username returns
// the existing user's LUID and changes its role.
func (s *Server) AddUser(username, siteRole string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addUserLocked(username, siteRole).id
}

func (s *Server) addUserLocked(username, siteRole string) *user {
	if u, ok := s.usersByName[username]; ok {
		u.siteRole = siteRole
		return u
	}
	u := &user{id: newLUID(), name: username, siteRole: siteRole}
	s.users[u.id] = u
	s.usersByName[username] = u
	return u
}

// AddPAT registers a personal access token belonging to a site administrator.
func (s *Server) AddPAT(name, secret string) {
	s.AddPATWithRole(name, secret, RoleSiteAdministratorCreator)
}

// AddPATWithRole registers a personal access token whose owner has the given
// site role, e.g. RoleViewer to test permission errors. Each PAT gets its own
// user, named "pat-" + name.
func (s *Server) AddPATWithRole(name, secret, siteRole string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.addUserLocked("pat-"+name, siteRole)
	s.pats[name] = &pat{name: name, secret: secret, user: u}
}

// RevokePAT deletes a personal access token, as an administrator or the token's
// expiry would: later sign-ins with it fail with 401001. Its current session, if
// any, is left alone.
func (s *Server) RevokePAT(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.pats, name)
}

// AddConnectedApp registers a connected app with direct trust: JWTs signed with
// secretValue (HS256), with kid = secretID and iss = clientID, can sign in.
func (s *Server) AddConnectedApp(clientID, secretID, secretValue string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apps[clientID] = &connectedApp{clientID: clientID, secretID: secretID, secretValue: secretValue}
}

// ExpireSessions makes every current token invalid, as if their sessions timed
// out; calls with them get 401002.
func (s *Server) ExpireSessions() {
	s.mu.Lock()
	defer s.mu.Unlock()
	past := time.Now().Add(-time.Second)
	for _, sess := range s.sessions {
		sess.expires = past
	}
}

// ActiveSessions counts sessions that are neither ended nor expired.
func (s *Server) ActiveSessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	n := 0
	for _, sess := range s.sessions {
		if now.Before(sess.expires) {
			n++
		}
	}
	return n
}

func (s *Server) signIn(c *call, _ []string) error {
	req, err := c.decode()
	if err != nil {
		return err
	}
	cred := obj(req, "credentials")
	if cred == nil {
		return errBadRequest("The request body must contain a credentials element.")
	}
	contentURL := str(obj(cred, "site"), "contentUrl")
	patName, jwt, name := str(cred, "personalAccessTokenName"), str(cred, "jwt"), str(cred, "name")
	kinds := 0
	for _, v := range []string{patName, jwt, name} {
		if v != "" {
			kinds++
		}
	}
	if kinds != 1 {
		return errBadRequest("Please provide either name and password or clientId and personalAccessToken.")
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if !strings.EqualFold(contentURL, s.site.contentURL) {
		return errSignin()
	}
	sess := &session{siteID: s.site.id, expires: time.Now().Add(s.cfg.sessionTTL)}
	switch {
	case patName != "":
		p := s.pats[patName]
		secret := str(cred, "personalAccessTokenSecret")
		if p == nil || subtle.ConstantTimeCompare([]byte(p.secret), []byte(secret)) != 1 {
			return errSignin()
		}
		// One session per PAT: signing in again ends the earlier session, whose
		// holder then gets 401002. Lambdas sharing a PAT log each other out.
		if old, ok := s.patSessions[patName]; ok {
			delete(s.sessions, old)
		}
		sess.user, sess.patName = p.user, patName
	case jwt != "":
		u, scopes, err := s.verifyJWTLocked(jwt)
		if err != nil {
			return errSignin()
		}
		sess.user, sess.scopes = u, scopes
	default:
		// The simulator has no passwords: username sign-in always fails.
		return errSignin()
	}
	sess.token = newToken(s.site.id)
	s.sessions[sess.token] = sess
	if sess.patName != "" {
		s.patSessions[sess.patName] = sess.token
	}
	return c.reply(http.StatusOK, el("credentials",
		"token", sess.token,
		"estimatedTimeToExpiration", durationHMS(s.cfg.sessionTTL),
	).add(
		el("site", "id", s.site.id, "contentUrl", s.site.contentURL),
		el("user", "id", sess.user.id),
	))
}

func (s *Server) signOut(c *call, _ []string) error {
	tok := c.r.Header.Get("X-Tableau-Auth")
	if tok == "" {
		return errNoCredentials()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[tok]
	if !ok || !time.Now().Before(sess.expires) {
		s.endSessionLocked(tok)
		return errInvalidCredentials()
	}
	s.endSessionLocked(tok)
	return c.noContent(http.StatusNoContent)
}

func (s *Server) endSessionLocked(tok string) {
	sess, ok := s.sessions[tok]
	if !ok {
		return
	}
	delete(s.sessions, tok)
	if sess.patName != "" && s.patSessions[sess.patName] == tok {
		delete(s.patSessions, sess.patName)
	}
}

// authenticate finds the live session named by X-Tableau-Auth.
func (s *Server) authenticate(r *http.Request) (*session, error) {
	tok := r.Header.Get("X-Tableau-Auth")
	if tok == "" {
		return nil, errNoCredentials()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[tok]
	if !ok {
		return nil, errInvalidCredentials()
	}
	if !time.Now().Before(sess.expires) {
		s.endSessionLocked(tok)
		return nil, errInvalidCredentials()
	}
	return sess, nil
}

func errNoCredentials() *apiError {
	return newError(http.StatusUnauthorized, codeNoCredentials, "No authentication credentials were provided")
}

func errInvalidCredentials() *apiError {
	return newError(http.StatusUnauthorized, codeInvalidCredentials, "Invalid authentication credentials were provided")
}

// verifyJWTLocked checks a connected-app (direct trust) JWT the way Tableau
// documents it and returns the user it signs in as.
func (s *Server) verifyJWTLocked(token string) (*user, []string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, nil, errors.New("jwt: not three parts")
	}
	var header struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Iss string `json:"iss"`
	}
	if err := decodeSegment(parts[0], &header); err != nil {
		return nil, nil, fmt.Errorf("jwt header: %w", err)
	}
	var claims struct {
		Iss string          `json:"iss"`
		Sub string          `json:"sub"`
		Aud json.RawMessage `json:"aud"`
		Exp *float64        `json:"exp"`
		Jti string          `json:"jti"`
		Scp json.RawMessage `json:"scp"`
	}
	if err := decodeSegment(parts[1], &claims); err != nil {
		return nil, nil, fmt.Errorf("jwt claims: %w", err)
	}
	if header.Alg != "HS256" {
		return nil, nil, fmt.Errorf("jwt: alg %q", header.Alg)
	}
	app := s.apps[claims.Iss]
	if app == nil || header.Iss != app.clientID || header.Kid != app.secretID {
		return nil, nil, errors.New("jwt: unknown connected app or secret")
	}
	mac := hmac.New(sha256.New, []byte(app.secretValue))
	mac.Write([]byte(parts[0] + "." + parts[1]))
	sig, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[2], "="))
	if err != nil || !hmac.Equal(sig, mac.Sum(nil)) {
		return nil, nil, errors.New("jwt: bad signature")
	}
	if !audienceIsTableau(claims.Aud) {
		return nil, nil, errors.New("jwt: aud is not tableau")
	}
	now := time.Now()
	if claims.Exp == nil || *claims.Exp > 1e11 {
		return nil, nil, errors.New("jwt: no usable exp")
	}
	exp := time.Unix(0, int64(*claims.Exp*float64(time.Second)))
	if !exp.After(now) || exp.After(now.Add(jwtMaxLifetime+jwtSkew)) {
		return nil, nil, errors.New("jwt: exp in the past or more than 10 minutes ahead")
	}
	if claims.Jti == "" || s.usedJTI[claims.Jti] {
		return nil, nil, errors.New("jwt: jti missing or reused")
	}
	var scopes []string
	if err := json.Unmarshal(claims.Scp, &scopes); err != nil || len(scopes) == 0 {
		return nil, nil, errors.New("jwt: scp must be a non-empty list")
	}
	u := s.usersByName[claims.Sub]
	if u == nil {
		return nil, nil, errors.New("jwt: unknown sub")
	}
	s.usedJTI[claims.Jti] = true
	return u, scopes, nil
}

func decodeSegment(seg string, v any) error {
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(seg, "="))
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, v)
}

// audienceIsTableau accepts aud as "tableau" or as a list containing it, both
// valid JWT forms.
func audienceIsTableau(raw json.RawMessage) bool {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return one == "tableau"
	}
	var many []string
	if json.Unmarshal(raw, &many) == nil {
		for _, a := range many {
			if a == "tableau" {
				return true
			}
		}
	}
	return false
}

// newToken makes an unguessable token shaped like Tableau Cloud's
// ("random|random|site-luid"), so clients that mangle "|" in headers fail here
// as they would there.
func newToken(siteID string) string {
	var a, b [24]byte
	if _, err := rand.Read(a[:]); err != nil {
		panic("tableautest: crypto/rand failed: " + err.Error())
	}
	if _, err := rand.Read(b[:]); err != nil {
		panic("tableautest: crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(a[:]) + "|" + base64.RawURLEncoding.EncodeToString(b[:]) + "|" + siteID
}

// durationHMS renders a session length as Tableau's "hours:minutes:seconds".
func durationHMS(d time.Duration) string {
	secs := int64(d / time.Second)
	return fmt.Sprintf("%d:%02d:%02d", secs/3600, secs/60%60, secs%60)
}
