package webhook

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/followup"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/logging"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/secrets"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
)

// TableauRoute is the HTTP API route Tableau's webhooks post to. Tableau
// does not sign its payloads, so the path carries a secret token.
const TableauRoute = "POST /tableau/webhook/{token}"

// maxTableauBody caps Tableau payloads, a few hundred bytes in practice.
const maxTableauBody = 64 << 10

// EventHandler takes in a parsed Tableau event.
type EventHandler interface {
	HandleEvent(ctx context.Context, ev *tableau.Event) (followup.EventResult, error)
}

// TableauHandler answers Tableau's webhook deliveries.
type TableauHandler struct {
	secrets secrets.Source
	seen    state.Idempotency
	events  EventHandler
	logger  *slog.Logger
	now     func() time.Time
}

// NewTableau returns a TableauHandler. seen records deliveries so that
// Tableau's duplicate deliveries (identical payloads) are handled once.
func NewTableau(src secrets.Source, seen state.Idempotency, events EventHandler, logger *slog.Logger) (*TableauHandler, error) {
	if src == nil || seen == nil || events == nil {
		return nil, errors.New("webhook: secrets, state and event handler are required")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &TableauHandler{secrets: src, seen: seen, events: events, logger: logger, now: time.Now}, nil
}

// Handle is the Lambda handler for TableauRoute.
func (h *TableauHandler) Handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	ctx = logging.With(ctx, "request_id", requestID(ctx, req))
	status, reply := h.handle(ctx, req)
	return respond(status, reply), nil
}

// TableauReply is the JSON body of a TableauHandler response.
type TableauReply struct {
	Message string `json:"message"`
	Result  string `json:"result,omitempty"`
}

func (h *TableauHandler) handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (int, TableauReply) {
	creds, err := h.secrets.Credentials(ctx)
	if err != nil {
		h.logger.ErrorContext(ctx, "credentials unavailable", "error", err)
		return http.StatusServiceUnavailable, TableauReply{Message: "credentials unavailable; retry later"}
	}
	if !tokenMatches(pathToken(req), creds.TableauWebhookToken) {
		// The same answer as an unknown route: a wrong token learns nothing.
		h.logger.WarnContext(ctx, "Tableau webhook with a wrong token", "configured", creds.TableauWebhookToken != "")
		return http.StatusNotFound, TableauReply{Message: "Not Found"}
	}
	body, err := decodeBody(req, maxTableauBody)
	if err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, errTooLarge) {
			status = http.StatusRequestEntityTooLarge
		}
		return status, TableauReply{Message: err.Error()}
	}
	ev, err := tableau.ParseEvent(body)
	if errors.Is(err, tableau.ErrEmptyEvent) {
		h.logger.InfoContext(ctx, "Tableau webhook test delivery received")
		return http.StatusOK, TableauReply{Message: "test delivery received"}
	}
	if err != nil {
		h.logger.WarnContext(ctx, "rejected Tableau webhook payload", "error", err)
		return http.StatusBadRequest, TableauReply{Message: err.Error()}
	}
	log := h.logger.With("tableau_event", ev.Type, "tableau_item_id", ev.ResourceID)

	sum := sha256.Sum256(body)
	key := state.Key{RunID: "tableau-event:" + hex.EncodeToString(sum[:16]), Target: "delivery"}
	owner := state.NewOwner()
	hold := h.now().Add(30 * time.Second)
	if d, ok := ctx.Deadline(); ok {
		hold = d
	}
	err = h.seen.Begin(ctx, state.Claim{Key: key, Owner: owner, HoldUntil: hold, Retention: 72 * time.Hour})
	var claimed *state.ClaimedError
	switch {
	case errors.As(err, &claimed) && claimed.Existing.Status == state.StatusCompleted:
		log.InfoContext(ctx, "duplicate Tableau delivery ignored")
		return http.StatusOK, TableauReply{Message: "duplicate delivery; already handled", Result: claimed.Existing.Outcome}
	case errors.As(err, &claimed):
		return http.StatusServiceUnavailable, TableauReply{Message: "the same delivery is being handled; retry later"}
	case err != nil:
		log.ErrorContext(ctx, "state unavailable", "error", err)
		return http.StatusServiceUnavailable, TableauReply{Message: "state unavailable; retry later"}
	}
	res, err := h.events.HandleEvent(ctx, ev)
	bg := context.WithoutCancel(ctx)
	if err != nil {
		_ = h.seen.Release(bg, key, owner)
		log.ErrorContext(ctx, "Tableau event not handled", "error", err)
		return http.StatusServiceUnavailable, TableauReply{Message: "event not handled yet; retry later"}
	}
	if err := h.seen.Complete(bg, key, owner, string(res), ""); err != nil {
		log.WarnContext(ctx, "could not record the delivery", "error", err)
	}
	log.InfoContext(ctx, "Tableau event handled", "result", res)
	return http.StatusOK, TableauReply{Message: "event handled", Result: string(res)}
}

// pathToken is the {token} path parameter; the raw path's last segment when
// the event lacks parameters (hand-written test events).
func pathToken(req events.APIGatewayV2HTTPRequest) string {
	if t := req.PathParameters["token"]; t != "" {
		return t
	}
	return req.RawPath[strings.LastIndex(req.RawPath, "/")+1:]
}

// tokenMatches compares in constant time, over hashes so that the lengths
// do not leak either.
func tokenMatches(got, want string) bool {
	if want == "" || got == "" {
		return false
	}
	a, b := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
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
	return respond(http.StatusNotFound, Reply{Message: "Not Found"}), nil
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
