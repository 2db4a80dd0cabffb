package tableau

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/remote"
)

// Fuzz targets for what this package reads from the outside: Tableau's
// webhook payloads (ParseEvent) and REST replies (decodeJSON, replyError and
// the client calls that use them). Run one at a time, e.g.
//
//	go test -run='^$' -fuzz='^FuzzDecodeReply$' -fuzztime=60s ./pkg/tableau/

// fuzzEventSeeds are Tableau webhook payloads: current and 2019 preview keys,
// test deliveries, and malformed ones.
var fuzzEventSeeds = []string{
	`{"resource":"EXTRACTS","event_type":"WorkbookRefreshFailed","resource_name":"Sales","site_luid":"s-1","resource_luid":"w-1","created_at":"2018-11-15T17:14:45Z"}`,
	`{"resource":"EXTRACTS","event_type":"DatasourceRefreshSucceeded","resource_name":"Orders","site_luid":"s-1","resource_luid":"d-1","created_at":"2024-06-02T12:01:00.123456789+02:00"}`,
	`{"resource":"DATASOURCE","event-type":"DatasourceRefreshStarted","resource-name":"Orders","site-id":"s-1","resource-id":"d-1","created-at":"2019-01-01T00:00:00Z"}`,
	`{"resource":"WORKBOOK","event_type":"WorkbookCreated","resource_name":"X","resource_id":"w","site_id":"s"}`,
	`{"event_type":"WorkbookRefreshStarted","extra":{"a":[1,2,{"b":null}]}}`,
	`{"event_type":"WorkbookRefreshSucceeded","event-type":"DatasourceRefreshFailed"}`,
	`{"event_type":null,"event-type":"DatasourceRefreshFailed","resource_luid":null,"resource-id":"d"}`,
	`{"event_type":"","resource":"EXTRACTS"}`,
	`{"event_type":5}`,
	`{"event_type":"WorkbookRefreshFailed","created_at":"yesterday"}`,
	`{"event_type":"WorkbookRefreshFailed","created_at":""}`,
	`{"event_type":"WorkbookRefreshFailed","created_at":1700000000}`,
	`{"event_type":"WorkbookRefresh"}`,
	`{"event_type":"Workbook\u0000RefreshFailed\ud800"}`,
	"{\"event_type\":\"\xff\xfe\"}",
	``,
	" \r\n\t",
	`{}`,
	` {} `,
	`{ }`,
	`{"":""}`,
	`[]`,
	`[{"event_type":"WorkbookRefreshFailed"}]`,
	`null`,
	`"WorkbookRefreshFailed"`,
	`event_type=WorkbookRefreshFailed`,
	`{"event_type":"WorkbookRefreshFailed"`,
	`{"event_type":"WorkbookRefreshFailed"} {}`,
}

// FuzzParseEvent: ParseEvent never panics; it succeeds only with a non-empty
// Type; ErrEmptyEvent comes for blank and {} bodies and nothing else. (The
// size cap is left to TestParseEvent: inputs over 64 KB stall the fuzzer.)
func FuzzParseEvent(f *testing.F) {
	for _, s := range fuzzEventSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := ParseEvent(body)
		trimmed := bytes.TrimSpace(body)
		empty := len(trimmed) == 0 || string(trimmed) == "{}"
		if errors.Is(err, ErrEmptyEvent) != empty {
			t.Fatalf("ParseEvent(%q) = %v; blank or {} body: %v", body, err, empty)
		}
		if err != nil {
			if ev != nil {
				t.Fatalf("ParseEvent(%q) returned an event and error %v", body, err)
			}
			if !utf8.ValidString(err.Error()) {
				t.Fatalf("ParseEvent(%q) error is not valid UTF-8: %q", body, err)
			}
			return
		}
		if ev == nil || ev.Type == "" {
			t.Fatalf("ParseEvent(%q) = %+v without a type", body, ev)
		}
		if !json.Valid(trimmed) || trimmed[0] != '{' {
			t.Fatalf("ParseEvent accepted %q, which is not a JSON object", body)
		}
		if len(trimmed) > maxEventBytes {
			t.Fatalf("ParseEvent accepted a %d byte payload", len(trimmed))
		}
		switch o := ev.RefreshOutcome(); o {
		case "":
		case "started", "succeeded", "failed":
			if ev.ItemKind() == "" {
				t.Fatalf("event %+v has outcome %q but no item kind", ev, o)
			}
		default:
			t.Fatalf("event %+v: RefreshOutcome %q", ev, o)
		}
		if k := ev.ItemKind(); k != "" && k != "workbook" && k != "datasource" {
			t.Fatalf("event %+v: ItemKind %q", ev, k)
		}
	})
}

// fuzzReply is one kind of reply body the client decodes, with the checks
// that apply to what it decoded into.
type fuzzReply struct {
	name   string
	secret bool
	out    func() any
	check  func(t *testing.T, out any)
}

var fuzzReplies = []fuzzReply{
	{name: "job", out: func() any { return new(struct{ Job *jobWire }) }, check: func(t *testing.T, out any) {
		if w := out.(*struct{ Job *jobWire }).Job; w != nil {
			fuzzCheckJob(t, w.job(), w.FinishCode.Set)
		}
	}},
	{name: "workbook", out: func() any { return new(struct{ Workbook *Workbook }) }},
	{name: "datasource", out: func() any { return new(struct{ Datasource *Datasource }) }},
	{name: "webhook", out: func() any { return new(struct{ Webhook *Webhook }) }, check: func(t *testing.T, out any) {
		if w := out.(*struct{ Webhook *Webhook }).Webhook; w != nil {
			fuzzCheckWebhook(t, w)
		}
	}},
	{name: "list page", out: func() any { return new(map[string]json.RawMessage) }, check: func(t *testing.T, out any) {
		page := *out.(*map[string]json.RawMessage)
		var p pagination
		if raw, ok := page["pagination"]; ok {
			_ = json.Unmarshal(raw, &p) // an error fails the listing; it must not panic
		}
		var wb struct{ Workbook []*Workbook }
		_ = decodeList(page["workbooks"], &wb)
		var ds struct{ Datasource []*Datasource }
		_ = decodeList(page["datasources"], &ds)
		var wh struct{ Webhook []*Webhook }
		if decodeList(page["webhooks"], &wh) == nil {
			for _, w := range wh.Webhook {
				if w != nil {
					fuzzCheckWebhook(t, w)
				}
			}
		}
	}},
	{name: "server info", out: func() any {
		return new(struct {
			ServerInfo *struct {
				ProductVersion flexText `json:"productVersion"`
				RestAPIVersion string   `json:"restApiVersion"`
			} `json:"serverInfo"`
		})
	}},
	{name: "webhook test result", out: func() any {
		return new(struct {
			Result *struct {
				ID     string   `json:"id"`
				Status flexInt  `json:"status"`
				Body   flexText `json:"body"`
			} `json:"webhookTestResult"`
		})
	}},
	{name: "sign-in", secret: true, out: func() any {
		return new(struct {
			Credentials *struct {
				Token string `json:"token"`
				Site  struct {
					ID string `json:"id"`
				} `json:"site"`
			} `json:"credentials"`
		})
	}},
}

func fuzzCheckJob(t *testing.T, j *Job, finishSet bool) {
	t.Helper()
	if j.Finished() != finishSet {
		t.Fatalf("job %+v: Finished() = %v with finishCode given = %v", j, j.Finished(), finishSet)
	}
	if j.Succeeded() && !j.Finished() {
		t.Fatalf("job %+v succeeded without finishing", j)
	}
	if j.Finished() {
		if j.FinishCode.String() == "" {
			t.Fatalf("finish code %d has no name", int(*j.FinishCode))
		}
		if !j.Succeeded() {
			je := &JobError{Job: j}
			if je.Error() == "" || !errors.Is(je, ErrJobFailed) && !errors.Is(je, ErrJobCancelled) {
				t.Fatalf("JobError %v for %+v", je, j)
			}
		}
	}
}

func fuzzCheckWebhook(t *testing.T, w *Webhook) {
	t.Helper()
	_ = w.EventName()
	_ = w.URL()
	_ = w.validate(false)
	// What ListWebhooks returns can be sent back to UpdateWebhook.
	b, err := json.Marshal(w.writable())
	if err != nil {
		t.Fatalf("webhook %+v does not encode: %v", w, err)
	}
	var back Webhook
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("encoded webhook %s does not decode: %v", b, err)
	}
	if back.Name != w.Name || back.Event != w.Event || back.URL() != w.URL() ||
		(back.IsEnabled == nil) != (w.IsEnabled == nil) || back.IsEnabled != nil && *back.IsEnabled != *w.IsEnabled {
		t.Fatalf("webhook %+v came back as %+v", w, back)
	}
}

// FuzzDecodeReply feeds one reply body, with a Content-Type, to every decoder
// a 2xx reply goes through, and to replyError as the body of an error reply.
// It must never panic; a 2xx body either decodes or gives a *FormatError that
// says, in valid UTF-8, what arrived (and quotes nothing of a reply that may
// hold a token); an error body always gives an *Error with the status.
func FuzzDecodeReply(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		if fi, err := os.Stat(name); err != nil || fi.IsDir() {
			continue
		}
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		ct := "application/json;charset=UTF-8"
		if strings.HasSuffix(name, ".xml") {
			ct = "application/xml"
		}
		f.Add(ct, b)
		f.Add("", b)
	}
	for _, s := range []struct{ ct, body string }{
		{"application/json", `{"job":{"id":"j","finishCode":"","progress":""}}`},
		{"application/json", `{"job":{"id":"j","finishCode":2,"progress":"x"}}`},
		{"application/json", `{"job":{"id":"j","finishCode":{"value":"1"},"extractRefreshJob":{"notes":["a",{"value":"b"},3,true,null]}}}`},
		{"application/json", `{"job":{"finishCode":"99999999999999999999"}}`},
		{"application/json", `{"job":{"createdAt":"2024-13-01T00:00:00Z"}}`},
		{"application/json", `{"job":{"createdAt":{"value":"2024-01-01T00:00:00Z","build":"x"}}}`},
		{"application/json", `{"datasource":{"hasExtracts":"TRUE","createdAt":""}}`},
		{"application/json", `{"datasource":{"hasExtracts":"yes"}}`},
		{"application/json", `{"datasource":null}`},
		{"application/json", `{"webhook":{"isEnabled":"false","webhook-source":{"webhook-source-event-workbook-refresh-failed":{}}}}`},
		{"application/json", `{"webhook":{"isEnabled":1,"webhook-source":{"a":{},"b":{}}}}`},
		{"application/json", `{"pagination":{"pageNumber":"1","pageSize":"1000","totalAvailable":"1e3"},"workbooks":{"workbook":[null]}}`},
		{"application/json", `{"pagination":{"totalAvailable":{"value":"2"}},"webhooks":""}`},
		{"application/json", `{"webhookTestResult":{"status":"abc","body":{"value":{"value":"x"}}}}`},
		{"application/json", `{"credentials":{"token":5}}`},
		{"application/json", `{"error":{"code":409093,"summary":"Conflict","detail":"queued"}}`},
		{"application/json", `{"job":`},
		{"application/json", `{"job":{}} trailing`},
		{"application/json", "\xef\xbb\xbf{}"},
		{"text/html; charset=utf-8", `<!DOCTYPE html><html><body>Sign in</body></html>`},
		{"", `<html>`},
		{"text/xml", `<tsResponse><error code="401002"><summary>Signed out</summary></error></tsResponse>`},
		{"text/plain", `Service Unavailable`},
		{"application/json", `Service Unavailable`},
		{"application/json", ``},
		{"application/json", "\x00\xff"},
		{"APPLICATION/JSON", `[]`},
		{"application/json", `{"a":` + strings.Repeat(`{"value":`, 200) + `1` + strings.Repeat(`}`, 200) + `}`},
	} {
		f.Add(s.ct, []byte(s.body))
	}

	errorStatuses := []int{301, 400, 401, 404, 409, 429, 500, 503}
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		trimmed := bytes.TrimSpace(body)
		kind := nonJSONKind(contentType, trimmed)
		for _, rk := range fuzzReplies {
			r := &request{method: http.MethodGet, out: rk.out(), secret: rk.secret}
			err := decodeJSON(r, "/api/3.23/x", http.StatusOK, contentType, body)
			if err == nil {
				if kind != "" || !json.Valid(trimmed) {
					t.Fatalf("%s: %q (Content-Type %q) decoded without error", rk.name, body, contentType)
				}
				if rk.check != nil {
					rk.check(t, r.out)
				}
				continue
			}
			var fe *FormatError
			if !errors.As(err, &fe) || !errors.Is(err, ErrBadReply) {
				t.Fatalf("%s: error %T %v, want *FormatError", rk.name, err, err)
			}
			msg := err.Error()
			if fe.Received == "" || !strings.Contains(msg, "expected JSON, received "+fe.Received) || !utf8.ValidString(msg) {
				t.Fatalf("%s: unreadable error %q", rk.name, msg)
			}
			if kind != "" && fe.Received != kind {
				t.Fatalf("%s: %q (Content-Type %q) reported as %q, want %q", rk.name, body, contentType, fe.Received, kind)
			}
			if rk.secret && (fe.Snippet != "" || fe.Err != nil && fe.Err.Error() != "JSON does not decode") {
				t.Fatalf("%s: error quotes a reply that may hold a token: %q", rk.name, msg)
			}
		}

		for _, status := range errorStatuses {
			for _, secret := range []bool{false, true} {
				resp := &http.Response{StatusCode: status, Header: http.Header{}}
				if contentType != "" {
					resp.Header.Set("Content-Type", contentType)
				}
				err := replyError(&request{method: http.MethodPost, secret: secret}, "/api/3.23/x", resp, body)
				var te *Error
				if !errors.As(err, &te) || te.StatusCode != status {
					t.Fatalf("replyError(%d, %q) = %T %v", status, body, err, err)
				}
				if msg := err.Error(); !utf8.ValidString(msg) && utf8.Valid(body) {
					t.Fatalf("replyError(%d, %q): error is not valid UTF-8: %q", status, body, msg)
				}
				if secret && len(trimmed) > 0 && strings.HasPrefix(te.Detail, "received ") && strings.HasSuffix(te.Detail, ": "+snippet(trimmed)) {
					t.Fatalf("replyError quotes a reply that may hold a token: %q", te.Detail)
				}
			}
		}
	})
}

// fuzzTransport answers the client's requests in memory: sign-ins with a
// good session, everything else with the fuzzed reply.
type fuzzTransport struct {
	status      int
	contentType string
	body        []byte
	fuzzSignIn  bool // answer sign-ins with the fuzzed reply too
	calls       int
}

const fuzzMaxCalls = 20

func (ft *fuzzTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		io.Copy(io.Discard, req.Body)
		req.Body.Close()
	}
	ft.calls++
	if ft.calls > fuzzMaxCalls {
		// A listing that the reply keeps going: stop it here.
		return nil, errors.New("fuzz: too many requests")
	}
	h := http.Header{}
	status, body := ft.status, ft.body
	if strings.HasSuffix(req.URL.Path, "/auth/signin") && !ft.fuzzSignIn {
		status = http.StatusOK
		body = []byte(`{"credentials":{"site":{"id":"site-luid","contentUrl":"mysite"},"user":{"id":"user-luid"},"token":"tok-1"}}`)
		h.Set("Content-Type", "application/json")
	} else {
		if ft.contentType != "" {
			h.Set("Content-Type", ft.contentType)
		}
		if status >= 300 && status < 400 {
			h.Set("Location", "https://sso.example.com/login")
		}
	}
	return &http.Response{
		StatusCode: status, Status: http.StatusText(status), Header: h, Request: req,
		Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)),
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
	}, nil
}

var fuzzStatuses = []int{200, 201, 202, 204, 301, 302, 400, 401, 403, 404, 405, 409, 429, 500, 502, 503, 504}

// fuzzOps are client calls, each returning (whether it produced a value, error).
var fuzzOps = []struct {
	name    string
	decodes bool // reads the body of a 2xx reply
	call    func(ctx context.Context, c *Client) (bool, error)
}{
	{"Workbook", true, func(ctx context.Context, c *Client) (bool, error) {
		v, err := c.Workbook(ctx, "wb-1")
		return v != nil, err
	}},
	{"Datasource", true, func(ctx context.Context, c *Client) (bool, error) {
		v, err := c.Datasource(ctx, "ds-1")
		return v != nil, err
	}},
	{"FindWorkbook", true, func(ctx context.Context, c *Client) (bool, error) {
		v, err := c.FindWorkbook(ctx, "Sales", "Finance")
		if v != nil && (v.Name != "Sales" || v.Project.Name != "Finance") {
			return true, errors.New("fuzz: FindWorkbook returned " + v.Name + " in " + v.Project.Name)
		}
		return v != nil, err
	}},
	{"FindWorkbookAnyProject", true, func(ctx context.Context, c *Client) (bool, error) {
		v, err := c.FindWorkbook(ctx, "Sales", "")
		return v != nil, err
	}},
	{"FindDatasource", true, func(ctx context.Context, c *Client) (bool, error) {
		v, err := c.FindDatasource(ctx, "Orders, EU", "")
		if v != nil && v.Name != "Orders, EU" {
			return true, errors.New("fuzz: FindDatasource returned " + v.Name)
		}
		return v != nil, err
	}},
	{"RefreshWorkbook", true, func(ctx context.Context, c *Client) (bool, error) {
		v, err := c.RefreshWorkbook(ctx, "wb-1")
		if v != nil && (v.Job == nil) == !v.AlreadyQueued {
			return true, errors.New("fuzz: RefreshResult with neither or both of Job and AlreadyQueued")
		}
		return v != nil, err
	}},
	{"RefreshDatasource", true, func(ctx context.Context, c *Client) (bool, error) {
		v, err := c.RefreshDatasource(ctx, "ds-1")
		return v != nil, err
	}},
	{"Job", true, func(ctx context.Context, c *Client) (bool, error) {
		v, err := c.Job(ctx, "job-1")
		return v != nil, err
	}},
	{"WaitForJob", true, func(ctx context.Context, c *Client) (bool, error) {
		v, err := c.WaitForJob(ctx, "job-1", &WaitOptions{Interval: time.Millisecond})
		var je *JobError
		switch {
		case err == nil && (v == nil || !v.Succeeded()):
			return true, errors.New("fuzz: WaitForJob succeeded with an unsuccessful job")
		case errors.As(err, &je) && (je.Job != v || v.Succeeded()):
			return true, errors.New("fuzz: WaitForJob JobError does not match the job")
		}
		return err == nil, err
	}},
	{"CancelJob", false, func(ctx context.Context, c *Client) (bool, error) {
		err := c.CancelJob(ctx, "job-1")
		return err == nil, err
	}},
	{"ListWebhooks", true, func(ctx context.Context, c *Client) (bool, error) {
		v, err := c.ListWebhooks(ctx)
		for _, w := range v {
			if w == nil {
				return true, errors.New("fuzz: ListWebhooks returned a nil webhook")
			}
		}
		return err == nil, err
	}},
	{"Webhook", true, func(ctx context.Context, c *Client) (bool, error) {
		v, err := c.Webhook(ctx, "wh-1")
		return v != nil, err
	}},
	{"TestWebhook", true, func(ctx context.Context, c *Client) (bool, error) {
		v, err := c.TestWebhook(ctx, "wh-1")
		return v != nil, err
	}},
	{"CreateWebhook", true, func(ctx context.Context, c *Client) (bool, error) {
		v, err := c.CreateWebhook(ctx, NewWebhook("n", EventWorkbookRefreshFailed, "https://hooks.example.com/x"))
		return v != nil, err
	}},
	{"ServerInfo", true, func(ctx context.Context, c *Client) (bool, error) { v, err := c.ServerInfo(ctx); return v != nil, err }},
	{"SignIn", true, func(ctx context.Context, c *Client) (bool, error) { err := c.SignIn(ctx); return err == nil, err }},
}

// FuzzClientReply drives the real client calls with one fuzzed reply (no
// network: an in-memory RoundTripper answers). Properties: no panic, no
// hang; each call returns a value or an error, never both or neither; a
// non-2xx reply is an *Error with its status (or, for a refresh, Tableau's
// "already queued"); a 2xx reply that is plainly not JSON is a *FormatError
// naming what arrived; error messages are valid UTF-8.
func FuzzClientReply(f *testing.F) {
	add := func(op string, status int, ct, body string) {
		for i, o := range fuzzOps {
			if o.name == op {
				for j, s := range fuzzStatuses {
					if s == status {
						f.Add(uint8(i), uint8(j), ct, []byte(body))
						return
					}
				}
			}
		}
		f.Fatalf("bad seed %s %d", op, status)
	}
	fx := func(name string) string {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		return string(b)
	}
	const js = "application/json;charset=UTF-8"
	add("Workbook", 200, js, fx("workbook.json"))
	add("Datasource", 200, js, fx("datasource.json"))
	add("FindWorkbook", 200, js, fx("workbooks_page1.json"))
	add("FindWorkbookAnyProject", 200, js, fx("workbooks_page2.json"))
	add("FindWorkbook", 200, js, fx("workbooks_empty.json"))
	add("FindDatasource", 200, js, `{"pagination":{"totalAvailable":"1"},"datasources":{"datasource":[{"id":"d","name":"Orders, EU","hasExtracts":true}]}}`)
	add("RefreshWorkbook", 202, js, fx("refresh_workbook.json"))
	add("RefreshDatasource", 409, js, fx("error_409093.json"))
	add("RefreshWorkbook", 409, "application/xml", fx("error_409090.xml"))
	add("Job", 200, js, fx("job_running.json"))
	add("WaitForJob", 200, js, fx("job_failed.json"))
	add("WaitForJob", 200, js, fx("job_success.json"))
	add("WaitForJob", 200, js, fx("job_running.json"))
	add("CancelJob", 200, js, ``)
	add("ListWebhooks", 200, js, fx("webhooks.json"))
	add("Webhook", 200, js, fx("webhook.json"))
	add("TestWebhook", 200, js, fx("webhook_test.json"))
	add("CreateWebhook", 201, js, fx("webhook.json"))
	add("ServerInfo", 200, js, fx("serverinfo.json"))
	add("ServerInfo", 200, "application/xml", fx("serverinfo.xml"))
	add("SignIn", 200, js, fx("signin.json"))
	add("SignIn", 401, js, `{"error":{"summary":"Signin Error","detail":"Error signing in to Tableau Server","code":"401001"}}`)
	add("Workbook", 401, js, `{"error":{"summary":"Unauthorized","code":"401002"}}`)
	add("Workbook", 200, "text/html", `<!DOCTYPE html><html><body>Please sign in</body></html>`)
	add("Workbook", 302, "", ``)
	add("Job", 503, "text/plain", `upstream connect error`)
	add("Job", 200, js, `{"job":{"id":"j","finishCode":""}}`)
	add("FindWorkbookAnyProject", 200, js, `{"pagination":{"totalAvailable":"1000000"},"workbooks":{"workbook":[{"id":"w","name":"x"}]}}`)
	add("ListWebhooks", 200, js, `{"webhooks":{"webhook":{"id":"single object, not a list"}}}`)
	add("Datasource", 204, js, ``)

	f.Fuzz(func(t *testing.T, op, statusIdx uint8, contentType string, body []byte) {
		o := fuzzOps[int(op)%len(fuzzOps)]
		status := fuzzStatuses[int(statusIdx)%len(fuzzStatuses)]
		ft := &fuzzTransport{status: status, contentType: contentType, body: body, fuzzSignIn: o.name == "SignIn"}
		c, err := NewClient("https://tableau.example.com",
			WithHTTPClient(&http.Client{Transport: ft}),
			WithAPIVersion("3.23"), WithSite("mysite"), WithPAT("bot", "pat-secret"),
			WithRetryPolicy(remote.Policy{MaxAttempts: 1}))
		if err != nil {
			t.Fatal(err)
		}
		sleeps := 0
		c.sleep = func(ctx context.Context, _ time.Duration) error {
			if sleeps++; sleeps > 3 {
				return context.DeadlineExceeded
			}
			return ctx.Err()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()

		// A panic fails this input only, with its stack, so that go test
		// reports every failing seed instead of stopping at the first.
		defer func() {
			if p := recover(); p != nil {
				t.Fatalf("%s with %d %q (Content-Type %q) panicked: %v\n%s", o.name, status, body, contentType, p, debug.Stack())
			}
		}()
		ok, err := o.call(ctx, c)
		if err != nil && strings.HasPrefix(err.Error(), "fuzz: ") {
			t.Fatalf("%s with %d %q (Content-Type %q): %v", o.name, status, body, contentType, err)
		}
		if ok == (err != nil) && o.name != "WaitForJob" {
			t.Fatalf("%s with %d %q: value %v and error %v", o.name, status, body, ok, err)
		}
		if err == nil {
			if status >= 300 && !(status == http.StatusConflict && strings.HasPrefix(o.name, "Refresh")) {
				t.Fatalf("%s succeeded on a %d reply %q", o.name, status, body)
			}
			return
		}
		if ft.calls > fuzzMaxCalls {
			return // a listing the reply kept going; cut short by the transport
		}
		msg := err.Error()
		if !utf8.ValidString(msg) && utf8.Valid(body) {
			t.Fatalf("%s with %d %q: error is not valid UTF-8: %q", o.name, status, body, msg)
		}
		if status >= 300 {
			var te *Error
			if !errors.As(err, &te) || te.StatusCode != status {
				t.Fatalf("%s with %d %q: error %T %v, want an *Error with the status", o.name, status, body, err, err)
			}
			return
		}
		trimmed := bytes.TrimSpace(body)
		kind := nonJSONKind(contentType, trimmed)
		if o.decodes && kind != "" && !(o.name == "ServerInfo" && kind == "XML") {
			var fe *FormatError
			if !errors.As(err, &fe) || fe.Received != kind {
				t.Fatalf("%s with %d %q (Content-Type %q): error %v, want a *FormatError saying it received %s",
					o.name, status, body, contentType, err, kind)
			}
		}
	})
}

// FuzzRetryAfter feeds a Retry-After header to replyError, where the client
// reads it. The wait is never negative, and delay-seconds never wrap: up to a
// day they are taken as given, and a longer wait stays at least a day long,
// so that, being longer than the retry policy's MaxDelay, it ends the retries
// instead of turning into a short (or no) wait.
func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"", "0", "5", " 120 ", "-1", "+3", "1.5", "0x10", "\u0663", "86400", "86401",
		"Wed, 21 Oct 2015 07:28:00 GMT", "Fri, 31 Dec 9999 23:59:59 GMT", "Sunday, 06-Nov-94 08:49:37 GMT",
		"9223372036"} {
		f.Add(s)
	}
	const day = 24 * time.Hour
	f.Fuzz(func(t *testing.T, v string) {
		resp := &http.Response{StatusCode: http.StatusTooManyRequests, Header: http.Header{}}
		resp.Header.Set("Retry-After", v)
		err := replyError(&request{method: http.MethodPost}, "/api/3.23/x", resp, nil)
		var te *Error
		if !errors.As(err, &te) {
			t.Fatalf("replyError = %T %v", err, err)
		}
		d := te.RetryAfter
		if d < 0 {
			t.Fatalf("Retry-After %q gave a negative wait %v", v, d)
		}
		s := strings.TrimSpace(resp.Header.Get("Retry-After"))
		if s == "" || strings.Trim(s, "0123456789") != "" {
			return
		}
		// Plain delay-seconds.
		var n int64
		for _, c := range s {
			if n > int64(day/time.Second) {
				break
			}
			n = n*10 + int64(c-'0')
		}
		if want := time.Duration(n) * time.Second; n <= int64(day/time.Second) && d != want {
			t.Fatalf("Retry-After %q gave %v, want %v", v, d, want)
		}
		if n > int64(day/time.Second) && d < day {
			t.Fatalf("Retry-After %q gave %v: a wait of more than a day became a short one", v, d)
		}
	})
}
