package tableautest

import (
	"net/http"
	"testing"
)

// signInJWTScopes signs in with the test connected app and the given scp.
func (e *env) signInJWTScopes(scopes ...string) string {
	e.t.Helper()
	h, c := jwtParts()
	c["scp"] = scopes
	r := e.post(e.api("auth/signin"), "", jwtBody(signJWT(e.t, h, c, testSecret), ""))
	if r.status != http.StatusOK {
		e.t.Fatalf("sign in with JWT: %d %s", r.status, r.body)
	}
	return dig(r.json(e.t), "credentials", "token").(string)
}

// TestScopes: a JWT session may call only what its scopes cover, and from
// the API version Tableau takes JWTs there; anything else gets Tableau's
// 401002. PAT sessions are not scoped.
func TestScopes(t *testing.T) {
	const (
		content = "tableau:content:read"
		run     = "tableau:tasks:run"
		jobs    = "tableau:jobs:read"
	)
	tests := []struct {
		name    string
		version string
		pat     bool
		scopes  []string
		call    func(e *env, tok, wb, job string) reply
		want    int
	}{
		{"content read lists workbooks", "3.27", false, []string{content},
			func(e *env, tok, _, _ string) reply { return e.get(e.site("workbooks"), tok) }, http.StatusOK},
		{"content read does not refresh", "3.27", false, []string{content},
			func(e *env, tok, wb, _ string) reply { return e.post(e.site("workbooks/"+wb+"/refresh"), tok, "{}") }, http.StatusUnauthorized},
		{"tasks run refreshes", "3.27", false, []string{run},
			func(e *env, tok, wb, _ string) reply { return e.post(e.site("workbooks/"+wb+"/refresh"), tok, "{}") }, http.StatusAccepted},
		{"tasks run does not list", "3.27", false, []string{run},
			func(e *env, tok, _, _ string) reply { return e.get(e.site("datasources"), tok) }, http.StatusUnauthorized},
		{"jobs read reads a job", "3.25", false, []string{jobs},
			func(e *env, tok, _, job string) reply { return e.get(e.site("jobs/"+job), tok) }, http.StatusOK},
		{"a job with a JWT before 3.25", "3.24", false, []string{jobs},
			func(e *env, tok, _, job string) reply { return e.get(e.site("jobs/"+job), tok) }, http.StatusUnauthorized},
		{"without jobs read, no job", "3.27", false, []string{content, run},
			func(e *env, tok, _, job string) reply { return e.get(e.site("jobs/"+job), tok) }, http.StatusUnauthorized},
		{"Query Jobs with a JWT before 3.27", "3.26", false, []string{jobs},
			func(e *env, tok, _, _ string) reply { return e.get(e.site("jobs"), tok) }, http.StatusUnauthorized},
		{"Query Jobs with a JWT from 3.27", "3.27", false, []string{jobs},
			func(e *env, tok, _, _ string) reply { return e.get(e.site("jobs"), tok) }, http.StatusOK},
		{"a resource wildcard covers its actions", "3.27", false, []string{"tableau:jobs:*"},
			func(e *env, tok, _, _ string) reply { return e.get(e.site("jobs"), tok) }, http.StatusOK},
		{"a wildcard covers its resource only", "3.27", false, []string{"tableau:jobs:*"},
			func(e *env, tok, _, _ string) reply { return e.get(e.site("workbooks"), tok) }, http.StatusUnauthorized},
		{"cancel needs jobs update", "3.27", false, []string{jobs},
			func(e *env, tok, _, job string) reply { return e.put(e.site("jobs/"+job), tok, "") }, http.StatusUnauthorized},
		{"the Metadata API needs content read", "3.27", false, []string{run},
			func(e *env, tok, _, _ string) reply {
				return e.post(e.srv.URL()+metadataPath, tok, `{"query":"{ workbooks { luid } }"}`)
			}, http.StatusUnauthorized},
		{"the Metadata API with content read", "3.27", false, []string{content},
			func(e *env, tok, _, _ string) reply {
				return e.post(e.srv.URL()+metadataPath, tok, `{"query":"{ workbooks { luid } }"}`)
			}, http.StatusOK},
		{"webhooks need their own scope", "3.27", false, []string{content, run, jobs},
			func(e *env, tok, _, _ string) reply { return e.get(e.site("webhooks"), tok) }, http.StatusUnauthorized},
		{"webhooks with theirs", "3.27", false, []string{"tableau:webhooks:read"},
			func(e *env, tok, _, _ string) reply { return e.get(e.site("webhooks"), tok) }, http.StatusOK},
		{"a PAT is not scoped", "3.23", true, nil,
			func(e *env, tok, _, job string) reply { return e.get(e.site("jobs/"+job), tok) }, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, WithAPIVersion(tt.version), WithJobTimings(-1, -1))
			wb := e.srv.AddWorkbook("Sales", "Finance")
			other := e.srv.AddWorkbook("Other", "Finance")
			job := e.refresh(e.signIn(), "workbook", other)
			tok := e.signIn()
			if !tt.pat {
				tok = e.signInJWTScopes(tt.scopes...)
			}
			r := tt.call(e, tok, wb, job)
			if r.status != tt.want {
				t.Fatalf("status %d, want %d: %s", r.status, tt.want, r.body)
			}
			if tt.want == http.StatusUnauthorized {
				// Tableau's reply says nothing of scopes: the same as an ended session.
				if c := r.code(t); c != codeInvalidCredentials {
					t.Errorf("code %s, want %s", c, codeInvalidCredentials)
				}
				if s, _ := dig(r.json(t), "error", "detail").(string); s != "Invalid authentication credentials were provided" {
					t.Errorf("detail %q", s)
				}
			}
		})
	}
}

// TestScopesRefuseEveryRoute: every site route names its scope, so a JWT
// without any of them is refused everywhere under the site.
func TestScopesRefuseEveryRoute(t *testing.T) {
	for _, rt := range routes {
		if !rt.site {
			continue
		}
		if ScopeFor(rt.method, rt.path) == "" {
			t.Errorf("%s %s has no scope", rt.method, rt.path)
		}
	}
	e := newEnv(t, WithAPIVersion("3.27"))
	tok := e.signInJWTScopes("tableau:views:download")
	for _, path := range []string{"workbooks", "datasources", "jobs", "webhooks"} {
		if r := e.get(e.site(path), tok); r.status != http.StatusUnauthorized {
			t.Errorf("GET %s: %d %s", path, r.status, r.body)
		}
	}
}
