package tableautest

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Fault makes matching requests misbehave, to test a client's retries and error
// handling. Faults are checked in the order they were injected; the first match
// applies.
type Fault struct {
	// Method matches the request method; "" matches any.
	Method string
	// Path matches when it is a substring of the URL path; "" matches any.
	Path string
	// Status, when not 0, is sent instead of the real reply, with a Tableau
	// error body carrying Code (default status*1000, e.g. "429000"), Summary
	// (default the usual summary for the status) and Detail.
	Status  int
	Code    string
	Summary string
	Detail  string
	// RetryAfter, when positive, adds a Retry-After header in whole seconds
	// (rounded up), as Tableau Cloud does with 429.
	RetryAfter time.Duration
	// Drop closes the connection without any reply.
	Drop bool
	// Latency delays the request before anything else happens. A fault with only
	// Latency slows the request and then lets it through.
	Latency time.Duration
	// Times limits how many requests the fault applies to; 0 means until
	// ClearFaults.
	Times int
}

// Inject adds a fault.
func (s *Server) Inject(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &f)
}

// ClearFaults removes every injected fault. Latency set with SetLatency stays
// until SetLatency(0).
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// SetLatency delays every request by d, before faults apply; 0 removes it.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// takeFault returns a copy of the first fault matching r and uses up one of its
// Times.
func (s *Server) takeFault(r *http.Request) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if f.Method != "" && !strings.EqualFold(f.Method, r.Method) {
			continue
		}
		if f.Path != "" && !strings.Contains(r.URL.Path, f.Path) {
			continue
		}
		applied := *f
		if f.Times > 0 {
			f.Times--
			if f.Times == 0 {
				s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
			}
		}
		return &applied
	}
	return nil
}

func (s *Server) writeFault(w http.ResponseWriter, r *http.Request, f *Fault) {
	e := newError(f.Status, f.Code, f.Detail)
	if e.code == "" {
		e.code = defaultCode(f.Status)
	}
	if f.Summary != "" {
		e.summary = f.Summary
	}
	if e.detail == "" {
		e.detail = fmt.Sprintf("Injected fault: %d %s", f.Status, http.StatusText(f.Status))
	}
	if f.RetryAfter > 0 {
		secs := int((f.RetryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	c := &call{w: w, r: r, json: wantsJSON(r), version: versionOf(r.URL.Path, s.cfg.apiVersion)}
	c.fail(e)
}

// versionOf takes the API version from a path for the XML schema location.
func versionOf(path, def string) string {
	rest, ok := strings.CutPrefix(path, "/api/")
	if !ok {
		return def
	}
	v, _, _ := strings.Cut(rest, "/")
	if _, err := parseVersion(v); err != nil {
		return def
	}
	return v
}

// dropConnection ends the connection with no reply at all, as a load balancer
// or a crashed node would.
func dropConnection(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		// HTTP/2 cannot be hijacked; aborting the handler resets the stream.
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}
