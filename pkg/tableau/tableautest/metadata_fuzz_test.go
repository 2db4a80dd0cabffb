package tableautest

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzMetadataQuery runs arbitrary documents and variables through the
// parser, the validator and the executor over a small site: whatever comes
// in, the simulator answers (an error is an answer) and never panics.
func FuzzMetadataQuery(f *testing.F) {
	for _, seed := range []struct{ q, vars string }{
		{`query q($first: Int!, $after: String) { publishedDatasourcesConnection(first: $first, after: $after) {
		  nodes { luid name upstreamTables { name database { name } } downstreamWorkbooks { luid } }
		  pageInfo { hasNextPage endCursor } totalCount } }`, `{"first": 2}`},
		{`query t($names: [String]) { databaseTablesConnection(filter: {nameWithin: $names}) {
		  nodes { name downstreamDatasources { luid hasExtracts } downstreamWorkbooks { embeddedDatasources { name } } } } }`,
			`{"names": ["ORDERS", "'"]}`},
		{`{ a: workbooks(filter: {name: "x"}) { name __typename } customSQLTables { query tables { name } } }`, `{}`},
		{`{ workbooksConnection(after: "eA", offset: -3, first: -1) { totalCount } }`, `null`},
	} {
		f.Add(seed.q, seed.vars)
	}
	srv := NewServer()
	f.Cleanup(srv.Close)
	orders := TableRef{Database: "DB", Schema: "S", Name: "ORDERS", ConnectionType: "snowflake"}
	ds := srv.AddDatasource("Orders", "P", ReadsTables(orders), WithCustomSQL(CustomSQL{Query: "q", Tables: []TableRef{orders}}))
	srv.AddWorkbook("W", "P", UsesDatasources(ds), WithEmbeddedSources(EmbeddedSource{Name: "e", Extract: true, Tables: []TableRef{orders}}))
	srv.SetMetadataNodeLimit(7)
	f.Fuzz(func(t *testing.T, q, rawVars string) {
		doc, err := parseGraphQL(q)
		if err != nil {
			return
		}
		var vars map[string]any
		_ = json.Unmarshal([]byte(rawVars), &vars)
		srv.mu.Lock()
		defer srv.mu.Unlock()
		op, vs, errs := srv.meta.schema.prepare(doc, "", vars)
		if len(errs) > 0 {
			return
		}
		ec := &gqlExec{schema: srv.meta.schema, vars: vs, data: &metaView{g: srv.graphLocked(), maxPage: 2},
			nodeLimit: srv.meta.nodeLimit, cutRoot: -1}
		var b bytes.Buffer
		if err := writeJSON(&b, ec.execute(op)); err != nil || !json.Valid(b.Bytes()) {
			t.Fatalf("reply %s: %v", b.Bytes(), err)
		}
	})
}
