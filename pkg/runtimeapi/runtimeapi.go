// Package runtimeapi is an in-process emulator of the AWS Lambda Runtime API,
// version 2018-06-01, for tests: a test starts a function's bootstrap with
// AWS_LAMBDA_RUNTIME_API set to Server.Addr, invokes it with Server.Invoke and
// reads what the runtime posted back. It lets a test run the very binary SAM
// deploys, through aws-lambda-go's real runtime loop, without Docker or AWS.
//
// It follows the contract documented at
// https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html, as spoken by
// aws-lambda-go's client (lambda/runtime_api_client.go) and answered by AWS's
// Runtime Interface Emulator:
//
//   - GET /2018-06-01/runtime/invocation/next waits for an invocation and
//     replies 200 with the event as the body and the Lambda-Runtime-Aws-Request-Id,
//     Lambda-Runtime-Deadline-Ms, Lambda-Runtime-Invoked-Function-Arn and
//     Lambda-Runtime-Trace-Id headers. The first such request ends the init phase.
//   - POST /2018-06-01/runtime/invocation/{id}/response and .../{id}/error reply
//     202 {"status":"OK"}. An id that is unknown, already answered or timed out
//     gets 400 InvalidRequestID; a response over MaxResponseBytes gets 413
//     RequestEntityTooLarge and the invocation fails.
//   - POST /2018-06-01/runtime/init/error replies 202 during init and 403
//     InvalidStateTransition after it; it fails pending and later invocations.
//
// Not emulated: extensions and telemetry, response streaming, concurrent
// invocations (Lambda Managed Instances), freezing between invocations, and
// the SIGKILL that ends a runtime after a timeout or an init error: the test
// owns the process and ends it.
package runtimeapi

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"time"
)

// Version is the Runtime API version in every path.
const Version = "2018-06-01"

// FunctionARN is the Lambda-Runtime-Invoked-Function-Arn sent with every
// invocation.
const FunctionARN = "arn:aws:lambda:us-east-1:123456789012:function:runtimeapi-test"

// MaxResponseBytes is the largest response a synchronous invocation may
// return: 6 MB, Lambda's limit and the Runtime Interface Emulator's.
const MaxResponseBytes = 6 * 1024 * 1024

// Error types of failures the emulator itself reports in a Result, named as
// Lambda names them.
const (
	ErrorTypeTimeout          = "Sandbox.Timedout"
	ErrorTypeResponseTooLarge = "Function.ResponseSizeTooLarge"
)

// Headers of the Runtime API.
const (
	HeaderRequestID   = "Lambda-Runtime-Aws-Request-Id"
	HeaderDeadlineMs  = "Lambda-Runtime-Deadline-Ms"
	HeaderFunctionARN = "Lambda-Runtime-Invoked-Function-Arn"
	HeaderTraceID     = "Lambda-Runtime-Trace-Id"
	// HeaderErrorType optionally names the error on .../error and
	// init/error. aws-lambda-go does not send it; it sends the type as
	// errorType in the JSON body instead.
	HeaderErrorType = "Lambda-Runtime-Function-Error-Type"
	// trailerErrorBody carries, base64-encoded, the error aws-lambda-go hit
	// while streaming a response body; the type goes in a HeaderErrorType
	// trailer.
	trailerErrorBody = "Lambda-Runtime-Function-Error-Body"
)

// Errors Invoke returns when no runtime can answer.
var (
	// ErrInitFailed: the runtime posted to /runtime/init/error.
	ErrInitFailed = errors.New("runtimeapi: the runtime reported an init error")
	// ErrClosed: the Server was closed.
	ErrClosed = errors.New("runtimeapi: server closed")
)

// Result is what the runtime posted back for one invocation, or, for
// InitError, for the init phase.
type Result struct {
	RequestID string
	// Body is the response, or the error document
	// ({"errorMessage": ..., "errorType": ...}) when IsError is set.
	Body        []byte
	ContentType string
	// IsError is set when the runtime posted to .../error or init/error, or
	// when the emulator failed the invocation (ErrorTypeTimeout,
	// ErrorTypeResponseTooLarge).
	IsError bool
	// ErrorType is the Lambda-Runtime-Function-Error-Type header if the
	// runtime sent one, else the errorType field of the body.
	ErrorType string
	// At is when the runtime's POST arrived, or when the emulator gave up.
	At time.Time
}

// Server is a running Runtime API emulator serving one execution
// environment: start one runtime process against it. Create it with New and
// Close it when done. Its methods are safe for concurrent use.
type Server struct {
	srv *httptest.Server

	// pending is unbuffered: Invoke hands its invocation straight to a
	// waiting next request, so an event is never delivered twice or lost.
	pending chan *invocation
	closing chan struct{}

	firstNext  chan time.Time
	initErr    chan Result
	initFailed chan struct{}

	mu        sync.Mutex
	inflight  map[string]*invocation
	initDone  bool // a next request has come: init errors are refused
	initError bool
	closed    bool
}

type invocation struct {
	id      string
	traceID string
	payload []byte
	timeout time.Duration

	// deadline is set by the next handler before it closes dispatched.
	deadline   time.Time
	dispatched chan struct{}
	done       chan Result // buffered: whoever finishes the invocation never blocks
}

// New starts a Server on a loopback port.
func New() *Server {
	s := &Server{
		pending:    make(chan *invocation),
		closing:    make(chan struct{}),
		firstNext:  make(chan time.Time, 1),
		initErr:    make(chan Result, 1),
		initFailed: make(chan struct{}),
		inflight:   map[string]*invocation{},
	}
	mux := http.NewServeMux()
	prefix := "/" + Version + "/runtime/"
	mux.HandleFunc("GET "+prefix+"invocation/next", s.next)
	mux.HandleFunc("POST "+prefix+"invocation/{id}/response", s.response)
	mux.HandleFunc("POST "+prefix+"invocation/{id}/error", s.invocationError)
	mux.HandleFunc("POST "+prefix+"init/error", s.initErrorHandler)
	s.srv = httptest.NewServer(mux)
	return s
}

// Addr is the host:port to put in AWS_LAMBDA_RUNTIME_API.
func (s *Server) Addr() string { return s.srv.Listener.Addr().String() }

// FirstNext delivers, once, when the first GET .../invocation/next arrived:
// the end of the runtime's init phase, as Lambda measures it.
func (s *Server) FirstNext() <-chan time.Time { return s.firstNext }

// InitError delivers, once, what the runtime posted to /runtime/init/error.
func (s *Server) InitError() <-chan Result { return s.initErr }

// Close makes waiting next requests fail with 500, which ends an
// aws-lambda-go runtime, and shuts the server down. Invocations still
// waiting return ErrClosed.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.closing)
	s.mu.Unlock()
	s.srv.Close()
}

// Invoke queues payload as an event, waits for the runtime to take it with
// a next request and returns what the runtime posted back. timeout is the
// function's timeout: the deadline the runtime is given starts when it
// takes the event, and past it Invoke returns a Result with IsError and
// ErrorType ErrorTypeTimeout, as Lambda reports a timed-out invocation.
//
// ctx bounds the whole wait, including the wait for a runtime to ask; an
// invocation abandoned that way can no longer be answered.
func (s *Server) Invoke(ctx context.Context, payload []byte, timeout time.Duration) (Result, error) {
	if timeout <= 0 {
		return Result{}, fmt.Errorf("runtimeapi: invoke: timeout must be positive, got %s", timeout)
	}
	inv := &invocation{
		id:         newRequestID(),
		traceID:    newTraceID(time.Now()),
		payload:    payload,
		timeout:    timeout,
		dispatched: make(chan struct{}),
		done:       make(chan Result, 1),
	}
	select {
	case s.pending <- inv:
	case <-ctx.Done():
		return Result{}, fmt.Errorf("runtimeapi: invoke %s: no runtime asked for the event: %w", inv.id, ctx.Err())
	case <-s.initFailed:
		return Result{}, fmt.Errorf("invoke %s: %w", inv.id, ErrInitFailed)
	case <-s.closing:
		return Result{}, ErrClosed
	}
	<-inv.dispatched
	timer := time.NewTimer(time.Until(inv.deadline))
	defer timer.Stop()
	select {
	case r := <-inv.done:
		return r, nil
	case <-timer.C:
		if !s.forget(inv.id) {
			// The runtime answered just as the deadline passed.
			return <-inv.done, nil
		}
		msg := fmt.Sprintf("%s Task timed out after %.2f seconds", inv.id, timeout.Seconds())
		return Result{RequestID: inv.id, Body: errorDocument(ErrorTypeTimeout, msg), ContentType: "application/json",
			IsError: true, ErrorType: ErrorTypeTimeout, At: time.Now()}, nil
	case <-ctx.Done():
		if !s.forget(inv.id) {
			return <-inv.done, nil
		}
		return Result{}, fmt.Errorf("runtimeapi: invoke %s: no reply from the runtime: %w", inv.id, ctx.Err())
	case <-s.closing:
		return Result{}, ErrClosed
	}
}

// forget drops an in-flight invocation and reports whether it was still
// there, that is, not answered.
func (s *Server) forget(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.inflight[id]
	delete(s.inflight, id)
	return ok
}

func (s *Server) next(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	s.mu.Lock()
	first, failed := !s.initDone, s.initError
	s.initDone = true
	s.mu.Unlock()
	if failed {
		writeError(w, http.StatusForbidden, "InvalidStateTransition", "the runtime reported an init error and must exit")
		return
	}
	if first {
		s.firstNext <- now // buffered, sent once
	}
	var inv *invocation
	select {
	case inv = <-s.pending:
	case <-r.Context().Done():
		return // the runtime went away
	case <-s.closing:
		writeError(w, http.StatusInternalServerError, "InternalServerError", "the emulator is shutting down")
		return
	}
	inv.deadline = time.Now().Add(inv.timeout)
	s.mu.Lock()
	s.inflight[inv.id] = inv
	s.mu.Unlock()
	close(inv.dispatched)

	h := w.Header()
	h.Set(HeaderRequestID, inv.id)
	h.Set(HeaderDeadlineMs, strconv.FormatInt(inv.deadline.UnixMilli(), 10))
	h.Set(HeaderFunctionARN, FunctionARN)
	h.Set(HeaderTraceID, inv.traceID)
	h.Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	// A write error means the runtime died; the invocation then times out,
	// as it would in Lambda.
	_, _ = w.Write(inv.payload)
}

func (s *Server) response(w http.ResponseWriter, r *http.Request) {
	s.answer(w, r, false)
}

func (s *Server) invocationError(w http.ResponseWriter, r *http.Request) {
	s.answer(w, r, true)
}

func (s *Server) answer(w http.ResponseWriter, r *http.Request, isError bool) {
	at := time.Now()
	id := r.PathValue("id")
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxResponseBytes+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "InvalidRequest", "read body: "+err.Error())
		return
	}
	s.mu.Lock()
	inv, ok := s.inflight[id]
	delete(s.inflight, id)
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusBadRequest, "InvalidRequestID", "Invalid request ID")
		return
	}
	res := Result{RequestID: id, Body: body, ContentType: r.Header.Get("Content-Type"), IsError: isError, At: at}
	switch {
	case len(body) > MaxResponseBytes:
		msg := fmt.Sprintf("Response payload size exceeded maximum allowed payload size (%d bytes).", MaxResponseBytes)
		res = Result{RequestID: id, Body: errorDocument(ErrorTypeResponseTooLarge, msg), ContentType: "application/json",
			IsError: true, ErrorType: ErrorTypeResponseTooLarge, At: at}
		inv.done <- res
		writeError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", fmt.Sprintf("Exceeded maximum allowed payload size (%d bytes).", MaxResponseBytes))
		return
	case r.Trailer.Get(HeaderErrorType) != "":
		// aws-lambda-go failed to read its response body part way and
		// reported the error in trailers; Lambda fails the invocation.
		res.IsError, res.ErrorType, res.ContentType = true, r.Trailer.Get(HeaderErrorType), "application/json"
		if b, err := base64.StdEncoding.DecodeString(r.Trailer.Get(trailerErrorBody)); err == nil {
			res.Body = b
		}
	case isError:
		res.ErrorType = errorType(r.Header, body)
	}
	inv.done <- res
	writeAccepted(w)
}

func (s *Server) initErrorHandler(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxResponseBytes))
	if err != nil {
		writeError(w, http.StatusBadRequest, "InvalidRequest", "read body: "+err.Error())
		return
	}
	s.mu.Lock()
	refused := s.initDone || s.initError
	if !refused {
		s.initError = true
	}
	s.mu.Unlock()
	if refused {
		writeError(w, http.StatusForbidden, "InvalidStateTransition", "init/error is only accepted once, before the first next request")
		return
	}
	s.initErr <- Result{Body: body, ContentType: r.Header.Get("Content-Type"), IsError: true, ErrorType: errorType(r.Header, body), At: at}
	close(s.initFailed)
	writeAccepted(w)
}

// errorType reads the error type the way Lambda reports it: from the
// header if given, else from the error document.
func errorType(h http.Header, body []byte) string {
	if t := h.Get(HeaderErrorType); t != "" {
		return t
	}
	var doc struct {
		ErrorType string `json:"errorType"`
	}
	if json.Unmarshal(body, &doc) == nil {
		return doc.ErrorType
	}
	return ""
}

func errorDocument(errorType, message string) []byte {
	b, _ := json.Marshal(struct {
		ErrorMessage string `json:"errorMessage"`
		ErrorType    string `json:"errorType"`
	}{message, errorType})
	return b
}

func writeAccepted(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, `{"status":"OK"}`)
}

func writeError(w http.ResponseWriter, status int, errorType, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(errorDocument(errorType, message))
}

// newRequestID returns a random UUID, the form Lambda's request ids take.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// newTraceID returns an X-Ray trace header in the form Lambda sends,
// Root=1-{epoch seconds, hex}-{96 random bits};Parent=...;Sampled=0.
func newTraceID(now time.Time) string {
	var b [20]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("Root=1-%08x-%s;Parent=%s;Sampled=0", now.Unix(), hex.EncodeToString(b[:12]), hex.EncodeToString(b[12:]))
}
