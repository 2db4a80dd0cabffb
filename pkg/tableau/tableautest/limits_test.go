package tableautest

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestConcurrencyLimit holds refresh requests in flight (a latency far
// longer than the test) and checks what the next request of the site gets.
// Nothing is timed: the test waits until the server has the requests in
// flight, then cancels them.
func TestConcurrencyLimit(t *testing.T) {
	tests := []struct {
		name       string
		limit      int
		retryAfter time.Duration
		// held is how many refreshes are in flight when the probe is sent;
		// onData sends them to a data source, the probe to a workbook.
		held   int
		onData bool
		probe  string // "refresh", "get" or "xml"
		// want: the probe's status, Retry-After and (429) code.
		wantStatus     int
		wantRetryAfter string
	}{
		{name: "under the limit", limit: 3, retryAfter: time.Second, held: 2, probe: "refresh", wantStatus: http.StatusAccepted},
		{name: "at the limit: 429 with Retry-After in whole seconds", limit: 3, retryAfter: 1500 * time.Millisecond, held: 3, probe: "refresh",
			wantStatus: http.StatusTooManyRequests, wantRetryAfter: "2"},
		{name: "one site: data source refreshes count against a workbook's", limit: 2, retryAfter: time.Second, held: 2, onData: true, probe: "refresh",
			wantStatus: http.StatusTooManyRequests, wantRetryAfter: "1"},
		{name: "XML client gets Tableau's XML error", limit: 1, retryAfter: time.Second, held: 1, probe: "xml",
			wantStatus: http.StatusTooManyRequests, wantRetryAfter: "1"},
		{name: "calls that start no job are not limited", limit: 1, retryAfter: time.Second, held: 1, probe: "get", wantStatus: http.StatusOK},
		{name: "no limit set", limit: 0, held: 5, probe: "refresh", wantStatus: http.StatusAccepted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, forever, WithConcurrencyLimit(tt.limit, tt.retryAfter))
			tok := e.signIn()
			probe := e.srv.AddWorkbook("Probe", "Finance")
			var held []string
			for range tt.held {
				if tt.onData {
					held = append(held, e.srv.AddDatasource("Held", "Finance"))
				} else {
					held = append(held, e.srv.AddWorkbook("Held", "Finance"))
				}
			}
			kind := "workbooks"
			if tt.onData {
				kind = "datasources"
			}
			// The held requests sleep in a fault's latency, which counts as
			// time in flight; the probe has none.
			for _, id := range held {
				e.srv.Inject(Fault{Path: id, Latency: time.Hour})
			}
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			for _, id := range held {
				wg.Add(1)
				go func() {
					defer wg.Done()
					req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.site(kind+"/"+id+"/refresh"), strings.NewReader("{}"))
					req.Header.Set("X-Tableau-Auth", tok)
					if resp, err := http.DefaultClient.Do(req); err == nil {
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
				}()
			}
			eventually(t, "the held requests in flight", func() bool { return e.srv.PeakInFlight() == tt.held })

			var r reply
			switch tt.probe {
			case "refresh":
				r = e.post(e.site("workbooks/"+probe+"/refresh"), tok, "{}")
			case "xml":
				r = send(t, request{method: http.MethodPost, url: e.site("workbooks/" + probe + "/refresh"), token: tok, body: "<tsRequest/>", xml: true})
			case "get":
				r = e.get(e.site("workbooks/"+probe), tok)
			}
			cancel()
			wg.Wait()
			eventually(t, "the held requests to end", func() bool { return e.srv.inFlight() == 0 })

			if r.status != tt.wantStatus {
				t.Fatalf("probe: %d %s, want %d", r.status, r.body, tt.wantStatus)
			}
			if got := r.header.Get("Retry-After"); got != tt.wantRetryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tt.wantRetryAfter)
			}
			throttled := 0
			if tt.wantStatus == http.StatusTooManyRequests {
				throttled = 1
				switch tt.probe {
				case "xml":
					if !strings.Contains(string(r.body), `code="429000"`) {
						t.Errorf("XML error body %s lacks code 429000", r.body)
					}
				default:
					if r.code(t) != "429000" {
						t.Errorf("code = %q, want 429000", r.code(t))
					}
				}
				if n := e.srv.RefreshCount(probe); n != 0 {
					t.Errorf("a refused refresh queued %d jobs", n)
				}
			}
			if got := e.srv.Throttled(); got != throttled {
				t.Errorf("Throttled() = %d, want %d", got, throttled)
			}
			if got := countStatus(e.srv.Requests(), http.StatusTooManyRequests); got != throttled {
				t.Errorf("%d requests recorded with 429, want %d", got, throttled)
			}

			// The held requests ended: the site has room again.
			e.srv.ClearFaults()
			if r := e.post(e.site("workbooks/"+probe+"/refresh"), tok, "{}"); r.status != http.StatusAccepted && r.status != http.StatusConflict {
				t.Errorf("refresh after the others ended: %d %s", r.status, r.body)
			}
		})
	}
}

// TestConcurrencyLimitUnderLoad sends more refreshes at once than the limit
// allows: however they interleave, no more than the limit are admitted at a
// time, every refused one is counted, and each admitted one queued a job.
func TestConcurrencyLimitUnderLoad(t *testing.T) {
	const limit, clients = 4, 24
	e := newEnv(t, WithJobTimings(0, 0), WithConcurrencyLimit(limit, time.Second))
	tok := e.signIn()
	e.srv.SetLatency(2 * time.Millisecond)
	var ids []string
	for range clients {
		ids = append(ids, e.srv.AddWorkbook("W", "Finance"))
	}
	statuses := make([]int, clients)
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = e.post(e.site("workbooks/"+id+"/refresh"), tok, "{}").status
		}()
	}
	wg.Wait()
	var admitted, refused int
	for i, st := range statuses {
		switch st {
		case http.StatusAccepted:
			admitted++
			if e.srv.RefreshCount(ids[i]) != 1 {
				t.Errorf("workbook %d: accepted but %d jobs", i, e.srv.RefreshCount(ids[i]))
			}
		case http.StatusTooManyRequests:
			refused++
		default:
			t.Errorf("refresh %d: status %d", i, st)
		}
	}
	if refused != e.srv.Throttled() || admitted+refused != clients {
		t.Errorf("%d admitted, %d refused, Throttled() = %d", admitted, refused, e.srv.Throttled())
	}
	eventually(t, "every request to leave the count", func() bool { return e.srv.inFlight() == 0 })
	if e.srv.PeakInFlight() < 1 || e.srv.PeakInFlight() > clients {
		t.Errorf("PeakInFlight() = %d", e.srv.PeakInFlight())
	}
}

// inFlight is the number of admitted refreshes in flight, over all sites.
func (s *Server) inFlight() int {
	s.limits.mu.Lock()
	defer s.limits.mu.Unlock()
	n := 0
	for _, v := range s.limits.inFlight {
		n += v
	}
	return n
}

func countStatus(reqs []Request, status int) int {
	n := 0
	for _, r := range reqs {
		if r.Status == status {
			n++
		}
	}
	return n
}
