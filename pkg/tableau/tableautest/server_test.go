package tableautest

import (
	"encoding/xml"
	"net/http"
	"strings"
	"testing"
)

func TestServerInfo(t *testing.T) {
	tests := []struct {
		name       string
		opts       []Option
		version    string
		wantStatus int
		wantCode   string
		wantAPI    string
	}{
		{name: "probe at 2.4", version: "2.4", wantStatus: 200, wantAPI: "3.23"},
		{name: "current version", version: "3.23", wantStatus: 200, wantAPI: "3.23"},
		{name: "above the server", version: "3.24", wantStatus: 404, wantCode: codeVersionUnavailable},
		{name: "not a version", version: "latest", wantStatus: 404, wantCode: codeUnknownResource},
		{name: "below serverinfo", version: "2.3", wantStatus: 404, wantCode: codeVersionUnavailable},
		{name: "numeric order 3.9", opts: []Option{WithAPIVersion("3.10")}, version: "3.9", wantStatus: 200, wantAPI: "3.10"},
		{name: "numeric order 3.11", opts: []Option{WithAPIVersion("3.10")}, version: "3.11", wantStatus: 404, wantCode: codeVersionUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.opts...)
			r := e.get(e.srv.URL()+"/api/"+tt.version+"/serverinfo", "")
			if r.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d: %s", r.status, tt.wantStatus, r.body)
			}
			m := r.json(t)
			if tt.wantCode != "" {
				if got := r.code(t); got != tt.wantCode {
					t.Errorf("code = %q, want %q", got, tt.wantCode)
				}
				return
			}
			if got := dig(m, "serverInfo", "restApiVersion"); got != tt.wantAPI {
				t.Errorf("restApiVersion = %v, want %s", got, tt.wantAPI)
			}
			if got := dig(m, "serverInfo", "productVersion", "value"); got != "2024.2.0" {
				t.Errorf("productVersion.value = %v", got)
			}
			if dig(m, "serverInfo", "productVersion", "build") == nil {
				t.Errorf("productVersion has no build: %s", r.body)
			}
		})
	}
}

func TestServerInfoPathIsCaseInsensitive(t *testing.T) {
	e := newEnv(t)
	// server-client-python asks for "serverInfo".
	if r := e.get(e.api("serverInfo"), ""); r.status != http.StatusOK {
		t.Fatalf("GET serverInfo = %d: %s", r.status, r.body)
	}
}

func TestUnknownPathsAndMethods(t *testing.T) {
	e := newEnv(t)
	tok := e.signIn()
	tests := []struct {
		name       string
		method     string
		url        string
		wantStatus int
		wantCode   string
	}{
		{"unknown endpoint", "GET", e.api("nothing/here"), 404, codeUnknownResource},
		{"outside the API", "GET", e.srv.URL() + "/favicon.ico", 404, codeUnknownResource},
		{"wrong method", "DELETE", e.api("serverinfo"), 405, codeMethodNotAllowed},
		{"wrong method on a site path", "POST", e.site("workbooks"), 405, codeMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := send(t, request{method: tt.method, url: tt.url, token: tok})
			if r.status != tt.wantStatus || r.code(t) != tt.wantCode {
				t.Fatalf("got %d %s, want %d %s: %s", r.status, r.code(t), tt.wantStatus, tt.wantCode, r.body)
			}
			if s, _ := dig(r.json(t), "error", "summary").(string); s == "" {
				t.Errorf("error body has no summary: %s", r.body)
			}
		})
	}
}

// tsResponse is enough of Tableau's XML schema to check the XML replies.
type tsResponse struct {
	XMLName    xml.Name `xml:"tsResponse"`
	Namespace  string   `xml:"xmlns,attr"`
	Pagination struct {
		PageNumber     string `xml:"pageNumber,attr"`
		TotalAvailable string `xml:"totalAvailable,attr"`
	} `xml:"pagination"`
	Workbooks []struct {
		ID      string `xml:"id,attr"`
		Name    string `xml:"name,attr"`
		Project struct {
			Name string `xml:"name,attr"`
		} `xml:"project"`
	} `xml:"workbooks>workbook"`
	Credentials struct {
		Token string `xml:"token,attr"`
		Site  struct {
			ID string `xml:"id,attr"`
		} `xml:"site"`
	} `xml:"credentials"`
	ServerInfo struct {
		ProductVersion string `xml:"productVersion"`
		RestAPIVersion string `xml:"restApiVersion"`
	} `xml:"serverInfo"`
	Error struct {
		Code    string `xml:"code,attr"`
		Summary string `xml:"summary"`
		Detail  string `xml:"detail"`
	} `xml:"error"`
}

func decodeXMLReply(t *testing.T, r reply) tsResponse {
	t.Helper()
	if !strings.HasPrefix(string(r.body), "<?xml version='1.0' encoding='UTF-8'?><tsResponse") {
		t.Fatalf("reply is not Tableau XML: %s", r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.Contains(ct, "xml") {
		t.Errorf("Content-Type = %q, want XML", ct)
	}
	var doc tsResponse
	if err := xml.Unmarshal(r.body, &doc); err != nil {
		t.Fatalf("bad XML: %v\n%s", err, r.body)
	}
	return doc
}

func TestXMLWithoutAcceptJSON(t *testing.T) {
	e := newEnv(t)
	e.srv.AddWorkbook("Sales & Ops", "Finance")

	info := decodeXMLReply(t, send(t, request{method: "GET", url: e.api("serverinfo"), xml: true}))
	if info.ServerInfo.RestAPIVersion != "3.23" || info.ServerInfo.ProductVersion != "2024.2.0" {
		t.Errorf("serverInfo = %+v", info.ServerInfo)
	}

	// An XML request body, as server-client-python sends it.
	signin := `<tsRequest><credentials personalAccessTokenName="` + testPAT +
		`" personalAccessTokenSecret="` + testPATSecret + `"><site contentUrl=""/></credentials></tsRequest>`
	creds := decodeXMLReply(t, send(t, request{method: "POST", url: e.api("auth/signin"), body: signin, xml: true}))
	if creds.Credentials.Token == "" || creds.Credentials.Site.ID != e.srv.SiteID() {
		t.Fatalf("credentials = %+v", creds.Credentials)
	}

	list := decodeXMLReply(t, send(t, request{method: "GET", url: e.site("workbooks"), token: creds.Credentials.Token, xml: true}))
	if list.Namespace != "http://tableau.com/api" {
		t.Errorf("xmlns = %q", list.Namespace)
	}
	if list.Pagination.TotalAvailable != "1" || len(list.Workbooks) != 1 ||
		list.Workbooks[0].Name != "Sales & Ops" || list.Workbooks[0].Project.Name != "Finance" {
		t.Errorf("workbooks = %+v, pagination = %+v", list.Workbooks, list.Pagination)
	}

	bad := send(t, request{method: "POST", url: e.api("auth/signin"), xml: true,
		body: `<tsRequest><credentials personalAccessTokenName="x" personalAccessTokenSecret="y"><site contentUrl=""/></credentials></tsRequest>`})
	doc := decodeXMLReply(t, bad)
	if bad.status != 401 || doc.Error.Code != codeSigninError || doc.Error.Summary != "Signin Error" || doc.Error.Detail == "" {
		t.Errorf("error = %d %+v", bad.status, doc.Error)
	}
}

func TestRequestRecording(t *testing.T) {
	e := newEnv(t)
	tok := e.signIn()
	e.get(e.site("workbooks?filter=name:eq:Sales"), tok)
	e.get(e.site("workbooks/no-such-id"), tok)

	if n := e.srv.Count("POST", "/auth/signin"); n != 1 {
		t.Errorf("Count(POST, /auth/signin) = %d, want 1", n)
	}
	if n := e.srv.Count("", "/workbooks"); n != 1 {
		t.Errorf("Count(any, /workbooks) = %d, want 1", n)
	}
	reqs := e.srv.Requests()
	if len(reqs) != 3 {
		t.Fatalf("recorded %d requests, want 3", len(reqs))
	}
	signin, list, missing := reqs[0], reqs[1], reqs[2]
	if signin.Method != "POST" || !strings.Contains(string(signin.Body), testPATSecret) || signin.Status != 200 {
		t.Errorf("sign-in record = %+v", signin)
	}
	if list.RawQuery != "filter=name:eq:Sales" || list.Header.Get("X-Tableau-Auth") != tok || list.Status != 200 {
		t.Errorf("list record = %+v", list)
	}
	if missing.Status != 404 || !strings.HasSuffix(missing.Path, "/workbooks/no-such-id") {
		t.Errorf("missing record = %+v", missing)
	}

	// Requests returns copies: changing them does not change the record.
	reqs[1].Header.Set("X-Tableau-Auth", "changed")
	if e.srv.Requests()[1].Header.Get("X-Tableau-Auth") != tok {
		t.Error("Requests shares headers with the server's record")
	}

	e.srv.ResetRequests()
	if n := len(e.srv.Requests()); n != 0 {
		t.Errorf("after ResetRequests: %d requests", n)
	}
}
