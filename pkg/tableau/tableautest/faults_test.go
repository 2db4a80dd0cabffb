package tableautest

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestFaults(t *testing.T) {
	tests := []struct {
		name  string
		fault Fault
		// the request sent: a refresh unless get is set
		get            bool
		wantStatus     int
		wantCode       string
		wantSummary    string
		wantRetryAfter string
	}{
		{
			name:       "rate limited",
			fault:      Fault{Method: "POST", Path: "/refresh", Status: 429, RetryAfter: 1500 * time.Millisecond},
			wantStatus: 429, wantCode: "429000", wantSummary: "Too Many Requests", wantRetryAfter: "2",
		},
		{
			name:       "unavailable",
			fault:      Fault{Status: 503},
			wantStatus: 503, wantCode: "503000", wantSummary: "Service Unavailable",
		},
		{
			name:       "custom code and summary",
			fault:      Fault{Path: "/refresh", Status: 409, Code: codeDuplicateJob, Summary: "Resource Conflict"},
			wantStatus: 409, wantCode: codeDuplicateJob, wantSummary: "Resource Conflict",
		},
		{
			name:       "other method passes",
			fault:      Fault{Method: "POST", Status: 503},
			get:        true,
			wantStatus: 200,
		},
		{
			name:       "other path passes",
			fault:      Fault{Path: "/jobs/", Status: 503},
			wantStatus: 202,
		},
		{
			name:       "latency alone lets the request through",
			fault:      Fault{Path: "/refresh", Latency: time.Millisecond},
			wantStatus: 202,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, forever)
			wb := e.srv.AddWorkbook("Sales", "Finance")
			tok := e.signIn()
			e.srv.Inject(tt.fault)
			var r reply
			if tt.get {
				r = e.get(e.site("workbooks"), tok)
			} else {
				r = e.post(e.site("workbooks/"+wb+"/refresh"), tok, "{}")
			}
			if r.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d: %s", r.status, tt.wantStatus, r.body)
			}
			if tt.wantCode != "" {
				m := r.json(t)
				if dig(m, "error", "code") != tt.wantCode || dig(m, "error", "summary") != tt.wantSummary {
					t.Errorf("error = %v", m)
				}
			}
			if got := r.header.Get("Retry-After"); got != tt.wantRetryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tt.wantRetryAfter)
			}
			if tt.wantStatus >= 400 && e.srv.RefreshCount(wb) != 0 {
				t.Error("a faulted refresh created a job")
			}
		})
	}
}

func TestFaultTimes(t *testing.T) {
	e := newEnv(t)
	e.srv.Inject(Fault{Path: "/serverinfo", Status: 503, Times: 2})
	var got []int
	for range 3 {
		got = append(got, e.get(e.api("serverinfo"), "").status)
	}
	if got[0] != 503 || got[1] != 503 || got[2] != 200 {
		t.Errorf("statuses = %v, want [503 503 200]", got)
	}

	e.srv.Inject(Fault{Status: 500})
	e.srv.SetLatency(time.Millisecond)
	if r := e.get(e.api("serverinfo"), ""); r.status != 500 {
		t.Errorf("unlimited fault: %d", r.status)
	}
	e.srv.ClearFaults()
	e.srv.SetLatency(0)
	if r := e.get(e.api("serverinfo"), ""); r.status != 200 {
		t.Errorf("after ClearFaults: %d", r.status)
	}
}

func TestDroppedConnection(t *testing.T) {
	e := newEnv(t)
	e.srv.Inject(Fault{Path: "/auth/signin", Drop: true, Times: 1})
	// A fresh connection per request, so the transport cannot hide the drop by
	// retrying on a new connection.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	req, _ := http.NewRequest("POST", e.api("auth/signin"), strings.NewReader(patBody(testPAT, testPATSecret, "")))
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("dropped request got a reply: %d", resp.StatusCode)
	}
	reqs := e.srv.Requests()
	if len(reqs) != 1 || reqs[0].Status != 0 {
		t.Errorf("recorded %+v, want one request with status 0", reqs)
	}
	if e.srv.ActiveSessions() != 0 {
		t.Error("a dropped sign-in created a session")
	}
	// Times: 1 is used up.
	e.signIn()
}

func TestFaultsAreXMLWithoutAcceptJSON(t *testing.T) {
	e := newEnv(t)
	e.srv.Inject(Fault{Status: 429, RetryAfter: time.Second})
	r := send(t, request{method: "GET", url: e.api("serverinfo"), xml: true})
	doc := decodeXMLReply(t, r)
	if r.status != 429 || doc.Error.Code != "429000" {
		t.Errorf("got %d %+v", r.status, doc.Error)
	}
}
