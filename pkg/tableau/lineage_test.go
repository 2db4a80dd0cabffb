package tableau_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau/tableautest"
)

func sf(schema, name string) tableautest.TableRef {
	return tableautest.TableRef{Database: "ANALYTICS", Schema: schema, Name: name, ConnectionType: "snowflake"}
}

// lineageSite is content over three warehouses: a published extract and a
// live published source, a workbook that only reads the published extract,
// a workbook with an embedded extract and an embedded live source, custom
// SQL in a published source and in a workbook, and an unsupported query.
type lineageSite struct {
	srv                          *tableautest.Server
	ordersDS, liveDS, sqlDS      string
	sales, ops, sqlWB, unsupWB   string
	bq, dbx                      tableautest.TableRef
	bqDS, dbxWB, quoted          string
	orders, customers, items     tableautest.TableRef
	quotedTable, dottedTable     tableautest.TableRef
	camelTable                   tableautest.TableRef
	camelDS                      string
	unusedTable                  tableautest.TableRef
	liveWB                       string
	allDatasources, allWorkbooks int
}

func newLineageSite(t *testing.T) *lineageSite {
	srv := newSim(t)
	s := &lineageSite{srv: srv}
	s.orders, s.customers, s.items = sf("MARTS", "ORDERS"), sf("MARTS", "CUSTOMERS"), sf("MARTS", "ORDER_ITEMS")
	s.bq = tableautest.TableRef{Database: "acme-prod", Schema: "marts", Name: "orders", ConnectionType: "bigquery"}
	s.dbx = tableautest.TableRef{Database: "main", Schema: "marts", Name: "orders", ConnectionType: "databricks"}
	s.quotedTable = sf("MARTS", "O'Brien \"Q\"")
	s.dottedTable = sf("MARTS", "v1.orders")
	s.camelTable = tableautest.TableRef{Database: "acme-prod", Schema: "marts", Name: "CamelCase", ConnectionType: "bigquery"}
	s.unusedTable = sf("STAGING", "STG_ORDERS")
	srv.AddDatabaseTable(s.unusedTable)

	s.ordersDS = srv.AddDatasource("Orders", "Finance", tableautest.ReadsTables(s.orders))
	s.liveDS = srv.AddDatasource("Customers", "Finance", tableautest.NoExtract(), tableautest.ReadsTables(s.customers))
	s.sqlDS = srv.AddDatasource("Order lines", "Finance", tableautest.WithCustomSQL(tableautest.CustomSQL{
		Query: "select * from marts.order_items", Tables: []tableautest.TableRef{s.items}}))
	s.bqDS = srv.AddDatasource("BQ orders", "Finance", tableautest.ReadsTables(s.bq))
	s.quoted = srv.AddDatasource("Quoted", "Finance", tableautest.ReadsTables(s.quotedTable, s.dottedTable))
	s.camelDS = srv.AddDatasource("Camel", "Finance", tableautest.ReadsTables(s.camelTable))
	s.sales = srv.AddWorkbook("Sales", "Finance", tableautest.UsesDatasources(s.ordersDS, s.liveDS))
	s.ops = srv.AddWorkbook("Ops", "Ops", tableautest.WithEmbeddedSources(
		tableautest.EmbeddedSource{Name: "orders extract", Extract: true, Tables: []tableautest.TableRef{s.orders}},
		tableautest.EmbeddedSource{Name: "customers live", Tables: []tableautest.TableRef{s.customers}},
	))
	s.sqlWB = srv.AddWorkbook("Lines", "Ops", tableautest.WithEmbeddedSources(tableautest.EmbeddedSource{
		Name: "lines", Extract: true,
		CustomSQL: []tableautest.CustomSQL{{Query: "select 1 from marts.order_items", Tables: []tableautest.TableRef{s.items}}},
	}))
	s.unsupWB = srv.AddWorkbook("Weird SQL", "Ops", tableautest.WithEmbeddedSources(tableautest.EmbeddedSource{
		Name: "weird", Extract: true,
		CustomSQL: []tableautest.CustomSQL{{Query: "exec proc", Tables: []tableautest.TableRef{s.orders}, Unsupported: true}},
	}))
	s.dbxWB = srv.AddWorkbook("Lakehouse", "Ops", tableautest.ReadsTables(s.dbx))
	s.liveWB = srv.AddWorkbook("Live board", "Ops", tableautest.NoExtract(), tableautest.ReadsTables(s.customers))
	s.allDatasources, s.allWorkbooks = 6, 6
	return s
}

// edgeStrings renders edges as "table -> kind name (extract|live) via".
func edgeStrings(es []tableau.LineageEdge) []string {
	var out []string
	for _, e := range es {
		mode := "live"
		if e.Target.Extract {
			mode = "extract"
		}
		out = append(out, fmt.Sprintf("%s.%s.%s -> %s %s (%s) via %s", e.Table.Database, e.Table.Schema, e.Table.Name,
			e.Target.Kind, e.Target.Name, mode, e.Via))
	}
	sort.Strings(out)
	return out
}

// walkAll builds the whole index from the start and returns every page.
func walkAll(t *testing.T, c *tableau.Client, cur tableau.LineageCursor) ([]*tableau.LineagePage, tableau.LineageCursor) {
	t.Helper()
	var pages []*tableau.LineagePage
	end, err := c.WalkLineage(ctxT(t), cur, func(p *tableau.LineagePage) error {
		pages = append(pages, p)
		return nil
	})
	if err != nil {
		t.Fatalf("WalkLineage: %v", err)
	}
	if !end.Done() {
		t.Fatalf("walk stopped at %+v", end)
	}
	return pages, end
}

func allEdges(pages []*tableau.LineagePage) []string {
	var es []tableau.LineageEdge
	for _, p := range pages {
		es = append(es, p.Edges()...)
	}
	return edgeStrings(es)
}

func TestLineageIndexBuild(t *testing.T) {
	s := newLineageSite(t)
	w := newWire()
	c := newSimClient(t, s.srv, tableau.WithHTTPClient(w.client()))
	pages, _ := walkAll(t, c, tableau.LineageCursor{PageSize: 2})

	var ds, wb, sql int
	for _, p := range pages {
		ds += len(p.Datasources)
		wb += len(p.Workbooks)
		sql += len(p.CustomSQL)
		if p.Partial || len(p.Warnings) > 0 || p.HiddenTables > 0 {
			t.Errorf("page %+v is partial or warned", p)
		}
	}
	// 6 data sources, 6 workbooks and 3 custom SQL tables at 2 a page.
	if ds != s.allDatasources || wb != s.allWorkbooks || sql != 3 || len(pages) != 3+3+2 {
		t.Errorf("read %d data sources, %d workbooks, %d custom SQL in %d pages", ds, wb, sql, len(pages))
	}
	if n := w.count("POST", "/api/metadata/graphql"); n != len(pages) {
		t.Errorf("metadata calls = %d, want one per page (%d)", n, len(pages))
	}
	if n := w.count("POST", "/auth/signin"); n != 1 {
		t.Errorf("sign-ins = %d, want 1", n)
	}
	want := []string{
		"ANALYTICS.MARTS.CUSTOMERS -> datasource Customers (live) via published data source",
		"ANALYTICS.MARTS.CUSTOMERS -> workbook Live board (live) via embedded data source \"Live board\"",
		"ANALYTICS.MARTS.CUSTOMERS -> workbook Ops (live) via embedded data source \"customers live\"",
		"ANALYTICS.MARTS.O'Brien \"Q\" -> datasource Quoted (extract) via published data source",
		"ANALYTICS.MARTS.ORDERS -> datasource Orders (extract) via published data source",
		"ANALYTICS.MARTS.ORDERS -> workbook Ops (extract) via embedded data source \"orders extract\"",
		"ANALYTICS.MARTS.ORDER_ITEMS -> datasource Order lines (extract) via custom SQL in published data source",
		"ANALYTICS.MARTS.ORDER_ITEMS -> datasource Order lines (extract) via published data source",
		"ANALYTICS.MARTS.ORDER_ITEMS -> workbook Lines (extract) via custom SQL in an embedded data source",
		"ANALYTICS.MARTS.ORDER_ITEMS -> workbook Lines (extract) via embedded data source \"lines\"",
		"ANALYTICS.MARTS.v1.orders -> datasource Quoted (extract) via published data source",
		"acme-prod.marts.CamelCase -> datasource Camel (extract) via published data source",
		"acme-prod.marts.orders -> datasource BQ orders (extract) via published data source",
		"main.marts.orders -> workbook Lakehouse (extract) via embedded data source \"Lakehouse\"",
	}
	// Sales reads ORDERS only through the published Orders: no edge of its
	// own. The unsupported query resolved no table: no edge. Custom SQL is
	// seen twice, from its data source and from the custom SQL pass (edges
	// are unique within a page, not across pages).
	if got := allEdges(pages); !slices.Equal(got, want) {
		t.Errorf("edges:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, p := range pages {
		for _, d := range p.Datasources {
			if d.LUID == s.ordersDS && (len(d.DownstreamWorkbooks) != 1 || d.DownstreamWorkbooks[0].LUID != s.sales) {
				t.Errorf("Orders downstream workbooks = %+v", d.DownstreamWorkbooks)
			}
		}
		for _, w := range p.Workbooks {
			if w.LUID == s.sales && (len(w.UpstreamDatasources) != 2 || !w.EmbeddedDatasources[0].ReadsPublished()) {
				t.Errorf("Sales = %+v", w)
			}
		}
		for _, q := range p.CustomSQL {
			if q.Unsupported && len(q.Tables) != 0 {
				t.Errorf("unsupported custom SQL resolved tables %+v", q.Tables)
			}
		}
	}
}

// An index build resumes from a kept cursor: a failure mid-way (here, the
// caller's store refusing a page) returns the cursor of the page that
// failed, and resuming from it reads every page once more from there.
func TestLineageIndexResumes(t *testing.T) {
	s := newLineageSite(t)
	c := newSimClient(t, s.srv)
	errStore := errors.New("store down")
	var first []string
	n := 0
	cur, err := c.WalkLineage(ctxT(t), tableau.LineageCursor{PageSize: 2}, func(p *tableau.LineagePage) error {
		n++
		if n == 3 {
			return errStore
		}
		for _, d := range p.Datasources {
			first = append(first, d.Name)
		}
		return nil
	})
	if !errors.Is(err, errStore) || cur.Stage != tableau.LineageStageDatasources || cur.After == "" {
		t.Fatalf("WalkLineage = %+v, %v", cur, err)
	}
	// The cursor survives a round trip through JSON (the state table).
	pages, _ := walkAll(t, c, roundTrip(t, cur))
	var rest []string
	for _, p := range pages {
		for _, d := range p.Datasources {
			rest = append(rest, d.Name)
		}
	}
	if got := append(first, rest...); len(got) != s.allDatasources || len(slices.Compact(slices.Sorted(slices.Values(got)))) != s.allDatasources {
		t.Errorf("data sources read = %v", got)
	}
}

func roundTrip(t *testing.T, cur tableau.LineageCursor) tableau.LineageCursor {
	t.Helper()
	b, err := json.Marshal(cur)
	if err != nil {
		t.Fatal(err)
	}
	var out tableau.LineageCursor
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out != cur {
		t.Fatalf("cursor %+v came back as %+v from %s", cur, out, b)
	}
	return out
}

// deadlineCtx lets a test move the deadline WalkLineage sees.
type deadlineCtx struct {
	context.Context
	mu       sync.Mutex
	deadline time.Time
}

func (d *deadlineCtx) Deadline() (time.Time, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.deadline, true
}

func TestLineageWalkStopsBeforeTheDeadline(t *testing.T) {
	s := newLineageSite(t)
	c := newSimClient(t, s.srv)
	ctx := &deadlineCtx{Context: ctxT(t), deadline: time.Now().Add(time.Hour)}
	var seen []tableau.LineageCursor
	cur, err := c.WalkLineage(ctx, tableau.LineageCursor{PageSize: 2}, func(p *tableau.LineagePage) error {
		seen = append(seen, p.Next)
		ctx.mu.Lock()
		ctx.deadline = time.Now() // no time left for another page
		ctx.mu.Unlock()
		return nil
	})
	if err != nil || len(seen) != 1 || cur != seen[0] || cur.Done() {
		t.Errorf("WalkLineage = %+v, %v after %d pages", cur, err, len(seen))
	}
}

func TestLineagePageShrinksOnNodeLimit(t *testing.T) {
	srv := newSim(t)
	for i := range 30 {
		srv.AddDatasource(fmt.Sprintf("ds-%02d", i), "P", tableautest.ReadsTables(sf("S", fmt.Sprintf("T%02d_A", i)), sf("S", fmt.Sprintf("T%02d_B", i))))
	}
	// A data source costs 5 nodes (itself, 2 tables, their 2 databases):
	// 40 allows 8 a page. 20 -> 10 -> 5 (the floor).
	srv.SetMetadataNodeLimit(40)
	w := newWire()
	c := newSimClient(t, srv, tableau.WithHTTPClient(w.client()))
	page, err := c.FetchLineagePage(ctxT(t), tableau.LineageCursor{PageSize: 20, MinPageSize: 5})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Datasources) != 5 || page.Calls != 3 || page.Partial || page.Next.PageSize != 5 || page.Next.MinPageSize != 5 {
		t.Errorf("page: %d data sources, %d calls, partial %v, next %+v", len(page.Datasources), page.Calls, page.Partial, page.Next)
	}
	// The smaller size stays for the rest of the build.
	pages, _ := walkAll(t, c, page.Next)
	n := len(page.Datasources)
	for _, p := range pages {
		n += len(p.Datasources)
		if p.Calls != 1 {
			t.Errorf("a later page took %d calls", p.Calls)
		}
	}
	if n != 30 {
		t.Errorf("read %d data sources, want 30", n)
	}
}

// At the floor, a page the node limit still cuts keeps its partial results
// (whole nodes, with a pageInfo that carries on after them) with a warning,
// and the build loses nothing.
func TestLineagePageKeepsPartialResultsAtTheFloor(t *testing.T) {
	srv := newSim(t)
	for i := range 12 {
		srv.AddDatasource(fmt.Sprintf("ds-%02d", i), "P", tableautest.ReadsTables(sf("S", fmt.Sprintf("T%02d_A", i)), sf("S", fmt.Sprintf("T%02d_B", i))))
	}
	srv.SetMetadataNodeLimit(20) // 4 data sources a query
	c := newSimClient(t, srv)
	page, err := c.FetchLineagePage(ctxT(t), tableau.LineageCursor{PageSize: 10, MinPageSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	if !page.Partial || len(page.Datasources) != 4 || len(page.Warnings) != 1 || page.Warnings[0].Code != tableau.MetadataNodeLimitExceeded ||
		page.Next.Stage != tableau.LineageStageDatasources {
		t.Fatalf("page: partial %v, %d data sources, warnings %v, next %+v", page.Partial, len(page.Datasources), page.Warnings, page.Next)
	}
	pages, _ := walkAll(t, c, page.Next)
	n := len(page.Datasources)
	for _, p := range pages {
		n += len(p.Datasources)
	}
	if n != 12 {
		t.Errorf("read %d data sources, want 12", n)
	}
}

func TestLineagePageTimeLimit(t *testing.T) {
	tests := []struct {
		name      string
		fault     tableautest.MetadataFault
		cur       tableau.LineageCursor
		wantCalls int
		wantDS    int
		partial   bool
		wantErr   error
	}{
		{"shrinks, then fits", tableautest.MetadataFault{Code: tableau.MetadataTimeLimitExceeded, Times: 2},
			tableau.LineageCursor{PageSize: 8, MinPageSize: 2}, 3, 2, false, nil},
		{"partial data kept at the floor", tableautest.MetadataFault{Code: tableau.MetadataTimeLimitExceeded, Partial: true, Times: 1},
			tableau.LineageCursor{PageSize: 4, MinPageSize: 4}, 1, 2, true, nil},
		{"no data at the floor fails", tableautest.MetadataFault{Code: tableau.MetadataTimeLimitExceeded},
			tableau.LineageCursor{PageSize: 4, MinPageSize: 2}, 2, 0, false, tableau.ErrTimeLimit},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newLineageSite(t)
			s.srv.InjectMetadataFault(tc.fault)
			w := newWire()
			c := newSimClient(t, s.srv, tableau.WithHTTPClient(w.client()))
			page, err := c.FetchLineagePage(ctxT(t), tc.cur)
			calls := w.count("POST", "/api/metadata/graphql")
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || calls != tc.wantCalls || !tableau.Retryable(err) {
					t.Errorf("err = %v after %d calls (retryable %v)", err, calls, tableau.Retryable(err))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if page.Calls != tc.wantCalls || calls != tc.wantCalls || len(page.Datasources) != tc.wantDS || page.Partial != tc.partial {
				t.Errorf("page: %d calls (%d on the wire), %d data sources, partial %v", page.Calls, calls, len(page.Datasources), page.Partial)
			}
		})
	}
}

func TestLineageFailuresNameTheFix(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(srv *tableautest.Server)
		role    string
		wantIs  error
		wantFix string
	}{
		{"Metadata API off", func(srv *tableautest.Server) { srv.SetMetadataEnabled(false) }, "",
			tableau.ErrMetadataDisabled, "tsm maintenance metadata-services enable"},
		{"unlicensed user", nil, tableautest.RoleUnlicensed, tableau.ErrLineageForbidden, "Site Administrator"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newLineageSite(t)
			if tc.setup != nil {
				tc.setup(s.srv)
			}
			opts := []tableau.Option{}
			if tc.role != "" {
				s.srv.AddPATWithRole("limited", "limited-secret", tc.role)
				opts = append(opts, tableau.WithPAT("limited", "limited-secret"))
			}
			c := newLimitedClient(t, s.srv, opts...)
			_, err := c.FetchLineagePage(ctxT(t), tableau.LineageCursor{})
			if !errors.Is(err, tc.wantIs) || !strings.Contains(tableau.MetadataFix(err), tc.wantFix) || tableau.Retryable(err) {
				t.Errorf("FetchLineagePage err = %v, fix %q", err, tableau.MetadataFix(err))
			}
			_, err = c.LookupTables(ctxT(t), []string{"ORDERS"})
			if !errors.Is(err, tc.wantIs) {
				t.Errorf("LookupTables err = %v", err)
			}
		})
	}
}

// newLimitedClient is newSimClient, but the given PAT replaces the default.
func newLimitedClient(t *testing.T, srv *tableautest.Server, opts ...tableau.Option) *tableau.Client {
	t.Helper()
	if len(opts) == 0 {
		return newSimClient(t, srv)
	}
	c, err := tableau.NewClient(srv.URL(), append([]tableau.Option{tableau.WithSite(simSite), tableau.WithRetryPolicy(fastRetries)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A user who may not see table details (an Explorer, no Data Management)
// gets lineage with the tables hidden: counted, never matched.
func TestLineageHiddenTables(t *testing.T) {
	s := newLineageSite(t)
	s.srv.AddPATWithRole("limited", "limited-secret", tableautest.RoleExplorer)
	c := newLimitedClient(t, s.srv, tableau.WithPAT("limited", "limited-secret"))
	pages, _ := walkAll(t, c, tableau.LineageCursor{})
	hidden := 0
	for _, p := range pages {
		hidden += p.HiddenTables
	}
	if hidden == 0 || len(allEdges(pages)) != 0 {
		t.Errorf("hidden tables %d, edges %v", hidden, allEdges(pages))
	}
	if !strings.Contains(tableau.HiddenTablesFix, "Data Management") {
		t.Errorf("HiddenTablesFix = %q", tableau.HiddenTablesFix)
	}
	// With Data Management the same user sees them.
	s.srv.SetDataManagement(true)
	pages, _ = walkAll(t, c, tableau.LineageCursor{})
	if len(allEdges(pages)) == 0 {
		t.Error("no edges with Data Management")
	}
}

func TestLineageBackfillWarning(t *testing.T) {
	s := newLineageSite(t)
	s.srv.SetMetadataBackfillRunning(true)
	c := newSimClient(t, s.srv)
	page, err := c.FetchLineagePage(ctxT(t), tableau.LineageCursor{})
	if err != nil {
		t.Fatal(err)
	}
	if !page.Partial || len(page.Warnings) != 1 || page.Warnings[0].Code != tableau.MetadataBackfillRunning ||
		len(page.Datasources) != s.allDatasources {
		t.Errorf("page = %+v", page)
	}
}

func TestLookupTables(t *testing.T) {
	s := newLineageSite(t)
	tests := []struct {
		name   string
		names  []string
		tables []string // database.schema.name of the tables found
		edges  []string
	}{
		{"upper-case table asked in lower case", []string{"orders"},
			[]string{"ANALYTICS.MARTS.ORDERS", "acme-prod.marts.orders", "main.marts.orders"},
			[]string{
				"ANALYTICS.MARTS.ORDERS -> datasource Orders (extract) via published data source",
				"ANALYTICS.MARTS.ORDERS -> workbook Ops (extract) via embedded data source \"orders extract\"",
				"acme-prod.marts.orders -> datasource BQ orders (extract) via published data source",
				"main.marts.orders -> workbook Lakehouse (extract) via embedded data source \"Lakehouse\"",
			}},
		{"live content is found and marked live", []string{"CUSTOMERS"},
			[]string{"ANALYTICS.MARTS.CUSTOMERS"},
			[]string{
				"ANALYTICS.MARTS.CUSTOMERS -> datasource Customers (live) via published data source",
				"ANALYTICS.MARTS.CUSTOMERS -> workbook Live board (live) via embedded data source \"Live board\"",
				"ANALYTICS.MARTS.CUSTOMERS -> workbook Ops (live) via embedded data source \"customers live\"",
			}},
		{"custom SQL tables", []string{`"ORDER_ITEMS"`},
			[]string{"ANALYTICS.MARTS.ORDER_ITEMS"},
			[]string{
				"ANALYTICS.MARTS.ORDER_ITEMS -> datasource Order lines (extract) via published data source",
				"ANALYTICS.MARTS.ORDER_ITEMS -> workbook Lines (extract) via embedded data source \"lines\"",
			}},
		{"quotes, dots, brackets, case", []string{`"O'Brien ""Q"""`, "[v1.orders]", "CamelCase", "'", " "},
			[]string{"ANALYTICS.MARTS.O'Brien \"Q\"", "ANALYTICS.MARTS.v1.orders", "acme-prod.marts.CamelCase"},
			[]string{
				"ANALYTICS.MARTS.O'Brien \"Q\" -> datasource Quoted (extract) via published data source",
				"ANALYTICS.MARTS.v1.orders -> datasource Quoted (extract) via published data source",
				"acme-prod.marts.CamelCase -> datasource Camel (extract) via published data source",
			}},
		{"a table nothing reads", []string{"STG_ORDERS"}, []string{"ANALYTICS.STAGING.STG_ORDERS"}, nil},
		{"unknown names", []string{"NOPE", "nope2"}, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWire()
			c := newSimClient(t, s.srv, tableau.WithHTTPClient(w.client()))
			res, err := c.LookupTables(ctxT(t), tc.names)
			if err != nil {
				t.Fatal(err)
			}
			var tables []string
			for _, tl := range res.Tables {
				tables = append(tables, tl.Table.Database+"."+tl.Table.Schema+"."+tl.Table.Name)
			}
			sort.Strings(tables)
			if !slices.Equal(tables, tc.tables) {
				t.Errorf("tables = %q, want %q", tables, tc.tables)
			}
			if got := edgeStrings(res.Edges()); !slices.Equal(got, tc.edges) {
				t.Errorf("edges:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.edges, "\n"))
			}
			if n := w.count("POST", "/api/metadata/graphql"); n != 1 || res.Calls != 1 {
				t.Errorf("metadata calls = %d (counted %d), want 1", n, res.Calls)
			}
		})
	}
	// No names, no request.
	c := newSimClient(t, s.srv)
	if res, err := c.LookupTables(ctxT(t), []string{"'", ""}); err != nil || len(res.Tables) != 0 || res.Calls != 0 {
		t.Errorf("LookupTables of nothing = %+v, %v", res, err)
	}
}

// Many names are still one query (paged, and shrunk on the node limit).
func TestLookupTablesManyNamesPages(t *testing.T) {
	srv := newSim(t)
	var names []string
	for i := range 250 {
		name := fmt.Sprintf("T%03d", i)
		names = append(names, strings.ToLower(name))
		srv.AddDatasource("ds-"+name, "P", tableautest.ReadsTables(sf("S", name)))
	}
	srv.SetMetadataNodeLimit(299) // a table with its data source and database: 3 nodes
	w := newWire()
	c := newSimClient(t, srv, tableau.WithHTTPClient(w.client()))
	res, err := c.LookupTables(ctxT(t), names)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Tables) != 250 || len(res.Edges()) != 250 {
		t.Errorf("found %d tables, %d edges", len(res.Tables), len(res.Edges()))
	}
	// 100 a page hits the limit once; 50 a page takes 5 more.
	if n := w.count("POST", "/api/metadata/graphql"); n != res.Calls || n != 6 {
		t.Errorf("metadata calls = %d (counted %d), want 6", n, res.Calls)
	}
}

// The Metadata API uses the REST session: an expired one is replaced once,
// and a shared session store is used as for the REST calls.
func TestLineageUsesTheRESTSession(t *testing.T) {
	s := newLineageSite(t)
	w := newWire()
	store := tableau.NewMemorySessionStore()
	c := newSimClient(t, s.srv, tableau.WithHTTPClient(w.client()), tableau.WithSessionStore(store))
	if _, err := c.FindWorkbook(ctxT(t), "Sales", "Finance"); err != nil {
		t.Fatal(err)
	}
	s.srv.ExpireSessions()
	if _, err := c.LookupTables(ctxT(t), []string{"ORDERS"}); err != nil {
		t.Fatal(err)
	}
	if n := w.count("POST", "/auth/signin"); n != 2 {
		t.Errorf("sign-ins = %d, want 2", n)
	}
	if got := w.statuses(http.StatusUnauthorized); got != 1 {
		t.Errorf("401 replies = %d, want 1", got)
	}
	// Another client sharing the store adopts the session: no sign-in.
	w2 := newWire()
	c2 := newSimClient(t, s.srv, tableau.WithHTTPClient(w2.client()), tableau.WithSessionStore(store))
	if _, err := c2.FetchLineagePage(ctxT(t), tableau.LineageCursor{}); err != nil {
		t.Fatal(err)
	}
	if n := w2.count("POST", "/auth/signin"); n != 0 {
		t.Errorf("second client signed in %d times", n)
	}
}

func TestLineageCursorValidation(t *testing.T) {
	c := newSimClient(t, newSim(t))
	for _, cur := range []tableau.LineageCursor{{Stage: "tables"}, {PageSize: -1}, {PageSize: 5, MinPageSize: 6}} {
		if _, err := c.FetchLineagePage(ctxT(t), cur); err == nil {
			t.Errorf("cursor %+v accepted", cur)
		}
	}
	page, err := c.FetchLineagePage(ctxT(t), tableau.LineageCursor{Stage: tableau.LineageStageDone})
	if err != nil || !page.Next.Done() || page.Calls != 0 {
		t.Errorf("done cursor: %+v, %v", page, err)
	}
}
