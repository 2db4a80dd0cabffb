package tableautest

import "strings"

// Connected-app scopes. A session signed in with a JWT may call only the
// methods its scp claim covers; any other call gets what Tableau answers
// then: 401 with code 401002, "Invalid authentication credentials were
// provided" — the same reply as for an expired session (the official
// Python client's issues #1320 and #1581, Tableau's connected-apps-jwt-
// samples issue #13). PAT sessions are not scoped.
//
// Scope names are from Tableau's "Access Scopes for Connected Apps" and the
// REST reference's per-method "JWT Access Scope": tableau:content:read for
// reading content and the Metadata API, tableau:tasks:run for Update
// Workbook Now and Update Data Source Now, tableau:jobs:read and
// tableau:jobs:update for jobs. The webhook methods' names follow the same
// tableau:<resource>:<action> pattern but could not be confirmed in
// Tableau's published material, nor could the data quality warning
// methods': the simulator holds JWTs to them anyway, so that a connected
// app used for them is tested against the strictest reading.
//
// See https://help.tableau.com/current/online/en-us/connected_apps_scopes.htm.
const (
	scopeContentRead = "tableau:content:read"
	scopeTasksRun    = "tableau:tasks:run"
	scopeJobsRead    = "tableau:jobs:read"
	scopeJobsUpdate  = "tableau:jobs:update"
)

// routeScopes is the scope each endpoint under sites/{site} needs, keyed by
// method and route path.
var routeScopes = map[string]string{
	"GET sites/*/workbooks":              scopeContentRead,
	"GET sites/*/workbooks/*":            scopeContentRead,
	"POST sites/*/workbooks/*/refresh":   scopeTasksRun,
	"GET sites/*/datasources":            scopeContentRead,
	"GET sites/*/datasources/*":          scopeContentRead,
	"POST sites/*/datasources/*/refresh": scopeTasksRun,
	"GET sites/*/jobs":                   scopeJobsRead,
	"GET sites/*/jobs/*":                 scopeJobsRead,
	"PUT sites/*/jobs/*":                 scopeJobsUpdate,
	"GET sites/*/webhooks":               "tableau:webhooks:read",
	"POST sites/*/webhooks":              "tableau:webhooks:create",
	"GET sites/*/webhooks/*":             "tableau:webhooks:read",
	"PUT sites/*/webhooks/*":             "tableau:webhooks:update",
	"DELETE sites/*/webhooks/*":          "tableau:webhooks:delete",
	"GET sites/*/webhooks/*/test":        "tableau:webhooks:read",
	// Data quality warnings: unconfirmed names, as the webhooks'.
	"POST sites/*/dataQualityWarnings/*/*":   "tableau:data_quality_warnings:create",
	"GET sites/*/dataQualityWarnings/*/*":    "tableau:data_quality_warnings:read",
	"DELETE sites/*/dataQualityWarnings/*/*": "tableau:data_quality_warnings:delete",
	"GET sites/*/dataQualityWarnings/*":      "tableau:data_quality_warnings:read",
	"PUT sites/*/dataQualityWarnings/*":      "tableau:data_quality_warnings:update",
	"DELETE sites/*/dataQualityWarnings/*":   "tableau:data_quality_warnings:delete",
}

// ScopeFor returns the connected-app scope the simulator holds a JWT session
// to for method on a route such as "sites/*/jobs/*" ("" when none).
func ScopeFor(method, route string) string { return routeScopes[method+" "+route] }

// checkScope refuses a JWT session whose scopes do not cover rt.
func (s *Server) checkScope(c *call, rt *route) error {
	return sessionScope(c.sess, routeScopes[rt.method+" "+rt.path])
}

// sessionScope refuses a JWT session without need. An endpoint the table
// does not list takes no JWT at all, as Tableau's methods without a "JWT
// Access Scope" do.
func sessionScope(sess *session, need string) error {
	if !sess.jwt() {
		return nil
	}
	if need == "" {
		return errInvalidCredentials()
	}
	for _, have := range sess.scopes {
		if grants(have, need) {
			return nil
		}
	}
	return errInvalidCredentials()
}

// jwt reports a session a connected app's JWT opened (its scp is never
// empty).
func (s *session) jwt() bool { return s != nil && len(s.scopes) > 0 }

// grants reports whether scope have covers need: the same scope, or the
// resource's wildcard action (tableau:jobs:* covers tableau:jobs:read).
func grants(have, need string) bool {
	if have == need {
		return true
	}
	res, act, ok := strings.Cut(strings.TrimPrefix(have, "tableau:"), ":")
	nres, _, nok := strings.Cut(strings.TrimPrefix(need, "tableau:"), ":")
	return ok && nok && act == "*" && res == nres
}
