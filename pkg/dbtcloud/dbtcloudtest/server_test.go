package dbtcloudtest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dbtcloud/dbtcloudtest"
)

var t0 = time.Date(2026, 3, 2, 6, 0, 0, 0, time.UTC)

// reply is a decoded dbt envelope.
type reply struct {
	Code   int
	Header http.Header
	Status struct {
		Code             int     `json:"code"`
		IsSuccess        bool    `json:"is_success"`
		UserMessage      string  `json:"user_message"`
		DeveloperMessage *string `json:"developer_message"`
	} `json:"status"`
	Data  json.RawMessage `json:"data"`
	Extra json.RawMessage `json:"extra"`
}

func (r reply) run(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Data, &m); err != nil {
		t.Fatalf("data is not a run object: %v: %s", err, r.Data)
	}
	return m
}

// call makes a raw request with "Token <token>" unless token is empty.
func call(t *testing.T, s *dbtcloudtest.Server, method, path, token, body string) reply {
	t.Helper()
	req, err := http.NewRequest(method, s.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Token "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.HTTPClient().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{Code: resp.StatusCode, Header: resp.Header}
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("%s %s: reply is not JSON: %v: %s", method, path, err, raw)
	}
	if r.Status.Code != resp.StatusCode {
		t.Errorf("%s %s: envelope code %d != HTTP %d", method, path, r.Status.Code, resp.StatusCode)
	}
	return r
}

func newServer(t *testing.T, opts ...dbtcloudtest.Option) (*dbtcloudtest.Server, *dbtcloudtest.FakeClock) {
	t.Helper()
	clock := dbtcloudtest.NewFakeClock(t0)
	s := dbtcloudtest.NewServer(append([]dbtcloudtest.Option{dbtcloudtest.WithClock(clock.Now)}, opts...)...)
	t.Cleanup(s.Close)
	return s, clock
}

const tok = dbtcloudtest.DefaultToken

func trigger(t *testing.T, s *dbtcloudtest.Server, jobID int64, cause string) int64 {
	t.Helper()
	r := call(t, s, "POST", fmt.Sprintf("/api/v2/accounts/1/jobs/%d/run/", jobID), tok, fmt.Sprintf(`{"cause":%q}`, cause))
	if r.Code != 200 {
		t.Fatalf("trigger: %d %s", r.Code, r.Data)
	}
	return int64(r.run(t)["id"].(float64))
}

var dbtTime = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}\+00:00$`)

func TestLifecycle(t *testing.T) {
	s, clock := newServer(t)
	s.AddJob(42, "Nightly build", dbtcloudtest.RunTimings(time.Minute, 2*time.Minute, 40*time.Minute))

	r := call(t, s, "POST", "/api/v2/accounts/1/jobs/42/run/", tok, `{"cause":"scheduled by bridge","git_branch":"release"}`)
	if r.Code != 200 || !r.Status.IsSuccess || r.Status.UserMessage != "Success!" || r.Status.DeveloperMessage == nil || *r.Status.DeveloperMessage != "" {
		t.Fatalf("trigger reply = %d %+v", r.Code, r.Status)
	}
	run := r.run(t)
	id := int64(run["id"].(float64))
	trig, _ := run["trigger"].(map[string]any)
	if run["status"] != 1.0 || run["job_definition_id"] != 42.0 || run["started_at"] != nil || trig == nil || trig["cause"] != "scheduled by bridge" || trig["git_branch"] != "release" {
		t.Fatalf("triggered run = %v", run)
	}
	if !dbtTime.MatchString(run["created_at"].(string)) {
		t.Errorf("created_at %q is not in dbt's layout", run["created_at"])
	}

	path := fmt.Sprintf("/api/v2/accounts/1/runs/%d/", id)
	steps := []struct {
		advance                              time.Duration
		status                               float64
		humanized                            string
		inProgress, complete, success        bool
		hasDequeued, hasStarted, hasFinished bool
	}{
		{0, 1, "Queued", true, false, false, false, false, false},
		{time.Minute, 2, "Starting", true, false, false, true, false, false},
		{2 * time.Minute, 3, "Running", true, false, false, true, true, false},
		{39 * time.Minute, 3, "Running", true, false, false, true, true, false},
		{time.Minute, 10, "Success", false, true, true, true, true, true},
		{24 * time.Hour, 10, "Success", false, true, true, true, true, true},
	}
	for i, st := range steps {
		clock.Advance(st.advance)
		got := call(t, s, "GET", path, tok, "").run(t)
		if got["status"] != st.status || got["status_humanized"] != st.humanized || got["in_progress"] != st.inProgress ||
			got["is_complete"] != st.complete || got["is_success"] != st.success ||
			(got["dequeued_at"] != nil) != st.hasDequeued || (got["started_at"] != nil) != st.hasStarted ||
			(got["finished_at"] != nil) != st.hasFinished {
			t.Fatalf("step %d: run = %v", i, got)
		}
		if got["trigger"] != nil {
			t.Errorf("step %d: trigger sent without include_related", i)
		}
	}
	final := call(t, s, "GET", path+`?include_related=["trigger"]`, tok, "").run(t)
	if final["duration"] != "00:43:00" || final["queued_duration"] != "00:03:00" || final["run_duration"] != "00:40:00" ||
		final["status_message"] != nil || final["trigger"] == nil {
		t.Errorf("finished run = %v", final)
	}
	if got := s.TriggerCount(42); got != 1 {
		t.Errorf("TriggerCount = %d", got)
	}
	info, ok := s.Run(id)
	if !ok || info.Status != 10 || info.Cause != "scheduled by bridge" || info.FinishedAt != t0.Add(43*time.Minute) {
		t.Errorf("Run(%d) = %+v, %v", id, info, ok)
	}
}

func TestOutcomes(t *testing.T) {
	tests := []struct {
		name      string
		opts      []dbtcloudtest.JobOption
		status    float64
		humanized string
		message   any
		isError   bool
		cancelled bool
	}{
		{"success", nil, 10, "Success", nil, false, false},
		{"error", []dbtcloudtest.JobOption{dbtcloudtest.Outcome(20)}, 20, "Error", dbtcloudtest.DefaultErrorMessage, true, false},
		{"error with message", []dbtcloudtest.JobOption{dbtcloudtest.Outcome(20), dbtcloudtest.ErrorMessage("Compilation Error")}, 20, "Error", "Compilation Error", true, false},
		{"cancelled", []dbtcloudtest.JobOption{dbtcloudtest.Outcome(30)}, 30, "Cancelled", "Cancelled by user.", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, clock := newServer(t)
			s.AddJob(7, "job", tt.opts...)
			id := trigger(t, s, 7, "test")
			clock.Advance(time.Hour)
			run := call(t, s, "GET", fmt.Sprintf("/api/v2/accounts/1/runs/%d/", id), tok, "").run(t)
			if run["status"] != tt.status || run["status_humanized"] != tt.humanized || run["status_message"] != tt.message ||
				run["is_error"] != tt.isError || run["is_cancelled"] != tt.cancelled || run["is_complete"] != true {
				t.Errorf("run = %v", run)
			}
		})
	}
}

func TestStuckInQueueAndCancel(t *testing.T) {
	s, clock := newServer(t)
	s.AddJob(5, "stuck", dbtcloudtest.StuckInQueue())
	id := trigger(t, s, 5, "test")
	clock.Advance(72 * time.Hour)
	path := fmt.Sprintf("/api/v2/accounts/1/runs/%d/", id)
	if run := call(t, s, "GET", path, tok, "").run(t); run["status"] != 1.0 || run["in_progress"] != true {
		t.Fatalf("stuck run = %v", run)
	}
	r := call(t, s, "POST", path+"cancel/", tok, "")
	run := r.run(t)
	if r.Code != 200 || run["status"] != 30.0 || run["status_message"] != "Cancelled by user." || run["started_at"] != nil ||
		run["dequeued_at"] != nil || run["finished_at"] == nil || run["is_cancelled"] != true {
		t.Fatalf("cancel reply = %d %v", r.Code, run)
	}
	clock.Advance(time.Hour)
	if run := call(t, s, "GET", path, tok, "").run(t); run["status"] != 30.0 {
		t.Errorf("after cancel, run = %v", run)
	}
}

func TestCancelRunning(t *testing.T) {
	s, clock := newServer(t)
	s.AddJob(5, "job", dbtcloudtest.RunTimings(time.Second, time.Second, time.Hour))
	id := trigger(t, s, 5, "test")
	clock.Advance(10 * time.Minute)
	run := call(t, s, "POST", fmt.Sprintf("/api/v2/accounts/1/runs/%d/cancel/", id), tok, "").run(t)
	if run["status"] != 30.0 || run["started_at"] == nil || run["run_duration"] != "00:09:58" {
		t.Errorf("cancelled running run = %v", run)
	}
}

// dbt answers 200 to cancelling a finished run and leaves it as it was
// (data-mie/dbt-cloud-cli README, "dbt-cloud run cancel").
func TestCancelFinishedRunIsANoOp(t *testing.T) {
	s, clock := newServer(t)
	s.AddJob(5, "job")
	id := trigger(t, s, 5, "test")
	clock.Advance(time.Hour)
	r := call(t, s, "POST", fmt.Sprintf("/api/v2/accounts/1/runs/%d/cancel/", id), tok, "")
	if run := r.run(t); r.Code != 200 || run["status"] != 10.0 || run["is_success"] != true {
		t.Errorf("cancel of finished run = %d %v", r.Code, run)
	}
}

func TestSetJobOutcomeAffectsLaterRunsOnly(t *testing.T) {
	s, clock := newServer(t)
	s.AddJob(5, "job")
	first := trigger(t, s, 5, "before")
	s.SetJobOutcome(5, 20)
	second := trigger(t, s, 5, "after")
	clock.Advance(time.Hour)
	a, _ := s.Run(first)
	b, _ := s.Run(second)
	if a.Status != 10 || b.Status != 20 || b.StatusMessage == "" {
		t.Errorf("runs = %+v, %+v", a, b)
	}
}

func TestAuthAndScope(t *testing.T) {
	s, _ := newServer(t, dbtcloudtest.WithAccount(77), dbtcloudtest.WithToken("right"))
	s.AddJob(1, "job")
	tests := []struct {
		name, path, header string
		code               int
		message            string
	}{
		{"no header", "/api/v2/accounts/77/runs/", "", 401, "Invalid token."},
		{"wrong token", "/api/v2/accounts/77/runs/", "Token wrong", 401, "Invalid token."},
		{"no scheme", "/api/v2/accounts/77/runs/", "right", 401, "Invalid token."},
		{"token scheme", "/api/v2/accounts/77/runs/", "Token right", 200, "Success!"},
		{"bearer scheme", "/api/v2/accounts/77/runs/", "Bearer right", 200, "Success!"},
		{"other account", "/api/v2/accounts/78/runs/", "Token right", 403, "Access denied: Token is not scoped to account."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", s.URL()+tt.path, nil)
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var env struct {
				Status struct {
					Code             int     `json:"code"`
					IsSuccess        bool    `json:"is_success"`
					UserMessage      string  `json:"user_message"`
					DeveloperMessage *string `json:"developer_message"`
				} `json:"status"`
				Data any `json:"data"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.code || env.Status.Code != tt.code || env.Status.UserMessage != tt.message {
				t.Errorf("got %d %+v", resp.StatusCode, env.Status)
			}
			if tt.code >= 400 && (env.Status.IsSuccess || env.Data != nil || env.Status.DeveloperMessage != nil) {
				t.Errorf("error body = %+v (want is_success false, data and developer_message null)", env)
			}
		})
	}
}

func TestNotFound(t *testing.T) {
	s, _ := newServer(t)
	s.AddJob(1, "job")
	for _, tt := range []struct{ method, path string }{
		{"POST", "/api/v2/accounts/1/jobs/999/run/"},
		{"GET", "/api/v2/accounts/1/runs/123/"},
		{"POST", "/api/v2/accounts/1/runs/123/cancel/"},
		{"GET", "/api/v2/accounts/1/jobs/999/"},
		{"GET", "/api/v2/accounts/1/runs/abc/"},
		{"GET", "/api/v3/nothing/"},
	} {
		r := call(t, s, tt.method, tt.path, tok, `{"cause":"x"}`)
		if r.Code != 404 || r.Status.IsSuccess || !strings.HasPrefix(r.Status.UserMessage, "The requested resource was not found.") {
			t.Errorf("%s %s = %d %+v", tt.method, tt.path, r.Code, r.Status)
		}
	}
	if s.TriggerCount(999) != 0 {
		t.Error("a run was created for an unknown job")
	}
}

func TestTriggerValidation(t *testing.T) {
	s, _ := newServer(t)
	s.AddJob(1, "job")
	tests := []struct{ name, body, detail string }{
		{"missing cause", `{"git_branch":"main"}`, "'cause' is a required property"},
		{"empty cause", `{"cause":"  "}`, "'cause' should be non-empty"},
		{"empty body", ``, "Request body must be a JSON object"},
		{"array body", `[]`, "Request body must be a JSON object"},
		{"unknown field", `{"cause":"x","colour":"red"}`, "Additional properties are not allowed ('colour' was unexpected)"},
		{"wrong type", `{"cause":"x","threads_override":"eight"}`, `"eight" is not of type 'integer'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := call(t, s, "POST", "/api/v2/accounts/1/jobs/1/run/", tok, tt.body)
			var detail string
			_ = json.Unmarshal(r.Data, &detail)
			if r.Code != 400 || r.Status.UserMessage != "The request was invalid. Please double check the provided data and try again." || detail != tt.detail {
				t.Errorf("got %d %+v data=%s", r.Code, r.Status, r.Data)
			}
		})
	}
	if s.TriggerCount(1) != 0 {
		t.Error("an invalid trigger created a run")
	}
}

func TestListRuns(t *testing.T) {
	s, clock := newServer(t)
	s.AddJob(1, "one")
	s.AddJob(2, "two", dbtcloudtest.Outcome(20))
	var ids []int64
	for i := range 5 {
		ids = append(ids, trigger(t, s, 1, fmt.Sprintf("run %d", i)))
		trigger(t, s, 2, "other")
		clock.Advance(time.Second)
	}
	clock.Advance(time.Hour)

	list := func(query string) ([]map[string]any, map[string]any, reply) {
		r := call(t, s, "GET", "/api/v2/accounts/1/runs/?"+query, tok, "")
		var runs []map[string]any
		var extra map[string]any
		_ = json.Unmarshal(r.Data, &runs)
		_ = json.Unmarshal(r.Extra, &extra)
		return runs, extra, r
	}
	runs, extra, _ := list(`job_definition_id=1&order_by=-id&limit=2&offset=1&include_related=["trigger"]`)
	if len(runs) != 2 || int64(runs[0]["id"].(float64)) != ids[3] || int64(runs[1]["id"].(float64)) != ids[2] {
		t.Fatalf("page = %v", runs)
	}
	if runs[0]["trigger"].(map[string]any)["cause"] != "run 3" {
		t.Errorf("trigger = %v", runs[0]["trigger"])
	}
	pagination := extra["pagination"].(map[string]any)
	if pagination["count"] != 2.0 || pagination["total_count"] != 5.0 || extra["order_by"] != "-id" {
		t.Errorf("extra = %v", extra)
	}
	if runs, _, _ := list("order_by=id"); len(runs) != 10 || int64(runs[0]["id"].(float64)) != ids[0] {
		t.Errorf("ascending list starts with %v", runs[0]["id"])
	}
	if runs, _, _ := list("status=20"); len(runs) != 5 {
		t.Errorf("status=20 gave %d runs", len(runs))
	}
	if runs, _, _ := list("job_definition_id=1&offset=50"); len(runs) != 0 {
		t.Errorf("offset past the end gave %d runs", len(runs))
	}

	bad := []struct{ query, message, detail string }{
		{"limit=101", "Limit must not exceed 100", ""},
		{"limit=ten", "The request was invalid. Please double check the provided data and try again.", "'ten' is not of type 'integer'"},
		{"created_at__gte=2026-01-01", "The request was invalid. Please double check the provided data and try again.", "Additional properties are not allowed ('created_at__gte' was unexpected)"},
		{"order_by=name", "The request was invalid. Please double check the provided data and try again.", "'name' is not a supported order_by"},
	}
	for _, b := range bad {
		_, _, r := list(b.query)
		var detail string
		_ = json.Unmarshal(r.Data, &detail)
		if r.Code != 400 || r.Status.UserMessage != b.message || detail != b.detail {
			t.Errorf("%s: %d %+v %s", b.query, r.Code, r.Status, r.Data)
		}
	}
}

func TestFaults(t *testing.T) {
	s, _ := newServer(t)
	s.AddJob(1, "job")

	s.Inject(dbtcloudtest.Fault{Method: "GET", Path: "/runs/", Status: 429, RetryAfter: 1500 * time.Millisecond, Times: 1})
	r := call(t, s, "GET", "/api/v2/accounts/1/runs/", tok, "")
	if r.Code != 429 || r.Header.Get("Retry-After") != "2" || r.Status.UserMessage != "Too Many Requests" {
		t.Errorf("429 fault = %d %v %+v", r.Code, r.Header, r.Status)
	}
	if r := call(t, s, "GET", "/api/v2/accounts/1/runs/", tok, ""); r.Code != 200 {
		t.Errorf("fault with Times 1 hit twice: %d", r.Code)
	}

	s.Inject(dbtcloudtest.Fault{Method: "POST", Path: "/jobs/1/run/", Status: 502, AfterHandling: true, Message: "Bad Gateway"})
	if r := call(t, s, "POST", "/api/v2/accounts/1/jobs/1/run/", tok, `{"cause":"x"}`); r.Code != 502 {
		t.Errorf("after-handling fault = %d", r.Code)
	}
	if s.TriggerCount(1) != 1 {
		t.Errorf("after-handling fault did not let the run through: %d runs", s.TriggerCount(1))
	}
	s.ClearFaults()

	s.Inject(dbtcloudtest.Fault{Path: "/runs/", Drop: true, Times: 1})
	req, _ := http.NewRequest("GET", s.URL()+"/api/v2/accounts/1/runs/", nil)
	req.Header.Set("Authorization", "Token "+tok)
	if resp, err := (&http.Client{}).Do(req); err == nil {
		resp.Body.Close()
		t.Errorf("dropped request got a reply: %d", resp.StatusCode)
	}

	s.Inject(dbtcloudtest.Fault{Path: "/runs/", Status: 504, RawBody: "<html>504 Gateway Time-out</html>", Times: 1})
	req, _ = http.NewRequest("GET", s.URL()+"/api/v2/accounts/1/runs/", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 504 || !strings.Contains(string(body), "Gateway Time-out") {
		t.Errorf("raw fault = %d %s", resp.StatusCode, body)
	}
}

// Latency holds every request back: a client that gives up first gets no
// reply (the request is still logged), one pending when the server closes
// is let go, and SetLatency(0) removes it.
func TestLatency(t *testing.T) {
	s := dbtcloudtest.NewServer()
	s.AddJob(1, "job")
	s.SetLatency(time.Hour)
	get := func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, "GET", s.URL()+"/api/v2/accounts/1/runs/", nil)
		req.Header.Set("Authorization", "Token "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := get(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("request under an hour's latency: %v, want the client's deadline", err)
	}
	if s.Count("GET", "/runs/") != 1 {
		t.Errorf("the delayed request was not logged: %v", s.Requests())
	}
	s.ClearFaults() // latency stays
	pending := make(chan error, 1)
	go func() { pending <- get(context.Background()) }()
	for s.Count("GET", "/runs/") < 2 {
		time.Sleep(time.Millisecond)
	}
	s.Close() // would wait an hour for the pending request
	if err := <-pending; err == nil {
		t.Error("a request pending at Close got a reply")
	}

	s2, _ := newServer(t)
	s2.SetLatency(time.Hour)
	s2.SetLatency(0)
	if r := call(t, s2, "GET", "/api/v2/accounts/1/runs/", tok, ""); r.Code != 200 {
		t.Errorf("after SetLatency(0): %d", r.Code)
	}
}

func TestRequestLog(t *testing.T) {
	s, _ := newServer(t)
	s.AddJob(1, "job")
	trigger(t, s, 1, "logged")
	call(t, s, "GET", "/api/v2/accounts/1/runs/?limit=5", tok, "")
	reqs := s.Requests()
	if len(reqs) != 2 || reqs[0].Method != "POST" || string(reqs[0].Body) != `{"cause":"logged"}` ||
		reqs[0].Header.Get("Authorization") != "Token "+tok || reqs[1].RawQuery != "limit=5" || !reqs[0].Time.Equal(t0) {
		t.Fatalf("requests = %v", reqs)
	}
	if s.Count("POST", "/run/") != 1 || s.Count("", "/api/v2/") != 2 || s.Count("GET", "/run/") != 0 {
		t.Errorf("counts wrong: %v", reqs)
	}
	s.ResetRequests()
	if len(s.Requests()) != 0 {
		t.Error("ResetRequests kept requests")
	}
}

func TestRunsAreIndependentOfLaterJobChanges(t *testing.T) {
	s, clock := newServer(t)
	s.AddJob(1, "job", dbtcloudtest.RunTimings(0, 0, time.Minute))
	id := trigger(t, s, 1, "x")
	s.AddJob(1, "job", dbtcloudtest.StuckInQueue())
	clock.Advance(2 * time.Minute)
	if info, _ := s.Run(id); info.Status != 10 {
		t.Errorf("redefining the job changed an existing run: %+v", info)
	}
	if runs := s.Runs(); len(runs) != 1 || runs[0].ID != id {
		t.Errorf("Runs() = %+v", runs)
	}
}
