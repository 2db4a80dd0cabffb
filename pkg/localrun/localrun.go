// Package localrun runs the functions on a plain machine, without AWS or
// Docker: as an HTTP server that hands requests to the handler the way an
// API Gateway HTTP API does (like `sam local start-api`), or once on an event
// file (like `sam local invoke`).
package localrun

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// HTTPHandler is an HTTP API (payload format 2.0) Lambda handler.
type HTTPHandler func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)

// Server serves an HTTPHandler on routes such as "POST /dbt/webhook".
type Server struct {
	Handler HTTPHandler
	Routes  []string
	// Timeout is the simulated Lambda timeout: each request's context ends
	// then, as the function's would.
	Timeout time.Duration
	Logger  *slog.Logger
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	route := ""
	for _, rt := range s.Routes {
		method, path, _ := strings.Cut(rt, " ")
		if routeMatches(path, r.URL.Path) {
			route = rt
			if method != r.Method {
				writeJSON(w, http.StatusMethodNotAllowed, `{"message":"Method Not Allowed"}`)
				return
			}
			break
		}
	}
	if route == "" {
		writeJSON(w, http.StatusNotFound, `{"message":"Not Found"}`)
		return
	}
	// API Gateway caps payloads at 10 MB; read one byte more to tell.
	body, err := io.ReadAll(io.LimitReader(r.Body, 10<<20+1))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, `{"message":"could not read body"}`)
		return
	}
	if len(body) > 10<<20 {
		writeJSON(w, http.StatusRequestEntityTooLarge, `{"message":"Request Entity Too Large"}`)
		return
	}
	req := toEvent(r, route, body)
	// API Gateway lets the function run on when the caller hangs up; so
	// does this, or a client timeout would cut a refresh off half way.
	ctx, cancel := lambdaContext(context.WithoutCancel(r.Context()), req.RequestContext.RequestID, s.Timeout)
	defer cancel()
	resp, err := s.Handler(ctx, req)
	if err != nil {
		if s.Logger != nil {
			s.Logger.Error("handler returned an error", "error", err)
		}
		writeJSON(w, http.StatusInternalServerError, `{"message":"Internal Server Error"}`)
		return
	}
	for k, v := range resp.Headers {
		w.Header().Set(k, v)
	}
	out := []byte(resp.Body)
	if resp.IsBase64Encoded {
		if out, err = base64.StdEncoding.DecodeString(resp.Body); err != nil {
			writeJSON(w, http.StatusInternalServerError, `{"message":"handler returned invalid base64"}`)
			return
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(out)
}

// routeMatches matches a path against a route path whose segments may be
// {parameters}.
func routeMatches(route, path string) bool {
	rs, ps := strings.Split(route, "/"), strings.Split(path, "/")
	if len(rs) != len(ps) {
		return false
	}
	for i := range rs {
		if strings.HasPrefix(rs[i], "{") || rs[i] == ps[i] {
			continue
		}
		return false
	}
	return true
}

// toEvent builds the event API Gateway would send: lower-case header names,
// text bodies as they are and binary bodies in base64.
func toEvent(r *http.Request, route string, body []byte) events.APIGatewayV2HTTPRequest {
	headers := make(map[string]string, len(r.Header))
	for k, v := range r.Header {
		headers[strings.ToLower(k)] = strings.Join(v, ",")
	}
	query := make(map[string]string)
	for k, v := range r.URL.Query() {
		query[k] = strings.Join(v, ",")
	}
	ip, _, _ := net.SplitHostPort(r.RemoteAddr)
	req := events.APIGatewayV2HTTPRequest{
		Version:               "2.0",
		RouteKey:              route,
		RawPath:               r.URL.Path,
		RawQueryString:        r.URL.RawQuery,
		Headers:               headers,
		QueryStringParameters: query,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RequestID: newID(),
			Stage:     "$default",
			TimeEpoch: time.Now().UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method: r.Method, Path: r.URL.Path, Protocol: r.Proto, SourceIP: ip, UserAgent: r.UserAgent(),
			},
		},
	}
	if utf8.Valid(body) {
		req.Body = string(body)
	} else {
		req.Body, req.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
	}
	return req
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// lambdaContext gives ctx what the Lambda runtime would: a request id and the
// function's deadline.
func lambdaContext(ctx context.Context, requestID string, timeout time.Duration) (context.Context, context.CancelFunc) {
	if timeout <= 0 {
		timeout = 15 * time.Second
	}
	ctx = lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{AwsRequestID: requestID})
	return context.WithTimeout(ctx, timeout)
}

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// Invoke runs h once on the JSON event in file and writes its result as JSON
// to w, like `sam local invoke -e file`. An error from the handler is
// returned after the result is written, for a non-zero exit.
func Invoke[In, Out any](ctx context.Context, file string, timeout time.Duration, h func(context.Context, In) (Out, error), w io.Writer) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("read event: %w", err)
	}
	var in In
	if err := json.Unmarshal(data, &in); err != nil {
		return fmt.Errorf("event %s is not valid JSON for this function: %w", file, err)
	}
	ctx, cancel := lambdaContext(ctx, newID(), timeout)
	defer cancel()
	out, herr := h(ctx, in)
	if herr != nil {
		fmt.Fprintf(w, `{"errorMessage":%q}`+"\n", herr.Error())
		return fmt.Errorf("function returned an error: %w", herr)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
