package tableautest

import (
	"fmt"
	"net/http"
	"strconv"
)

// Tableau error codes the simulator sends. Tableau puts a six-digit code in every
// error body ({"error":{"summary","detail","code"}}); clients branch on it, so the
// codes matter as much as the HTTP status. Where a code was confirmed in public
// material the source is named; the others are the best available reading of the
// REST API reference and are listed as such in the package documentation.
const (
	// codeBadRequest is Tableau's generic 400, e.g. for a sign-in that mixes
	// credential kinds (tableau/server-client-python test asset
	// auth_sign_in_multiple_credentials_error.xml).
	codeBadRequest = "400000"
	// codeInvalidPageNumber and codeInvalidPageSize reject paging parameters that
	// are not integers or are out of range.
	codeInvalidPageNumber = "400006"
	codeInvalidPageSize   = "400007"
	// codeInvalidFilter: "The filter query contains a key which is not recognized
	// for this api version" (server-client-python issue #438).
	codeInvalidFilter = "400065"
	// codeWebhookTestUnknown is what Test a Webhook answers for a webhook that does
	// not exist (tableau/webhooks-docs README).
	codeWebhookTestUnknown = "400113"

	// codeNoCredentials: no X-Tableau-Auth header at all ("No authentication
	// credentials were provided", Salesforce knowledge article 001498381).
	codeNoCredentials = "401000"
	// codeSigninError: bad, revoked or unknown PAT / JWT, or an unknown site
	// (server-client-python asset auth_sign_in_error.xml).
	codeSigninError = "401001"
	// codeInvalidCredentials: a token that is unknown, ended or expired.
	codeInvalidCredentials = "401002"

	// codeForbidden: the signed-in user may not do this (a 403004 was seen for a
	// user not allowed to query a data source, tableau/rest-api-samples #95).
	codeForbidden = "403004"
	// codeWrongSite: the site LUID in the URI is not the site of the session.
	codeWrongSite = "403000"

	// codeVersionUnavailable: the API version in the URI is not served (too high,
	// or too low for the endpoint). server-client-python maps 404001 to
	// EndpointUnavailableError when probing serverinfo.
	codeVersionUnavailable = "404001"
	// codeUnknownResource: no such endpoint, or no such job/webhook.
	// server-client-python maps 404003 to ServerInfoEndpointNotFoundError.
	codeUnknownResource   = "404003"
	codeWorkbookMissing   = "404006"
	codeDatasourceMissing = "404011"
	codeJobMissing        = codeUnknownResource
	codeWebhookMissing    = codeUnknownResource

	codeMethodNotAllowed = "405000"

	// codeExtractNotAllowed: refresh of an item that has no extract.
	codeExtractNotAllowed = "409090"
	// codeDuplicateJob: a refresh of the same item is already queued or running
	// (server-client-python asset datasource_refresh_duplicate.xml).
	codeDuplicateJob = "409093"
	// codeJobFinished: cancel of a job that has already finished.
	codeJobFinished = "409000"
)

// apiError is a reply the simulator sends instead of a success body.
type apiError struct {
	status  int
	code    string
	summary string
	detail  string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%d %s: %s: %s", e.status, e.code, e.summary, e.detail)
}

// newError builds an error with the summary Tableau uses for that status, so
// handlers only state the code and the specific detail.
func newError(status int, code, detail string) *apiError {
	return &apiError{status: status, code: code, summary: summaryFor(status, code), detail: detail}
}

func summaryFor(status int, code string) string {
	switch {
	case code == codeSigninError:
		return "Signin Error"
	case status == http.StatusBadRequest:
		return "Bad Request"
	case status == http.StatusUnauthorized:
		return "Unauthorized Access"
	case status == http.StatusForbidden:
		return "Forbidden"
	case status == http.StatusNotFound:
		return "Resource Not Found"
	case status == http.StatusMethodNotAllowed:
		return "Method Not Allowed"
	case status == http.StatusConflict:
		return "Resource Conflict"
	case status == http.StatusTooManyRequests:
		return "Too Many Requests"
	}
	return http.StatusText(status)
}

// defaultCode gives an injected fault a code when the test did not name one,
// following Tableau's habit of status*1000 for generic errors.
func defaultCode(status int) string {
	return strconv.Itoa(status * 1000)
}

func errBadRequest(detail string) *apiError {
	return newError(http.StatusBadRequest, codeBadRequest, detail)
}

func errSignin() *apiError {
	return newError(http.StatusUnauthorized, codeSigninError, "Error signing in to Tableau Server")
}

func errUnknownResource(detail string) *apiError {
	return newError(http.StatusNotFound, codeUnknownResource, detail)
}

func errForbidden(detail string) *apiError {
	return newError(http.StatusForbidden, codeForbidden, detail)
}

// errorNode renders an apiError as Tableau's <error code><summary/><detail/></error>.
func errorNode(e *apiError) *node {
	return el("error", "code", e.code).
		add(textEl("summary", e.summary), textEl("detail", e.detail))
}
