package tableautest

import (
	"fmt"
	"strings"
)

// The lineage model behind the simulated Metadata API. Published data
// sources read database tables directly or through custom SQL; workbooks
// hold embedded data sources that do the same, or that stand for a
// published data source the workbook connects to. Everything Tableau derives
// (upstreamTables, downstreamWorkbooks, ...) is computed from these facts.

// TableRef names a database table as Tableau's Catalog sees it: the database
// (for BigQuery the project, for Databricks the catalog), the schema (the
// BigQuery dataset), the table name, and the connection type of the
// database, e.g. "snowflake", "bigquery", "databricks".
type TableRef struct {
	Database       string
	Schema         string
	Name           string
	ConnectionType string
}

func (t TableRef) key() string {
	return strings.Join([]string{t.ConnectionType, t.Database, t.Schema, t.Name}, "\x00")
}

// CustomSQL is a custom SQL query in a data source. Tables are the tables
// Tableau resolved from the query; Unsupported marks a query Tableau could
// not parse (isUnsupportedCustomSql), whose Tables stay empty whatever is
// given.
type CustomSQL struct {
	Query       string
	Tables      []TableRef
	Unsupported bool
}

// EmbeddedSource is a data source embedded in a workbook: an extract or a
// live connection over Tables and custom SQL.
type EmbeddedSource struct {
	Name      string
	Extract   bool
	Tables    []TableRef
	CustomSQL []CustomSQL
}

type metaDatabase struct {
	id, luid       string
	name           string
	connectionType string
}

type metaTable struct {
	id, luid       string
	name, schema   string
	db             *metaDatabase
	connectionType string
}

func (t *metaTable) fullName() string { return "[" + t.schema + "].[" + t.name + "]" }

type metaCustomSQL struct {
	id          string
	query       string
	unsupported bool
	tables      []*metaTable
	db          *metaDatabase
	// owner is the published data source (*item) or the embedded one
	// (*metaEmbedded) that holds the query.
	owner any
}

type metaEmbedded struct {
	id        string
	name      string
	extract   bool
	tables    []*metaTable
	customSQL []*metaCustomSQL
	published *item // set for the data source standing for a published one
	workbook  *item
}

// itemLineage is what a workbook or published data source reads. The
// pending fields hold what options asked for until addItem, which holds the
// server's lock, turns them into the model.
type itemLineage struct {
	metaID    string
	tables    []*metaTable
	customSQL []*metaCustomSQL
	embedded  []*metaEmbedded

	pendingTables    []TableRef
	pendingSQL       []CustomSQL
	pendingEmbedded  []EmbeddedSource
	pendingPublished []string
}

func (it *item) lin() *itemLineage {
	if it.lineage == nil {
		it.lineage = &itemLineage{}
	}
	return it.lineage
}

// ReadsTables makes a published data source read the tables directly. On a
// workbook it adds an embedded data source named after the workbook over the
// tables, an extract unless NoExtract is given.
func ReadsTables(tables ...TableRef) ItemOption {
	return func(it *item) { it.lin().pendingTables = append(it.lin().pendingTables, tables...) }
}

// WithCustomSQL adds a custom SQL query to a published data source.
func WithCustomSQL(q CustomSQL) ItemOption {
	return func(it *item) { it.lin().pendingSQL = append(it.lin().pendingSQL, q) }
}

// WithEmbeddedSources gives a workbook embedded data sources. A workbook
// whose embedded sources are all live has no extract to refresh.
func WithEmbeddedSources(ds ...EmbeddedSource) ItemOption {
	return func(it *item) { it.lin().pendingEmbedded = append(it.lin().pendingEmbedded, ds...) }
}

// UsesDatasources connects a workbook to published data sources (by LUID,
// from AddDatasource). As in Tableau, the workbook gets an embedded data
// source for each, whose upstreamDatasources names the published one; such a
// workbook has nothing of its own to refresh for that source.
func UsesDatasources(luids ...string) ItemOption {
	return func(it *item) { it.lin().pendingPublished = append(it.lin().pendingPublished, luids...) }
}

// AddDatabaseTable registers a table with the Catalog and returns its
// Metadata API id. Tables are also registered on first use by ReadsTables,
// WithCustomSQL and WithEmbeddedSources; the same TableRef always names the
// same table.
func (s *Server) AddDatabaseTable(t TableRef) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tableLocked(t).id
}

func (s *Server) tableLocked(t TableRef) *metaTable {
	if mt := s.meta.tableByKey[t.key()]; mt != nil {
		return mt
	}
	dbKey := t.ConnectionType + "\x00" + t.Database
	db := s.meta.databases[dbKey]
	if db == nil {
		db = &metaDatabase{id: newLUID(), luid: newLUID(), name: t.Database, connectionType: t.ConnectionType}
		s.meta.databases[dbKey] = db
	}
	mt := &metaTable{id: newLUID(), luid: newLUID(), name: t.Name, schema: t.Schema, db: db, connectionType: t.ConnectionType}
	s.meta.tableByKey[t.key()] = mt
	s.meta.tables = append(s.meta.tables, mt)
	s.meta.version++
	return mt
}

func (s *Server) customSQLLocked(q CustomSQL, owner any) *metaCustomSQL {
	c := &metaCustomSQL{id: newLUID(), query: q.Query, unsupported: q.Unsupported, owner: owner}
	if !q.Unsupported {
		for _, t := range q.Tables {
			mt := s.tableLocked(t)
			c.tables = append(c.tables, mt)
			c.db = mt.db
		}
	}
	s.meta.customSQL = append(s.meta.customSQL, c)
	return c
}

// resolveLineageLocked turns an item's pending lineage into the model. It
// panics on a LUID that names no published data source, like other misuse
// of the simulator's setup API.
func (s *Server) resolveLineageLocked(it *item) {
	l := it.lin()
	l.metaID = newLUID()
	if it.kind == kindDatasource {
		for _, t := range l.pendingTables {
			l.tables = append(l.tables, s.tableLocked(t))
		}
		for _, q := range l.pendingSQL {
			l.customSQL = append(l.customSQL, s.customSQLLocked(q, it))
		}
	} else {
		if len(l.pendingTables) > 0 || len(l.pendingSQL) > 0 {
			l.pendingEmbedded = append([]EmbeddedSource{{Name: it.name, Extract: it.hasExtract,
				Tables: l.pendingTables, CustomSQL: l.pendingSQL}}, l.pendingEmbedded...)
		}
		anyExtract := false
		for _, src := range l.pendingEmbedded {
			e := &metaEmbedded{id: newLUID(), name: src.Name, extract: src.Extract, workbook: it}
			for _, t := range src.Tables {
				e.tables = append(e.tables, s.tableLocked(t))
			}
			for _, q := range src.CustomSQL {
				e.customSQL = append(e.customSQL, s.customSQLLocked(q, e))
			}
			anyExtract = anyExtract || src.Extract
			l.embedded = append(l.embedded, e)
		}
		if len(l.pendingEmbedded) > 0 && !anyExtract {
			it.hasExtract = false
		}
		for _, luid := range l.pendingPublished {
			ds := s.items[luid]
			if ds == nil || ds.kind != kindDatasource {
				panic(fmt.Sprintf("tableautest: UsesDatasources: no published data source %s", luid))
			}
			l.embedded = append(l.embedded, &metaEmbedded{id: newLUID(), name: ds.name, published: ds, workbook: it})
		}
	}
	l.pendingTables, l.pendingSQL, l.pendingEmbedded, l.pendingPublished = nil, nil, nil, nil
	s.meta.version++
}

// lineageGraph is the derived lineage at one moment: what reads what, both
// ways. It is rebuilt when content changes.
type lineageGraph struct {
	version     int
	datasources []*item
	workbooks   []*item
	tables      []*metaTable
	customSQL   []*metaCustomSQL

	dsTables     map[*item][]*metaTable         // published data source -> upstream tables
	dsWorkbooks  map[*item][]*item              // published data source -> workbooks using it
	embTables    map[*metaEmbedded][]*metaTable // embedded data source -> upstream tables
	wbTables     map[*item][]*metaTable
	wbPublished  map[*item][]*item
	tableDS      map[*metaTable][]*item
	tableWB      map[*metaTable][]*item
	sqlPublished map[*metaCustomSQL][]*item // custom SQL -> published data sources downstream
	sqlWorkbooks map[*metaCustomSQL][]*item
}

func (s *Server) graphLocked() *lineageGraph {
	if g := s.meta.graph; g != nil && g.version == s.meta.version {
		return g
	}
	g := &lineageGraph{
		version:      s.meta.version,
		tables:       s.meta.tables,
		customSQL:    s.meta.customSQL,
		dsTables:     map[*item][]*metaTable{},
		dsWorkbooks:  map[*item][]*item{},
		embTables:    map[*metaEmbedded][]*metaTable{},
		wbTables:     map[*item][]*metaTable{},
		wbPublished:  map[*item][]*item{},
		tableDS:      map[*metaTable][]*item{},
		tableWB:      map[*metaTable][]*item{},
		sqlPublished: map[*metaCustomSQL][]*item{},
		sqlWorkbooks: map[*metaCustomSQL][]*item{},
	}
	for _, it := range s.itemOrder {
		if it.kind == kindDatasource {
			g.datasources = append(g.datasources, it)
			var ts []*metaTable
			if l := it.lineage; l != nil {
				ts = appendTables(ts, l.tables...)
				for _, q := range l.customSQL {
					ts = appendTables(ts, q.tables...)
				}
			}
			g.dsTables[it] = ts
			for _, t := range ts {
				g.tableDS[t] = append(g.tableDS[t], it)
			}
		}
	}
	for _, it := range s.itemOrder {
		if it.kind != kindWorkbook {
			continue
		}
		g.workbooks = append(g.workbooks, it)
		var ts []*metaTable
		if l := it.lineage; l != nil {
			for _, e := range l.embedded {
				var et []*metaTable
				if e.published != nil {
					// Tableau lists the published source's tables on the
					// embedded source that stands for it, too.
					et = appendTables(et, g.dsTables[e.published]...)
					g.wbPublished[it] = appendItems(g.wbPublished[it], e.published)
					g.dsWorkbooks[e.published] = appendItems(g.dsWorkbooks[e.published], it)
				} else {
					et = appendTables(et, e.tables...)
					for _, q := range e.customSQL {
						et = appendTables(et, q.tables...)
						g.sqlWorkbooks[q] = appendItems(g.sqlWorkbooks[q], it)
					}
				}
				g.embTables[e] = et
				ts = appendTables(ts, et...)
			}
		}
		g.wbTables[it] = ts
		for _, t := range ts {
			g.tableWB[t] = appendItems(g.tableWB[t], it)
		}
	}
	for _, q := range s.meta.customSQL {
		if ds, ok := q.owner.(*item); ok {
			g.sqlPublished[q] = []*item{ds}
			g.sqlWorkbooks[q] = g.dsWorkbooks[ds]
		}
	}
	s.meta.graph = g
	return g
}

func appendTables(to []*metaTable, ts ...*metaTable) []*metaTable {
	for _, t := range ts {
		dup := false
		for _, have := range to {
			if have == t {
				dup = true
				break
			}
		}
		if !dup {
			to = append(to, t)
		}
	}
	return to
}

func appendItems(to []*item, its ...*item) []*item {
	for _, it := range its {
		dup := false
		for _, have := range to {
			if have == it {
				dup = true
				break
			}
		}
		if !dup {
			to = append(to, it)
		}
	}
	return to
}
