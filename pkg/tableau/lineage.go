package tableau

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/remote"
)

// Lineage from the Metadata API: which Tableau content reads which database
// tables, and whether refreshing it means anything.
//
// Tableau's rules, which the Edges methods apply:
//   - a published data source with extracts (hasExtracts) is refreshed as a
//     data source; a live one (hasExtracts false) has nothing to refresh;
//   - a workbook's embedded data source that reads tables itself is
//     refreshed through its workbook when it holds an extract;
//   - a workbook that reads a published data source holds, for it, an
//     embedded data source whose upstreamDatasources names the published one
//     and whose upstreamTables repeat the published one's; the workbook needs
//     no refresh of its own for it: refreshing the published source covers it;
//   - custom SQL counts where Tableau resolved its tables (CustomSQLTable
//     tables); an unsupported query (isUnsupportedCustomSql) has none.
//
// Tables whose name came back null were hidden by Tableau's permissions (the
// default OBFUSCATE_RESULTS mode): without Data Management only
// administrators see table details. They are counted as HiddenTables, never
// matched.
//
// See https://help.tableau.com/current/api/metadata_api/en-us/docs/meta_api_model.html
// and https://help.tableau.com/current/api/metadata_api/en-us/docs/meta_api_permissions.html.

// LineageStage names the connection an index build is paging through.
type LineageStage string

// The stages of an index build, in order.
const (
	LineageStageDatasources LineageStage = "datasources" // publishedDatasourcesConnection
	LineageStageWorkbooks   LineageStage = "workbooks"   // workbooksConnection
	LineageStageCustomSQL   LineageStage = "custom_sql"  // customSQLTablesConnection
	LineageStageDone        LineageStage = "done"
)

const (
	// DefaultLineagePageSize is the page size ("first") when a cursor has
	// none: the Metadata API's own default.
	DefaultLineagePageSize = 100
	// DefaultMinLineagePageSize is the floor page halving stops at when a
	// cursor names none: a page of this size that still hits a limit keeps
	// its partial results. Below it each request costs more than it reads.
	DefaultMinLineagePageSize = 10
)

// LineageCursor says where an index build stands. It is JSON so that a
// caller can keep it (in the state table) and resume in a later invocation;
// the zero value starts at the beginning.
type LineageCursor struct {
	Stage LineageStage `json:"stage,omitempty"`
	// After is the endCursor of the last page read in Stage; "" for its start.
	After string `json:"after,omitempty"`
	// PageSize is the page size in force; it shrinks when Tableau's node or
	// time limit is hit and stays shrunk for the rest of the build. 0 means
	// DefaultLineagePageSize.
	PageSize int `json:"page_size,omitempty"`
	// MinPageSize is the floor of the shrinking; 0 means
	// DefaultMinLineagePageSize (or PageSize, if that is smaller).
	MinPageSize int `json:"min_page_size,omitempty"`
}

// Done reports whether the build has read every page.
func (c LineageCursor) Done() bool { return c.Stage == LineageStageDone }

// LineageTable is a database table as Tableau's Catalog names it.
type LineageTable struct {
	Name     string // e.g. "ORDERS"; "" when hidden by permissions
	Schema   string // e.g. "MARTS"; the BigQuery dataset
	FullName string // e.g. "[MARTS].[ORDERS]"
	// Database is the database's name: the Snowflake database, the
	// Databricks catalog, the BigQuery project.
	Database string
	// ConnectionType is the table's connection type (else its
	// database's), e.g. "snowflake", "bigquery", "databricks".
	ConnectionType string
}

// Hidden reports a table whose details Tableau withheld.
func (t LineageTable) Hidden() bool { return t.Name == "" }

func (t LineageTable) same(o LineageTable) bool {
	return t.Name == o.Name && t.Schema == o.Schema && t.Database == o.Database
}

// LineageContent identifies a workbook or published data source.
type LineageContent struct {
	LUID        string // the REST API id
	Name        string
	ProjectName string
}

// LineageDatasource is a published data source.
type LineageDatasource struct {
	LineageContent
	HasExtracts         bool
	UpstreamTables      []LineageTable
	DownstreamWorkbooks []LineageContent
}

// LineageEmbeddedDatasource is a data source embedded in a workbook.
type LineageEmbeddedDatasource struct {
	ID          string // the Metadata API id (embedded sources have no LUID)
	Name        string
	HasExtracts bool
	// UpstreamTables are the tables it reads, including, for one that
	// stands for a published data source, the published source's tables.
	UpstreamTables []LineageTable
	// UpstreamDatasources are the published data sources it reads.
	UpstreamDatasources []LineageContent
}

// ReadsPublished reports an embedded data source that stands for published
// ones: refreshing those covers it.
func (e LineageEmbeddedDatasource) ReadsPublished() bool { return len(e.UpstreamDatasources) > 0 }

// LineageWorkbook is a workbook and its data sources.
type LineageWorkbook struct {
	LineageContent
	EmbeddedDatasources []LineageEmbeddedDatasource
	// UpstreamDatasources are the published data sources the workbook reads.
	UpstreamDatasources []LineageContent
}

// LineageCustomSQL is a custom SQL query in a data source.
type LineageCustomSQL struct {
	ID          string
	Query       string
	Unsupported bool // isUnsupportedCustomSql: Tableau could not resolve its tables
	// Tables are the tables Tableau resolved from the query.
	Tables []LineageTable
	// DownstreamDatasources are the published data sources holding or
	// reading the query; DownstreamWorkbooks the workbooks downstream.
	DownstreamDatasources []LineageDatasource
	DownstreamWorkbooks   []LineageWorkbook
}

// LineageTargetKind is the kind of content a lineage edge leads to; the
// values are those of the refresh map's "kind".
type LineageTargetKind string

// Target kinds.
const (
	LineageTargetDatasource LineageTargetKind = "datasource"
	LineageTargetWorkbook   LineageTargetKind = "workbook"
)

// LineageTarget is content to refresh when a table changes.
type LineageTarget struct {
	Kind LineageTargetKind
	LineageContent
	// Extract is false for a live connection: nothing to refresh.
	Extract bool
}

// LineageEdge says that Target reads Table, and how (Via, for the "why" of
// a refresh: e.g. `embedded data source "Orders extract"`).
type LineageEdge struct {
	Table  LineageTable
	Target LineageTarget
	Via    string
}

// LineagePage is one page of an index build.
type LineagePage struct {
	Stage LineageStage
	// One of these holds the page's nodes, by Stage.
	Datasources []LineageDatasource
	Workbooks   []LineageWorkbook
	CustomSQL   []LineageCustomSQL
	// TotalCount is the number of nodes of the stage's connection.
	TotalCount int
	// Next is where the build continues; Next.Done() after the last page.
	Next LineageCursor
	// Calls counts the Metadata API requests the page took (more than one
	// when it had to shrink).
	Calls int
	// Partial is set when Tableau's limits cut the page short even at the
	// smallest page size, or it warned that results may be incomplete.
	Partial bool
	// Warnings are the warnings (and the limit errors of a partial page)
	// Tableau sent with the data.
	Warnings []GraphQLError
	// HiddenTables counts tables without a name: see HiddenTablesFix.
	HiddenTables int
}

// Edges flattens the page into table -> content edges (see the package's
// lineage rules), one per table and target.
func (p *LineagePage) Edges() []LineageEdge {
	var es edgeSet
	for _, ds := range p.Datasources {
		for _, t := range ds.UpstreamTables {
			es.add(t, LineageTarget{Kind: LineageTargetDatasource, LineageContent: ds.LineageContent, Extract: ds.HasExtracts},
				"published data source")
		}
	}
	for _, wb := range p.Workbooks {
		for _, e := range wb.EmbeddedDatasources {
			if e.ReadsPublished() {
				continue
			}
			for _, t := range e.UpstreamTables {
				es.add(t, LineageTarget{Kind: LineageTargetWorkbook, LineageContent: wb.LineageContent, Extract: e.HasExtracts},
					fmt.Sprintf("embedded data source %q", e.Name))
			}
		}
	}
	for _, q := range p.CustomSQL {
		for _, t := range q.Tables {
			for _, ds := range q.DownstreamDatasources {
				es.add(t, LineageTarget{Kind: LineageTargetDatasource, LineageContent: ds.LineageContent, Extract: ds.HasExtracts},
					"custom SQL in published data source")
			}
			if len(q.DownstreamDatasources) > 0 {
				continue // the workbooks downstream read those published sources
			}
			for _, wb := range q.DownstreamWorkbooks {
				es.add(t, LineageTarget{Kind: LineageTargetWorkbook, LineageContent: wb.LineageContent, Extract: ownExtract(wb)},
					"custom SQL in an embedded data source")
			}
		}
	}
	return es.edges
}

// ownExtract reports whether a workbook holds an extract of its own (not
// one standing for a published data source).
func ownExtract(wb LineageWorkbook) bool {
	for _, e := range wb.EmbeddedDatasources {
		if e.HasExtracts && !e.ReadsPublished() {
			return true
		}
	}
	return false
}

// edgeSet collects edges once per table and target; a target reached both
// live and as an extract counts as an extract.
type edgeSet struct {
	edges []LineageEdge
	index map[string]int
}

func (s *edgeSet) add(t LineageTable, target LineageTarget, via string) {
	if t.Hidden() {
		return
	}
	if s.index == nil {
		s.index = map[string]int{}
	}
	k := strings.Join([]string{t.Database, t.Schema, t.Name, string(target.Kind), target.LUID}, "\x00")
	if i, ok := s.index[k]; ok {
		if target.Extract && !s.edges[i].Target.Extract {
			s.edges[i].Target.Extract, s.edges[i].Via = true, via
		}
		return
	}
	s.index[k] = len(s.edges)
	s.edges = append(s.edges, LineageEdge{Table: t, Target: target, Via: via})
}

// The queries. Field names are the Metadata API's
// (https://help.tableau.com/current/api/metadata_api/en-us/reference/); the
// simulator rejects any field it does not know, as Tableau does.
const (
	tableFields = `name schema fullName connectionType database { name connectionType }`

	lineageDatasourcesQuery = `query lineageDatasources($first: Int!, $after: String) {
  publishedDatasourcesConnection(first: $first, after: $after) {
    nodes {
      luid name projectName hasExtracts
      upstreamTables { ` + tableFields + ` }
      downstreamWorkbooks { luid name projectName }
    }
    pageInfo { hasNextPage endCursor }
    totalCount
  }
}`

	lineageWorkbooksQuery = `query lineageWorkbooks($first: Int!, $after: String) {
  workbooksConnection(first: $first, after: $after) {
    nodes {
      luid name projectName
      embeddedDatasources {
        id name hasExtracts
        upstreamTables { ` + tableFields + ` }
        upstreamDatasources { luid name projectName }
      }
      upstreamDatasources { luid name projectName }
    }
    pageInfo { hasNextPage endCursor }
    totalCount
  }
}`

	lineageCustomSQLQuery = `query lineageCustomSQL($first: Int!, $after: String) {
  customSQLTablesConnection(first: $first, after: $after) {
    nodes {
      id query isUnsupportedCustomSql
      tables { ` + tableFields + ` }
      downstreamDatasources { luid name projectName hasExtracts }
      downstreamWorkbooks {
        luid name projectName
        embeddedDatasources { id name hasExtracts upstreamDatasources { luid } }
      }
    }
    pageInfo { hasNextPage endCursor }
    totalCount
  }
}`

	lineageTablesQuery = `query lineageTables($names: [String], $first: Int!, $after: String) {
  databaseTablesConnection(filter: {nameWithin: $names}, first: $first, after: $after) {
    nodes {
      ` + tableFields + `
      downstreamDatasources { luid name projectName hasExtracts }
      downstreamWorkbooks {
        luid name projectName
        embeddedDatasources {
          id name hasExtracts
          upstreamTables { name schema database { name } }
          upstreamDatasources { luid name projectName }
        }
      }
    }
    pageInfo { hasNextPage endCursor }
    totalCount
  }
}`
)

type lineageStage struct {
	op, query, conn string
	next            LineageStage
}

func stageOf(s LineageStage) (lineageStage, bool) {
	switch s {
	case LineageStageDatasources:
		return lineageStage{"lineageDatasources", lineageDatasourcesQuery, "publishedDatasourcesConnection", LineageStageWorkbooks}, true
	case LineageStageWorkbooks:
		return lineageStage{"lineageWorkbooks", lineageWorkbooksQuery, "workbooksConnection", LineageStageCustomSQL}, true
	case LineageStageCustomSQL:
		return lineageStage{"lineageCustomSQL", lineageCustomSQLQuery, "customSQLTablesConnection", LineageStageDone}, true
	}
	return lineageStage{}, false
}

// Wire forms. Nullable strings decode to "".
type (
	wireTable struct {
		Name           string `json:"name"`
		Schema         string `json:"schema"`
		FullName       string `json:"fullName"`
		ConnectionType string `json:"connectionType"`
		Database       *struct {
			Name           string `json:"name"`
			ConnectionType string `json:"connectionType"`
		} `json:"database"`
	}
	wireContent struct {
		LUID        string `json:"luid"`
		Name        string `json:"name"`
		ProjectName string `json:"projectName"`
	}
	wireDatasource struct {
		wireContent
		HasExtracts         bool          `json:"hasExtracts"`
		UpstreamTables      []wireTable   `json:"upstreamTables"`
		DownstreamWorkbooks []wireContent `json:"downstreamWorkbooks"`
	}
	wireEmbedded struct {
		ID                  string        `json:"id"`
		Name                string        `json:"name"`
		HasExtracts         bool          `json:"hasExtracts"`
		UpstreamTables      []wireTable   `json:"upstreamTables"`
		UpstreamDatasources []wireContent `json:"upstreamDatasources"`
	}
	wireWorkbook struct {
		wireContent
		EmbeddedDatasources []wireEmbedded `json:"embeddedDatasources"`
		UpstreamDatasources []wireContent  `json:"upstreamDatasources"`
	}
	wireCustomSQL struct {
		ID                    string           `json:"id"`
		Query                 string           `json:"query"`
		Unsupported           bool             `json:"isUnsupportedCustomSql"`
		Tables                []wireTable      `json:"tables"`
		DownstreamDatasources []wireDatasource `json:"downstreamDatasources"`
		DownstreamWorkbooks   []wireWorkbook   `json:"downstreamWorkbooks"`
	}
	wireTableLineage struct {
		wireTable
		DownstreamDatasources []wireDatasource `json:"downstreamDatasources"`
		DownstreamWorkbooks   []wireWorkbook   `json:"downstreamWorkbooks"`
	}
)

// converter turns wire forms into the exported ones, counting hidden tables.
type converter struct{ hidden int }

func (cv *converter) table(w wireTable) LineageTable {
	t := LineageTable{Name: w.Name, Schema: w.Schema, FullName: w.FullName, ConnectionType: w.ConnectionType}
	if w.Database != nil {
		t.Database = w.Database.Name
		if t.ConnectionType == "" {
			t.ConnectionType = w.Database.ConnectionType
		}
	}
	if t.Hidden() {
		cv.hidden++
	}
	return t
}

func (cv *converter) tables(ws []wireTable) []LineageTable {
	out := make([]LineageTable, 0, len(ws))
	for _, w := range ws {
		out = append(out, cv.table(w))
	}
	return out
}

func contents(ws []wireContent) []LineageContent {
	out := make([]LineageContent, 0, len(ws))
	for _, w := range ws {
		out = append(out, LineageContent(w))
	}
	return out
}

func (cv *converter) datasource(w wireDatasource) LineageDatasource {
	return LineageDatasource{LineageContent: LineageContent(w.wireContent), HasExtracts: w.HasExtracts,
		UpstreamTables: cv.tables(w.UpstreamTables), DownstreamWorkbooks: contents(w.DownstreamWorkbooks)}
}

func (cv *converter) workbook(w wireWorkbook) LineageWorkbook {
	wb := LineageWorkbook{LineageContent: LineageContent(w.wireContent), UpstreamDatasources: contents(w.UpstreamDatasources)}
	for _, e := range w.EmbeddedDatasources {
		wb.EmbeddedDatasources = append(wb.EmbeddedDatasources, LineageEmbeddedDatasource{ID: e.ID, Name: e.Name,
			HasExtracts: e.HasExtracts, UpstreamTables: cv.tables(e.UpstreamTables), UpstreamDatasources: contents(e.UpstreamDatasources)})
	}
	return wb
}

// connPage is one page of a *Connection.
type connPage struct {
	nodes     json.RawMessage
	hasNext   bool
	endCursor string
	total     int
	pageSize  int // the page size that worked
	calls     int
	partial   bool
	warnings  []GraphQLError
}

// queryConnection reads one page of the connection conn. On
// NODE_LIMIT_EXCEEDED or TIME_LIMIT_EXCEEDED it halves the page and asks
// again, down to floor; at the floor it keeps the partial data, provided it
// moves the cursor on, and fails otherwise.
func (c *Client) queryConnection(ctx context.Context, q MetadataQuery, conn string, first, floor int, after string) (*connPage, error) {
	p := &connPage{}
	for {
		vars := map[string]any{"first": first}
		for k, v := range q.Variables {
			vars[k] = v
		}
		if after != "" {
			vars["after"] = after
		}
		var data map[string]*struct {
			Nodes    json.RawMessage `json:"nodes"`
			PageInfo *struct {
				HasNextPage bool   `json:"hasNextPage"`
				EndCursor   string `json:"endCursor"`
			} `json:"pageInfo"`
			TotalCount int `json:"totalCount"`
		}
		p.calls++
		err := c.QueryMetadata(ctx, MetadataQuery{Query: q.Query, OperationName: q.OperationName, Variables: vars}, &data)
		var me *MetadataError
		switch {
		case err == nil:
		case errors.As(err, &me) && me.HTTP == nil && (me.Is(ErrNodeLimit) || me.Is(ErrTimeLimit)):
			if first > floor {
				next := max(first/2, floor)
				c.logger.WarnContext(ctx, "tableau metadata query hit a limit; asking for smaller pages",
					"connection", conn, "page_size", first, "next_page_size", next, "error", me.Error())
				first = next
				continue
			}
			page := data[conn]
			if !me.Partial || page == nil || page.PageInfo == nil || (page.PageInfo.HasNextPage && page.PageInfo.EndCursor == after) {
				return nil, err // nothing usable, or no way past this node
			}
			c.logger.WarnContext(ctx, "tableau metadata page is partial even at the smallest page size",
				"connection", conn, "page_size", first, "error", me.Error())
			p.partial = true
			p.warnings = append(p.warnings, me.Errors...)
		case errors.As(err, &me) && me.WarningsOnly():
			p.warnings = append(p.warnings, me.Errors...)
			p.partial = p.partial || me.Is(ErrBackfillRunning)
		default:
			return nil, err
		}
		page := data[conn]
		if page == nil || page.PageInfo == nil {
			return nil, fmt.Errorf("tableau: %s: %w", q.OperationName, &FormatError{StatusCode: 200, Method: "POST",
				Path: "/api/metadata/graphql", Received: "data without the " + conn + " page"})
		}
		p.nodes, p.hasNext, p.endCursor, p.total, p.pageSize = page.Nodes, page.PageInfo.HasNextPage,
			page.PageInfo.EndCursor, page.TotalCount, first
		if p.hasNext && p.endCursor == "" {
			return nil, fmt.Errorf("tableau: %s: %w", q.OperationName, &FormatError{StatusCode: 200, Method: "POST",
				Path: "/api/metadata/graphql", Received: "a page with hasNextPage and no endCursor"})
		}
		return p, nil
	}
}

// FetchLineagePage reads the page of the index build at cur: published data
// sources, then workbooks with their embedded data sources, then custom SQL
// tables, each paged with first/after. Pages shrink on Tableau's node and
// time limits (see LineageCursor.PageSize). The page's Next is where to
// continue; a caller that keeps it can resume in another process.
//
// See https://help.tableau.com/current/api/metadata_api/en-us/docs/meta_api_examples.html.
func (c *Client) FetchLineagePage(ctx context.Context, cur LineageCursor) (*LineagePage, error) {
	if cur.Stage == "" {
		cur.Stage = LineageStageDatasources
	}
	if cur.PageSize == 0 {
		cur.PageSize = DefaultLineagePageSize
	}
	if cur.MinPageSize == 0 {
		cur.MinPageSize = min(DefaultMinLineagePageSize, cur.PageSize)
	}
	if cur.PageSize < 1 || cur.MinPageSize < 1 || cur.MinPageSize > cur.PageSize {
		return nil, fmt.Errorf("tableau: lineage page size %d, minimum %d: want 1 <= minimum <= page size",
			cur.PageSize, cur.MinPageSize)
	}
	if cur.Done() {
		return &LineagePage{Stage: LineageStageDone, Next: cur}, nil
	}
	st, ok := stageOf(cur.Stage)
	if !ok {
		return nil, fmt.Errorf("tableau: lineage cursor stage %q: want one of datasources, workbooks, custom_sql, done", cur.Stage)
	}
	cp, err := c.queryConnection(ctx, MetadataQuery{Query: st.query, OperationName: st.op}, st.conn,
		cur.PageSize, cur.MinPageSize, cur.After)
	if err != nil {
		return nil, err
	}
	page := &LineagePage{Stage: cur.Stage, TotalCount: cp.total, Calls: cp.calls, Partial: cp.partial, Warnings: cp.warnings}
	var cv converter
	bad := func(err error) error {
		return fmt.Errorf("tableau: %s: %w", st.op, &FormatError{StatusCode: 200, Method: "POST",
			Path: "/api/metadata/graphql", Received: "nodes of an unexpected shape", Err: err})
	}
	switch cur.Stage {
	case LineageStageDatasources:
		var ws []wireDatasource
		if err := json.Unmarshal(cp.nodes, &ws); err != nil {
			return nil, bad(err)
		}
		for _, w := range ws {
			page.Datasources = append(page.Datasources, cv.datasource(w))
		}
	case LineageStageWorkbooks:
		var ws []wireWorkbook
		if err := json.Unmarshal(cp.nodes, &ws); err != nil {
			return nil, bad(err)
		}
		for _, w := range ws {
			page.Workbooks = append(page.Workbooks, cv.workbook(w))
		}
	case LineageStageCustomSQL:
		var ws []wireCustomSQL
		if err := json.Unmarshal(cp.nodes, &ws); err != nil {
			return nil, bad(err)
		}
		for _, w := range ws {
			q := LineageCustomSQL{ID: w.ID, Query: w.Query, Unsupported: w.Unsupported, Tables: cv.tables(w.Tables)}
			for _, d := range w.DownstreamDatasources {
				q.DownstreamDatasources = append(q.DownstreamDatasources, cv.datasource(d))
			}
			for _, wb := range w.DownstreamWorkbooks {
				q.DownstreamWorkbooks = append(q.DownstreamWorkbooks, cv.workbook(wb))
			}
			page.CustomSQL = append(page.CustomSQL, q)
		}
	}
	page.HiddenTables = cv.hidden
	page.Next = LineageCursor{Stage: cur.Stage, After: cp.endCursor, PageSize: cp.pageSize, MinPageSize: cur.MinPageSize}
	if !cp.hasNext {
		page.Next = LineageCursor{Stage: st.next, PageSize: cp.pageSize, MinPageSize: cur.MinPageSize}
	}
	return page, nil
}

// WalkLineage fetches pages from cur until the build is done, handing each
// to visit, and returns where it stopped: a cursor to resume from, Done()
// when every page was read. It stops early, without error, when the next
// page would likely not finish before ctx's deadline (judged by the slowest
// page so far), so a Lambda can save the cursor and let the next invocation
// resume. On an error (from Tableau, or from visit) the returned cursor is
// that of the page that failed, so nothing is skipped.
func (c *Client) WalkLineage(ctx context.Context, cur LineageCursor, visit func(*LineagePage) error) (LineageCursor, error) {
	var slowest time.Duration
	for !cur.Done() {
		if slowest > 0 && !remote.Fits(ctx, 2*slowest) {
			c.logger.InfoContext(ctx, "tableau lineage walk stopping before the deadline",
				"stage", string(cur.Stage), "slowest_page", slowest.String())
			return cur, nil
		}
		start := time.Now()
		page, err := c.FetchLineagePage(ctx, cur)
		if err != nil {
			return cur, err
		}
		if err := visit(page); err != nil {
			return cur, err
		}
		slowest = max(slowest, time.Since(start))
		cur = page.Next
	}
	return cur, nil
}

// TableLineage is a table found by LookupTables and what reads it.
type TableLineage struct {
	Table LineageTable
	// DownstreamDatasources are the published data sources reading the table.
	DownstreamDatasources []LineageDatasource
	// DownstreamWorkbooks are the workbooks downstream, with their embedded
	// data sources, so that Edges can tell a workbook that reads the table
	// itself from one that reads it through a published data source.
	DownstreamWorkbooks []LineageWorkbook
}

// Edges applies the lineage rules to the table: its published data
// sources, and the workbooks that read it through an embedded data source
// of their own. A workbook whose embedded data sources stand for published
// ones is left out (refreshing those covers it). When none of a workbook's
// embedded data sources lists the table (Tableau sometimes returns empty
// upstreamTables for them), the workbook is kept if it holds an extract of
// its own, to refresh too much rather than too little.
func (tl TableLineage) Edges() []LineageEdge {
	var es edgeSet
	for _, ds := range tl.DownstreamDatasources {
		es.add(tl.Table, LineageTarget{Kind: LineageTargetDatasource, LineageContent: ds.LineageContent, Extract: ds.HasExtracts},
			"published data source")
	}
	for _, wb := range tl.DownstreamWorkbooks {
		own, viaPublished := false, false
		for _, e := range wb.EmbeddedDatasources {
			lists := false
			for _, t := range e.UpstreamTables {
				lists = lists || t.same(tl.Table)
			}
			switch {
			case lists && e.ReadsPublished():
				viaPublished = true
			case lists:
				own = true
				es.add(tl.Table, LineageTarget{Kind: LineageTargetWorkbook, LineageContent: wb.LineageContent, Extract: e.HasExtracts},
					fmt.Sprintf("embedded data source %q", e.Name))
			}
		}
		if !own && !viaPublished && ownExtract(wb) {
			es.add(tl.Table, LineageTarget{Kind: LineageTargetWorkbook, LineageContent: wb.LineageContent, Extract: true},
				"workbook (its embedded data sources do not list the table)")
		}
	}
	return es.edges
}

// TableLookup is the result of LookupTables.
type TableLookup struct {
	Tables []TableLineage
	// HiddenTables counts tables without a name: see HiddenTablesFix.
	HiddenTables int
	// Partial and Warnings are as for LineagePage.
	Partial  bool
	Warnings []GraphQLError
	// Calls counts Metadata API requests.
	Calls int
}

// Edges returns the edges of every table found.
func (l *TableLookup) Edges() []LineageEdge {
	var out []LineageEdge
	for _, t := range l.Tables {
		out = append(out, t.Edges()...)
	}
	return out
}

// LookupTables asks, in one paged query (databaseTablesConnection filtered
// with nameWithin), for the tables with the given names and the content
// downstream of each. Names are bare table names ("ORDERS", not
// "ANALYTICS.MARTS.ORDERS"): one level of quoting ("x", `x`, [x]) is removed,
// and each name is also asked for in upper and lower case, because Tableau
// compares names exactly and warehouses fold case. Tables of every schema
// and database with a matching name come back: matching the schema and
// database is the caller's. Names Tableau refuses as filters (blank, or a
// lone single quote) are left out. No names, no request.
//
// See https://help.tableau.com/current/api/metadata_api/en-us/reference/databasetable_filter.doc.html.
func (c *Client) LookupTables(ctx context.Context, names []string) (*TableLookup, error) {
	res := &TableLookup{}
	variants := lookupNames(names)
	if len(variants) == 0 {
		return res, nil
	}
	q := MetadataQuery{Query: lineageTablesQuery, OperationName: "lineageTables", Variables: map[string]any{"names": variants}}
	after, first := "", DefaultLineagePageSize
	var cv converter
	for {
		cp, err := c.queryConnection(ctx, q, "databaseTablesConnection", first, DefaultMinLineagePageSize, after)
		if cp != nil {
			res.Calls += cp.calls
		}
		if err != nil {
			return nil, err
		}
		res.Partial = res.Partial || cp.partial
		res.Warnings = append(res.Warnings, cp.warnings...)
		var ws []wireTableLineage
		if err := json.Unmarshal(cp.nodes, &ws); err != nil {
			return nil, fmt.Errorf("tableau: lineageTables: %w", &FormatError{StatusCode: 200, Method: "POST",
				Path: "/api/metadata/graphql", Received: "nodes of an unexpected shape", Err: err})
		}
		for _, w := range ws {
			tl := TableLineage{Table: cv.table(w.wireTable)}
			for _, d := range w.DownstreamDatasources {
				tl.DownstreamDatasources = append(tl.DownstreamDatasources, cv.datasource(d))
			}
			for _, wb := range w.DownstreamWorkbooks {
				tl.DownstreamWorkbooks = append(tl.DownstreamWorkbooks, cv.workbook(wb))
			}
			res.Tables = append(res.Tables, tl)
		}
		if !cp.hasNext {
			break
		}
		after, first = cp.endCursor, cp.pageSize
	}
	// Tables inside workbooks' embedded sources are counted too; only the
	// looked-up tables say whether lineage is hidden.
	res.HiddenTables = 0
	for _, t := range res.Tables {
		if t.Table.Hidden() {
			res.HiddenTables++
		}
	}
	return res, nil
}

// lookupNames prepares names for a nameWithin filter: unquoted, in their
// own, upper and lower case, without duplicates, sorted.
func lookupNames(names []string) []any {
	seen := map[string]bool{}
	for _, n := range names {
		n = unquoteIdent(strings.TrimSpace(n))
		if strings.Trim(n, " ") == "" || n == "'" {
			continue
		}
		for _, v := range []string{n, strings.ToUpper(n), strings.ToLower(n)} {
			seen[v] = true
		}
	}
	out := make([]string, 0, len(seen))
	for v := range seen {
		out = append(out, v)
	}
	sort.Strings(out)
	list := make([]any, len(out))
	for i, v := range out {
		list[i] = v
	}
	return list
}

// unquoteIdent removes one level of SQL identifier quoting: "a""b", `a“b`
// or [a]]b].
func unquoteIdent(s string) string {
	if len(s) < 2 {
		return s
	}
	switch {
	case s[0] == '"' && s[len(s)-1] == '"':
		return strings.ReplaceAll(s[1:len(s)-1], `""`, `"`)
	case s[0] == '`' && s[len(s)-1] == '`':
		return strings.ReplaceAll(s[1:len(s)-1], "``", "`")
	case s[0] == '[' && s[len(s)-1] == ']':
		return strings.ReplaceAll(s[1:len(s)-1], "]]", "]")
	}
	return s
}
