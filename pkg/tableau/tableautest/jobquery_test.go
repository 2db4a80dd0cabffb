package tableautest

import (
	"net/http"
	"net/url"
	"testing"
	"time"
)

// jobIDs lists the ids of a Query Jobs reply, in order.
func jobIDs(t *testing.T, r reply) []string {
	t.Helper()
	var ids []string
	switch v := dig(r.json(t), "backgroundJobs", "backgroundJob").(type) {
	case []any:
		for _, j := range v {
			ids = append(ids, j.(map[string]any)["id"].(string))
		}
	case map[string]any:
		ids = append(ids, v["id"].(string))
	}
	return ids
}

// TestQueryJobs: the documented filters narrow the list; an undocumented
// field is refused; only administrators may list.
func TestQueryJobs(t *testing.T) {
	e := newEnv(t, WithAPIVersion("3.25"), WithJobTimings(-1, -1))
	tok := e.signIn()
	sales := e.srv.AddWorkbook("Sales", "Finance")
	orders := e.srv.AddDatasource("Orders", "Finance")
	other := e.srv.AddWorkbook("Other", "Finance")
	before := time.Now().Add(-time.Second)
	done := e.refresh(tok, "workbook", other)
	if err := e.srv.FinishJob(done, FinishFailed, "login failed"); err != nil {
		t.Fatal(err)
	}
	running, err := e.srv.QueueRefresh(sales)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.srv.StartJob(running); err != nil {
		t.Fatal(err)
	}
	r := e.post(e.site("datasources/"+orders+"/refresh"), tok, `{"extractRefresh":{"incremental":true}}`)
	if r.status != http.StatusAccepted {
		t.Fatalf("incremental refresh: %d %s", r.status, r.body)
	}
	pending := dig(r.json(t), "job", "id").(string)

	tests := []struct {
		filter string
		want   []string // newest first
		status int
		code   string
	}{
		{"", []string{pending, running, done}, http.StatusOK, ""},
		{"title:eq:Sales", []string{running}, http.StatusOK, ""},
		{"title:has:ther", []string{done}, http.StatusOK, ""},
		{"status:eq:Pending", []string{pending}, http.StatusOK, ""},
		{"status:eq:InProgress", []string{running}, http.StatusOK, ""},
		{"status:eq:Failed", []string{done}, http.StatusOK, ""},
		{"jobType:eq:increment_extracts", []string{pending}, http.StatusOK, ""},
		{"jobType:in:[refresh_extracts,increment_extracts],title:eq:Orders", []string{pending}, http.StatusOK, ""},
		{"createdAt:gte:" + before.UTC().Format(time.RFC3339), []string{pending, running, done}, http.StatusOK, ""},
		{"createdAt:gt:" + time.Now().Add(time.Hour).UTC().Format(time.RFC3339), nil, http.StatusOK, ""},
		{"startedAt:gte:" + before.UTC().Format(time.RFC3339), []string{running, done}, http.StatusOK, ""},
		{"notes:has:login", []string{done}, http.StatusOK, ""},
		{"progress:gte:100", []string{done}, http.StatusOK, ""},
		{"itemId:eq:" + sales, nil, http.StatusBadRequest, codeInvalidFilter},
		{"args:has:" + sales, nil, http.StatusBadRequest, codeInvalidFilter},
		{"status:in:[Pending]", nil, http.StatusBadRequest, codeInvalidFilter},
		{"createdAt:gte:yesterday", nil, http.StatusBadRequest, codeInvalidFilter},
	}
	for _, tt := range tests {
		t.Run(tt.filter, func(t *testing.T) {
			u := e.site("jobs")
			if tt.filter != "" {
				u += "?filter=" + url.QueryEscape(tt.filter)
			}
			r := e.get(u, tok)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if tt.code != "" {
				if c := r.code(t); c != tt.code {
					t.Errorf("code %s, want %s", c, tt.code)
				}
				return
			}
			got := jobIDs(t, r)
			if len(got) != len(tt.want) {
				t.Fatalf("jobs %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("jobs %v, want %v", got, tt.want)
					break
				}
			}
		})
	}

	t.Run("not for non-administrators", func(t *testing.T) {
		e.srv.AddPATWithRole("creator", "creator-secret", RoleCreator)
		r := e.get(e.site("jobs"), e.signInPAT("creator", "creator-secret"))
		if r.status != http.StatusForbidden {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
	})
}

// TestIncrementalByVersion: from 3.25 a refresh request may carry
// extractRefresh incremental="true"; before, the element is unknown and
// refused, and {} is a full refresh on every version.
func TestIncrementalByVersion(t *testing.T) {
	tests := []struct {
		version, body string
		status        int
		incremental   bool
	}{
		{"3.24", `{}`, http.StatusAccepted, false},
		{"3.24", `{"extractRefresh":{"incremental":true}}`, http.StatusBadRequest, false},
		{"3.25", `{}`, http.StatusAccepted, false},
		{"3.25", `{"extractRefresh":{"incremental":true}}`, http.StatusAccepted, true},
		{"3.25", `{"extractRefresh":{"incremental":"true"}}`, http.StatusAccepted, true},
		{"3.25", `{"extractRefresh":{"incremental":false}}`, http.StatusAccepted, false},
		{"3.25", `{"extractRefresh":{"incremental":"often"}}`, http.StatusBadRequest, false},
		{"3.27", `{"extractRefresh":{"incremental":true}}`, http.StatusAccepted, true},
	}
	for _, tt := range tests {
		t.Run(tt.version+" "+tt.body, func(t *testing.T) {
			e := newEnv(t, WithAPIVersion(tt.version), WithJobTimings(-1, -1))
			ds := e.srv.AddDatasource("Orders", "Finance")
			r := e.post(e.site("datasources/"+ds+"/refresh"), e.signIn(), tt.body)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if tt.status != http.StatusAccepted {
				return
			}
			info, _ := e.srv.Job(dig(r.json(t), "job", "id").(string))
			if info.Incremental != tt.incremental {
				t.Errorf("incremental = %t, want %t", info.Incremental, tt.incremental)
			}
		})
	}
	t.Run("XML, as the official client sends it", func(t *testing.T) {
		e := newEnv(t, WithAPIVersion("3.25"), WithJobTimings(-1, -1))
		ds := e.srv.AddDatasource("Orders", "Finance")
		r := send(t, request{method: "POST", url: e.site("datasources/" + ds + "/refresh"), token: e.signIn(),
			body: `<tsRequest><extractRefresh incremental="true"/></tsRequest>`, xml: true})
		if r.status != http.StatusAccepted {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		if jobs := e.srv.Jobs(); len(jobs) != 1 || !jobs[0].Incremental {
			t.Errorf("jobs = %+v", jobs)
		}
	})
}

// TestQueueRefresh: a refresh Tableau queued itself makes the API's refresh
// of the item a 409093 while it is queued or running, and not after.
func TestQueueRefresh(t *testing.T) {
	e := newEnv(t, WithJobTimings(-1, -1))
	tok := e.signIn()
	wb := e.srv.AddWorkbook("Sales", "Finance")
	job, err := e.srv.QueueRefresh(wb)
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		name string
		act  func() error
		want int
	}{
		{"queued", func() error { return nil }, http.StatusConflict},
		{"running", func() error { return e.srv.StartJob(job) }, http.StatusConflict},
		{"finished", func() error { return e.srv.FinishJob(job, FinishSucceeded, "") }, http.StatusAccepted},
	} {
		if err := step.act(); err != nil {
			t.Fatal(err)
		}
		r := e.post(e.site("workbooks/"+wb+"/refresh"), tok, "{}")
		if r.status != step.want {
			t.Fatalf("%s: status %d, want %d: %s", step.name, r.status, step.want, r.body)
		}
		if step.want == http.StatusConflict && r.code(t) != codeDuplicateJob {
			t.Errorf("%s: code %s", step.name, r.code(t))
		}
	}
	if info, _ := e.srv.Job(job); info.StartedAt.IsZero() || info.FinishCode != FinishSucceeded {
		t.Errorf("job = %+v", info)
	}
	if err := e.srv.StartJob(job); err == nil {
		t.Error("a finished job started again")
	}
	if _, err := e.srv.QueueRefresh("no-such-item"); err == nil {
		t.Error("queued a refresh of nothing")
	}
}
