package dbtcloudtest

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Fault makes matching requests fail, to test retries and error handling.
type Fault struct {
	// Method and Path select requests: Method exactly (any if empty), Path
	// as a substring of the URL path (any if empty).
	Method, Path string
	// Status is the reply's HTTP status; 500 if zero (and Drop is false).
	Status int
	// Message is the user_message of the dbt error envelope; the status
	// text if empty.
	Message string
	// RawBody, if set, replaces the envelope with this text/html body, as a
	// load balancer's 502 page would.
	RawBody string
	// RetryAfter, if positive, is sent as a Retry-After header, rounded up
	// to whole seconds.
	RetryAfter time.Duration
	// Drop closes the connection without any reply.
	Drop bool
	// Times is how many requests the fault hits; 0 means until ClearFaults.
	Times int
	// AfterHandling lets the request take effect before the fault replaces
	// its reply, as when dbt queues a run but the gateway times out: the
	// run exists, the client sees an error.
	AfterHandling bool
}

type faultState struct {
	Fault
	used int
}

// Inject adds a fault. Faults are matched in the order they were injected.
func (s *Server) Inject(f Fault) {
	if f.Status == 0 && !f.Drop {
		f.Status = http.StatusInternalServerError
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &faultState{Fault: f})
}

// ClearFaults removes every fault. Latency set with SetLatency stays until
// SetLatency(0).
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// SetLatency delays every request by d, before it is served or faulted, as
// a distant dbt Cloud region would; 0 removes it. A request whose client
// gives up, or that is pending when the server closes, ends unanswered.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// wait sleeps for the latency in force, and reports false when the request
// or the server ended first.
func (s *Server) wait(r *http.Request) bool {
	s.mu.Lock()
	d := s.latency
	s.mu.Unlock()
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	case <-s.closing:
		return false
	}
}

func (s *Server) matchFaultLocked(method, path string) *Fault {
	for _, f := range s.faults {
		if f.Method != "" && !strings.EqualFold(f.Method, method) {
			continue
		}
		if f.Path != "" && !strings.Contains(path, f.Path) {
			continue
		}
		if f.Times > 0 && f.used >= f.Times {
			continue
		}
		f.used++
		fault := f.Fault
		return &fault
	}
	return nil
}

func writeFault(w http.ResponseWriter, f *Fault) {
	if f.Drop {
		hj, ok := w.(http.Hijacker)
		if !ok {
			panic(http.ErrAbortHandler)
		}
		conn, _, err := hj.Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	if f.RetryAfter > 0 {
		secs := int64((f.RetryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	}
	if f.RawBody != "" {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(f.Status)
		_, _ = w.Write([]byte(f.RawBody))
		return
	}
	msg := f.Message
	if msg == "" {
		msg = http.StatusText(f.Status)
	}
	writeError(w, f.Status, msg, "", nil)
}

// Request is a request the server received, faulted or not.
type Request struct {
	Method, Path, RawQuery string
	Header                 http.Header
	Body                   []byte
	// Time is the server's clock when the request arrived.
	Time time.Time
}

// String is for failure messages.
func (r Request) String() string {
	q := ""
	if r.RawQuery != "" {
		q = "?" + r.RawQuery
	}
	return fmt.Sprintf("%s %s%s", r.Method, r.Path, q)
}

// Requests returns every request received since the start or the last
// ResetRequests, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	copy(out, s.requests)
	return out
}

// Count returns how many requests had method (any if empty) and a path
// containing pathSubstring.
func (s *Server) Count(method, pathSubstring string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.requests {
		if (method == "" || strings.EqualFold(method, r.Method)) && strings.Contains(r.Path, pathSubstring) {
			n++
		}
	}
	return n
}

// ResetRequests forgets the requests received so far.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
}
