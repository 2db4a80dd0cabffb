package tableautest

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
)

const (
	kindWorkbook   = "workbook"
	kindDatasource = "datasource"
)

type project struct {
	id   string
	name string
}

// item is a workbook or a published data source.
type item struct {
	id         string
	kind       string
	name       string
	contentURL string
	project    *project
	owner      *user
	created    time.Time
	updated    time.Time
	hasExtract bool
	lineage    *itemLineage // what the Metadata API says it reads
}

// ItemOption adjusts a workbook or data source added with AddWorkbook or
// AddDatasource.
type ItemOption func(*item)

// NoExtract makes the item live-only: refreshing it fails with 409090, the
// configuration error a refresh bridge has to report.
func NoExtract() ItemOption {
	return func(it *item) { it.hasExtract = false }
}

// OwnedBy makes the user with the given LUID (from AddUser) the item's owner.
// Items are otherwise owned by a built-in site administrator.
func OwnedBy(userLUID string) ItemOption {
	return func(it *item) { it.owner = &user{id: userLUID} }
}

// AddWorkbook adds a workbook with an extract and returns its LUID. The project
// is created on first use. Names need only be unique within a project, as in
// Tableau.
func (s *Server) AddWorkbook(name, project string, opts ...ItemOption) string {
	return s.addItem(kindWorkbook, name, project, opts)
}

// AddDatasource adds a published data source with an extract and returns its
// LUID.
func (s *Server) AddDatasource(name, project string, opts ...ItemOption) string {
	return s.addItem(kindDatasource, name, project, opts)
}

func (s *Server) addItem(kind, name, projectName string, opts []ItemOption) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.projects[projectName]
	if p == nil {
		p = &project{id: newLUID(), name: projectName}
		s.projects[projectName] = p
	}
	now := time.Now()
	it := &item{
		id:         newLUID(),
		kind:       kind,
		name:       name,
		project:    p,
		owner:      s.owner,
		created:    now,
		updated:    now,
		hasExtract: true,
	}
	for _, o := range opts {
		o(it)
	}
	if u := s.users[it.owner.id]; u != nil {
		it.owner = u
	}
	s.resolveLineageLocked(it)
	it.contentURL = s.uniqueContentURLLocked(kind, name)
	s.items[it.id] = it
	s.itemOrder = append(s.itemOrder, it)
	return it.id
}

// uniqueContentURLLocked derives a content URL the way Tableau does: the name
// without spaces and punctuation, suffixed when taken.
func (s *Server) uniqueContentURLLocked(kind, name string) string {
	base := strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || r == '-' {
			return r
		}
		return -1
	}, name)
	if base == "" {
		base = kind
	}
	taken := func(u string) bool {
		for _, it := range s.itemOrder {
			if it.kind == kind && it.contentURL == u {
				return true
			}
		}
		return false
	}
	u := base
	for i := 0; taken(u); i++ {
		u = base + "_" + strconv.Itoa(i)
	}
	return u
}

func (s *Server) listWorkbooks(c *call, _ []string) error { return s.listItems(c, kindWorkbook) }

func (s *Server) listDatasources(c *call, _ []string) error { return s.listItems(c, kindDatasource) }

func (s *Server) getWorkbook(c *call, p []string) error { return s.getItem(c, kindWorkbook, p[0]) }

func (s *Server) getDatasource(c *call, p []string) error { return s.getItem(c, kindDatasource, p[0]) }

// pageParams reads a list's pageSize (default 100, at most 1000) and
// pageNumber (default 1), with Tableau's errors for bad ones.
func pageParams(q url.Values) (size, number int, err error) {
	if size, err = pageParam(q.Get("pageSize"), 100, 1000); err != nil {
		return 0, 0, newError(http.StatusBadRequest, codeInvalidPageSize,
			"The page size parameter must be an integer from 1 to 1000.")
	}
	if number, err = pageParam(q.Get("pageNumber"), 1, 0); err != nil {
		return 0, 0, newError(http.StatusBadRequest, codeInvalidPageNumber,
			"The page number parameter must be an integer of at least 1.")
	}
	return size, number, nil
}

func (s *Server) listItems(c *call, kind string) error {
	q := c.r.URL.Query()
	pageSize, pageNumber, err := pageParams(q)
	if err != nil {
		return err
	}
	filters, err := parseFilter(q.Get("filter"))
	if err != nil {
		return err
	}

	s.mu.Lock()
	var matched []*node
	for _, it := range s.itemOrder {
		if it.kind == kind && matchAll(filters, it) {
			matched = append(matched, s.itemNode(it))
		}
	}
	s.mu.Unlock()

	total := len(matched)
	lastPage := (total + pageSize - 1) / pageSize
	if pageNumber > max(lastPage, 1) {
		return newError(http.StatusBadRequest, codeInvalidPageNumber,
			fmt.Sprintf("Page %d is past the last page (%d) at page size %d.", pageNumber, max(lastPage, 1), pageSize))
	}
	from := min((pageNumber-1)*pageSize, total)
	to := min(from+pageSize, total)
	return c.reply(http.StatusOK,
		el("pagination",
			"pageNumber", strconv.Itoa(pageNumber),
			"pageSize", strconv.Itoa(pageSize),
			"totalAvailable", strconv.Itoa(total)),
		listEl(kind+"s", matched[from:to]...),
	)
}

// pageParam parses a paging parameter; limit 0 means no upper bound.
func pageParam(raw string, def, limit int) (int, error) {
	if raw == "" {
		return def, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 || (limit > 0 && n > limit) {
		return 0, fmt.Errorf("bad paging value %q", raw)
	}
	return n, nil
}

func (s *Server) getItem(c *call, kind, id string) error {
	s.mu.Lock()
	it := s.items[id]
	var n *node
	if it != nil && it.kind == kind {
		n = s.itemNode(it)
	}
	s.mu.Unlock()
	if n == nil {
		return errItemNotFound(kind, id)
	}
	return c.reply(http.StatusOK, n)
}

func errItemNotFound(kind, id string) *apiError {
	if kind == kindWorkbook {
		return newError(http.StatusNotFound, codeWorkbookMissing, fmt.Sprintf("Workbook '%s' could not be found.", id))
	}
	return newError(http.StatusNotFound, codeDatasourceMissing, fmt.Sprintf("Datasource '%s' could not be found.", id))
}

// itemNode renders a workbook or data source with the attributes Tableau's
// Query Workbooks / Query Data Sources replies carry by default.
func (s *Server) itemNode(it *item) *node {
	n := el(it.kind,
		"id", it.id,
		"name", it.name,
		"description", "",
		"contentUrl", it.contentURL,
		"webpageUrl", fmt.Sprintf("%s/#/site/%s/%ss/%s", s.URL(), s.site.contentURL, it.kind, it.id),
	)
	if it.kind == kindWorkbook {
		n.attrs = append(n.attrs, attr{"showTabs", "false"}, attr{"size", "1"})
	} else {
		typ := "sqlserver"
		if it.hasExtract {
			typ = "hyper"
		}
		n.attrs = append(n.attrs,
			attr{"type", typ},
			attr{"hasExtracts", strconv.FormatBool(it.hasExtract)},
			attr{"isCertified", "false"},
			attr{"useRemoteQueryAgent", "false"})
	}
	n.attrs = append(n.attrs,
		attr{"createdAt", stamp(it.created)},
		attr{"updatedAt", stamp(it.updated)},
		attr{"encryptExtracts", "false"})
	return n.add(
		el("project", "id", it.project.id, "name", it.project.name),
		el("owner", "id", it.owner.id),
		listEl("tags"),
	)
}

// filterExpr is one field:operator:value expression of a filter parameter.
type filterExpr struct {
	field  string
	op     string
	values []string
}

type filterField struct {
	ops   string // space-separated operators the field supports
	value func(*item) string
	time  bool
}

var filterFields = map[string]filterField{
	"name":        {ops: "eq cieq in", value: func(it *item) string { return it.name }},
	"projectName": {ops: "eq cieq in", value: func(it *item) string { return it.project.name }},
	"contentUrl":  {ops: "eq cieq in", value: func(it *item) string { return it.contentURL }},
	"ownerName":   {ops: "eq cieq in", value: func(it *item) string { return it.owner.name }},
	"hasExtracts": {ops: "eq", value: func(it *item) string { return strconv.FormatBool(it.hasExtract) }},
	"createdAt":   {ops: "eq gt gte lt lte", value: func(it *item) string { return stamp(it.created) }, time: true},
	"updatedAt":   {ops: "eq gt gte lt lte", value: func(it *item) string { return stamp(it.updated) }, time: true},
}

// parseFilter reads Tableau's filter syntax. The query string has already been
// percent-decoded, and the server then treats "," as the separator between
// expressions and "&" as the end of the parameter, even where the client encoded
// them: a value such as "Company, Inc" cannot be matched with eq, and
// "in:[Company, Inc]" silently becomes the two values "Company" and " Inc".
func parseFilter(raw string) ([]filterExpr, error) {
	return parseFilterWith(raw, func(field string) (string, byte, bool) {
		def, ok := filterFields[field]
		kind := byte('s')
		if def.time {
			kind = 't'
		}
		return def.ops, kind, ok
	})
}

// parseFilterWith parses a filter against the fields field knows: their
// operators (space-separated) and the kind of their values ('s' string,
// 'n' number, 't' RFC 3339 time), answering Tableau's errors for the rest.
func parseFilterWith(raw string, field func(name string) (ops string, kind byte, ok bool)) ([]filterExpr, error) {
	if raw == "" {
		return nil, nil
	}
	raw, _, _ = strings.Cut(raw, "&")
	var out []filterExpr
	for _, part := range splitOutsideBrackets(raw) {
		name, rest, ok1 := strings.Cut(part, ":")
		op, value, ok2 := strings.Cut(rest, ":")
		ops, kind, known := field(name)
		if !ok1 || !ok2 || !known {
			return nil, newError(http.StatusBadRequest, codeInvalidFilter,
				fmt.Sprintf("The filter query contains a key which is not recognized for this api version: '%s'.", part))
		}
		if !containsWord(ops, op) {
			return nil, newError(http.StatusBadRequest, codeInvalidFilter,
				fmt.Sprintf("The filter operator '%s' is not supported for field '%s'.", op, name))
		}
		values := []string{value}
		if op == "in" {
			inner, ok := strings.CutPrefix(value, "[")
			inner, ok2 := strings.CutSuffix(inner, "]")
			if !ok || !ok2 {
				return nil, newError(http.StatusBadRequest, codeInvalidFilter,
					fmt.Sprintf("The in operator needs a list in brackets: '%s'.", part))
			}
			values = strings.Split(inner, ",")
		}
		switch kind {
		case 't':
			if _, err := time.Parse(time.RFC3339, value); err != nil {
				return nil, newError(http.StatusBadRequest, codeInvalidFilter,
					fmt.Sprintf("'%s' is not a valid date-time for field '%s'.", value, name))
			}
		case 'n':
			if _, err := strconv.Atoi(value); err != nil {
				return nil, newError(http.StatusBadRequest, codeInvalidFilter,
					fmt.Sprintf("'%s' is not a number for field '%s'.", value, name))
			}
		}
		out = append(out, filterExpr{field: name, op: op, values: values})
	}
	return out, nil
}

// splitOutsideBrackets splits on commas except inside [...], where they
// separate the values of an in list.
func splitOutsideBrackets(s string) []string {
	var parts []string
	depth, start := 0, 0
	for i, r := range s {
		switch r {
		case '[':
			depth++
		case ']':
			if depth > 0 {
				depth--
			}
		case ',':
			if depth == 0 {
				parts = append(parts, s[start:i])
				start = i + 1
			}
		}
	}
	return append(parts, s[start:])
}

func containsWord(list, w string) bool {
	for _, x := range strings.Fields(list) {
		if x == w {
			return true
		}
	}
	return false
}

func matchAll(filters []filterExpr, it *item) bool {
	for _, f := range filters {
		if !f.match(it) {
			return false
		}
	}
	return true
}

func (f filterExpr) match(it *item) bool {
	def := filterFields[f.field]
	got := def.value(it)
	if def.time {
		have, _ := time.Parse(time.RFC3339, got)
		want, _ := time.Parse(time.RFC3339, f.values[0])
		switch f.op {
		case "eq":
			return have.Equal(want)
		case "gt":
			return have.After(want)
		case "gte":
			return !have.Before(want)
		case "lt":
			return have.Before(want)
		case "lte":
			return !have.After(want)
		}
		return false
	}
	for _, v := range f.values {
		if got == v || (f.op == "cieq" && strings.EqualFold(got, v)) {
			return true
		}
	}
	return false
}
