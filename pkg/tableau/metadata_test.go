package tableau

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/remote"
)

// Wire-level tests of the Metadata API call: what goes out, and how each
// kind of reply comes back. Behaviour against Tableau's rules (paging,
// limits, permissions) is tested against the simulator in lineage_test.go.

const metadataPath = "/api/metadata/graphql"

func TestQueryMetadataRequest(t *testing.T) {
	env := setup(t)
	env.handleSignIn(t)
	env.mux.HandleFunc("POST "+metadataPath, func(w http.ResponseWriter, r *http.Request) {
		checkRequest(t, r, http.MethodPost, "tok-1")
		checkJSONBody(t, r, `{"query":"query q($n: [String]) { x }","variables":{"n":["a\"b","c.d"]},"operationName":"q"}`)
		writeJSON(w, http.StatusOK, `{"data":{"x":"y"}}`)
	})
	var out struct{ X string }
	err := env.client.QueryMetadata(context.Background(), MetadataQuery{Query: `query q($n: [String]) { x }`, OperationName: "q",
		Variables: map[string]any{"n": []string{`a"b`, "c.d"}}}, &out)
	if err != nil || out.X != "y" {
		t.Fatalf("QueryMetadata = %+v, %v", out, err)
	}
	if err := env.client.QueryMetadata(context.Background(), MetadataQuery{Query: "  "}, nil); err == nil {
		t.Error("an empty query was sent")
	}
}

func TestQueryMetadataReplies(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		wantData    string // decoded x, when data came
		wantIs      []error
		wantNotIs   []error
		wantErr     string // part of the message; "" for success
		partial     bool
		fix         string // part of MetadataFix(err)
		retryable   bool
	}{
		{name: "data", status: 200, body: `{"data":{"x":"y"}}`, wantData: "y"},
		{name: "node limit with partial data", status: 200, wantData: "partial",
			body: `{"data":{"x":"partial"},"errors":[{"message":"Showing partial results. The request exceeded the 20000 node limit.",` +
				`"extensions":{"severity":"WARNING","code":"NODE_LIMIT_EXCEEDED","properties":{"nodeLimit":20000}}}]}`,
			wantIs: []error{ErrNodeLimit}, wantNotIs: []error{ErrTimeLimit, ErrMetadataDisabled},
			wantErr: "NODE_LIMIT_EXCEEDED: Showing partial results", partial: true},
		{name: "time limit", status: 200,
			body:   `{"errors":[{"message":"Request time limit exceeded.","extensions":{"severity":"ERROR","code":"TIME_LIMIT_EXCEEDED"}}]}`,
			wantIs: []error{ErrTimeLimit}, wantErr: "TIME_LIMIT_EXCEEDED", retryable: true},
		{name: "graphql-java timeout without a code", status: 200,
			body:   `{"errors":[{"message":"Execution canceled because timeout of 30000 millis was reached"}]}`,
			wantIs: []error{ErrTimeLimit}, wantErr: "timeout of 30000", retryable: true},
		{name: "feature disabled", status: 200,
			body:   `{"errors":[{"message":"Can't run the query because the Metadata API has not been enabled yet.","extensions":{"code":"FEATURE_DISABLED"}}]}`,
			wantIs: []error{ErrMetadataDisabled}, wantNotIs: []error{ErrLineageForbidden}, wantErr: "FEATURE_DISABLED",
			fix: "tsm maintenance metadata-services enable"},
		{name: "no endpoint", status: 404, body: `{"error":{"code":"404003","summary":"Not Found","detail":"Unknown resource"}}`,
			wantIs: []error{ErrMetadataDisabled, ErrNotFound}, wantErr: "404", fix: "metadata-services enable"},
		{name: "access denied", status: 200,
			body:   `{"errors":[{"message":"You are not authorized to use the Metadata API.","extensions":{"code":"ACCESS_DENIED"}}]}`,
			wantIs: []error{ErrLineageForbidden}, wantErr: "ACCESS_DENIED", fix: "Site Administrator"},
		{name: "filter required", status: 200,
			body:   `{"data":{"x":null},"errors":[{"message":"you must be an admin","path":["x"],"extensions":{"code":"FILTER_REQUIRED"}}]}`,
			wantIs: []error{ErrLineageForbidden}, wantErr: "FILTER_REQUIRED", partial: true, fix: "Data Management"},
		{name: "forbidden", status: 403, body: `{"error":{"code":"403004","summary":"Forbidden","detail":"no"}}`,
			wantIs: []error{ErrLineageForbidden, ErrForbidden}, wantErr: "403", fix: "Site Administrator"},
		{name: "validation", status: 200,
			body:   `{"errors":[{"message":"Validation error (FieldUndefined@[x/nme]) : Field 'nme' in type 'X' is undefined","extensions":{"classification":"ValidationError"}}]}`,
			wantIs: []error{ErrMetadataQuery}, wantErr: "ValidationError: Validation error"},
		{name: "backfill warning", status: 200, wantData: "y",
			body:   `{"data":{"x":"y"},"errors":[{"message":"Still creating the Metadata API Store.","extensions":{"severity":"WARNING","code":"BACKFILL_RUNNING"}}]}`,
			wantIs: []error{ErrBackfillRunning}, wantErr: "BACKFILL_RUNNING", partial: true},
		{name: "server error", status: 500, body: `oops`, wantIs: []error{ErrServer}, wantErr: "500", retryable: true},
		{name: "html page", status: 200, contentType: "text/html", body: `<html>login</html>`,
			wantIs: []error{ErrBadReply}, wantErr: "an HTML page"},
		{name: "json without data or errors", status: 200, body: `{}`, wantIs: []error{ErrBadReply}, wantErr: "neither data nor errors"},
		{name: "data of another shape", status: 200, body: `{"data":{"x":[1]}}`, wantIs: []error{ErrBadReply}, wantErr: "unexpected shape"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := setup(t, WithRetryPolicy(remote.Policy{MaxAttempts: 1}))
			env.handleSignIn(t)
			env.mux.HandleFunc("POST "+metadataPath, func(w http.ResponseWriter, r *http.Request) {
				ct := tc.contentType
				if ct == "" {
					ct = "application/json"
				}
				writeBytes(w, tc.status, ct, []byte(tc.body))
			})
			var out struct{ X string }
			err := env.client.QueryMetadata(context.Background(), MetadataQuery{Query: "{ x }"}, &out)
			if out.X != tc.wantData {
				t.Errorf("data = %q, want %q", out.X, tc.wantData)
			}
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
			}
			for _, target := range tc.wantIs {
				if !errors.Is(err, target) {
					t.Errorf("errors.Is(%v, %v) = false", err, target)
				}
			}
			for _, target := range tc.wantNotIs {
				if errors.Is(err, target) {
					t.Errorf("errors.Is(%v, %v) = true", err, target)
				}
			}
			var me *MetadataError
			if errors.As(err, &me) && me.Partial != tc.partial {
				t.Errorf("Partial = %v, want %v", me.Partial, tc.partial)
			}
			if fix := MetadataFix(err); (tc.fix == "") != (fix == "") || !strings.Contains(fix, tc.fix) {
				t.Errorf("MetadataFix = %q, want it to contain %q", fix, tc.fix)
			}
			if got := Retryable(err); got != tc.retryable {
				t.Errorf("Retryable = %v, want %v", got, tc.retryable)
			}
		})
	}
}

// A 401 from the endpoint without Tableau's session code still earns one
// new sign-in, and only one.
func TestQueryMetadataSignsInAgainOnUncoded401(t *testing.T) {
	env := setup(t)
	env.handleSignIn(t)
	calls := 0
	env.mux.HandleFunc("POST "+metadataPath, func(w http.ResponseWriter, r *http.Request) {
		calls++
		if r.Header.Get("X-Tableau-Auth") == "tok-1" {
			writeJSON(w, http.StatusUnauthorized, `{"message":"unauthorized"}`)
			return
		}
		writeJSON(w, http.StatusOK, `{"data":{"x":"y"}}`)
	})
	var out struct{ X string }
	if err := env.client.QueryMetadata(context.Background(), MetadataQuery{Query: "{ x }"}, &out); err != nil || out.X != "y" {
		t.Fatalf("QueryMetadata = %+v, %v", out, err)
	}
	if calls != 2 || env.signIns.Load() != 2 {
		t.Errorf("metadata calls %d, sign-ins %d; want 2 and 2", calls, env.signIns.Load())
	}
}

func TestLookupNames(t *testing.T) {
	got := lookupNames([]string{"orders", `"Order Items"`, "`o'brien`", "[my.table]", "'", "  ", "ORDERS", `"a""b"`, "[x]]y]"})
	var s []string
	for _, v := range got {
		s = append(s, v.(string))
	}
	want := []string{`A"B`, "MY.TABLE", "O'BRIEN", "ORDER ITEMS", "ORDERS", "Order Items", "X]Y", `a"b`, "my.table",
		"o'brien", "order items", "orders", "x]y"}
	if strings.Join(s, "|") != strings.Join(want, "|") {
		t.Errorf("lookupNames =\n %q\nwant\n %q", s, want)
	}
}
