package tableau

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/remote"
)

// Tableau error codes this package gives a meaning to.
// See https://help.tableau.com/current/api/rest_api/en-us/REST/rest_api_ref_errors.htm.
const (
	CodeSignInError         = "401000" // generic sign-in/authentication failure
	CodeBadCredentials      = "401001" // PAT or JWT rejected: bad, expired or revoked
	CodeSessionEnded        = "401002" // token no longer valid: expired, signed out or replaced
	CodeNoExtract           = "409090" // extract operation not allowed: the item has no extract
	CodeAlreadyQueued       = "409093" // a refresh of this item is already queued
	CodeTooManyRequests     = "429000"
	CodeWebhookTestNotFound = "400113"
)

// Sentinel errors, matched with errors.Is against *Error and the other error
// types of this package.
var (
	// ErrNotFound matches a 404 reply and *NotFoundError.
	ErrNotFound = errors.New("tableau: not found")
	// ErrAmbiguous matches *AmbiguousError.
	ErrAmbiguous = errors.New("tableau: name is ambiguous")
	// ErrUnauthorized matches any 401 reply.
	ErrUnauthorized = errors.New("tableau: unauthorized")
	// ErrBadCredentials matches a 401 with code 401001: the PAT or connected app
	// was rejected at sign-in, so retrying cannot help.
	ErrBadCredentials = errors.New("tableau: credentials rejected")
	// ErrForbidden matches a 403 reply.
	ErrForbidden = errors.New("tableau: forbidden")
	// ErrNoExtract matches a 409 with code 409090: the workbook or data source
	// has no extract to refresh, which is a configuration error.
	ErrNoExtract = errors.New("tableau: item has no extract to refresh")
	// ErrConflict matches any 409 reply.
	ErrConflict = errors.New("tableau: conflict")
	// ErrRateLimited matches a 429 reply.
	ErrRateLimited = errors.New("tableau: rate limited")
	// ErrServer matches a 5xx reply.
	ErrServer = errors.New("tableau: server error")
	// ErrNoCredentials is returned by calls that need a session when the Client
	// was built without WithPAT or WithConnectedApp.
	ErrNoCredentials = errors.New("tableau: no credentials configured")
	// ErrUnsupportedVersion is returned when a call needs a newer REST API
	// version than the Client uses.
	ErrUnsupportedVersion = errors.New("tableau: REST API version too old for this call")
	// ErrBadReply matches *FormatError: the server answered with something
	// that is not the JSON this package asked for.
	ErrBadReply = errors.New("tableau: unexpected reply")
	// ErrJobFailed matches a *JobError for a job that finished with code 1.
	ErrJobFailed = errors.New("tableau: job failed")
	// ErrJobCancelled matches a *JobError for a job that was cancelled.
	ErrJobCancelled = errors.New("tableau: job cancelled")
	// ErrScope matches *ScopeError: a connected app's JWT lacks the scope a
	// call needs.
	ErrScope = errors.New("tableau: connected app lacks a scope")
)

// ScopeError is a call Tableau refused to a connected app's session with
// 401002 even right after a fresh sign-in: its answer when the JWT's scp
// claim lacks the scope the method needs (or the method takes no JWT at
// the server's API version). No retry fixes it; the connected app's scopes
// (ConnectedApp.Scopes) must.
//
// See https://help.tableau.com/current/online/en-us/connected_apps_scopes.htm.
type ScopeError struct {
	Need    string   // the scope the call needs as this package knows it; "" when unknown
	Granted []string // the scopes the JWT carried
	Err     error    // Tableau's reply
}

func (e *ScopeError) Error() string {
	need := "the scope this call needs"
	if e.Need != "" {
		need = e.Need
	}
	return fmt.Sprintf("tableau: the connected app's JWT lacks %s (it carries %s): %v", need, strings.Join(e.Granted, ", "), e.Err)
}

// Unwrap returns Tableau's reply.
func (e *ScopeError) Unwrap() error { return e.Err }

// Is matches ErrScope.
func (e *ScopeError) Is(target error) bool { return target == ErrScope }

// SignInError is a failed sign-in. Credentials names what was used (e.g.
// personal access token "refresh-bot"), never a secret, so that the person
// who must fix them knows which. errors.Is(err, ErrBadCredentials) tells a
// rejection, which no retry fixes, from Tableau being unreachable.
type SignInError struct {
	Site        string
	Credentials string
	Err         error
}

func (e *SignInError) Error() string {
	return fmt.Sprintf("tableau: sign in to site %q with %s: %v", e.Site, e.Credentials, e.Err)
}

func (e *SignInError) Unwrap() error { return e.Err }

// Error is a non-2xx reply from the Tableau REST API. Error() never includes
// a token or secret: only the method, the path (which holds LUIDs, not
// credentials) and what the server said.
//
// See https://help.tableau.com/current/api/rest_api/en-us/REST/rest_api_concepts_errors.htm.
type Error struct {
	StatusCode int    // HTTP status
	Code       string // Tableau's six-digit error code, e.g. "409093"; empty when the body had none
	Summary    string
	Detail     string
	Method     string
	Path       string
	// RetryAfter is the wait the server asked for (Retry-After header), zero
	// when it did not say.
	RetryAfter time.Duration
}

// Error describes the reply without any credential.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "tableau: %s %s: %d", e.Method, e.Path, e.StatusCode)
	if e.Code != "" {
		fmt.Fprintf(&b, " (code %s)", e.Code)
	}
	if e.Summary != "" {
		b.WriteString(" " + e.Summary)
	}
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	return b.String()
}

// ServerWait implements remote.Waiter: the Retry-After Tableau sent.
func (e *Error) ServerWait() time.Duration { return e.RetryAfter }

// Is lets errors.Is match the package's sentinels by status and code.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	case ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized
	case ErrBadCredentials:
		return e.StatusCode == http.StatusUnauthorized && e.Code == CodeBadCredentials
	case ErrForbidden:
		return e.StatusCode == http.StatusForbidden
	case ErrConflict:
		return e.StatusCode == http.StatusConflict
	case ErrNoExtract:
		return e.StatusCode == http.StatusConflict && e.Code == CodeNoExtract
	case ErrRateLimited:
		return e.StatusCode == http.StatusTooManyRequests
	case ErrServer:
		return e.StatusCode >= 500
	}
	return false
}

// sessionEnded reports a 401 that a fresh sign-in can cure: the token was
// replaced, expired or signed out. 401001 (credentials rejected) is not one:
// signing in again would fail the same way.
func (e *Error) sessionEnded() bool {
	return e.StatusCode == http.StatusUnauthorized &&
		(e.Code == CodeSessionEnded || e.Code == CodeSignInError)
}

// NotFoundError reports that FindWorkbook or FindDatasource matched nothing.
type NotFoundError struct {
	Kind    string // "workbook" or "datasource"
	Name    string
	Project string // empty when no project was given
}

// Error names what was looked for.
func (e *NotFoundError) Error() string {
	if e.Project != "" {
		return fmt.Sprintf("tableau: no %s named %q in project %q", e.Kind, e.Name, e.Project)
	}
	return fmt.Sprintf("tableau: no %s named %q", e.Kind, e.Name)
}

// Is matches ErrNotFound.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// AmbiguousError reports that a name matched items in several projects (or in
// several projects with the same name) so the caller must say which.
type AmbiguousError struct {
	Kind    string
	Name    string
	Project string    // the project the caller gave, if any
	Matches []Project // the projects of the matching items, one per match
	IDs     []string  // the LUIDs of the matching items
}

// Error names the projects of the matches and how to choose.
func (e *AmbiguousError) Error() string {
	names := make([]string, len(e.Matches))
	for i, p := range e.Matches {
		names[i] = fmt.Sprintf("%q", p.Name)
		if e.Project != "" {
			// Same project name twice means nested projects: only the LUID tells them apart.
			names[i] = fmt.Sprintf("%q (project id %s)", p.Name, p.ID)
		}
	}
	hint := "give a project name or use the LUID"
	if e.Project != "" {
		hint = "use the LUID"
	}
	return fmt.Sprintf("tableau: %d %ss named %q in projects %s: %s",
		len(e.Matches), e.Kind, e.Name, strings.Join(names, ", "), hint)
}

// Is matches ErrAmbiguous.
func (e *AmbiguousError) Is(target error) bool { return target == ErrAmbiguous }

// FormatError reports a reply that is not the JSON the client asked for: XML,
// an HTML page from a proxy or login portal, or truncated or malformed JSON.
type FormatError struct {
	StatusCode  int
	ContentType string
	Method      string
	Path        string
	Received    string // what arrived, e.g. "an HTML page", "XML", "truncated JSON"
	Snippet     string // the start of the body; empty for replies that may hold a token
	Err         error  // the decoding error, if any
}

// Error says what arrived instead of JSON.
func (e *FormatError) Error() string {
	s := fmt.Sprintf("tableau: %s %s: expected JSON, received %s (HTTP %d, Content-Type %q)",
		e.Method, e.Path, e.Received, e.StatusCode, e.ContentType)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	if e.Snippet != "" {
		s += fmt.Sprintf("; body starts %q", e.Snippet)
	}
	return s
}

// Unwrap returns the decoding error.
func (e *FormatError) Unwrap() error { return e.Err }

// Is matches ErrBadReply.
func (e *FormatError) Is(target error) bool { return target == ErrBadReply }

// truncated reports a body cut short, which a later attempt may well receive whole.
func (e *FormatError) truncated() bool { return e.Received == "truncated JSON" }

// JobError reports a job that finished without success.
type JobError struct {
	Job *Job
}

// Error gives the job id and Tableau's notes on it.
func (e *JobError) Error() string {
	what := "failed"
	if e.Job.FinishCode != nil && *e.Job.FinishCode == FinishCancelled {
		what = "was cancelled"
	}
	s := fmt.Sprintf("tableau: job %s %s", e.Job.ID, what)
	if e.Job.Notes != "" {
		s += ": " + e.Job.Notes
	}
	return s
}

// Is matches ErrJobFailed or ErrJobCancelled.
func (e *JobError) Is(target error) bool {
	if e.Job.FinishCode != nil && *e.Job.FinishCode == FinishCancelled {
		return target == ErrJobCancelled
	}
	return target == ErrJobFailed
}

// storeError marks a failure of the caller's SessionStore. A store (DynamoDB)
// outage is transient, so Retryable says yes.
type storeError struct {
	op  string
	err error
}

func (e *storeError) Error() string { return fmt.Sprintf("tableau: session store %s: %v", e.op, e.err) }
func (e *storeError) Unwrap() error { return e.err }

// Retryable reports whether a later retry of the same work may succeed: rate
// limits (429), server errors (5xx), connection failures, timeouts, truncated
// replies, session-store outages and Metadata API queries that ran out of
// time. It is false for errors that need a
// person to change something: 400, 401001 (bad credentials), 403, 404,
// 409090 (no extract), ambiguous or missing names, a failed job, a reply
// that is not JSON.
//
// The webhook Lambda uses it to choose between a 5xx reply (dbt Cloud will
// deliver again) and a 200 that lists the failure.
func Retryable(err error) bool {
	if err == nil || errors.Is(err, ErrScope) {
		return false
	}
	var me *MetadataError
	if errors.As(err, &me) && me.HTTP == nil {
		// A query that ran out of time may finish another time; every other
		// GraphQL error needs the query or the server's settings changed.
		return me.StatusCode >= 500 || me.timeLimit()
	}
	var te *Error
	if errors.As(err, &te) {
		switch {
		case te.StatusCode == http.StatusTooManyRequests,
			te.StatusCode == http.StatusRequestTimeout,
			te.StatusCode >= 500:
			return true
		case te.sessionEnded() && !strings.HasSuffix(te.Path, "/auth/signin"):
			// Another instance replaced the session between our sign-in and the
			// retry; the next delivery will sign in again. A 401 from sign-in
			// itself is about the credentials and will not heal.
			return true
		}
		return false
	}
	var fe *FormatError
	if errors.As(err, &fe) {
		return fe.truncated() || fe.StatusCode >= 500
	}
	var tr *remote.TransportError
	if errors.As(err, &tr) {
		// A certificate the client does not trust stays untrusted until
		// someone fixes it.
		return tr.Transient()
	}
	var se *storeError
	if errors.As(err, &se) {
		return true
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// replyError turns a non-2xx reply into an *Error, reading Tableau's error
// body whether it came as JSON (as asked) or XML (older servers, some
// endpoints), and describing anything else.
func replyError(r *request, path string, resp *http.Response, data []byte) error {
	e := &Error{
		StatusCode: resp.StatusCode,
		Method:     r.method,
		Path:       path,
		RetryAfter: remote.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
	}
	body := bytes.TrimSpace(data)
	var j struct {
		Error *struct {
			Summary string   `json:"summary"`
			Detail  string   `json:"detail"`
			Code    flexText `json:"code"`
		} `json:"error"`
	}
	var x struct {
		Error *struct {
			Code    string `xml:"code,attr"`
			Summary string `xml:"summary"`
			Detail  string `xml:"detail"`
		} `xml:"error"`
	}
	switch {
	case json.Unmarshal(body, &j) == nil && j.Error != nil:
		e.Code, e.Summary, e.Detail = j.Error.Code.Value, j.Error.Summary, j.Error.Detail
	case len(body) > 0 && body[0] == '<' && xml.Unmarshal(body, &x) == nil && x.Error != nil:
		e.Code, e.Summary, e.Detail = x.Error.Code, strings.TrimSpace(x.Error.Summary), strings.TrimSpace(x.Error.Detail)
	default:
		e.Summary = http.StatusText(resp.StatusCode)
		if loc := resp.Header.Get("Location"); resp.StatusCode >= 300 && resp.StatusCode < 400 && loc != "" {
			e.Detail = "redirected to " + loc + "; check the server URL"
			break
		}
		kind := nonJSONKind(resp.Header.Get("Content-Type"), body)
		if kind == "" {
			kind = "JSON without an error object"
		}
		e.Detail = "received " + kind
		if len(body) > 0 && !r.secret {
			e.Detail += ": " + snippet(body)
		}
	}
	return e
}
