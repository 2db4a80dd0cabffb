package tableau

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/remote"
)

func TestWorkbookByID(t *testing.T) {
	env := setup(t)
	env.handleSignIn(t)
	env.mux.HandleFunc("GET "+sitePrefix+"/workbooks/3cc6cd06-89ce-4fdc-b935-5294135d6d42", func(w http.ResponseWriter, r *http.Request) {
		checkRequest(t, r, http.MethodGet, "tok-1")
		writeBytes(w, 200, "application/json", fixture(t, "workbook.json"))
	})
	wb, err := env.client.Workbook(context.Background(), "3cc6cd06-89ce-4fdc-b935-5294135d6d42")
	if err != nil {
		t.Fatal(err)
	}
	want := Workbook{
		ID: "3cc6cd06-89ce-4fdc-b935-5294135d6d42", Name: "Sales & Margin, 2024", ContentURL: "SalesMargin2024",
		WebpageURL: "https://tableau.example.com/#/site/mysite/workbooks/123",
		Project:    Project{ID: "ee8c6e70-43b6-11e6-af4f-f7b0d8e20760", Name: "Finance"},
		Owner:      Owner{ID: "1f2e3d4c-5b6a-7980-a1b2-user00000001", Name: "refresh-bot"},
		CreatedAt:  Timestamp{time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)},
		UpdatedAt:  Timestamp{time.Date(2024, 6, 2, 11, 30, 0, 0, time.UTC)},
	}
	if !workbooksEqual(*wb, want) {
		t.Errorf("Workbook = %+v\nwant       %+v", *wb, want)
	}
}

func workbooksEqual(a, b Workbook) bool {
	return a.ID == b.ID && a.Name == b.Name && a.ContentURL == b.ContentURL && a.WebpageURL == b.WebpageURL &&
		a.Project == b.Project && a.Owner == b.Owner && a.CreatedAt.Equal(b.CreatedAt.Time) && a.UpdatedAt.Equal(b.UpdatedAt.Time)
}

func TestDatasourceByID(t *testing.T) {
	env := setup(t)
	env.handleSignIn(t)
	env.mux.HandleFunc("GET "+sitePrefix+"/datasources/9dbd2263-16b5-46e1-9c43-a76bb8ab65fb", func(w http.ResponseWriter, r *http.Request) {
		checkRequest(t, r, http.MethodGet, "tok-1")
		writeBytes(w, 200, "application/json", fixture(t, "datasource.json"))
	})
	ds, err := env.client.Datasource(context.Background(), "9dbd2263-16b5-46e1-9c43-a76bb8ab65fb")
	if err != nil {
		t.Fatal(err)
	}
	if ds.Name != "Orders" || ds.Type != "snowflake" || !ds.HasExtracts || ds.Project.Name != "Finance" || ds.CreatedAt.Year() != 2024 {
		t.Errorf("Datasource = %+v", ds)
	}
}

func TestByIDErrors(t *testing.T) {
	tests := []struct {
		name    string
		id      string
		status  int
		body    string
		wantIs  error
		wantMsg string
	}{
		{name: "empty id", id: "", wantMsg: "id is empty"},
		{name: "id with slash", id: "a/b", wantMsg: "not a LUID"},
		{name: "not found", id: "missing", status: 404, body: tableauError(404, "404006", "Resource Not Found", "Workbook could not be found."), wantIs: ErrNotFound, wantMsg: "404006"},
		{name: "forbidden", id: "secret", status: 403, body: tableauError(403, "403004", "Forbidden", ""), wantIs: ErrForbidden},
		{name: "reply without workbook", id: "odd", status: 200, body: `{"other":{}}`, wantIs: ErrBadReply, wantMsg: "reply has no workbook"},
	}
	for _, tt := range tests {
		for _, kind := range []string{"workbook", "datasource"} {
			t.Run(kind+" "+tt.name, func(t *testing.T) {
				env := setup(t)
				env.handleSignIn(t)
				env.mux.HandleFunc("GET "+sitePrefix+"/"+kind+"s/{id}", func(w http.ResponseWriter, r *http.Request) {
					writeJSON(w, tt.status, tt.body)
				})
				var err error
				if kind == "workbook" {
					_, err = env.client.Workbook(context.Background(), tt.id)
				} else {
					_, err = env.client.Datasource(context.Background(), tt.id)
				}
				want := strings.Replace(tt.wantMsg, "workbook", kind, 1)
				if err == nil || (tt.wantIs != nil && !errors.Is(err, tt.wantIs)) || !strings.Contains(err.Error(), want) {
					t.Fatalf("error = %v, want %v containing %q", err, tt.wantIs, want)
				}
			})
		}
	}
}

// TestFindWorkbookFilters checks what filter goes to the server for awkward
// names, and that the name is matched exactly on this side whatever the
// server returns.
func TestFindWorkbookFilters(t *testing.T) {
	tests := []struct {
		name, project string
		wantFilter    string // the decoded filter query value; "" means none
	}{
		{"Sales", "", "name:eq:Sales"},
		{"Sales", "Finance", "name:eq:Sales,projectName:eq:Finance"},
		{"Sales Report 2024", "Finance Team", "name:eq:Sales Report 2024,projectName:eq:Finance Team"},
		{"Ventes – Résumé Ünïcode 売上", "", "name:eq:Ventes – Résumé Ünïcode 売上"},
		{`The "Big" one / v2 + 50% off?`, "", `name:eq:The "Big" one / v2 + 50% off?`},
		{"Company, Inc", "", ""},
		{"Company, Inc", "Finance", "projectName:eq:Finance"},
		{"P&L", "Finance", "projectName:eq:Finance"},
		{"Time: 10:30", "Ops", "projectName:eq:Ops"},
		{"Sales", "R&D, Europe", "name:eq:Sales"},
		{"A,B", "C&D", ""},
		{`back\slash [x]`, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name+"|"+tt.project, func(t *testing.T) {
			env := setup(t)
			env.handleSignIn(t)
			env.mux.HandleFunc("GET "+sitePrefix+"/workbooks", func(w http.ResponseWriter, r *http.Request) {
				checkRequest(t, r, http.MethodGet, "tok-1")
				q := r.URL.Query()
				if got := q.Get("filter"); got != tt.wantFilter {
					t.Errorf("filter = %q, want %q", got, tt.wantFilter)
				}
				if strings.Contains(r.URL.RawQuery, "+") {
					t.Errorf("raw query %q uses + for spaces", r.URL.RawQuery)
				}
				if q.Get("pageSize") != "1000" || q.Get("pageNumber") != "1" {
					t.Errorf("paging = %q/%q", q.Get("pageSize"), q.Get("pageNumber"))
				}
				proj := tt.project
				if proj == "" {
					proj = "Default"
				}
				// The server's answer includes near misses; only the exact name may match.
				items := []map[string]any{
					{"id": "near-1", "name": "The " + tt.name, "project": map[string]string{"id": "p1", "name": proj}},
					{"id": "near-2", "name": tt.name + " ", "project": map[string]string{"id": "p1", "name": proj}},
					{"id": "other-project", "name": tt.name, "project": map[string]string{"id": "p2", "name": proj + "x"}},
					{"id": "the-one", "name": tt.name, "project": map[string]string{"id": "p1", "name": proj}},
				}
				if tt.project == "" {
					items = items[:2]
					items = append(items, map[string]any{"id": "the-one", "name": tt.name, "project": map[string]string{"id": "p1", "name": proj}})
				}
				b, _ := json.Marshal(map[string]any{
					"pagination": map[string]string{"pageNumber": "1", "pageSize": "1000", "totalAvailable": fmt.Sprint(len(items))},
					"workbooks":  map[string]any{"workbook": items},
				})
				writeJSON(w, 200, string(b))
			})
			wb, err := env.client.FindWorkbook(context.Background(), tt.name, tt.project)
			if err != nil {
				t.Fatal(err)
			}
			if wb.ID != "the-one" {
				t.Errorf("found %q, want the-one", wb.ID)
			}
		})
	}
}

func TestFindWorkbookPaging(t *testing.T) {
	tests := []struct {
		name      string
		project   string
		wantID    string
		wantErr   error
		wantText  []string
		wantPages int
	}{
		{name: "ambiguous across pages", wantErr: ErrAmbiguous, wantText: []string{`"Finance"`, `"Marketing"`}, wantPages: 2},
		{name: "project picks one", project: "Marketing", wantID: "wb-3", wantPages: 2},
		{name: "project with no match", project: "HR", wantErr: ErrNotFound, wantText: []string{`"Sales"`, `project "HR"`, "workbook"}, wantPages: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := setup(t)
			env.handleSignIn(t)
			pages := 0
			env.mux.HandleFunc("GET "+sitePrefix+"/workbooks", func(w http.ResponseWriter, r *http.Request) {
				pages++
				switch r.URL.Query().Get("pageNumber") {
				case "1":
					writeBytes(w, 200, "application/json", fixture(t, "workbooks_page1.json"))
				case "2":
					writeBytes(w, 200, "application/json", fixture(t, "workbooks_page2.json"))
				default:
					t.Errorf("asked for page %s", r.URL.Query().Get("pageNumber"))
					writeBytes(w, 200, "application/json", fixture(t, "workbooks_empty.json"))
				}
			})
			wb, err := env.client.FindWorkbook(context.Background(), "Sales", tt.project)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !contains(err.Error(), tt.wantText...) {
					t.Fatalf("error = %v, want %v containing %q", err, tt.wantErr, tt.wantText)
				}
				if Retryable(err) {
					t.Error("name errors are not retryable")
				}
			} else if err != nil || wb.ID != tt.wantID {
				t.Fatalf("FindWorkbook = %+v, %v; want %s", wb, err, tt.wantID)
			}
			if pages != tt.wantPages {
				t.Errorf("pages fetched = %d, want %d", pages, tt.wantPages)
			}
		})
	}
}

func TestAmbiguousErrorDetails(t *testing.T) {
	env := setup(t)
	env.handleSignIn(t)
	env.mux.HandleFunc("GET "+sitePrefix+"/workbooks", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("pageNumber") == "1" {
			writeBytes(w, 200, "application/json", fixture(t, "workbooks_page1.json"))
			return
		}
		writeBytes(w, 200, "application/json", fixture(t, "workbooks_page2.json"))
	})
	_, err := env.client.FindWorkbook(context.Background(), "Sales", "")
	var ae *AmbiguousError
	if !errors.As(err, &ae) {
		t.Fatalf("error = %v", err)
	}
	if ae.Kind != "workbook" || ae.Name != "Sales" || len(ae.Matches) != 2 || ae.IDs[0] != "wb-1" || ae.IDs[1] != "wb-3" {
		t.Errorf("AmbiguousError = %+v", ae)
	}
}

func TestFindEmptyAndOddListings(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{"inner key missing", `{"pagination":{"pageNumber":"1","pageSize":"1000","totalAvailable":"0"},"workbooks":{}}`},
		{"outer key missing", `{"pagination":{"pageNumber":"1","pageSize":"1000","totalAvailable":"0"}}`},
		{"numbers as numbers", `{"pagination":{"pageNumber":1,"pageSize":1000,"totalAvailable":0},"workbooks":{"workbook":[]}}`},
		{"no pagination", `{"workbooks":{"workbook":[{"id":"x","name":"Other","project":{"id":"p","name":"P"}}]}}`},
		{"total too high: stops on an empty page", `{"pagination":{"pageNumber":"1","pageSize":"1000","totalAvailable":"999999"},"workbooks":{}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := setup(t)
			env.handleSignIn(t)
			env.mux.HandleFunc("GET "+sitePrefix+"/workbooks", func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, 200, tt.body)
			})
			_, err := env.client.FindWorkbook(context.Background(), "Sales", "")
			var nf *NotFoundError
			if !errors.As(err, &nf) || nf.Kind != "workbook" || nf.Name != "Sales" {
				t.Fatalf("error = %v, want *NotFoundError", err)
			}
		})
	}
}

func TestFindListingErrors(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		status int
		wantIs error
	}{
		{"bad pagination", `{"pagination":{"totalAvailable":"lots"},"workbooks":{}}`, 200, errAny},
		{"bad items", `{"pagination":{"totalAvailable":"1"},"datasources":{"datasource":"x"}}`, 200, errAny},
		{"server error", tableauError(500, "500000", "Internal", ""), 500, ErrServer},
		{"xml listing", "", 200, ErrBadReply},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := setup(t, WithRetryPolicy(remote.Policy{MaxAttempts: 1}))
			env.handleSignIn(t)
			env.mux.HandleFunc("GET "+sitePrefix+"/datasources", func(w http.ResponseWriter, r *http.Request) {
				if tt.body == "" {
					writeBytes(w, 200, "application/xml", []byte(`<tsResponse><datasources/></tsResponse>`))
					return
				}
				writeJSON(w, tt.status, tt.body)
			})
			_, err := env.client.FindDatasource(context.Background(), "Orders", "")
			if err == nil || (tt.wantIs != errAny && !errors.Is(err, tt.wantIs)) {
				t.Fatalf("error = %v, want %v", err, tt.wantIs)
			}
			if !strings.Contains(err.Error(), `find data source "Orders"`) {
				t.Errorf("error %q does not say what was being done", err)
			}
		})
	}
}

func TestFindDatasource(t *testing.T) {
	env := setup(t, WithPageSize(1))
	env.handleSignIn(t)
	env.mux.HandleFunc("GET "+sitePrefix+"/datasources", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("filter") != "name:eq:Orders,projectName:eq:Finance" || q.Get("pageSize") != "1" {
			t.Errorf("query = %v", q)
		}
		switch q.Get("pageNumber") {
		case "1":
			writeJSON(w, 200, `{"pagination":{"pageNumber":"1","pageSize":"1","totalAvailable":"2"},"datasources":{"datasource":[{"id":"ds-0","name":"orders","project":{"id":"p","name":"Finance"}}]}}`)
		case "2":
			writeJSON(w, 200, `{"pagination":{"pageNumber":"2","pageSize":"1","totalAvailable":"2"},"datasources":{"datasource":[{"id":"ds-1","name":"Orders","hasExtracts":true,"project":{"id":"p","name":"Finance"}}]}}`)
		default:
			t.Errorf("page %s requested", q.Get("pageNumber"))
		}
	})
	ds, err := env.client.FindDatasource(context.Background(), "Orders", "Finance")
	if err != nil || ds.ID != "ds-1" || !ds.HasExtracts {
		t.Fatalf("FindDatasource = %+v, %v", ds, err)
	}
	if _, err := env.client.FindDatasource(context.Background(), "", ""); err == nil {
		t.Error("empty name accepted")
	}
	if _, err := env.client.FindWorkbook(context.Background(), "", ""); err == nil {
		t.Error("empty name accepted")
	}
}

func TestRefresh(t *testing.T) {
	tests := []struct {
		name        string
		datasource  bool
		status      int
		contentType string
		body        string
		wantQueued  bool
		wantJobID   string
		wantIs      error
		wantText    string
		wantRetry   bool
	}{
		{name: "workbook queued", status: 202, body: "refresh_workbook.json", wantJobID: "7a6b5c4d-job0-0000-0000-000000000001"},
		{name: "datasource queued", datasource: true, status: 202, body: `{"job":{"id":"job-ds","mode":"Asynchronous","type":"RefreshExtract","createdAt":"2024-06-02T12:00:00Z","extractRefreshJob":{"datasource":{"id":"ds-1","name":"Orders"}}}}`, wantJobID: "job-ds"},
		{name: "already queued", status: 409, body: "error_409093.json", wantQueued: true},
		{name: "already queued, datasource", datasource: true, status: 409, body: "error_409093.json", wantQueued: true},
		{name: "no extract (xml body)", status: 409, contentType: "application/xml", body: "error_409090.xml", wantIs: ErrNoExtract, wantText: "409090"},
		{name: "no extract (json body)", datasource: true, status: 409, body: tableauError(409, "409090", "Bad Request", "Extract operation not allowed"), wantIs: ErrNoExtract, wantText: "refresh data source ds-1"},
		{name: "other conflict", status: 409, body: tableauError(409, "409000", "Conflict", ""), wantIs: ErrConflict},
		{name: "missing item", status: 404, body: tableauError(404, "404006", "Not Found", ""), wantIs: ErrNotFound, wantText: "refresh workbook wb-1"},
		{name: "no permission", status: 403, body: tableauError(403, "403004", "Forbidden", ""), wantIs: ErrForbidden},
		{name: "rate limited", status: 429, body: tableauError(429, "429000", "Too many requests", "retry after 1 minutes"), wantIs: ErrRateLimited, wantRetry: true},
		{name: "reply without job", status: 202, body: `{}`, wantIs: ErrBadReply},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := setup(t, WithRetryPolicy(remote.Policy{MaxAttempts: 1}))
			env.handleSignIn(t)
			path := sitePrefix + "/workbooks/wb-1/refresh"
			if tt.datasource {
				path = sitePrefix + "/datasources/ds-1/refresh"
			}
			env.mux.HandleFunc("POST "+path, func(w http.ResponseWriter, r *http.Request) {
				checkRequest(t, r, http.MethodPost, "tok-1")
				checkJSONBody(t, r, `{}`)
				body := []byte(tt.body)
				if strings.HasSuffix(tt.body, ".json") || strings.HasSuffix(tt.body, ".xml") {
					body = fixture(t, tt.body)
				}
				ct := tt.contentType
				if ct == "" {
					ct = "application/json"
				}
				writeBytes(w, tt.status, ct, body)
			})
			var res *RefreshResult
			var err error
			if tt.datasource {
				res, err = env.client.RefreshDatasource(context.Background(), "ds-1")
			} else {
				res, err = env.client.RefreshWorkbook(context.Background(), "wb-1")
			}
			if tt.wantIs != nil {
				if !errors.Is(err, tt.wantIs) || !strings.Contains(err.Error(), tt.wantText) {
					t.Fatalf("error = %v, want %v containing %q", err, tt.wantIs, tt.wantText)
				}
				if Retryable(err) != tt.wantRetry {
					t.Errorf("Retryable = %v, want %v", Retryable(err), tt.wantRetry)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.AlreadyQueued != tt.wantQueued {
				t.Errorf("AlreadyQueued = %v, want %v", res.AlreadyQueued, tt.wantQueued)
			}
			if tt.wantQueued {
				if res.Job != nil {
					t.Errorf("Job = %+v for an already queued refresh", res.Job)
				}
				return
			}
			if res.Job == nil || res.Job.ID != tt.wantJobID || res.Job.Finished() || res.Job.Type != "RefreshExtract" {
				t.Errorf("Job = %+v", res.Job)
			}
		})
	}
}

func TestRefreshBadIDs(t *testing.T) {
	c, _ := NewClient("https://tableau.example.com", WithPAT("n", "s"))
	for _, id := range []string{"", "  ", "../other", "a?b"} {
		if _, err := c.RefreshWorkbook(context.Background(), id); err == nil {
			t.Errorf("RefreshWorkbook(%q) accepted", id)
		}
		if _, err := c.RefreshDatasource(context.Background(), id); err == nil {
			t.Errorf("RefreshDatasource(%q) accepted", id)
		}
		if _, err := c.Datasource(context.Background(), id); err == nil {
			t.Errorf("Datasource(%q) accepted", id)
		}
	}
}
