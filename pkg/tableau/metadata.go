package tableau

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// The Tableau Metadata API: GraphQL at POST {server}/api/metadata/graphql,
// authenticated with the REST session (X-Tableau-Auth), body {"query",
// "variables", "operationName"}, reply {"data", "errors"}. Errors may come
// with partial data; each carries a code in extensions.code and, on the
// errors Tableau documents, a severity (ERROR or WARNING).
//
// See https://help.tableau.com/current/api/metadata_api/en-us/index.html and
// https://help.tableau.com/current/api/metadata_api/en-us/docs/meta_api_errors.html.

// Metadata API error codes (extensions.code) this package gives a meaning to.
const (
	// MetadataNodeLimitExceeded: the query touched more objects than the
	// server's node limit (Tableau Server's default is 20,000); Tableau
	// returns partial results with it. Smaller pages fix it.
	MetadataNodeLimitExceeded = "NODE_LIMIT_EXCEEDED"
	// MetadataTimeLimitExceeded: the query ran out of time; results, if
	// any, are partial. Smaller pages usually fix it.
	MetadataTimeLimitExceeded = "TIME_LIMIT_EXCEEDED"
	// MetadataBackfillRunning (a warning): the Catalog is still indexing;
	// results may be incomplete.
	MetadataBackfillRunning = "BACKFILL_RUNNING"
	// MetadataFeatureDisabled: the Metadata API is off on this Tableau
	// Server (`tsm maintenance metadata-services enable` turns it on).
	MetadataFeatureDisabled = "FEATURE_DISABLED"
	// MetadataAccessDenied: the user may not use the Metadata API.
	MetadataAccessDenied = "ACCESS_DENIED"
	// MetadataFilterRequired: a query over tables or databases by a user who
	// is not an administrator, on a site without Data Management, needs a
	// filter.
	MetadataFilterRequired = "FILTER_REQUIRED"
	// MetadataPermissionsModeSwitched (a warning): Tableau switched the
	// query's permission mode; derived permissions are off.
	MetadataPermissionsModeSwitched = "PERMISSIONS_MODE_SWITCHED"
	// MetadataInvalidArgument: a bad cursor, after together with offset, or
	// a text filter of only spaces or a single quote.
	MetadataInvalidArgument = "INVALID_ARGUMENT"
	// MetadataMaxPageSizeExceeded (a warning): "first" was above the
	// server's maximum; the page holds the maximum instead.
	MetadataMaxPageSizeExceeded = "MAX_PAGE_SIZE_EXCEEDED"
)

// Sentinel errors for Metadata API failures, matched with errors.Is against
// *MetadataError.
var (
	// ErrMetadataDisabled matches FEATURE_DISABLED, and a 404 from the
	// endpoint (a Tableau Server older than 2019.3 has none).
	ErrMetadataDisabled = errors.New("tableau: Metadata API is not enabled")
	// ErrLineageForbidden matches ACCESS_DENIED, FILTER_REQUIRED and a 403:
	// the user may not read lineage.
	ErrLineageForbidden = errors.New("tableau: not allowed to read lineage")
	// ErrNodeLimit matches NODE_LIMIT_EXCEEDED.
	ErrNodeLimit = errors.New("tableau: Metadata API node limit exceeded")
	// ErrTimeLimit matches TIME_LIMIT_EXCEEDED and graphql-java's "Execution
	// canceled because timeout ... was reached".
	ErrTimeLimit = errors.New("tableau: Metadata API time limit exceeded")
	// ErrBackfillRunning matches BACKFILL_RUNNING.
	ErrBackfillRunning = errors.New("tableau: Metadata API still indexing")
	// ErrMetadataQuery matches errors in the query itself (syntax,
	// validation, INVALID_ARGUMENT): a bug in the caller, not a state of the
	// server.
	ErrMetadataQuery = errors.New("tableau: Metadata API rejected the query")
)

// Fixes a person must apply, worded for a notification.
const (
	fixEnableMetadata = "a Tableau Server administrator must run `tsm maintenance metadata-services enable` " +
		"(the Metadata API is always on in Tableau Cloud)"
	fixLineageRole = "give the bridge's Tableau user the Site Administrator Explorer (or Creator) role, " +
		"or license the site with Data Management so that derived permissions show it the tables"
)

// MetadataQuery is one GraphQL request.
type MetadataQuery struct {
	Query         string
	Variables     map[string]any
	OperationName string
}

// GraphQLError is one entry of a Metadata API reply's "errors".
type GraphQLError struct {
	Message string
	// Path locates the failed field, e.g. ["publishedDatasourcesConnection"].
	Path []any
	// Code is extensions.code, e.g. "NODE_LIMIT_EXCEEDED"; for validation
	// and syntax errors it is extensions.classification ("ValidationError",
	// "InvalidSyntax").
	Code string
	// Severity is extensions.severity: "ERROR", "WARNING", or "" when the
	// server gave none.
	Severity   string
	Extensions map[string]any
}

// Warning reports an error Tableau marked as a warning: the data came anyway.
func (e GraphQLError) Warning() bool { return strings.EqualFold(e.Severity, "WARNING") }

func (e GraphQLError) String() string {
	if e.Code == "" {
		return e.Message
	}
	return e.Code + ": " + e.Message
}

// MetadataError is a Metadata API reply with errors, or a failed HTTP
// exchange with the endpoint that names its cause. Data that came with the
// errors was decoded into the caller's value all the same (Partial).
type MetadataError struct {
	// StatusCode is the HTTP status (Tableau answers GraphQL errors with 200).
	StatusCode int
	Errors     []GraphQLError
	// Partial is set when "data" came with the errors.
	Partial bool
	// HTTP is the REST-style error when the endpoint itself failed (404,
	// 403); Unwrap returns it.
	HTTP *Error
}

// Error lists the errors' codes and messages (the first three).
func (e *MetadataError) Error() string {
	var b strings.Builder
	b.WriteString("tableau: metadata API")
	if e.HTTP != nil {
		fmt.Fprintf(&b, ": %s", strings.TrimPrefix(e.HTTP.Error(), "tableau: "))
	}
	for i, ge := range e.Errors {
		if i == 3 {
			fmt.Fprintf(&b, " (and %d more)", len(e.Errors)-3)
			break
		}
		sep := "; "
		if i == 0 {
			sep = ": "
		}
		b.WriteString(sep + ge.String())
	}
	if e.Partial {
		b.WriteString(" (partial results)")
	}
	return b.String()
}

// Unwrap returns the HTTP error, if any.
func (e *MetadataError) Unwrap() error {
	if e.HTTP == nil {
		return nil
	}
	return e.HTTP
}

// Has reports whether one of the errors has the code.
func (e *MetadataError) Has(code string) bool {
	for _, ge := range e.Errors {
		if ge.Code == code {
			return true
		}
	}
	return false
}

// WarningsOnly reports whether every error is a warning and data came:
// the results are usable, with the caveats the warnings state.
func (e *MetadataError) WarningsOnly() bool {
	if !e.Partial || len(e.Errors) == 0 {
		return false
	}
	for _, ge := range e.Errors {
		if !ge.Warning() {
			return false
		}
	}
	return true
}

func (e *MetadataError) timeLimit() bool {
	if e.Has(MetadataTimeLimitExceeded) {
		return true
	}
	for _, ge := range e.Errors {
		if strings.Contains(ge.Message, "Execution canceled because timeout") {
			return true
		}
	}
	return false
}

// Is matches the Metadata API sentinels.
func (e *MetadataError) Is(target error) bool {
	switch target {
	case ErrMetadataDisabled:
		return e.Has(MetadataFeatureDisabled) || e.StatusCode == http.StatusNotFound
	case ErrLineageForbidden:
		return e.Has(MetadataAccessDenied) || e.Has(MetadataFilterRequired) || e.StatusCode == http.StatusForbidden
	case ErrNodeLimit:
		return e.Has(MetadataNodeLimitExceeded)
	case ErrTimeLimit:
		return e.timeLimit()
	case ErrBackfillRunning:
		return e.Has(MetadataBackfillRunning)
	case ErrMetadataQuery:
		return e.Has("ValidationError") || e.Has("InvalidSyntax") || e.Has(MetadataInvalidArgument) ||
			e.StatusCode == http.StatusBadRequest
	}
	return false
}

// Fix names what a person must do about the error, or "" when nothing a
// person does would help (a transient failure, or a bug in the query).
func (e *MetadataError) Fix() string {
	switch {
	case e.Is(ErrMetadataDisabled):
		return fixEnableMetadata
	case e.Is(ErrLineageForbidden):
		return fixLineageRole
	}
	return ""
}

// MetadataFix returns the fix for a Metadata API failure anywhere in err's
// chain (see MetadataError.Fix), or "".
func MetadataFix(err error) string {
	var me *MetadataError
	if errors.As(err, &me) {
		return me.Fix()
	}
	return ""
}

// HiddenTablesFix is the fix for lineage whose tables came back without
// names (LineagePage.HiddenTables, TableLookup.HiddenTables): Tableau hides
// table details from users who may not see them.
const HiddenTablesFix = fixLineageRole

// QueryMetadata runs one GraphQL query and decodes the reply's "data" into
// data (which may be nil). A reply with errors returns a *MetadataError,
// after decoding whatever data came with them (Partial), so a caller may
// keep partial results. Transport and HTTP failures are the errors of the
// REST calls (*Error, *remote.TransportError, *FormatError), retried and re-signed
// in the same way.
//
// See https://help.tableau.com/current/api/metadata_api/en-us/docs/meta_api_start.html.
func (c *Client) QueryMetadata(ctx context.Context, q MetadataQuery, data any) error {
	if strings.TrimSpace(q.Query) == "" {
		return errors.New("tableau: metadata query: the query is empty")
	}
	what := "metadata query"
	if q.OperationName != "" {
		what += " " + q.OperationName
	}
	body := struct {
		Query         string         `json:"query"`
		Variables     map[string]any `json:"variables,omitempty"`
		OperationName string         `json:"operationName,omitempty"`
	}{q.Query, q.Variables, q.OperationName}
	raw, err := c.postMetadata(ctx, body)
	if err != nil {
		var te *Error
		if errors.As(err, &te) && (te.StatusCode == http.StatusNotFound || te.StatusCode == http.StatusForbidden ||
			te.StatusCode == http.StatusBadRequest) {
			err = &MetadataError{StatusCode: te.StatusCode, HTTP: te}
		}
		return fmt.Errorf("tableau: %s: %w", what, err)
	}
	var env struct {
		Data   json.RawMessage `json:"data"`
		Errors []struct {
			Message    string         `json:"message"`
			Path       []any          `json:"path"`
			Extensions map[string]any `json:"extensions"`
		} `json:"errors"`
	}
	fe := &FormatError{StatusCode: raw.status, ContentType: raw.contentType, Method: http.MethodPost, Path: raw.path}
	trimmed := bytes.TrimSpace(raw.body)
	if kind := nonJSONKind(raw.contentType, trimmed); kind != "" {
		fe.Received, fe.Snippet = kind, snippet(trimmed)
		return fmt.Errorf("tableau: %s: %w", what, fe)
	}
	if err := json.Unmarshal(trimmed, &env); err != nil {
		fe.Received, fe.Err = "JSON that is not a GraphQL reply", err
		return fmt.Errorf("tableau: %s: %w", what, fe)
	}
	hasData := len(env.Data) > 0 && !bytes.Equal(env.Data, []byte("null"))
	if hasData && data != nil {
		if err := json.Unmarshal(env.Data, data); err != nil {
			fe.Received, fe.Err = "data of an unexpected shape", err
			return fmt.Errorf("tableau: %s: %w", what, fe)
		}
	}
	if len(env.Errors) > 0 {
		me := &MetadataError{StatusCode: raw.status, Partial: hasData}
		for _, e := range env.Errors {
			ge := GraphQLError{Message: e.Message, Path: e.Path, Extensions: e.Extensions}
			ge.Code, _ = e.Extensions["code"].(string)
			if ge.Code == "" {
				ge.Code, _ = e.Extensions["classification"].(string)
			}
			ge.Severity, _ = e.Extensions["severity"].(string)
			me.Errors = append(me.Errors, ge)
		}
		return fmt.Errorf("tableau: %s: %w", what, me)
	}
	if !hasData {
		fe.Received = "a GraphQL reply with neither data nor errors"
		return fmt.Errorf("tableau: %s: %w", what, fe)
	}
	return nil
}

// postMetadata is this file's only use of the Client's HTTP internals: one
// authenticated POST to /api/metadata/graphql through send, which signs in
// (or adopts the shared session), signs in again once when Tableau reports
// the session ended, and retries what is safe to retry (a query changes
// nothing, so it is idempotent). endpoint builds /api/{version}/{path};
// version "metadata" and path "graphql" make it /api/metadata/graphql.
func (c *Client) postMetadata(ctx context.Context, body any) (*rawReply, error) {
	newRequest := func() *request {
		return &request{method: http.MethodPost, version: "metadata", path: "graphql", body: body,
			auth: true, mode: retryIdempotent, out: &rawReply{}, scope: ScopeContentRead}
	}
	r := newRequest()
	err := c.send(ctx, r)
	var te *Error
	if errors.As(err, &te) && te.StatusCode == http.StatusUnauthorized && te.Code == "" {
		// send renews only on Tableau's session codes; a 401 from this
		// endpoint may carry none, and a fresh session is then worth one try.
		c.mu.Lock()
		sess := c.sess
		c.mu.Unlock()
		if sess != nil {
			if _, rerr := c.renew(ctx, sess.Token); rerr != nil {
				return nil, rerr
			}
			r = newRequest()
			err = c.send(ctx, r)
		}
	}
	if err != nil {
		return nil, err
	}
	return r.out.(*rawReply), nil
}
