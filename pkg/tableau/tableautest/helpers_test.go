package tableautest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// The tests speak raw HTTP, as a client would, and never use package tableau.

const (
	testPAT       = "bridge"
	testPATSecret = "pat-secret-value"
	testClientID  = "client-id-1"
	testSecretID  = "secret-id-1"
	testSecret    = "connected-app-secret-value"
	testUser      = "svc-bridge@example.com"
)

type env struct {
	t   *testing.T
	srv *Server
	ver string
}

// newEnv starts a server with a PAT, a connected app and a user, and closes it
// when the test ends.
func newEnv(t *testing.T, opts ...Option) *env {
	t.Helper()
	srv := NewServer(opts...)
	t.Cleanup(srv.Close)
	srv.AddPAT(testPAT, testPATSecret)
	srv.AddConnectedApp(testClientID, testSecretID, testSecret)
	srv.AddUser(testUser, RoleSiteAdministratorCreator)
	return &env{t: t, srv: srv, ver: srv.APIVersion()}
}

// api builds a URL under /api/{version}/.
func (e *env) api(path string) string {
	return e.srv.URL() + "/api/" + e.ver + "/" + path
}

// site builds a URL under /api/{version}/sites/{site-luid}/.
func (e *env) site(path string) string {
	return e.api("sites/" + e.srv.SiteID() + "/" + path)
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body, failing the test if it is not JSON.
func (r reply) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("reply %d is not JSON: %v\n%s", r.status, err, r.body)
	}
	return m
}

// code is the Tableau error code of a JSON error reply.
func (r reply) code(t *testing.T) string {
	t.Helper()
	s, _ := dig(r.json(t), "error", "code").(string)
	return s
}

type request struct {
	method string
	url    string
	token  string
	body   string
	// xml sends and accepts XML instead of JSON.
	xml bool
}

func send(t *testing.T, req request) reply {
	t.Helper()
	r, err := http.NewRequest(req.method, req.url, strings.NewReader(req.body))
	if err != nil {
		t.Fatal(err)
	}
	if !req.xml {
		r.Header.Set("Accept", "application/json")
		if req.body != "" {
			r.Header.Set("Content-Type", "application/json")
		}
	} else if req.body != "" {
		r.Header.Set("Content-Type", "text/xml")
	}
	if req.token != "" {
		r.Header.Set("X-Tableau-Auth", req.token)
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatalf("%s %s: %v", req.method, req.url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: body}
}

func (e *env) get(url, token string) reply {
	e.t.Helper()
	return send(e.t, request{method: "GET", url: url, token: token})
}

func (e *env) post(url, token, body string) reply {
	e.t.Helper()
	return send(e.t, request{method: "POST", url: url, token: token, body: body})
}

func (e *env) put(url, token, body string) reply {
	e.t.Helper()
	return send(e.t, request{method: "PUT", url: url, token: token, body: body})
}

func patBody(name, secret, site string) string {
	b, _ := json.Marshal(map[string]any{"credentials": map[string]any{
		"personalAccessTokenName":   name,
		"personalAccessTokenSecret": secret,
		"site":                      map[string]any{"contentUrl": site},
	}})
	return string(b)
}

func jwtBody(jwt, site string) string {
	b, _ := json.Marshal(map[string]any{"credentials": map[string]any{
		"jwt":  jwt,
		"site": map[string]any{"contentUrl": site},
	}})
	return string(b)
}

// signIn signs in with the test PAT and returns the token.
func (e *env) signIn() string {
	e.t.Helper()
	return e.signInPAT(testPAT, testPATSecret)
}

func (e *env) signInPAT(name, secret string) string {
	e.t.Helper()
	r := e.post(e.api("auth/signin"), "", patBody(name, secret, ""))
	if r.status != http.StatusOK {
		e.t.Fatalf("sign in with PAT %s: %d %s", name, r.status, r.body)
	}
	tok, _ := dig(r.json(e.t), "credentials", "token").(string)
	if tok == "" {
		e.t.Fatalf("sign in reply has no token: %s", r.body)
	}
	return tok
}

// jwtParts returns a valid header and claim set for the test connected app;
// tests change them to break one rule at a time.
func jwtParts() (header, claims map[string]any) {
	header = map[string]any{"alg": "HS256", "typ": "JWT", "kid": testSecretID, "iss": testClientID}
	claims = map[string]any{
		"iss": testClientID,
		"sub": testUser,
		"aud": "tableau",
		"exp": time.Now().Add(5 * time.Minute).Unix(),
		"jti": newLUID(),
		"scp": []string{"tableau:content:read", "tableau:tasks:run", "tableau:jobs:read"},
	}
	return header, claims
}

func signJWT(t *testing.T, header, claims map[string]any, secret string) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	unsigned := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(unsigned))
	return unsigned + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func (e *env) signInJWT() string {
	e.t.Helper()
	h, c := jwtParts()
	r := e.post(e.api("auth/signin"), "", jwtBody(signJWT(e.t, h, c, testSecret), ""))
	if r.status != http.StatusOK {
		e.t.Fatalf("sign in with JWT: %d %s", r.status, r.body)
	}
	return dig(r.json(e.t), "credentials", "token").(string)
}

// dig walks nested JSON objects; it returns nil when a key is missing.
func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// names lists the "name" of each element of a list reply such as
// {"workbooks":{"workbook":[...]}}.
func names(t *testing.T, m map[string]any, list, elem string) []string {
	t.Helper()
	items, _ := dig(m, list, elem).([]any)
	var out []string
	for _, it := range items {
		out = append(out, dig(it, "name").(string))
	}
	return out
}

// eventually polls cond until it holds; the deadline is generous because the
// machine running the tests may be busy. Nothing asserts how long it took.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// receiver is a webhook destination that records what it is sent.
type receiver struct {
	srv *httptest.Server

	mu       sync.Mutex
	got      []received
	failures int // answer 500 to this many requests first
	status   int
	reply    string
}

type received struct {
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	rc := &receiver{status: http.StatusOK}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, received{header: r.Header.Clone(), body: body})
		fail := rc.failures > 0
		if fail {
			rc.failures--
		}
		status, text := rc.status, rc.reply
		rc.mu.Unlock()
		if fail {
			http.Error(w, "try again", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, text)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) received() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

// events decodes the JSON payloads received so far.
func (rc *receiver) events(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, r := range rc.received() {
		var m map[string]any
		if len(r.body) == 0 {
			continue
		}
		if err := json.Unmarshal(r.body, &m); err != nil {
			t.Fatalf("webhook payload is not JSON: %v: %s", err, r.body)
		}
		out = append(out, m)
	}
	return out
}

func webhookBody(name, event, url string) string {
	b, _ := json.Marshal(map[string]any{"webhook": map[string]any{
		"name":  name,
		"event": event,
		"webhook-destination": map[string]any{
			"webhook-destination-http": map[string]any{"method": "POST", "url": url},
		},
	}})
	return string(b)
}

// createWebhook registers a webhook and returns its LUID.
func (e *env) createWebhook(token, name, event, url string) string {
	e.t.Helper()
	r := e.post(e.site("webhooks"), token, webhookBody(name, event, url))
	if r.status != http.StatusCreated {
		e.t.Fatalf("create webhook: %d %s", r.status, r.body)
	}
	return dig(r.json(e.t), "webhook", "id").(string)
}

// refresh starts a refresh and returns the job LUID.
func (e *env) refresh(token, kind, id string) string {
	e.t.Helper()
	r := e.post(e.site(kind+"s/"+id+"/refresh"), token, "{}")
	if r.status != http.StatusAccepted {
		e.t.Fatalf("refresh %s %s: %d %s", kind, id, r.status, r.body)
	}
	return dig(r.json(e.t), "job", "id").(string)
}
