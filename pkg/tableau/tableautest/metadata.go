package tableautest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// The Tableau Metadata API (GraphQL): POST /api/metadata/graphql with the REST
// session's X-Tableau-Auth, body {"query", "variables", "operationName"},
// reply {"data", "errors"}. The simulator serves the part of the schema a
// refresh bridge reads (published data sources, workbooks and their embedded
// data sources, database tables, custom SQL tables, their *Connection forms
// with first/after/offset paging, and filters) and Tableau's documented
// failure modes:
//
//   - NODE_LIMIT_EXCEEDED: once a query has resolved more content objects than
//     the node limit (Tableau Server's default is 20,000), resolution stops;
//     the reply keeps the whole objects resolved so far, with a pageInfo that
//     describes them, and a WARNING (observed shape: "Showing partial results.
//     The request exceeded the 20000 node limit. ..." with
//     extensions.properties.nodeLimit);
//   - TIME_LIMIT_EXCEEDED, with or without partial data, and any other code,
//     through InjectMetadataFault;
//   - FEATURE_DISABLED when the Metadata API is off (Tableau Server before
//     `tsm maintenance metadata-services enable`), ACCESS_DENIED for an
//     unlicensed user, FILTER_REQUIRED for a non-administrator listing tables
//     without a filter on a site without Data Management, where table and
//     database details are also obfuscated (null) as Tableau's default
//     permission mode does;
//   - BACKFILL_RUNNING while the Catalog is still indexing;
//   - MAX_PAGE_SIZE_EXCEEDED and INVALID_ARGUMENT (after with offset, bad
//     cursors, text filters of only spaces or a single quote);
//   - validation errors for unknown fields and arguments, as graphql-java
//     words them, so a typo in a client's query fails here as it would there.
//
// Error codes and wording are from
// https://help.tableau.com/current/api/metadata_api/en-us/docs/meta_api_errors.html;
// the schema follows https://help.tableau.com/current/api/metadata_api/en-us/reference/.
// Two readings are the simulator's own, because the reference does not say:
// a table's downstreamWorkbooks includes workbooks that reach it through a
// published data source, and the HTTP status of GraphQL errors is 200.

const metadataPath = "/api/metadata/graphql"

// Metadata API error codes the simulator sends.
const (
	MetadataNodeLimitExceeded   = "NODE_LIMIT_EXCEEDED"
	MetadataTimeLimitExceeded   = "TIME_LIMIT_EXCEEDED"
	MetadataFeatureDisabled     = "FEATURE_DISABLED"
	MetadataAccessDenied        = "ACCESS_DENIED"
	MetadataFilterRequired      = "FILTER_REQUIRED"
	MetadataBackfillRunning     = "BACKFILL_RUNNING"
	MetadataInvalidArgument     = "INVALID_ARGUMENT"
	MetadataMaxPageSizeExceeded = "MAX_PAGE_SIZE_EXCEEDED"
)

const (
	defaultNodeLimit   = 20000
	defaultMaxPageSize = 1000
	defaultFirst       = 100
)

// MetadataFault makes Metadata API queries fail. Faults apply in the order
// injected, one per query.
type MetadataFault struct {
	// Code is the extensions.code of the error, e.g. "TIME_LIMIT_EXCEEDED".
	Code string
	// Message overrides the usual message for the code.
	Message string
	// Partial executes the query anyway and keeps half the nodes of its
	// connection, as a query cut short by the time limit does; the error is
	// then a WARNING. Otherwise data is null and the error an ERROR.
	Partial bool
	// Times limits how many queries the fault applies to; 0 means until
	// ClearMetadataFaults.
	Times int
}

type metaState struct {
	schema      *gqlSchema
	tables      []*metaTable
	tableByKey  map[string]*metaTable
	databases   map[string]*metaDatabase
	customSQL   []*metaCustomSQL
	version     int
	graph       *lineageGraph
	disabled    bool
	dataMgmt    bool
	backfill    bool
	nodeLimit   int
	maxPageSize int
	faults      []*MetadataFault
}

func newMetaState() metaState {
	return metaState{
		schema:      newMetadataSchema(),
		tableByKey:  map[string]*metaTable{},
		databases:   map[string]*metaDatabase{},
		nodeLimit:   defaultNodeLimit,
		maxPageSize: defaultMaxPageSize,
	}
}

// SetMetadataEnabled turns the Metadata API on or off. It is on by default,
// as on Tableau Cloud; off, every query answers FEATURE_DISABLED, as Tableau
// Server does until `tsm maintenance metadata-services enable`.
func (s *Server) SetMetadataEnabled(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.meta.disabled = !on
}

// SetDataManagement says whether the site has Data Management. Without it
// (the default) only site and server administrators see table and database
// details; other users get them obfuscated (null) and FILTER_REQUIRED when
// they list tables without a filter.
func (s *Server) SetDataManagement(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.meta.dataMgmt = on
}

// SetMetadataBackfillRunning adds a BACKFILL_RUNNING warning to every
// reply, as while the Catalog builds its store.
func (s *Server) SetMetadataBackfillRunning(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.meta.backfill = on
}

// SetMetadataNodeLimit sets how many content objects one query may resolve
// before NODE_LIMIT_EXCEEDED; the default is 20,000. n <= 0 removes the
// limit.
func (s *Server) SetMetadataNodeLimit(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.meta.nodeLimit = n
}

// SetMetadataMaxPageSize sets the largest page ("first") served before
// MAX_PAGE_SIZE_EXCEEDED; the default is 1000.
func (s *Server) SetMetadataMaxPageSize(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.meta.maxPageSize = n
}

// InjectMetadataFault adds a fault to Metadata API queries.
func (s *Server) InjectMetadataFault(f MetadataFault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.meta.faults = append(s.meta.faults, &f)
}

// ClearMetadataFaults removes every injected Metadata API fault.
func (s *Server) ClearMetadataFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.meta.faults = nil
}

func (s *Server) takeMetadataFaultLocked() *MetadataFault {
	if len(s.meta.faults) == 0 {
		return nil
	}
	f := s.meta.faults[0]
	applied := *f
	if f.Times > 0 {
		f.Times--
		if f.Times == 0 {
			s.meta.faults = s.meta.faults[1:]
		}
	}
	return &applied
}

func faultMessage(code string) string {
	switch code {
	case MetadataTimeLimitExceeded:
		return "Showing partial results. Request time limit exceeded. Try again later."
	case MetadataFeatureDisabled:
		return "Can't run the query because the Metadata API has not been enabled yet. Run the 'tsm maintenance metadata-services enable' command to enable the Metadata API or contact your Tableau administrator."
	case MetadataAccessDenied:
		return "You are not authorized to use the Metadata API."
	case MetadataBackfillRunning:
		return "Still creating the Metadata API Store. Results from the query may be incomplete at this time."
	}
	return "Injected fault: " + code
}

func codedError(code, severity, msg string) gqlError {
	return gqlError{Message: msg, Extensions: map[string]any{"severity": severity, "code": code}}
}

// metaView is what resolvers read during one query.
type metaView struct {
	g         *lineageGraph
	obfuscate bool // table and database details hidden from this user
	admin     bool
	maxPage   int
}

func (s *Server) serveMetadata(c *call) error {
	if c.r.Method != http.MethodPost {
		return newError(http.StatusMethodNotAllowed, codeMethodNotAllowed,
			fmt.Sprintf("Method %s is not allowed for '%s'.", c.r.Method, c.r.URL.Path))
	}
	sess, err := s.authenticate(c.r)
	if err != nil {
		return err
	}
	if err := sessionScope(sess, scopeContentRead); err != nil {
		return err
	}
	var req struct {
		Query         *string        `json:"query"`
		Variables     map[string]any `json:"variables"`
		OperationName string         `json:"operationName"`
	}
	dec := json.NewDecoder(bytes.NewReader(c.body))
	if err := dec.Decode(&req); err != nil || req.Query == nil {
		msg := "the request body must be a JSON object with a \"query\" string"
		if err != nil {
			msg += ": " + err.Error()
		}
		return writeGraphQL(c.w, http.StatusBadRequest, nil, []gqlError{{Message: msg}})
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.meta.disabled {
		return writeGraphQL(c.w, http.StatusOK, nil,
			[]gqlError{codedError(MetadataFeatureDisabled, "ERROR", faultMessage(MetadataFeatureDisabled))})
	}
	if sess.user.siteRole == RoleUnlicensed {
		return writeGraphQL(c.w, http.StatusOK, nil,
			[]gqlError{codedError(MetadataAccessDenied, "ERROR", faultMessage(MetadataAccessDenied))})
	}
	doc, err := parseGraphQL(*req.Query)
	if err != nil {
		se := err.(*gqlSyntaxError)
		return writeGraphQL(c.w, http.StatusOK, nil, []gqlError{{Message: se.msg, Locations: []gqlLocation{se.loc},
			Extensions: map[string]any{"classification": "InvalidSyntax"}}})
	}
	op, vars, errs := s.meta.schema.prepare(doc, req.OperationName, req.Variables)
	if len(errs) > 0 {
		return writeGraphQL(c.w, http.StatusOK, nil, errs)
	}
	fault := s.takeMetadataFaultLocked()
	if fault != nil && !fault.Partial {
		msg := fault.Message
		if msg == "" {
			msg = faultMessage(fault.Code)
		}
		return writeGraphQL(c.w, http.StatusOK, nil, []gqlError{codedError(fault.Code, "ERROR", msg)})
	}
	view := &metaView{
		g:         s.graphLocked(),
		admin:     sess.user.isAdmin(),
		obfuscate: !sess.user.isAdmin() && !s.meta.dataMgmt,
		maxPage:   s.meta.maxPageSize,
	}
	ec := &gqlExec{schema: s.meta.schema, vars: vars, data: view, nodeLimit: s.meta.nodeLimit, cutRoot: -1}
	if fault != nil {
		ec.cutRoot = -2 // half of whatever the page holds
	}
	data := ec.execute(op)
	errs = ec.errors
	if ec.limitHit {
		e := codedError(MetadataNodeLimitExceeded, "WARNING", fmt.Sprintf(
			"Showing partial results. The request exceeded the %d node limit. Use pagination, additional filtering, or both in the query to adjust results.",
			ec.nodeLimit))
		e.Extensions["properties"] = map[string]any{"nodeLimit": ec.nodeLimit}
		errs = append(errs, e)
	}
	if fault != nil {
		msg := fault.Message
		if msg == "" {
			msg = faultMessage(fault.Code)
		}
		errs = append(errs, codedError(fault.Code, "WARNING", msg))
	}
	if s.meta.backfill {
		errs = append(errs, codedError(MetadataBackfillRunning, "WARNING", faultMessage(MetadataBackfillRunning)))
	}
	return writeGraphQL(c.w, http.StatusOK, data, errs)
}

func writeGraphQL(w http.ResponseWriter, status int, data *orderedObject, errs []gqlError) error {
	out := &orderedObject{}
	if data != nil {
		out.set("data", data)
	}
	if len(errs) > 0 {
		list := make([]any, len(errs))
		for i, e := range errs {
			list[i] = e
		}
		out.set("errors", list)
	}
	var b bytes.Buffer
	if err := writeJSON(&b, out); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_, err := w.Write(b.Bytes())
	return err
}

// Filter fields by input type: each maps to the node's value for it; the
// "...Within" form of a field takes a list.
type filterSpec map[string]func(v *metaView, node any) any

func (f filterSpec) inputType() map[string]string {
	t := map[string]string{}
	for name := range f {
		if name == "hasExtracts" || name == "isEmbedded" || name == "isUnsupportedCustomSql" {
			t[name] = "Boolean"
			continue
		}
		t[name] = "String"
		t[name+"Within"] = "[String]"
	}
	return t
}

var errTextFilter = &gqlFieldError{code: MetadataInvalidArgument, severity: "ERROR",
	message: "A text filter can't contain only the following characters: spaces or a single quotation mark. Replace the invalid characters and try again."}

// match applies a filter object to a node.
func (f filterSpec) match(v *metaView, filter map[string]any, node any) (bool, error) {
	for k, want := range filter {
		if want == nil {
			continue
		}
		name, within := strings.CutSuffix(k, "Within")
		if !within {
			name = k
		}
		have := f[name](v, node)
		if within {
			found := false
			for _, w := range want.([]any) {
				if err := checkTextFilter(w); err != nil {
					return false, err
				}
				if w == have {
					found = true
				}
			}
			if !found {
				return false, nil
			}
			continue
		}
		if err := checkTextFilter(want); err != nil {
			return false, err
		}
		if want != have {
			return false, nil
		}
	}
	return true, nil
}

func checkTextFilter(v any) error {
	s, ok := v.(string)
	if ok && (strings.Trim(s, " ") == "" || s == "'") {
		return errTextFilter
	}
	return nil
}

type nodeKind struct {
	typ     string // node type name
	plural  string // for the connection type name, e.g. "PublishedDatasources"
	all     func(v *metaView) []any
	idOf    func(node any) string
	filter  filterSpec
	fInput  string // filter input type name
	guarded bool   // FILTER_REQUIRED for users who cannot see table details
}

func encodeCursor(kind, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + "|" + id))
}

var errInvalidCursor = &gqlFieldError{code: MetadataInvalidArgument, severity: "ERROR",
	message: "The query contains an invalid cursor. Make sure to use cursors of the same type."}

// page resolves a *Connection field.
func (k *nodeKind) page(ec *gqlExec, args map[string]any) (any, error) {
	v := ec.data.(*metaView)
	matched, err := k.filtered(v, args)
	if err != nil {
		return nil, err
	}
	first := defaultFirst
	if n, ok := args["first"].(int); ok {
		first = n
	}
	if first < 0 {
		return nil, &gqlFieldError{code: MetadataInvalidArgument, severity: "ERROR", message: "first must not be negative."}
	}
	if first > v.maxPage {
		ec.errors = append(ec.errors, codedError(MetadataMaxPageSizeExceeded, "WARNING", fmt.Sprintf(
			"The value chosen for \"first\" exceeded the maximum page size, so the query results will be limited to the maximum page size (%d) instead of the value chosen for \"first\".",
			v.maxPage)))
		first = v.maxPage
	}
	after, _ := args["after"].(string)
	offset, hasOffset := args["offset"].(int)
	if after != "" && hasOffset {
		return nil, &gqlFieldError{code: MetadataInvalidArgument, severity: "ERROR",
			message: "Can't use \"after\" and \"offset\" pagination at the same time. Remove one of the arguments from the query."}
	}
	start := 0
	switch {
	case after != "":
		raw, err := base64.RawURLEncoding.DecodeString(after)
		kind, id, ok := strings.Cut(string(raw), "|")
		if err != nil || !ok || kind != k.typ {
			return nil, errInvalidCursor
		}
		start = -1
		for i, n := range matched {
			if k.idOf(n) == id {
				start = i + 1
				break
			}
		}
		if start < 0 {
			return nil, errInvalidCursor
		}
	case hasOffset:
		start = min(max(offset, 0), len(matched))
	}
	end := min(start+first, len(matched))
	items := matched[start:end]
	if ec.cutRoot == -2 {
		ec.cutRoot = len(items) / 2
	}
	return &gqlConnection{
		items:    items,
		total:    len(matched),
		more:     end < len(matched),
		after:    after,
		cursorOf: func(n any) string { return encodeCursor(k.typ, k.idOf(n)) },
		kept:     -1,
	}, nil
}

func (k *nodeKind) filtered(v *metaView, args map[string]any) ([]any, error) {
	filter, _ := args["filter"].(map[string]any)
	if k.guarded && v.obfuscate && len(filter) == 0 {
		return nil, &gqlFieldError{code: MetadataFilterRequired, severity: "ERROR",
			message: "Can't run the query because you must be an admin. Alternatively, if you are not an admin, you can rerun the query with a field name filter to return results."}
	}
	all := k.all(v)
	if len(filter) == 0 {
		return all, nil
	}
	var out []any
	for _, n := range all {
		ok, err := k.filter.match(v, filter, n)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, n)
		}
	}
	return out, nil
}

func itemsAny(its []*item) []any {
	out := make([]any, len(its))
	for i, it := range its {
		out[i] = it
	}
	return out
}

func tablesAny(ts []*metaTable) []any {
	out := make([]any, len(ts))
	for i, t := range ts {
		out[i] = t
	}
	return out
}

// hidden applies the permission mode: details of tables and databases are
// null for users who may not see them.
func hidden(ec *gqlExec, s string) any {
	if ec.data.(*metaView).obfuscate {
		return nil
	}
	return s
}

func field(typ string, f func(ec *gqlExec, p any) any) *gqlField {
	return &gqlField{typ: typ, resolve: func(ec *gqlExec, p any, _ map[string]any) (any, error) { return f(ec, p), nil }}
}

func listField(typ string, f func(ec *gqlExec, p any) []any) *gqlField {
	return &gqlField{typ: typ, list: true, resolve: func(ec *gqlExec, p any, _ map[string]any) (any, error) {
		return f(ec, p), nil
	}}
}

func graph(ec *gqlExec) *lineageGraph { return ec.data.(*metaView).g }

func newMetadataSchema() *gqlSchema {
	s := &gqlSchema{objects: map[string]*gqlObjectType{}, inputs: map[string]map[string]string{}}
	add := func(t *gqlObjectType) { s.objects[t.name] = t }

	itemStr := func(get func(*item) string) func(*gqlExec, any) any {
		return func(_ *gqlExec, p any) any { return get(p.(*item)) }
	}
	add(&gqlObjectType{name: "PublishedDatasource", fields: map[string]*gqlField{
		"id":          field("ID", itemStr(func(it *item) string { return it.lineage.metaID })),
		"luid":        field("String", itemStr(func(it *item) string { return it.id })),
		"name":        field("String", itemStr(func(it *item) string { return it.name })),
		"projectName": field("String", itemStr(func(it *item) string { return it.project.name })),
		"hasExtracts": field("Boolean", func(_ *gqlExec, p any) any { return p.(*item).hasExtract }),
		"extractLastRefreshTime": field("DateTime", func(_ *gqlExec, p any) any {
			if it := p.(*item); it.hasExtract {
				return stamp(it.updated)
			}
			return nil
		}),
		"upstreamTables":      listField("DatabaseTable", func(ec *gqlExec, p any) []any { return tablesAny(graph(ec).dsTables[p.(*item)]) }),
		"downstreamWorkbooks": listField("Workbook", func(ec *gqlExec, p any) []any { return itemsAny(graph(ec).dsWorkbooks[p.(*item)]) }),
	}})
	add(&gqlObjectType{name: "Workbook", fields: map[string]*gqlField{
		"id":          field("ID", itemStr(func(it *item) string { return it.lineage.metaID })),
		"luid":        field("String", itemStr(func(it *item) string { return it.id })),
		"name":        field("String", itemStr(func(it *item) string { return it.name })),
		"projectName": field("String", itemStr(func(it *item) string { return it.project.name })),
		"embeddedDatasources": listField("EmbeddedDatasource", func(_ *gqlExec, p any) []any {
			var out []any
			for _, e := range p.(*item).lineage.embedded {
				out = append(out, e)
			}
			return out
		}),
		"upstreamDatasources": listField("PublishedDatasource", func(ec *gqlExec, p any) []any { return itemsAny(graph(ec).wbPublished[p.(*item)]) }),
		"upstreamTables":      listField("DatabaseTable", func(ec *gqlExec, p any) []any { return tablesAny(graph(ec).wbTables[p.(*item)]) }),
	}})
	add(&gqlObjectType{name: "EmbeddedDatasource", fields: map[string]*gqlField{
		"id":   field("ID", func(_ *gqlExec, p any) any { return p.(*metaEmbedded).id }),
		"name": field("String", func(_ *gqlExec, p any) any { return p.(*metaEmbedded).name }),
		// The embedded source standing for a published one holds no extract
		// of its own: the published source does.
		"hasExtracts":    field("Boolean", func(_ *gqlExec, p any) any { return p.(*metaEmbedded).extract }),
		"upstreamTables": listField("DatabaseTable", func(ec *gqlExec, p any) []any { return tablesAny(graph(ec).embTables[p.(*metaEmbedded)]) }),
		"upstreamDatasources": listField("PublishedDatasource", func(_ *gqlExec, p any) []any {
			if e := p.(*metaEmbedded); e.published != nil {
				return []any{e.published}
			}
			return nil
		}),
		"workbook": field("Workbook", func(_ *gqlExec, p any) any { return p.(*metaEmbedded).workbook }),
	}})
	tableStr := func(get func(*metaTable) string) func(*gqlExec, any) any {
		return func(ec *gqlExec, p any) any { return hidden(ec, get(p.(*metaTable))) }
	}
	add(&gqlObjectType{name: "DatabaseTable", fields: map[string]*gqlField{
		"id":             field("ID", func(_ *gqlExec, p any) any { return p.(*metaTable).id }),
		"luid":           field("String", func(_ *gqlExec, p any) any { return p.(*metaTable).luid }),
		"name":           field("String", tableStr(func(t *metaTable) string { return t.name })),
		"schema":         field("String", tableStr(func(t *metaTable) string { return t.schema })),
		"fullName":       field("String", tableStr(func(t *metaTable) string { return t.fullName() })),
		"connectionType": field("String", tableStr(func(t *metaTable) string { return t.connectionType })),
		"isEmbedded":     field("Boolean", func(_ *gqlExec, _ any) any { return false }),
		"database": field("Database", func(ec *gqlExec, p any) any {
			return p.(*metaTable).db
		}),
		"downstreamDatasources": listField("PublishedDatasource", func(ec *gqlExec, p any) []any { return itemsAny(graph(ec).tableDS[p.(*metaTable)]) }),
		"downstreamWorkbooks":   listField("Workbook", func(ec *gqlExec, p any) []any { return itemsAny(graph(ec).tableWB[p.(*metaTable)]) }),
	}})
	add(&gqlObjectType{name: "Database", fields: map[string]*gqlField{
		"id":             field("ID", func(_ *gqlExec, p any) any { return p.(*metaDatabase).id }),
		"luid":           field("String", func(_ *gqlExec, p any) any { return p.(*metaDatabase).luid }),
		"name":           field("String", func(ec *gqlExec, p any) any { return hidden(ec, p.(*metaDatabase).name) }),
		"connectionType": field("String", func(ec *gqlExec, p any) any { return hidden(ec, p.(*metaDatabase).connectionType) }),
	}})
	add(&gqlObjectType{name: "CustomSQLTable", fields: map[string]*gqlField{
		"id":                     field("ID", func(_ *gqlExec, p any) any { return p.(*metaCustomSQL).id }),
		"name":                   field("String", func(_ *gqlExec, _ any) any { return "Custom SQL Query" }),
		"query":                  field("String", func(_ *gqlExec, p any) any { return p.(*metaCustomSQL).query }),
		"isUnsupportedCustomSql": field("Boolean", func(_ *gqlExec, p any) any { return p.(*metaCustomSQL).unsupported }),
		"isEmbedded":             field("Boolean", func(_ *gqlExec, _ any) any { return true }),
		"connectionType": field("String", func(ec *gqlExec, p any) any {
			if db := p.(*metaCustomSQL).db; db != nil {
				return hidden(ec, db.connectionType)
			}
			return nil
		}),
		"database": field("Database", func(_ *gqlExec, p any) any {
			if db := p.(*metaCustomSQL).db; db != nil {
				return db
			}
			return nil
		}),
		"tables":                listField("DatabaseTable", func(_ *gqlExec, p any) []any { return tablesAny(p.(*metaCustomSQL).tables) }),
		"downstreamDatasources": listField("PublishedDatasource", func(ec *gqlExec, p any) []any { return itemsAny(graph(ec).sqlPublished[p.(*metaCustomSQL)]) }),
		"downstreamWorkbooks":   listField("Workbook", func(ec *gqlExec, p any) []any { return itemsAny(graph(ec).sqlWorkbooks[p.(*metaCustomSQL)]) }),
	}})
	add(pageInfoType)

	idOfItem := func(n any) string { return n.(*item).lineage.metaID }
	itemFilter := filterSpec{
		"id":          func(_ *metaView, n any) any { return n.(*item).lineage.metaID },
		"luid":        func(_ *metaView, n any) any { return n.(*item).id },
		"name":        func(_ *metaView, n any) any { return n.(*item).name },
		"projectName": func(_ *metaView, n any) any { return n.(*item).project.name },
	}
	dsFilter := filterSpec{"hasExtracts": func(_ *metaView, n any) any { return n.(*item).hasExtract }}
	for k, v := range itemFilter {
		dsFilter[k] = v
	}
	tableDetail := func(get func(*metaTable) string) func(*metaView, any) any {
		return func(v *metaView, n any) any {
			if v.obfuscate {
				return nil // a hidden name matches no filter
			}
			return get(n.(*metaTable))
		}
	}
	kinds := []*nodeKind{
		{typ: "PublishedDatasource", plural: "PublishedDatasources", fInput: "PublishedDatasource_Filter", idOf: idOfItem,
			all: func(v *metaView) []any { return itemsAny(v.g.datasources) }, filter: dsFilter},
		{typ: "Workbook", plural: "Workbooks", fInput: "Workbook_Filter", idOf: idOfItem,
			all: func(v *metaView) []any { return itemsAny(v.g.workbooks) }, filter: itemFilter},
		{typ: "DatabaseTable", plural: "DatabaseTables", fInput: "DatabaseTable_Filter", guarded: true,
			idOf: func(n any) string { return n.(*metaTable).id },
			all:  func(v *metaView) []any { return tablesAny(v.g.tables) },
			filter: filterSpec{
				"id":             func(_ *metaView, n any) any { return n.(*metaTable).id },
				"luid":           func(_ *metaView, n any) any { return n.(*metaTable).luid },
				"name":           tableDetail(func(t *metaTable) string { return t.name }),
				"schema":         tableDetail(func(t *metaTable) string { return t.schema }),
				"fullName":       tableDetail(func(t *metaTable) string { return t.fullName() }),
				"connectionType": tableDetail(func(t *metaTable) string { return t.connectionType }),
				"isEmbedded":     func(_ *metaView, _ any) any { return false },
			}},
		{typ: "CustomSQLTable", plural: "CustomSQLTables", fInput: "CustomSQLTable_Filter",
			idOf: func(n any) string { return n.(*metaCustomSQL).id },
			all: func(v *metaView) []any {
				out := make([]any, len(v.g.customSQL))
				for i, q := range v.g.customSQL {
					out[i] = q
				}
				return out
			},
			filter: filterSpec{
				"id":                     func(_ *metaView, n any) any { return n.(*metaCustomSQL).id },
				"name":                   func(_ *metaView, _ any) any { return "Custom SQL Query" },
				"isUnsupportedCustomSql": func(_ *metaView, n any) any { return n.(*metaCustomSQL).unsupported },
			}},
	}
	root := &gqlObjectType{name: "Query", uncounted: true, fields: map[string]*gqlField{}}
	for _, k := range kinds {
		k := k
		s.inputs[k.fInput] = k.filter.inputType()
		add(connectionType(k.typ, k.plural))
		lower := strings.ToLower(k.plural[:1]) + k.plural[1:]
		root.fields[lower+"Connection"] = &gqlField{typ: k.plural + "Connection",
			args: map[string]string{"first": "Int", "after": "String", "offset": "Int", "filter": k.fInput},
			resolve: func(ec *gqlExec, _ any, args map[string]any) (any, error) {
				return k.page(ec, args)
			}}
		root.fields[lower] = &gqlField{typ: k.typ, list: true, args: map[string]string{"filter": k.fInput},
			resolve: func(ec *gqlExec, _ any, args map[string]any) (any, error) {
				items, err := k.filtered(ec.data.(*metaView), args)
				return items, err
			}}
	}
	s.query = root
	return s
}
