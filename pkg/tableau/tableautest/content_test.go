package tableautest

import (
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// contentEnv is a site with the names that trip clients: the same name in two
// projects, a comma, an ampersand and different letter case.
func contentEnv(t *testing.T) (*env, string) {
	t.Helper()
	e := newEnv(t)
	e.srv.AddWorkbook("Sales", "Finance")
	e.srv.AddWorkbook("Sales", "Marketing")
	e.srv.AddWorkbook("Company, Inc", "Finance")
	e.srv.AddWorkbook("Ops & Eng", "Finance")
	e.srv.AddWorkbook("sales report", "Finance")
	e.srv.AddDatasource("Orders", "Finance")
	e.srv.AddDatasource("Live Orders", "Finance", NoExtract())
	return e, e.signIn()
}

func TestWorkbookFilters(t *testing.T) {
	e, tok := contentEnv(t)
	all := []string{"Sales", "Sales", "Company, Inc", "Ops & Eng", "sales report"}
	tests := []struct {
		name string
		// filter is percent-encoded as a well-behaved client would; rawQuery is
		// sent as is when set.
		filter     string
		rawQuery   string
		wantStatus int
		wantCode   string
		wantNames  []string
	}{
		{name: "no filter", wantNames: all},
		{name: "eq matches in every project", filter: "name:eq:Sales", wantNames: []string{"Sales", "Sales"}},
		{name: "eq is case-sensitive", filter: "name:eq:SALES", wantNames: nil},
		{name: "cieq", filter: "name:cieq:SALES", wantNames: []string{"Sales", "Sales"}},
		{name: "name and project", filter: "name:eq:Sales,projectName:eq:Finance", wantNames: []string{"Sales"}},
		{name: "in", filter: "name:in:[Sales,sales report]", wantNames: []string{"Sales", "Sales", "sales report"}},
		{name: "project in", filter: "projectName:in:[Marketing]", wantNames: []string{"Sales"}},
		{name: "space in a value", filter: "name:eq:sales report", wantNames: []string{"sales report"}},
		{name: "date filter", filter: "createdAt:gte:2000-01-01T00:00:00Z", wantNames: all},
		{
			name:       "comma in an eq value splits the filter",
			filter:     "name:eq:Company, Inc",
			wantStatus: 400, wantCode: codeInvalidFilter,
		},
		{
			name:       "percent-encoded comma splits it too",
			rawQuery:   "filter=name:eq:Company%2C%20Inc",
			wantStatus: 400, wantCode: codeInvalidFilter,
		},
		{name: "comma inside in silently misses", filter: "name:in:[Company, Inc]", wantNames: nil},
		{name: "encoded ampersand ends the filter", filter: "name:eq:Ops & Eng", wantNames: nil},
		{name: "raw ampersand splits the query", rawQuery: "filter=name:eq:Ops%20&%20Eng", wantNames: nil},
		{name: "unknown field", filter: "owner:eq:admin", wantStatus: 400, wantCode: codeInvalidFilter},
		{name: "unsupported operator", filter: "name:gt:A", wantStatus: 400, wantCode: codeInvalidFilter},
		{name: "no operator", filter: "name", wantStatus: 400, wantCode: codeInvalidFilter},
		{name: "in without brackets", filter: "name:in:Sales", wantStatus: 400, wantCode: codeInvalidFilter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := e.site("workbooks")
			switch {
			case tt.rawQuery != "":
				u += "?" + tt.rawQuery
			case tt.filter != "":
				u += "?" + url.Values{"filter": {tt.filter}}.Encode()
			}
			r := e.get(u, tok)
			want := tt.wantStatus
			if want == 0 {
				want = http.StatusOK
			}
			if r.status != want {
				t.Fatalf("status = %d, want %d: %s", r.status, want, r.body)
			}
			if tt.wantCode != "" {
				if r.code(t) != tt.wantCode {
					t.Errorf("code = %s, want %s", r.code(t), tt.wantCode)
				}
				return
			}
			m := r.json(t)
			if got := names(t, m, "workbooks", "workbook"); !reflect.DeepEqual(got, tt.wantNames) {
				t.Errorf("names = %q, want %q", got, tt.wantNames)
			}
			if got := dig(m, "pagination", "totalAvailable"); got != strconv.Itoa(len(tt.wantNames)) {
				t.Errorf("totalAvailable = %#v, want the string %q", got, strconv.Itoa(len(tt.wantNames)))
			}
		})
	}
}

func TestEmptyListHasNoInnerKey(t *testing.T) {
	e, tok := contentEnv(t)
	r := e.get(e.site("workbooks?filter=name:eq:Nothing"), tok)
	if r.status != http.StatusOK {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if !strings.Contains(string(r.body), `"workbooks":{}`) {
		t.Errorf("empty list body = %s, want \"workbooks\":{}", r.body)
	}
}

func TestPaging(t *testing.T) {
	e, tok := contentEnv(t)
	tests := []struct {
		name       string
		query      string
		wantStatus int
		wantCode   string
		wantCount  int
		wantPage   string
		wantSize   string
	}{
		{name: "defaults", query: "", wantCount: 5, wantPage: "1", wantSize: "100"},
		{name: "first page", query: "pageSize=2&pageNumber=1", wantCount: 2, wantPage: "1", wantSize: "2"},
		{name: "last partial page", query: "pageSize=2&pageNumber=3", wantCount: 1, wantPage: "3", wantSize: "2"},
		{name: "largest page size", query: "pageSize=1000", wantCount: 5, wantPage: "1", wantSize: "1000"},
		{name: "past the last page", query: "pageSize=2&pageNumber=4", wantStatus: 400, wantCode: codeInvalidPageNumber},
		{name: "page number zero", query: "pageNumber=0", wantStatus: 400, wantCode: codeInvalidPageNumber},
		{name: "page number not a number", query: "pageNumber=two", wantStatus: 400, wantCode: codeInvalidPageNumber},
		{name: "page size zero", query: "pageSize=0", wantStatus: 400, wantCode: codeInvalidPageSize},
		{name: "page size too big", query: "pageSize=1001", wantStatus: 400, wantCode: codeInvalidPageSize},
		{name: "page size not a number", query: "pageSize=ten", wantStatus: 400, wantCode: codeInvalidPageSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.get(e.site("workbooks?"+tt.query), tok)
			want := tt.wantStatus
			if want == 0 {
				want = http.StatusOK
			}
			if r.status != want {
				t.Fatalf("status = %d, want %d: %s", r.status, want, r.body)
			}
			if tt.wantCode != "" {
				if r.code(t) != tt.wantCode {
					t.Errorf("code = %s, want %s", r.code(t), tt.wantCode)
				}
				return
			}
			m := r.json(t)
			if got := len(names(t, m, "workbooks", "workbook")); got != tt.wantCount {
				t.Errorf("got %d workbooks, want %d", got, tt.wantCount)
			}
			p := dig(m, "pagination")
			if dig(p, "pageNumber") != tt.wantPage || dig(p, "pageSize") != tt.wantSize || dig(p, "totalAvailable") != "5" {
				t.Errorf("pagination = %v", p)
			}
		})
	}
}

func TestPagesCoverEveryWorkbookOnce(t *testing.T) {
	e, tok := contentEnv(t)
	seen := map[string]bool{}
	for page := 1; page <= 3; page++ {
		m := e.get(e.site("workbooks?pageSize=2&pageNumber="+strconv.Itoa(page)), tok).json(t)
		items, _ := dig(m, "workbooks", "workbook").([]any)
		for _, it := range items {
			id := dig(it, "id").(string)
			if seen[id] {
				t.Errorf("workbook %s on two pages", id)
			}
			seen[id] = true
		}
	}
	if len(seen) != 5 {
		t.Errorf("saw %d workbooks, want 5", len(seen))
	}
}

func TestWorkbookShape(t *testing.T) {
	e := newEnv(t)
	id := e.srv.AddWorkbook("Sales", "Finance")
	tok := e.signIn()
	m := e.get(e.site("workbooks/"+id), tok).json(t)
	wb := dig(m, "workbook")
	for _, key := range []string{"id", "name", "contentUrl", "createdAt", "updatedAt"} {
		if s, _ := dig(wb, key).(string); s == "" {
			t.Errorf("workbook.%s missing: %v", key, wb)
		}
	}
	if dig(wb, "project", "name") != "Finance" || dig(wb, "project", "id") == nil || dig(wb, "owner", "id") == nil {
		t.Errorf("workbook = %v", wb)
	}
}

func TestGetItemNotFound(t *testing.T) {
	e, tok := contentEnv(t)
	wb := e.srv.AddWorkbook("Extra", "Finance")
	tests := []struct {
		name     string
		path     string
		wantCode string
	}{
		{"unknown workbook", "workbooks/" + newLUID(), codeWorkbookMissing},
		{"unknown data source", "datasources/" + newLUID(), codeDatasourceMissing},
		{"a workbook asked for as a data source", "datasources/" + wb, codeDatasourceMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.get(e.site(tt.path), tok)
			if r.status != http.StatusNotFound || r.code(t) != tt.wantCode {
				t.Fatalf("got %d %s, want 404 %s", r.status, r.body, tt.wantCode)
			}
		})
	}
}

func TestDatasourceList(t *testing.T) {
	e, tok := contentEnv(t)
	m := e.get(e.site("datasources?filter=projectName:eq:Finance"), tok).json(t)
	items, _ := dig(m, "datasources", "datasource").([]any)
	if len(items) != 2 {
		t.Fatalf("datasources = %v", m)
	}
	if dig(items[0], "name") != "Orders" || dig(items[0], "hasExtracts") != "true" || dig(items[1], "hasExtracts") != "false" {
		t.Errorf("datasources = %v", items)
	}
	if got := names(t, e.get(e.site("datasources?filter=hasExtracts:eq:true"), tok).json(t), "datasources", "datasource"); !reflect.DeepEqual(got, []string{"Orders"}) {
		t.Errorf("hasExtracts filter = %q", got)
	}
}
