package webhook

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/logging"
)

// What both handlers share: reading an HTTP API (payload format 2.0)
// request, answering it, and routing it.

var errTooLarge = errors.New("body too large")

// decodeBody returns the raw body, base64-decoded when API Gateway encoded
// it, refusing more than max bytes.
func decodeBody(req events.APIGatewayV2HTTPRequest, max int) ([]byte, error) {
	tooLarge := fmt.Errorf("body larger than %d bytes: %w", max, errTooLarge)
	if !req.IsBase64Encoded {
		if len(req.Body) > max {
			return nil, tooLarge
		}
		return []byte(req.Body), nil
	}
	if base64.StdEncoding.DecodedLen(len(req.Body)) > max+2 {
		return nil, tooLarge
	}
	b, err := base64.StdEncoding.DecodeString(req.Body)
	if err != nil {
		return nil, errors.New("body is marked base64 but is not valid base64")
	}
	if len(b) > max {
		return nil, tooLarge
	}
	return b, nil
}

// Header looks a header up case-insensitively: HTTP APIs lower-case names,
// but other callers (tests, proxies, sam local) may not.
func Header(h map[string]string, name string) string {
	if v, ok := h[strings.ToLower(name)]; ok {
		return v
	}
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

func requestID(ctx context.Context, req events.APIGatewayV2HTTPRequest) string {
	if lc, ok := lambdacontext.FromContext(ctx); ok && lc.AwsRequestID != "" {
		return lc.AwsRequestID
	}
	return req.RequestContext.RequestID
}

func respond(status int, reply any) events.APIGatewayV2HTTPResponse {
	body, _ := json.Marshal(reply)
	return events.APIGatewayV2HTTPResponse{
		StatusCode: status,
		Headers:    map[string]string{"Content-Type": "application/json"},
		Body:       string(body),
	}
}

// HTTPHandler is the Lambda handler of one HTTP API route.
type HTTPHandler func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)

// Router sends each request to the handler of its route.
type Router struct {
	routes map[string]HTTPHandler
	logger *slog.Logger
}

// NewRouter returns a Router over routes, keyed by route key ("POST
// /dbt/webhook"). logger hears of events that match no route.
func NewRouter(routes map[string]HTTPHandler, logger *slog.Logger) *Router {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Router{routes: routes, logger: logger}
}

// Handle is the Lambda handler for every route of the HTTP API.
func (r *Router) Handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	if h, ok := r.routes[req.RouteKey]; ok {
		return h(ctx, req)
	}
	// Most likely not an API Gateway event at all (a scheduled event sent
	// to the wrong function, a test invoke): say so, since the caller may
	// never read the 404. The raw path is not logged: on the Tableau route
	// it carries the secret token.
	ctx = logging.With(ctx, "request_id", requestID(ctx, req))
	r.logger.WarnContext(ctx, "event matches no route of this function; is it an HTTP API (payload 2.0) request?",
		"route_key", req.RouteKey, "payload_version", req.Version, "routes", strings.Join(r.Routes(), ", "))
	return respond(http.StatusNotFound, DBTReply{Message: "Not Found"}), nil
}

// Routes lists the router's routes, sorted.
func (r *Router) Routes() []string {
	out := make([]string, 0, len(r.routes))
	for k := range r.routes {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
