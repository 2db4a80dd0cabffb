package tableautest

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestPATSignIn(t *testing.T) {
	tests := []struct {
		name        string
		opts        []Option
		body        string
		contentType string // default application/json
		wantStatus  int
		wantCode    string
	}{
		{name: "valid", body: patBody(testPAT, testPATSecret, ""), wantStatus: 200},
		{name: "named site", opts: []Option{WithSite("finance")}, body: patBody(testPAT, testPATSecret, "finance"), wantStatus: 200},
		{name: "wrong secret", body: patBody(testPAT, "nope", ""), wantStatus: 401, wantCode: codeSigninError},
		{name: "unknown PAT", body: patBody("other", testPATSecret, ""), wantStatus: 401, wantCode: codeSigninError},
		{name: "unknown site", body: patBody(testPAT, testPATSecret, "nosuchsite"), wantStatus: 401, wantCode: codeSigninError},
		{name: "default site when a named one is served", opts: []Option{WithSite("finance")}, body: patBody(testPAT, testPATSecret, ""), wantStatus: 401, wantCode: codeSigninError},
		{name: "no credentials", body: `{"site":{}}`, wantStatus: 400, wantCode: codeBadRequest},
		{name: "two kinds of credentials", body: `{"credentials":{"personalAccessTokenName":"a","personalAccessTokenSecret":"b","jwt":"c","site":{"contentUrl":""}}}`, wantStatus: 400, wantCode: codeBadRequest},
		{name: "username and password", body: `{"credentials":{"name":"admin","password":"pw","site":{"contentUrl":""}}}`, wantStatus: 401, wantCode: codeSigninError},
		{name: "JSON sent as XML", body: patBody(testPAT, testPATSecret, ""), contentType: "-", wantStatus: 400, wantCode: codeBadRequest},
		{name: "malformed JSON", body: `{"credentials":`, wantStatus: 400, wantCode: codeBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.opts...)
			req, _ := http.NewRequest("POST", e.api("auth/signin"), strings.NewReader(tt.body))
			req.Header.Set("Accept", "application/json")
			switch tt.contentType {
			case "":
				req.Header.Set("Content-Type", "application/json")
			case "-":
			default:
				req.Header.Set("Content-Type", tt.contentType)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var m map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d: %v", resp.StatusCode, tt.wantStatus, m)
			}
			if tt.wantCode != "" {
				if got := dig(m, "error", "code"); got != tt.wantCode {
					t.Errorf("code = %v, want %s", got, tt.wantCode)
				}
				return
			}
			if dig(m, "credentials", "token") == "" || dig(m, "credentials", "site", "id") != e.srv.SiteID() ||
				dig(m, "credentials", "user", "id") == nil || dig(m, "credentials", "estimatedTimeToExpiration") == nil {
				t.Errorf("credentials = %v", m)
			}
		})
	}
}

func TestTokensAreUnguessable(t *testing.T) {
	e := newEnv(t)
	a, b := e.signIn(), e.signIn()
	if a == b || len(a) < 40 {
		t.Errorf("tokens %q and %q", a, b)
	}
}

func TestOneSessionPerPAT(t *testing.T) {
	e := newEnv(t)
	e.srv.AddPAT("other", "other-secret")
	first := e.signIn()
	unrelated := e.signInPAT("other", "other-secret")
	if r := e.get(e.site("workbooks"), first); r.status != http.StatusOK {
		t.Fatalf("first session before the second sign-in: %d", r.status)
	}

	second := e.signIn()

	r := e.get(e.site("workbooks"), first)
	if r.status != http.StatusUnauthorized || r.code(t) != codeInvalidCredentials {
		t.Errorf("first session after a second sign-in with the same PAT: %d %s, want 401 %s", r.status, r.body, codeInvalidCredentials)
	}
	for name, tok := range map[string]string{"second": second, "other PAT": unrelated} {
		if r := e.get(e.site("workbooks"), tok); r.status != http.StatusOK {
			t.Errorf("%s session: %d %s", name, r.status, r.body)
		}
	}
	if n := e.srv.ActiveSessions(); n != 2 {
		t.Errorf("ActiveSessions = %d, want 2", n)
	}
}

func TestConnectedAppSessionsCoexist(t *testing.T) {
	e := newEnv(t)
	a, b := e.signInJWT(), e.signInJWT()
	for _, tok := range []string{a, b} {
		if r := e.get(e.site("workbooks"), tok); r.status != http.StatusOK {
			t.Errorf("JWT session: %d %s", r.status, r.body)
		}
	}
}

func TestConnectedAppJWT(t *testing.T) {
	tests := []struct {
		name   string
		secret string // signing secret; default the registered one
		change func(h, c map[string]any)
		raw    string // send this instead of a signed token
		wantOK bool
	}{
		{name: "valid", change: func(h, c map[string]any) {}, wantOK: true},
		{name: "aud as a list", change: func(h, c map[string]any) { c["aud"] = []string{"other", "tableau"} }, wantOK: true},
		{name: "exp exactly ten minutes ahead", change: func(h, c map[string]any) { c["exp"] = time.Now().Add(10 * time.Minute).Unix() }, wantOK: true},
		{name: "bad signature", secret: "not-the-secret", change: func(h, c map[string]any) {}},
		{name: "wrong aud", change: func(h, c map[string]any) { c["aud"] = "tableau-cloud" }},
		{name: "no aud", change: func(h, c map[string]any) { delete(c, "aud") }},
		{name: "exp too far ahead", change: func(h, c map[string]any) { c["exp"] = time.Now().Add(11 * time.Minute).Unix() }},
		{name: "expired", change: func(h, c map[string]any) { c["exp"] = time.Now().Add(-time.Minute).Unix() }},
		{name: "no exp", change: func(h, c map[string]any) { delete(c, "exp") }},
		{name: "no jti", change: func(h, c map[string]any) { delete(c, "jti") }},
		{name: "kid is not the secret id", change: func(h, c map[string]any) { h["kid"] = "other-secret-id" }},
		{name: "header iss is not the client id", change: func(h, c map[string]any) { h["iss"] = "other-client" }},
		{name: "claim iss unknown", change: func(h, c map[string]any) { c["iss"] = "other-client" }},
		{name: "unknown user", change: func(h, c map[string]any) { c["sub"] = "nobody@example.com" }},
		{name: "empty scp", change: func(h, c map[string]any) { c["scp"] = []string{} }},
		{name: "scp not a list", change: func(h, c map[string]any) { c["scp"] = "tableau:content:read" }},
		{name: "alg none", change: func(h, c map[string]any) { h["alg"] = "none" }},
		{name: "not a JWT", raw: "abc.def"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			token := tt.raw
			if token == "" {
				h, c := jwtParts()
				tt.change(h, c)
				secret := tt.secret
				if secret == "" {
					secret = testSecret
				}
				token = signJWT(t, h, c, secret)
			}
			r := e.post(e.api("auth/signin"), "", jwtBody(token, ""))
			if tt.wantOK {
				if r.status != http.StatusOK {
					t.Fatalf("status = %d: %s", r.status, r.body)
				}
				return
			}
			if r.status != http.StatusUnauthorized || r.code(t) != codeSigninError {
				t.Fatalf("got %d %s, want 401 %s", r.status, r.body, codeSigninError)
			}
		})
	}
}

func TestJWTCannotBeReused(t *testing.T) {
	e := newEnv(t)
	h, c := jwtParts()
	token := signJWT(t, h, c, testSecret)
	if r := e.post(e.api("auth/signin"), "", jwtBody(token, "")); r.status != http.StatusOK {
		t.Fatalf("first use: %d %s", r.status, r.body)
	}
	r := e.post(e.api("auth/signin"), "", jwtBody(token, ""))
	if r.status != http.StatusUnauthorized || r.code(t) != codeSigninError {
		t.Fatalf("reused jti: %d %s, want 401 %s", r.status, r.body, codeSigninError)
	}
}

func TestSessionChecks(t *testing.T) {
	tests := []struct {
		name       string
		opts       []Option
		token      func(e *env) string
		url        func(e *env) string
		wantStatus int
		wantCode   string
	}{
		{
			name:       "valid",
			token:      func(e *env) string { return e.signIn() },
			wantStatus: 200,
		},
		{
			name:       "no token",
			token:      func(e *env) string { return "" },
			wantStatus: 401, wantCode: codeNoCredentials,
		},
		{
			name:       "made-up token",
			token:      func(e *env) string { return "not-a-token" },
			wantStatus: 401, wantCode: codeInvalidCredentials,
		},
		{
			name:       "another site's LUID",
			token:      func(e *env) string { return e.signIn() },
			url:        func(e *env) string { return e.api("sites/" + newLUID() + "/workbooks") },
			wantStatus: 403, wantCode: codeWrongSite,
		},
		{
			name: "signed out",
			token: func(e *env) string {
				tok := e.signIn()
				if r := e.post(e.api("auth/signout"), tok, ""); r.status != http.StatusNoContent {
					e.t.Fatalf("sign out: %d %s", r.status, r.body)
				}
				return tok
			},
			wantStatus: 401, wantCode: codeInvalidCredentials,
		},
		{
			name: "expired by ExpireSessions",
			token: func(e *env) string {
				tok := e.signIn()
				e.srv.ExpireSessions()
				return tok
			},
			wantStatus: 401, wantCode: codeInvalidCredentials,
		},
		{
			name:       "expired by its TTL",
			opts:       []Option{WithSessionTTL(time.Nanosecond)},
			token:      func(e *env) string { return e.signIn() },
			wantStatus: 401, wantCode: codeInvalidCredentials,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.opts...)
			url := e.site("workbooks")
			if tt.url != nil {
				url = tt.url(e)
			}
			r := e.get(url, tt.token(e))
			if r.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d: %s", r.status, tt.wantStatus, r.body)
			}
			if tt.wantCode != "" && r.code(t) != tt.wantCode {
				t.Errorf("code = %s, want %s", r.code(t), tt.wantCode)
			}
		})
	}
}

func TestSignOutErrors(t *testing.T) {
	e := newEnv(t)
	if r := e.post(e.api("auth/signout"), "", ""); r.status != 401 || r.code(t) != codeNoCredentials {
		t.Errorf("sign out without a token: %d %s", r.status, r.body)
	}
	if r := e.post(e.api("auth/signout"), "junk", ""); r.status != 401 || r.code(t) != codeInvalidCredentials {
		t.Errorf("sign out with a junk token: %d %s", r.status, r.body)
	}
}

func TestRevokedPAT(t *testing.T) {
	e := newEnv(t)
	e.srv.RevokePAT(testPAT)
	r := e.post(e.api("auth/signin"), "", patBody(testPAT, testPATSecret, ""))
	if r.status != http.StatusUnauthorized || r.code(t) != codeSigninError {
		t.Fatalf("revoked PAT: %d %s", r.status, r.body)
	}
}
