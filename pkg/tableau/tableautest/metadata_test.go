package tableautest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// gql posts a GraphQL request and decodes the reply envelope.
func (e *env) gql(token, query string, vars map[string]any) (int, map[string]any) {
	e.t.Helper()
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		e.t.Fatal(err)
	}
	r := send(e.t, request{method: "POST", url: e.srv.URL() + "/api/metadata/graphql", token: token, body: string(body)})
	return r.status, r.json(e.t)
}

// errorCodes lists extensions.code (or classification) of each error.
func errorCodes(m map[string]any) []string {
	var out []string
	list, _ := m["errors"].([]any)
	for _, e := range list {
		ext, _ := e.(map[string]any)["extensions"].(map[string]any)
		code, _ := ext["code"].(string)
		if code == "" {
			code, _ = ext["classification"].(string)
		}
		out = append(out, code)
	}
	return out
}

func firstMessage(m map[string]any) string {
	list, _ := m["errors"].([]any)
	if len(list) == 0 {
		return ""
	}
	s, _ := list[0].(map[string]any)["message"].(string)
	return s
}

// lineageEnv builds a small site: two Snowflake tables, a published extract
// over ORDERS, a live published source over CUSTOMERS, a workbook on the
// extract, a workbook with an embedded extract, and custom SQL.
type lineageSite struct {
	*env
	orders, customers, items  TableRef
	ordersDS, liveDS, sqlDS   string
	onPublished, embedded, wb string
}

func newLineageSite(t *testing.T) *lineageSite {
	e := newEnv(t)
	ls := &lineageSite{env: e}
	ls.orders = TableRef{Database: "ANALYTICS", Schema: "MARTS", Name: "ORDERS", ConnectionType: "snowflake"}
	ls.customers = TableRef{Database: "ANALYTICS", Schema: "MARTS", Name: "CUSTOMERS", ConnectionType: "snowflake"}
	ls.items = TableRef{Database: "ANALYTICS", Schema: "MARTS", Name: "ORDER_ITEMS", ConnectionType: "snowflake"}
	ls.ordersDS = e.srv.AddDatasource("Orders", "Finance", ReadsTables(ls.orders))
	ls.liveDS = e.srv.AddDatasource("Customers (live)", "Finance", NoExtract(), ReadsTables(ls.customers))
	ls.sqlDS = e.srv.AddDatasource("Order lines", "Finance",
		WithCustomSQL(CustomSQL{Query: "select * from marts.order_items", Tables: []TableRef{ls.items}}))
	ls.onPublished = e.srv.AddWorkbook("Sales", "Finance", UsesDatasources(ls.ordersDS))
	ls.embedded = e.srv.AddWorkbook("Ops", "Ops", WithEmbeddedSources(
		EmbeddedSource{Name: "orders extract", Extract: true, Tables: []TableRef{ls.orders}},
		EmbeddedSource{Name: "customers live", Tables: []TableRef{ls.customers}},
	))
	ls.wb = e.srv.AddWorkbook("Live only", "Ops", WithEmbeddedSources(
		EmbeddedSource{Name: "customers live", Tables: []TableRef{ls.customers}}))
	return ls
}

func TestMetadataLineageModel(t *testing.T) {
	ls := newLineageSite(t)
	tok := ls.signIn()
	status, m := ls.gql(tok, `query lineage {
	  databaseTables(filter: {nameWithin: ["ORDERS", "CUSTOMERS", "ORDER_ITEMS"]}) {
	    name fullName connectionType database { name connectionType }
	    downstreamDatasources { name hasExtracts }
	    downstreamWorkbooks { name }
	  }
	  workbooks(filter: {name: "Sales"}) {
	    name upstreamDatasources { luid }
	    embeddedDatasources { name hasExtracts upstreamDatasources { name } upstreamTables { name } workbook { luid } }
	  }
	  customSQLTables { query isUnsupportedCustomSql tables { name } downstreamDatasources { name } }
	}`, nil)
	if status != http.StatusOK || m["errors"] != nil {
		t.Fatalf("status %d, reply %v", status, m)
	}
	got := map[string]string{}
	for _, tb := range dig(m, "data", "databaseTables").([]any) {
		tm := tb.(map[string]any)
		var ds, wb []string
		for _, d := range tm["downstreamDatasources"].([]any) {
			d := d.(map[string]any)
			ds = append(ds, fmt.Sprintf("%s/%v", d["name"], d["hasExtracts"]))
		}
		for _, w := range tm["downstreamWorkbooks"].([]any) {
			wb = append(wb, w.(map[string]any)["name"].(string))
		}
		got[tm["name"].(string)] = fmt.Sprintf("%s %s %s ds=%v wb=%v", tm["fullName"], tm["connectionType"],
			dig(tm, "database", "name"), ds, wb)
	}
	want := map[string]string{
		// Sales reaches ORDERS only through the published source, and is listed.
		"ORDERS":      "[MARTS].[ORDERS] snowflake ANALYTICS ds=[Orders/true] wb=[Sales Ops]",
		"CUSTOMERS":   "[MARTS].[CUSTOMERS] snowflake ANALYTICS ds=[Customers (live)/false] wb=[Ops Live only]",
		"ORDER_ITEMS": "[MARTS].[ORDER_ITEMS] snowflake ANALYTICS ds=[Order lines/true] wb=[]",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("tables:\n got %v\nwant %v", got, want)
	}
	wbs := dig(m, "data", "workbooks").([]any)
	if len(wbs) != 1 {
		t.Fatalf("workbooks = %v", wbs)
	}
	eds := wbs[0].(map[string]any)["embeddedDatasources"].([]any)
	ed := eds[0].(map[string]any)
	if len(eds) != 1 || ed["hasExtracts"] != false || dig(ed, "workbook", "luid") != ls.onPublished ||
		fmt.Sprint(ed["upstreamDatasources"]) != "[map[name:Orders]]" || fmt.Sprint(ed["upstreamTables"]) != "[map[name:ORDERS]]" {
		t.Errorf("embedded source standing for the published one = %v", eds)
	}
	sql := dig(m, "data", "customSQLTables").([]any)
	if len(sql) != 1 || fmt.Sprint(sql[0]) != "map[downstreamDatasources:[map[name:Order lines]] isUnsupportedCustomSql:false query:select * from marts.order_items tables:[map[name:ORDER_ITEMS]]]" {
		t.Errorf("custom SQL = %v", sql)
	}
}

func TestMetadataRESTRefreshStillWorks(t *testing.T) {
	ls := newLineageSite(t)
	tok := ls.signIn()
	if job := ls.refresh(tok, "workbook", ls.embedded); job == "" {
		t.Error("workbook with an embedded extract did not refresh")
	}
	r := ls.post(ls.site("workbooks/"+ls.wb+"/refresh"), tok, "{}")
	if r.status != http.StatusConflict || r.code(t) != codeExtractNotAllowed {
		t.Errorf("refresh of a live-only workbook = %d %s, want 409 %s", r.status, r.body, codeExtractNotAllowed)
	}
	r = ls.post(ls.site("datasources/"+ls.liveDS+"/refresh"), tok, "{}")
	if r.status != http.StatusConflict {
		t.Errorf("refresh of a live data source = %d", r.status)
	}
}

func TestMetadataRequestErrors(t *testing.T) {
	ls := newLineageSite(t)
	tok := ls.signIn()
	tests := []struct {
		name     string
		query    string
		vars     map[string]any
		wantCode string // extensions.code or classification of the first error
		wantMsg  string // a part of the first message
		wantData bool   // data present in the reply
	}{
		{"parse error", `query { publishedDatasources { name }`, nil, "InvalidSyntax", "offending token '<EOF>'", false},
		{"bad token", `query { publishedDatasources { na%me } }`, nil, "InvalidSyntax", "offending token '%'", false},
		{"empty document", ``, nil, "InvalidSyntax", "no operation", false},
		{"fragment", `query { ...f } fragment f on Query { workbooks { name } }`, nil, "InvalidSyntax", "fragments", false},
		{"unknown field", `{ publishedDatasourcesConnection { nodes { nmae } } }`, nil, "ValidationError",
			"Field 'nmae' in type 'PublishedDatasource' is undefined", false},
		{"unknown root field", `{ datasources { name } }`, nil, "ValidationError", "Field 'datasources' in type 'Query' is undefined", false},
		{"unknown argument", `{ workbooksConnection(last: 3) { totalCount } }`, nil, "ValidationError", "Unknown field argument 'last'", false},
		{"unknown filter field", `{ workbooks(filter: {owner: "x"}) { name } }`, nil, "ValidationError", "'owner'", false},
		{"object without selection", `{ workbooks }`, nil, "ValidationError", "Subselection required", false},
		{"scalar with selection", `{ workbooks { name { x } } }`, nil, "ValidationError", "Subselection not allowed", false},
		{"undefined variable", `{ workbooksConnection(first: $n) { totalCount } }`, nil, "ValidationError", "Undefined variable 'n'", false},
		{"missing required variable", `query q($n: Int!) { workbooksConnection(first: $n) { totalCount } }`, nil,
			"ValidationError", "Variable 'n' has an invalid value", false},
		{"variable of another type", `query q($n: String) { workbooksConnection(first: $n) { totalCount } }`, nil,
			"ValidationError", "Variable type 'String' doesn't match expected type 'Int'", false},
		{"wrong variable type", `query q($n: Int) { workbooksConnection(first: $n) { totalCount } }`,
			map[string]any{"n": "ten"}, "ValidationError", "Expected type 'Int'", false},
		{"wrong variable shape", `query q($f: Workbook_Filter) { workbooks(filter: $f) { name } }`,
			map[string]any{"f": map[string]any{"nmae": "x"}}, "ValidationError", "no field 'nmae'", false},
		{"mutation", `mutation { workbooks { name } }`, nil, "ValidationError", "not configured for mutations", false},
		{"two operations, no name", `query a { workbooks { name } } query b { workbooks { name } }`, nil,
			"ValidationError", "operation name", false},
		{"after with offset", `{ workbooksConnection(after: "x", offset: 1) { totalCount } }`, nil,
			MetadataInvalidArgument, "at the same time", true},
		{"bad cursor", `{ workbooksConnection(after: "bm90LWEtY3Vyc29y") { totalCount } }`, nil,
			MetadataInvalidArgument, "invalid cursor", true},
		{"blank text filter", `{ workbooks(filter: {nameWithin: ["  "]}) { name } }`, nil,
			MetadataInvalidArgument, "only the following characters", true},
		{"single quote filter", `{ workbooks(filter: {name: "'"}) { name } }`, nil,
			MetadataInvalidArgument, "single quotation mark", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, m := ls.gql(tok, tc.query, tc.vars)
			if status != http.StatusOK {
				t.Errorf("status = %d", status)
			}
			codes := errorCodes(m)
			if len(codes) == 0 || codes[0] != tc.wantCode || !strings.Contains(firstMessage(m), tc.wantMsg) {
				t.Errorf("errors = %v (%q), want %s containing %q", codes, firstMessage(m), tc.wantCode, tc.wantMsg)
			}
			if _, has := m["data"]; has != tc.wantData {
				t.Errorf("data present = %v, want %v: %v", has, tc.wantData, m)
			}
		})
	}
}

func TestMetadataVariablesAliasesAndDefaults(t *testing.T) {
	ls := newLineageSite(t)
	tok := ls.signIn()
	q := `# a comment
	query named($names: [String!]! , $first: Int = 1, $none: String) {
	  a: publishedDatasourcesConnection(first: $first, filter: {nameWithin: $names}) {
	    total: totalCount nodes { label: name __typename } pageInfo { hasNextPage endCursor }
	  }
	  b: publishedDatasources(filter: {name: "Orders", projectName: $none}) { luid }
	  c: workbooks(filter: {name: "Sales \"Q\" \u00e9"}) { name }
	}`
	status, m := ls.gql(tok, q, map[string]any{"names": []any{"Orders", "Order lines"}})
	if status != http.StatusOK || m["errors"] != nil {
		t.Fatalf("reply %d %v", status, m)
	}
	a := dig(m, "data", "a").(map[string]any)
	if a["total"] != 2.0 || fmt.Sprint(a["nodes"]) != "[map[__typename:PublishedDatasource label:Orders]]" ||
		dig(a, "pageInfo", "hasNextPage") != true {
		t.Errorf("a = %v", a)
	}
	if fmt.Sprint(dig(m, "data", "b")) != fmt.Sprintf("[map[luid:%s]]", ls.ordersDS) {
		t.Errorf("b = %v", dig(m, "data", "b"))
	}
	// Keys come back in selection order, aliases included.
	r := send(t, request{method: "POST", url: ls.srv.URL() + metadataPath, token: tok,
		body: `{"query": "{ z: workbooks(filter: {name: \"Sales\"}) { projectName name } a: workbooks(filter: {name: \"Ops\"}) { name } }"}`})
	if want := `{"data":{"z":[{"projectName":"Finance","name":"Sales"}],"a":[{"name":"Ops"}]}}`; string(r.body) != want {
		t.Errorf("body = %s, want %s", r.body, want)
	}
}

func TestMetadataPaging(t *testing.T) {
	e := newEnv(t)
	for i := range 25 {
		e.srv.AddDatasource(fmt.Sprintf("ds-%02d", i), "P")
	}
	tok := e.signIn()
	q := `query page($first: Int, $after: String) {
	  publishedDatasourcesConnection(first: $first, after: $after) {
	    nodes { name } pageInfo { hasNextPage endCursor } totalCount
	  }
	}`
	var names []string
	var after any
	calls := 0
	for {
		calls++
		_, m := e.gql(tok, q, map[string]any{"first": 10, "after": after})
		conn := dig(m, "data", "publishedDatasourcesConnection").(map[string]any)
		if conn["totalCount"] != 25.0 {
			t.Fatalf("totalCount = %v", conn["totalCount"])
		}
		for _, n := range conn["nodes"].([]any) {
			names = append(names, n.(map[string]any)["name"].(string))
		}
		if dig(conn, "pageInfo", "hasNextPage") != true {
			break
		}
		after = dig(conn, "pageInfo", "endCursor")
	}
	if calls != 3 || len(names) != 25 || names[0] != "ds-00" || names[24] != "ds-24" {
		t.Errorf("calls %d, names %v", calls, names)
	}
	// offset paging and the default page size
	_, m := e.gql(tok, `{ publishedDatasourcesConnection(offset: 20) { nodes { name } } }`, nil)
	if n := dig(m, "data", "publishedDatasourcesConnection", "nodes").([]any); len(n) != 5 {
		t.Errorf("offset 20 gave %d nodes", len(n))
	}
	// a cursor of another type is refused
	_, m = e.gql(tok, `query q($c: String) { workbooksConnection(after: $c) { totalCount } }`, map[string]any{"c": after})
	if codes := errorCodes(m); len(codes) != 1 || codes[0] != MetadataInvalidArgument {
		t.Errorf("foreign cursor: %v", m)
	}
	e.srv.SetMetadataMaxPageSize(4)
	_, m = e.gql(tok, `{ publishedDatasourcesConnection(first: 50) { nodes { name } } }`, nil)
	if n := dig(m, "data", "publishedDatasourcesConnection", "nodes").([]any); len(n) != 4 ||
		fmt.Sprint(errorCodes(m)) != "["+MetadataMaxPageSizeExceeded+"]" {
		t.Errorf("over the max page size: %d nodes, %v", len(n), errorCodes(m))
	}
}

func TestMetadataNodeLimit(t *testing.T) {
	e := newEnv(t)
	for i := range 10 {
		e.srv.AddDatasource(fmt.Sprintf("ds-%d", i), "P", ReadsTables(
			TableRef{Database: "DB", Schema: "S", Name: fmt.Sprintf("T%d_A", i), ConnectionType: "snowflake"},
			TableRef{Database: "DB", Schema: "S", Name: fmt.Sprintf("T%d_B", i), ConnectionType: "snowflake"}))
	}
	tok := e.signIn()
	// Each data source costs 1 + 2 tables + 2 databases = 5 nodes.
	e.srv.SetMetadataNodeLimit(23)
	q := `{ publishedDatasourcesConnection(first: 10) {
	  pageInfo { hasNextPage endCursor }
	  nodes { name upstreamTables { name database { name } } }
	} }`
	status, m := e.gql(tok, q, nil)
	conn := dig(m, "data", "publishedDatasourcesConnection").(map[string]any)
	nodes := conn["nodes"].([]any)
	if status != http.StatusOK || len(nodes) != 4 || fmt.Sprint(errorCodes(m)) != "["+MetadataNodeLimitExceeded+"]" {
		t.Fatalf("status %d, %d nodes, errors %v", status, len(nodes), m["errors"])
	}
	if !strings.Contains(firstMessage(m), "exceeded the 23 node limit") {
		t.Errorf("message = %q", firstMessage(m))
	}
	ext := m["errors"].([]any)[0].(map[string]any)["extensions"].(map[string]any)
	if ext["severity"] != "WARNING" || dig(ext, "properties", "nodeLimit") != 23.0 {
		t.Errorf("extensions = %v", ext)
	}
	// pageInfo describes the nodes returned, so a client can carry on from there.
	if dig(conn, "pageInfo", "hasNextPage") != true {
		t.Errorf("pageInfo = %v", conn["pageInfo"])
	}
	_, m = e.gql(tok, `query q($c: String) { publishedDatasourcesConnection(first: 4, after: $c) { nodes { name } } }`,
		map[string]any{"c": dig(conn, "pageInfo", "endCursor")})
	if n := dig(m, "data", "publishedDatasourcesConnection", "nodes").([]any); fmt.Sprint(n[0]) != "map[name:ds-4]" {
		t.Errorf("next page starts %v", n)
	}
	// Smaller pages fit.
	_, m = e.gql(tok, strings.Replace(q, "first: 10", "first: 4", 1), nil)
	if m["errors"] != nil {
		t.Errorf("first: 4 = %v", m["errors"])
	}
}

func TestMetadataFaultsAndPermissions(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(s *Server)
		role      string // PAT owner's site role; "" is a site administrator
		query     string
		wantCodes string
		wantNodes int // -1: no data
	}{
		{"time limit with partial data", func(s *Server) {
			s.InjectMetadataFault(MetadataFault{Code: MetadataTimeLimitExceeded, Partial: true, Times: 1})
		}, "", `{ publishedDatasourcesConnection { nodes { name } } }`, "[TIME_LIMIT_EXCEEDED]", 1},
		{"time limit without data", func(s *Server) {
			s.InjectMetadataFault(MetadataFault{Code: MetadataTimeLimitExceeded, Times: 1})
		}, "", `{ publishedDatasourcesConnection { nodes { name } } }`, "[TIME_LIMIT_EXCEEDED]", -1},
		{"feature disabled", func(s *Server) { s.SetMetadataEnabled(false) }, "",
			`{ publishedDatasourcesConnection { nodes { name } } }`, "[FEATURE_DISABLED]", -1},
		{"backfill running", func(s *Server) { s.SetMetadataBackfillRunning(true) }, "",
			`{ publishedDatasourcesConnection { nodes { name } } }`, "[BACKFILL_RUNNING]", 3},
		{"unlicensed user", nil, RoleUnlicensed, `{ publishedDatasourcesConnection { nodes { name } } }`, "[ACCESS_DENIED]", -1},
		{"creator lists tables without a filter", nil, RoleCreator,
			`{ databaseTablesConnection { nodes { name } } }`, "[FILTER_REQUIRED]", -1},
		{"creator with Data Management", func(s *Server) { s.SetDataManagement(true) }, RoleCreator,
			`{ databaseTablesConnection { nodes { name } } }`, "[]", 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ls := newLineageSite(t)
			if tc.setup != nil {
				tc.setup(ls.srv)
			}
			tok := ls.signIn()
			if tc.role != "" {
				ls.srv.AddPATWithRole("limited", "limited-secret", tc.role)
				tok = ls.signInPAT("limited", "limited-secret")
			}
			status, m := ls.gql(tok, tc.query, nil)
			if status != http.StatusOK || fmt.Sprint(errorCodes(m)) != tc.wantCodes {
				t.Fatalf("status %d, errors %v, want %s", status, m["errors"], tc.wantCodes)
			}
			var conn map[string]any
			if d, ok := m["data"].(map[string]any); ok {
				for _, v := range d {
					conn, _ = v.(map[string]any)
				}
			}
			n := -1
			if conn != nil {
				n = len(conn["nodes"].([]any))
			}
			if n != tc.wantNodes {
				t.Errorf("nodes = %d, want %d: %v", n, tc.wantNodes, m)
			}
		})
	}
}

func TestMetadataObfuscatesTablesForNonAdmins(t *testing.T) {
	ls := newLineageSite(t)
	ls.srv.AddPATWithRole("limited", "limited-secret", RoleExplorer)
	tok := ls.signInPAT("limited", "limited-secret")
	_, m := ls.gql(tok, `{ publishedDatasources(filter: {name: "Orders"}) { name upstreamTables { id name schema database { name } } } }`, nil)
	if m["errors"] != nil {
		t.Fatal(m["errors"])
	}
	ts := dig(m, "data", "publishedDatasources").([]any)[0].(map[string]any)["upstreamTables"].([]any)
	tb := ts[0].(map[string]any)
	if len(ts) != 1 || tb["id"] == nil || tb["name"] != nil || tb["schema"] != nil || dig(tb, "database", "name") != nil {
		t.Errorf("table seen by an Explorer = %v", ts)
	}
}

func TestMetadataHTTPErrors(t *testing.T) {
	e := newEnv(t)
	tok := e.signIn()
	r := send(t, request{method: "POST", url: e.srv.URL() + metadataPath, body: `{"query":"{ workbooks { name } }"}`})
	if r.status != http.StatusUnauthorized {
		t.Errorf("no token: %d", r.status)
	}
	e.srv.ExpireSessions()
	r = send(t, request{method: "POST", url: e.srv.URL() + metadataPath, token: tok, body: `{"query":"{ workbooks { name } }"}`})
	if r.status != http.StatusUnauthorized || r.code(t) != codeInvalidCredentials {
		t.Errorf("expired token: %d %s", r.status, r.body)
	}
	tok = e.signIn()
	r = send(t, request{method: "GET", url: e.srv.URL() + metadataPath, token: tok})
	if r.status != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", r.status)
	}
	r = send(t, request{method: "POST", url: e.srv.URL() + metadataPath, token: tok, body: `{"variables":{}}`})
	if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), `query`) {
		t.Errorf("no query: %d %s", r.status, r.body)
	}
}

func TestParseGraphQLValues(t *testing.T) {
	doc, err := parseGraphQL(`query Q($a: [Int!]! = [1, 2], $b: Boolean = true) @dir {
	  f(a: -1.5e3, b: "tab\tquote\"", c: """block "q" """, d: ENUM_V, e: null, f: {x: [1 2 3]}) @skip(if: false) { g }
	}`)
	if err != nil {
		t.Fatal(err)
	}
	op := doc.ops[0]
	if op.name != "Q" || len(op.vars) != 2 || op.vars[0].typ.String() != "[Int!]!" || op.vars[1].typ.String() != "Boolean" {
		t.Fatalf("op = %+v", op)
	}
	got := map[string]any{}
	for _, a := range op.sel[0].args {
		v, err := literalValue(a.val, nil)
		if err != nil {
			t.Fatal(err)
		}
		got[a.name] = v
	}
	want := map[string]any{"a": -1500.0, "b": "tab\tquote\"", "c": `block "q" `, "d": "ENUM_V", "e": nil,
		"f": map[string]any{"x": []any{1, 2, 3}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("args = %#v\nwant %#v", got, want)
	}
	for _, bad := range []string{`{ f(a: 1.) }`, `{ f(a: "unterminated) }`, `{ f(a: "\q") }`, `{ f(a: 12abc) }`, `{ }`, `query ($) { f }`} {
		if _, err := parseGraphQL(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
