package tableau

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/remote"
)

func TestJob(t *testing.T) {
	tests := []struct {
		name         string
		body         string
		wantFinished bool
		wantOK       bool
		wantCode     FinishCode
		wantNotes    string
		wantProgress int
		check        func(t *testing.T, j *Job)
	}{
		{name: "running", body: "job_running.json", wantProgress: 40, check: func(t *testing.T, j *Job) {
			if j.Workbook == nil || j.Workbook.ID != "wb-1" || !j.CompletedAt.IsZero() || j.StartedAt.IsZero() {
				t.Errorf("job = %+v", j)
			}
		}},
		{name: "failed", body: "job_failed.json", wantFinished: true, wantCode: FinishFailed, wantProgress: 100,
			wantNotes: "java.lang.RuntimeException: [Snowflake] Login failed for user REFRESH."},
		{name: "success", body: "job_success.json", wantFinished: true, wantOK: true, wantCode: FinishSuccess, wantProgress: 100,
			check: func(t *testing.T, j *Job) {
				if j.Datasource == nil || j.Datasource.Name != "Orders" || j.Workbook != nil || j.CompletedAt.IsZero() {
					t.Errorf("job = %+v", j)
				}
			}},
		{name: "cancelled, numbers as numbers", body: `{"job":{"id":"job-1","progress":0,"finishCode":2}}`, wantFinished: true, wantCode: FinishCancelled},
		{name: "completed (3)", body: `{"job":{"id":"job-1","finishCode":"3","progress":"100"}}`, wantFinished: true, wantOK: true, wantCode: FinishCompleted, wantProgress: 100},
		{name: "queued, nothing set", body: `{"job":{"id":"job-1","mode":"Asynchronous","type":"RefreshExtract","createdAt":""}}`},
		{name: "notes as a list", body: `{"job":{"id":"job-1","finishCode":"1","extractRefreshJob":{"notes":["first","second"]}}}`, wantFinished: true, wantCode: FinishFailed, wantNotes: "first\nsecond"},
		{name: "notes as an object", body: `{"job":{"id":"job-1","finishCode":"1","extractRefreshJob":{"notes":{"value":"why"}}}}`, wantFinished: true, wantCode: FinishFailed, wantNotes: "why"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := setup(t)
			env.handleSignIn(t)
			env.mux.HandleFunc("GET "+sitePrefix+"/jobs/job-1", func(w http.ResponseWriter, r *http.Request) {
				checkRequest(t, r, http.MethodGet, "tok-1")
				body := []byte(tt.body)
				if strings.HasSuffix(tt.body, ".json") {
					body = fixture(t, tt.body)
				}
				writeBytes(w, 200, "application/json", body)
			})
			j, err := env.client.Job(context.Background(), "job-1")
			if err != nil {
				t.Fatal(err)
			}
			if j.Finished() != tt.wantFinished || j.Succeeded() != tt.wantOK {
				t.Errorf("Finished=%v Succeeded=%v, want %v %v", j.Finished(), j.Succeeded(), tt.wantFinished, tt.wantOK)
			}
			if tt.wantFinished && *j.FinishCode != tt.wantCode {
				t.Errorf("FinishCode = %v, want %v", *j.FinishCode, tt.wantCode)
			}
			if !tt.wantFinished && j.FinishCode != nil {
				t.Errorf("FinishCode = %v while running", *j.FinishCode)
			}
			if j.Notes != tt.wantNotes || j.Progress != tt.wantProgress {
				t.Errorf("Notes=%q Progress=%d, want %q %d", j.Notes, j.Progress, tt.wantNotes, tt.wantProgress)
			}
			if tt.check != nil {
				tt.check(t, j)
			}
		})
	}
}

func TestJobErrors(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		wantIs error
	}{
		{"not found", 404, tableauError(404, "404030", "Not Found", "Job not found"), ErrNotFound},
		{"bad finishCode", 200, `{"job":{"id":"job-1","finishCode":"soon"}}`, ErrBadReply},
		{"bad timestamp", 200, `{"job":{"id":"job-1","createdAt":"yesterday"}}`, ErrBadReply},
		{"no job", 200, `{}`, ErrBadReply},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := setup(t)
			env.handleSignIn(t)
			env.mux.HandleFunc("GET "+sitePrefix+"/jobs/job-1", func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, tt.status, tt.body)
			})
			_, err := env.client.Job(context.Background(), "job-1")
			if !errors.Is(err, tt.wantIs) || !strings.Contains(err.Error(), "get job job-1") {
				t.Fatalf("error = %v, want %v", err, tt.wantIs)
			}
		})
	}
	if _, err := setup(t).client.Job(context.Background(), ""); err == nil {
		t.Error("empty job id accepted")
	}
}

func TestCancelJob(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		wantErr error
	}{
		{"cancelled", 200, `{}`, nil},
		{"no content", 204, "", nil},
		{"not found", 404, tableauError(404, "404030", "Not Found", ""), ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := setup(t)
			env.handleSignIn(t)
			env.mux.HandleFunc("PUT "+sitePrefix+"/jobs/job-1", func(w http.ResponseWriter, r *http.Request) {
				checkRequest(t, r, http.MethodPut, "tok-1")
				if r.ContentLength > 0 {
					t.Errorf("cancel sent a body of %d bytes", r.ContentLength)
				}
				if tt.body == "" {
					w.WriteHeader(tt.status)
					return
				}
				writeJSON(w, tt.status, tt.body)
			})
			err := env.client.CancelJob(context.Background(), "job-1")
			if (tt.wantErr == nil) != (err == nil) || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
		})
	}
	if err := setup(t).client.CancelJob(context.Background(), ""); err == nil {
		t.Error("empty job id accepted")
	}
}

func TestWaitForJob(t *testing.T) {
	tests := []struct {
		name       string
		replies    []string // job bodies in order; the last repeats
		opts       *WaitOptions
		wantIs     error
		wantWaits  []time.Duration
		wantFinish bool
	}{
		{
			name:       "defaults back off x1.4",
			replies:    []string{"job_running.json", "job_running.json", "job_running.json", "job_success.json"},
			wantWaits:  []time.Duration{500 * time.Millisecond, 700 * time.Millisecond, 980 * time.Millisecond},
			wantFinish: true,
		},
		{
			name:       "capped at MaxInterval",
			replies:    []string{"job_running.json", "job_running.json", "job_running.json", "job_running.json", "job_success.json"},
			opts:       &WaitOptions{Interval: time.Second, Multiplier: 2, MaxInterval: 3 * time.Second},
			wantWaits:  []time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 3 * time.Second},
			wantFinish: true,
		},
		{
			name:       "failed job is an error with notes",
			replies:    []string{"job_running.json", "job_failed.json"},
			wantIs:     ErrJobFailed,
			wantWaits:  []time.Duration{500 * time.Millisecond},
			wantFinish: true,
		},
		{
			name:       "cancelled job",
			replies:    []string{`{"job":{"id":"job-1","finishCode":"2"}}`},
			wantIs:     ErrJobCancelled,
			wantFinish: true,
		},
		{
			name:    "bad options",
			replies: []string{"job_running.json"},
			opts:    &WaitOptions{Multiplier: 0.5},
			wantIs:  errAny,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := setup(t)
			env.handleSignIn(t)
			var n atomic.Int32
			env.mux.HandleFunc("GET "+sitePrefix+"/jobs/job-1", func(w http.ResponseWriter, r *http.Request) {
				i := int(n.Add(1)) - 1
				body := tt.replies[min(i, len(tt.replies)-1)]
				b := []byte(body)
				if strings.HasSuffix(body, ".json") {
					b = fixture(t, body)
				}
				writeBytes(w, 200, "application/json", b)
			})
			j, err := env.client.WaitForJob(context.Background(), "job-1", tt.opts)
			switch {
			case tt.wantIs == nil && err != nil:
				t.Fatal(err)
			case tt.wantIs == errAny && err == nil, tt.wantIs != nil && tt.wantIs != errAny && !errors.Is(err, tt.wantIs):
				t.Fatalf("error = %v, want %v", err, tt.wantIs)
			}
			if tt.wantIs == ErrJobFailed && !strings.Contains(err.Error(), "Login failed") {
				t.Errorf("error %q lacks the job notes", err)
			}
			if tt.wantFinish && (j == nil || !j.Finished()) {
				t.Errorf("job = %+v, want finished", j)
			}
			got := env.sleeps.got()
			if len(got) != len(tt.wantWaits) {
				t.Fatalf("waits = %v, want %v", got, tt.wantWaits)
			}
			for i := range got {
				if got[i] != tt.wantWaits[i] {
					t.Errorf("waits = %v, want %v", got, tt.wantWaits)
					break
				}
			}
		})
	}
}

// TestWaitForJobDeadline: the caller's deadline ends the wait, and the last
// job seen comes back with the context's error.
func TestWaitForJobDeadline(t *testing.T) {
	env := setup(t)
	env.handleSignIn(t)
	env.client.sleep = remote.Sleep
	env.mux.HandleFunc("GET "+sitePrefix+"/jobs/job-1", func(w http.ResponseWriter, r *http.Request) {
		writeBytes(w, 200, "application/json", fixture(t, "job_running.json"))
	})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	j, err := env.client.WaitForJob(ctx, "job-1", &WaitOptions{Interval: time.Millisecond, MaxInterval: 5 * time.Millisecond})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error = %v, want deadline exceeded", err)
	}
	if j == nil || j.Finished() || j.Progress != 40 {
		t.Errorf("last job = %+v, want the running job", j)
	}
	if !Retryable(err) {
		t.Error("a wait that timed out is retryable")
	}
}

func TestWaitForJobPollError(t *testing.T) {
	env := setup(t, WithRetryPolicy(remote.Policy{MaxAttempts: 1}))
	env.handleSignIn(t)
	var n atomic.Int32
	env.mux.HandleFunc("GET "+sitePrefix+"/jobs/job-1", func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			writeBytes(w, 200, "application/json", fixture(t, "job_running.json"))
			return
		}
		writeJSON(w, 404, tableauError(404, "404030", "Not Found", ""))
	})
	j, err := env.client.WaitForJob(context.Background(), "job-1", nil)
	if !errors.Is(err, ErrNotFound) || j == nil || j.ID != "job-1" {
		t.Fatalf("WaitForJob = %+v, %v", j, err)
	}
}

func TestFinishCodeString(t *testing.T) {
	for code, want := range map[FinishCode]string{0: "success", 1: "failed", 2: "cancelled", 3: "completed", 7: "FinishCode(7)"} {
		if got := code.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(code), got, want)
		}
	}
}

// TestListJobsWire: Query Jobs' request carries only Tableau's documented
// filters, and its reply is read in the forms Tableau's JSON takes (one
// job as a lone object, numbers as strings, no list when nothing matched).
func TestListJobsWire(t *testing.T) {
	since := time.Date(2026, 11, 30, 5, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		opts       JobListOptions
		wantFilter string
		body       string
		wantIDs    []string
	}{
		{"one job as an object", JobListOptions{JobTypes: []string{JobTypeRefreshExtracts, JobTypeIncrementExtracts}, Title: "Orders", Since: since},
			"jobType:in:[refresh_extracts,increment_extracts],title:eq:Orders,createdAt:gte:2026-11-30T05:00:00Z",
			`{"pagination":{"pageNumber":"1","pageSize":"100","totalAvailable":"1"},"backgroundJobs":{"backgroundJob":{"id":"j-1","status":"InProgress","jobType":"refresh_extracts","title":"Orders","priority":"50","createdAt":"2026-11-30T05:10:00Z","startedAt":"2026-11-30T05:11:00Z"}}}`,
			[]string{"j-1"}},
		{"a list, newest first", JobListOptions{Status: JobStatusPending},
			"status:eq:Pending",
			`{"pagination":{"pageNumber":1,"pageSize":100,"totalAvailable":2},"backgroundJobs":{"backgroundJob":[{"id":"old","status":"Pending","createdAt":"2026-11-30T05:00:00Z"},{"id":"new","status":"Pending","createdAt":"2026-11-30T06:00:00Z"}]}}`,
			[]string{"new", "old"}},
		{"nothing matched", JobListOptions{JobTypes: []string{JobTypeIncrementExtracts}},
			"jobType:eq:increment_extracts",
			`{"pagination":{"pageNumber":"1","pageSize":"100","totalAvailable":"0"},"backgroundJobs":{}}`, nil},
		{"a title with a comma is matched here", JobListOptions{Title: "Sales, Q3"},
			"",
			`{"pagination":{"totalAvailable":"2"},"backgroundJobs":{"backgroundJob":[{"id":"a","title":"Sales, Q3"},{"id":"b","title":"Sales"}]}}`,
			[]string{"a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := setup(t)
			env.handleSignIn(t)
			env.mux.HandleFunc("GET "+sitePrefix+"/jobs", func(w http.ResponseWriter, r *http.Request) {
				checkRequest(t, r, http.MethodGet, "tok-1")
				if got := r.URL.Query().Get("filter"); got != tt.wantFilter {
					t.Errorf("filter %q, want %q", got, tt.wantFilter)
				}
				writeJSON(w, http.StatusOK, tt.body)
			})
			jobs, err := env.client.ListJobs(context.Background(), tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, j := range jobs {
				ids = append(ids, j.ID)
			}
			if strings.Join(ids, ",") != strings.Join(tt.wantIDs, ",") {
				t.Errorf("ids %v, want %v", ids, tt.wantIDs)
			}
			if tt.name == "one job as an object" && (jobs[0].Priority != 50 || jobs[0].StartedAt.IsZero() || jobs[0].Finished()) {
				t.Errorf("job = %+v", jobs[0])
			}
		})
	}
}

// TestRefreshBody: a full refresh sends {} on every version; an incremental
// one {"extractRefresh":{"incremental":true}} from 3.25.
func TestRefreshBody(t *testing.T) {
	tests := []struct {
		version     string
		incremental bool
		want        string
	}{
		{"3.23", false, `{}`},
		{"3.23", true, `{}`},
		{"3.25", false, `{}`},
		{"3.25", true, `{"extractRefresh":{"incremental":true}}`},
	}
	for _, tt := range tests {
		t.Run(tt.version+map[bool]string{true: " incremental", false: " full"}[tt.incremental], func(t *testing.T) {
			env := setup(t, WithAPIVersion(tt.version))
			prefix := "/api/" + tt.version
			env.mux.HandleFunc("POST "+prefix+"/auth/signin", func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, http.StatusOK, `{"credentials":{"site":{"id":"site-luid"},"user":{"id":"u"},"token":"tok-1"}}`)
			})
			env.mux.HandleFunc("POST "+prefix+"/sites/site-luid/datasources/ds-1/refresh", func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				if string(b) != tt.want {
					t.Errorf("body %s, want %s", b, tt.want)
				}
				writeJSON(w, http.StatusAccepted, `{"job":{"id":"job-1","mode":"Asynchronous","type":"RefreshExtract"}}`)
			})
			if _, err := env.client.RefreshDatasource(context.Background(), "ds-1", Incremental(tt.incremental)); err != nil {
				t.Fatal(err)
			}
		})
	}
}
