package runtimeapi_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/runtimeapi"
)

// rt is a runtime speaking raw HTTP to the emulator, as a custom runtime
// would.
type rt struct {
	t    *testing.T
	base string
}

func newRuntime(t *testing.T, s *runtimeapi.Server) rt {
	return rt{t: t, base: "http://" + s.Addr() + "/" + runtimeapi.Version + "/runtime/"}
}

// next asks for the next invocation and returns the reply.
func (c rt) next() (*http.Response, []byte) {
	c.t.Helper()
	resp, err := http.Get(c.base + "invocation/next")
	if err != nil {
		c.t.Fatalf("GET next: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("read next: %v", err)
	}
	return resp, body
}

// post sends body to path (under /runtime/) and returns the status and reply.
func (c rt) post(path string, header http.Header, body io.Reader) (int, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if tr, ok := body.(*trailerReader); ok {
		req.Trailer = tr.trailer
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	reply, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, reply
}

// trailerReader sends its trailer values once its body is read, the way
// aws-lambda-go reports a response body that failed part way.
type trailerReader struct {
	r       io.Reader
	trailer http.Header
	values  http.Header
}

func (r *trailerReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err == io.EOF {
		for k, v := range r.values {
			r.trailer[k] = v
		}
	}
	return n, err
}

type invoked struct {
	res runtimeapi.Result
	err error
}

// invoke starts an invocation in the background.
func invoke(s *runtimeapi.Server, payload string, timeout time.Duration) <-chan invoked {
	ch := make(chan invoked, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		res, err := s.Invoke(ctx, []byte(payload), timeout)
		ch <- invoked{res, err}
	}()
	return ch
}

func wait(t *testing.T, ch <-chan invoked) runtimeapi.Result {
	t.Helper()
	select {
	case got := <-ch:
		if got.err != nil {
			t.Fatalf("Invoke: %v", got.err)
		}
		return got.res
	case <-time.After(10 * time.Second):
		t.Fatal("Invoke did not return")
	}
	return runtimeapi.Result{}
}

func errorDoc(t *testing.T, body []byte) (errorType, message string) {
	t.Helper()
	var doc struct{ ErrorType, ErrorMessage string }
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("error document %q: %v", body, err)
	}
	return doc.ErrorType, doc.ErrorMessage
}

func TestNextDeliversEventWithHeaders(t *testing.T) {
	s := runtimeapi.New()
	defer s.Close()
	c := newRuntime(t, s)
	ch := invoke(s, `{"hello":"world"}`, 3*time.Second)

	before := time.Now()
	resp, body := c.next()
	if resp.StatusCode != http.StatusOK || string(body) != `{"hello":"world"}` {
		t.Fatalf("next = %d %q, want 200 with the event", resp.StatusCode, body)
	}
	id := resp.Header.Get(runtimeapi.HeaderRequestID)
	if len(id) != 36 || strings.Count(id, "-") != 4 {
		t.Errorf("%s = %q, want a UUID", runtimeapi.HeaderRequestID, id)
	}
	ms, err := strconv.ParseInt(resp.Header.Get(runtimeapi.HeaderDeadlineMs), 10, 64)
	if err != nil {
		t.Fatalf("%s: %v", runtimeapi.HeaderDeadlineMs, err)
	}
	if d := time.UnixMilli(ms).Sub(before); d < 2*time.Second || d > 4*time.Second {
		t.Errorf("deadline is %s after the next request, want about the 3s timeout", d)
	}
	if got := resp.Header.Get(runtimeapi.HeaderFunctionARN); got != runtimeapi.FunctionARN {
		t.Errorf("%s = %q, want %q", runtimeapi.HeaderFunctionARN, got, runtimeapi.FunctionARN)
	}
	if got := resp.Header.Get(runtimeapi.HeaderTraceID); !strings.HasPrefix(got, "Root=1-") || !strings.Contains(got, ";Parent=") {
		t.Errorf("%s = %q, want an X-Ray trace header", runtimeapi.HeaderTraceID, got)
	}
	if status, reply := c.post("invocation/"+id+"/response", nil, strings.NewReader(`"ok"`)); status != http.StatusAccepted || string(reply) != `{"status":"OK"}` {
		t.Fatalf("POST response = %d %s, want 202 {\"status\":\"OK\"}", status, reply)
	}
	if res := wait(t, ch); res.RequestID != id || string(res.Body) != `"ok"` || res.IsError {
		t.Errorf("Result = %+v, want the posted response for %s", res, id)
	}
}

func TestAnswers(t *testing.T) {
	big := strings.Repeat("x", runtimeapi.MaxResponseBytes+1)
	tests := []struct {
		name       string
		path       string // after invocation/{id}/
		header     http.Header
		body       func() io.Reader
		wantStatus int
		wantReply  string // errorType of the reply, or "OK"
		wantBody   string // "" skips the check
		wantError  bool
		wantType   string
	}{
		{
			name: "response", path: "response",
			header:     http.Header{"Content-Type": {"application/json"}},
			body:       func() io.Reader { return strings.NewReader(`{"statusCode":200}`) },
			wantStatus: http.StatusAccepted, wantReply: "OK", wantBody: `{"statusCode":200}`,
		},
		{
			// aws-lambda-go sends the type only in the body.
			name: "error, type in the body", path: "error",
			body:       func() io.Reader { return strings.NewReader(`{"errorMessage":"boom","errorType":"errorString"}`) },
			wantStatus: http.StatusAccepted, wantReply: "OK", wantBody: `{"errorMessage":"boom","errorType":"errorString"}`,
			wantError: true, wantType: "errorString",
		},
		{
			name: "error, type in the header wins", path: "error",
			header:     http.Header{runtimeapi.HeaderErrorType: {"Runtime.Custom"}},
			body:       func() io.Reader { return strings.NewReader(`{"errorMessage":"boom","errorType":"errorString"}`) },
			wantStatus: http.StatusAccepted, wantReply: "OK", wantError: true, wantType: "Runtime.Custom",
		},
		{
			name: "response too large", path: "response",
			body:       func() io.Reader { return strings.NewReader(big) },
			wantStatus: http.StatusRequestEntityTooLarge, wantReply: "RequestEntityTooLarge",
			wantError: true, wantType: runtimeapi.ErrorTypeResponseTooLarge,
		},
		{
			name: "response body failed part way, reported in trailers", path: "response",
			body: func() io.Reader {
				return &trailerReader{
					r:       strings.NewReader(`{"partial`),
					trailer: http.Header{runtimeapi.HeaderErrorType: nil, "Lambda-Runtime-Function-Error-Body": nil},
					values: http.Header{
						runtimeapi.HeaderErrorType:           {"readError"},
						"Lambda-Runtime-Function-Error-Body": {base64.StdEncoding.EncodeToString([]byte(`{"errorMessage":"disk gone","errorType":"readError"}`))},
					},
				}
			},
			wantStatus: http.StatusAccepted, wantReply: "OK", wantBody: `{"errorMessage":"disk gone","errorType":"readError"}`,
			wantError: true, wantType: "readError",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := runtimeapi.New()
			defer s.Close()
			c := newRuntime(t, s)
			ch := invoke(s, `{}`, 3*time.Second)
			resp, _ := c.next()
			id := resp.Header.Get(runtimeapi.HeaderRequestID)

			status, reply := c.post("invocation/"+id+"/"+tt.path, tt.header, tt.body())
			if status != tt.wantStatus {
				t.Errorf("POST %s = %d %s, want %d", tt.path, status, reply, tt.wantStatus)
			}
			if tt.wantReply == "OK" {
				if string(reply) != `{"status":"OK"}` {
					t.Errorf("reply = %s, want {\"status\":\"OK\"}", reply)
				}
			} else if typ, _ := errorDoc(t, reply); typ != tt.wantReply {
				t.Errorf("reply errorType = %q, want %q", typ, tt.wantReply)
			}
			res := wait(t, ch)
			if res.RequestID != id || res.IsError != tt.wantError || res.ErrorType != tt.wantType {
				t.Errorf("Result = {RequestID:%s IsError:%v ErrorType:%q}, want {%s %v %q}", res.RequestID, res.IsError, res.ErrorType, id, tt.wantError, tt.wantType)
			}
			if tt.wantBody != "" && string(res.Body) != tt.wantBody {
				t.Errorf("Result.Body = %s, want %s", res.Body, tt.wantBody)
			}
			if res.At.IsZero() {
				t.Error("Result.At is not set")
			}
		})
	}
}

func TestInvalidRequestID(t *testing.T) {
	s := runtimeapi.New()
	defer s.Close()
	c := newRuntime(t, s)
	ch := invoke(s, `{}`, 3*time.Second)
	resp, _ := c.next()
	id := resp.Header.Get(runtimeapi.HeaderRequestID)
	if status, _ := c.post("invocation/"+id+"/response", nil, strings.NewReader(`1`)); status != http.StatusAccepted {
		t.Fatalf("first response: %d, want 202", status)
	}
	wait(t, ch)

	tests := []struct{ name, path string }{
		{"unknown id", "invocation/8476a536-e9f4-11e8-9739-2dfe598c3fcd/response"},
		{"second response", "invocation/" + id + "/response"},
		{"error after the response", "invocation/" + id + "/error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, reply := c.post(tt.path, nil, strings.NewReader(`2`))
			if typ, _ := errorDoc(t, reply); status != http.StatusBadRequest || typ != "InvalidRequestID" {
				t.Errorf("POST %s = %d %s, want 400 InvalidRequestID", tt.path, status, reply)
			}
		})
	}
}

func TestFirstNextIsDeliveredOnce(t *testing.T) {
	s := runtimeapi.New()
	defer s.Close()
	c := newRuntime(t, s)
	before := time.Now()
	for i := 0; i < 2; i++ {
		ch := invoke(s, `{}`, time.Second)
		resp, _ := c.next()
		c.post("invocation/"+resp.Header.Get(runtimeapi.HeaderRequestID)+"/response", nil, strings.NewReader(`{}`))
		wait(t, ch)
	}
	select {
	case at := <-s.FirstNext():
		if at.Before(before) || at.After(time.Now()) {
			t.Errorf("FirstNext = %s, not within the test", at)
		}
	default:
		t.Fatal("FirstNext delivered nothing")
	}
	select {
	case at := <-s.FirstNext():
		t.Errorf("FirstNext delivered a second time: %s", at)
	default:
	}
}

func TestInitError(t *testing.T) {
	s := runtimeapi.New()
	defer s.Close()
	c := newRuntime(t, s)
	status, reply := c.post("init/error", http.Header{runtimeapi.HeaderErrorType: {"Runtime.ConfigError"}},
		strings.NewReader(`{"errorMessage":"REFRESH_MAP: bad","errorType":"configError"}`))
	if status != http.StatusAccepted {
		t.Fatalf("POST init/error = %d %s, want 202", status, reply)
	}
	select {
	case res := <-s.InitError():
		if !res.IsError || res.ErrorType != "Runtime.ConfigError" || !strings.Contains(string(res.Body), "REFRESH_MAP: bad") {
			t.Errorf("InitError = %+v", res)
		}
	default:
		t.Fatal("InitError delivered nothing")
	}
	if _, err := s.Invoke(context.Background(), []byte(`{}`), time.Second); !errors.Is(err, runtimeapi.ErrInitFailed) {
		t.Errorf("Invoke after an init error: %v, want ErrInitFailed", err)
	}
	if resp, body := c.next(); resp.StatusCode != http.StatusForbidden {
		t.Errorf("next after an init error = %d %s, want 403", resp.StatusCode, body)
	}
	if status, _ := c.post("init/error", nil, strings.NewReader(`{}`)); status != http.StatusForbidden {
		t.Errorf("second init/error = %d, want 403", status)
	}
}

func TestInitErrorAfterInitIsRefused(t *testing.T) {
	s := runtimeapi.New()
	defer s.Close()
	c := newRuntime(t, s)
	ch := invoke(s, `{}`, time.Second)
	resp, _ := c.next()
	c.post("invocation/"+resp.Header.Get(runtimeapi.HeaderRequestID)+"/response", nil, strings.NewReader(`{}`))
	wait(t, ch)
	status, reply := c.post("init/error", nil, strings.NewReader(`{"errorMessage":"late","errorType":"x"}`))
	if typ, _ := errorDoc(t, reply); status != http.StatusForbidden || typ != "InvalidStateTransition" {
		t.Errorf("init/error after init = %d %s, want 403 InvalidStateTransition", status, reply)
	}
}

func TestInvokeTimesOut(t *testing.T) {
	s := runtimeapi.New()
	defer s.Close()
	c := newRuntime(t, s)
	ch := invoke(s, `{}`, 50*time.Millisecond)
	resp, _ := c.next()
	res := wait(t, ch)
	if !res.IsError || res.ErrorType != runtimeapi.ErrorTypeTimeout {
		t.Fatalf("Result = %+v, want a %s error", res, runtimeapi.ErrorTypeTimeout)
	}
	if _, msg := errorDoc(t, res.Body); !strings.Contains(msg, "Task timed out after 0.05 seconds") {
		t.Errorf("timeout message = %q", msg)
	}
	if status, _ := c.post("invocation/"+resp.Header.Get(runtimeapi.HeaderRequestID)+"/response", nil, strings.NewReader(`{}`)); status != http.StatusBadRequest {
		t.Errorf("late response = %d, want 400", status)
	}
}

func TestInvokeWithoutRuntime(t *testing.T) {
	s := runtimeapi.New()
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.Invoke(ctx, []byte(`{}`), time.Second); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Invoke with no runtime: %v, want context.DeadlineExceeded", err)
	}
	if _, err := s.Invoke(context.Background(), []byte(`{}`), 0); err == nil {
		t.Error("Invoke with a zero timeout: no error")
	}
}

func TestCloseEndsWaitingNext(t *testing.T) {
	s := runtimeapi.New()
	c := newRuntime(t, s)
	got := make(chan int, 1)
	go func() {
		resp, err := http.Get(c.base + "invocation/next")
		if err != nil {
			got <- 0
			return
		}
		resp.Body.Close()
		got <- resp.StatusCode
	}()
	<-s.FirstNext()
	ch := make(chan error, 1)
	s.Close()
	go func() {
		_, err := s.Invoke(context.Background(), []byte(`{}`), time.Second)
		ch <- err
	}()
	if status := <-got; status != http.StatusInternalServerError {
		t.Errorf("waiting next ended with %d, want 500", status)
	}
	if err := <-ch; !errors.Is(err, runtimeapi.ErrClosed) {
		t.Errorf("Invoke after Close: %v, want ErrClosed", err)
	}
}

// TestAWSLambdaGoRuntime runs a real aws-lambda-go function, built as SAM
// builds it, against the emulator: one process serves the cases in order,
// as a warm Lambda would, until the panic ends it.
func TestAWSLambdaGoRuntime(t *testing.T) {
	if testing.Short() {
		t.Skip("builds testdata/echo with go build; run without -short")
	}
	bin := buildEcho(t)
	s := runtimeapi.New()
	defer s.Close()
	cmd := exec.Command(bin)
	cmd.Env = []string{"AWS_LAMBDA_RUNTIME_API=" + s.Addr(), "AWS_LAMBDA_FUNCTION_NAME=echo"}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("function output:\n%s", out.String())
		}
	}()

	tests := []struct {
		name      string
		event     string
		wantError bool
		wantType  string
		check     func(t *testing.T, res runtimeapi.Result)
	}{
		{
			name: "reply carries the invocation's metadata", event: `{"echo":"hi"}`,
			check: func(t *testing.T, res runtimeapi.Result) {
				var r struct {
					Echo        string `json:"echo"`
					RequestID   string `json:"request_id"`
					FunctionARN string `json:"function_arn"`
					DeadlineMs  int64  `json:"deadline_ms"`
					TraceID     string `json:"trace_id"`
				}
				if err := json.Unmarshal(res.Body, &r); err != nil {
					t.Fatalf("reply %s: %v", res.Body, err)
				}
				if r.Echo != "hi" || r.RequestID != res.RequestID || r.FunctionARN != runtimeapi.FunctionARN || !strings.HasPrefix(r.TraceID, "Root=1-") {
					t.Errorf("reply = %+v, want echo hi, request id %s, the function ARN and a trace id", r, res.RequestID)
				}
				if d := time.Until(time.UnixMilli(r.DeadlineMs)); d <= 0 || d > 3*time.Second {
					t.Errorf("handler's deadline is %s away, want within the 3s timeout", d)
				}
			},
		},
		{
			name: "handler error", event: `{"fail":"no such workbook"}`, wantError: true, wantType: "errorString",
			check: func(t *testing.T, res runtimeapi.Result) {
				if _, msg := errorDoc(t, res.Body); msg != "no such workbook" {
					t.Errorf("errorMessage = %q", msg)
				}
			},
		},
		{
			name: "warm again after an error", event: `{"echo":"again"}`,
			check: func(t *testing.T, res runtimeapi.Result) {
				if !strings.Contains(string(res.Body), `"echo":"again"`) {
					t.Errorf("reply = %s", res.Body)
				}
			},
		},
		{
			// aws-lambda-go reports the panic, then exits.
			name: "panic", event: `{"panic":"kaboom"}`, wantError: true, wantType: "string",
			check: func(t *testing.T, res runtimeapi.Result) {
				if _, msg := errorDoc(t, res.Body); msg != "kaboom" {
					t.Errorf("errorMessage = %q", msg)
				}
				select {
				case err := <-exited:
					exited <- err // for the deferred wait
					if err == nil {
						t.Error("the function exited 0 after a panic")
					}
				case <-time.After(5 * time.Second):
					t.Error("the function did not exit after a panic")
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res, err := s.Invoke(ctx, []byte(tt.event), 3*time.Second)
			if err != nil {
				t.Fatalf("Invoke: %v", err)
			}
			if res.IsError != tt.wantError || res.ErrorType != tt.wantType {
				t.Fatalf("Result = {IsError:%v ErrorType:%q Body:%s}, want {%v %q}", res.IsError, res.ErrorType, res.Body, tt.wantError, tt.wantType)
			}
			tt.check(t, res)
		})
	}
}

// buildEcho builds testdata/echo with the flags SAM's Makefile uses, for
// the host's architecture so that it runs here.
func buildEcho(t *testing.T) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to build the test function: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "bootstrap")
	cmd := exec.Command(gobin, "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags", "-s -w", "-o", bin, "./testdata/echo")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+runtime.GOOS, "GOARCH="+runtime.GOARCH)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./testdata/echo: %v\n%s", err, out)
	}
	return bin
}
