package webhook

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

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
	HandleEvent(ctx context.Context, ev *tableau.Event) (state.Outcome, error)
}

// TableauHandler answers Tableau's webhook deliveries.
type TableauHandler struct {
	secrets secrets.Source
	seen    state.Idempotency
	events  EventHandler
	o       options
}

// NewTableau returns a TableauHandler. seen records deliveries so that
// Tableau's duplicate deliveries (identical payloads) are handled once. It
// takes WithLogger and WithClock.
func NewTableau(src secrets.Source, seen state.Idempotency, events EventHandler, opts ...Option) (*TableauHandler, error) {
	if src == nil || seen == nil || events == nil {
		return nil, errors.New("webhook: secrets, state and event handler are required")
	}
	return &TableauHandler{secrets: src, seen: seen, events: events, o: apply(opts)}, nil
}

// Handle is the Lambda handler for TableauRoute.
func (h *TableauHandler) Handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	ctx = logging.With(ctx, "request_id", requestID(ctx, req))
	status, reply := h.handle(ctx, req)
	return respond(status, reply), nil
}

// TableauReply is the JSON body of a TableauHandler response.
type TableauReply struct {
	Message string        `json:"message"`
	Result  state.Outcome `json:"result,omitempty"`
}

func (h *TableauHandler) handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (int, TableauReply) {
	creds, err := h.secrets.Credentials(ctx)
	if err != nil {
		h.o.logger.ErrorContext(ctx, "credentials unavailable", "error", err)
		return http.StatusServiceUnavailable, TableauReply{Message: "credentials unavailable; retry later"}
	}
	if !tokenMatches(pathToken(req), creds.TableauWebhookToken) {
		// The same answer as an unknown route: a wrong token learns nothing.
		h.o.logger.WarnContext(ctx, "Tableau webhook with a wrong token", "configured", creds.TableauWebhookToken != "")
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
		h.o.logger.InfoContext(ctx, "Tableau webhook test delivery received")
		return http.StatusOK, TableauReply{Message: "test delivery received"}
	}
	if err != nil {
		h.o.logger.WarnContext(ctx, "rejected Tableau webhook payload", "error", err)
		return http.StatusBadRequest, TableauReply{Message: err.Error()}
	}
	log := h.o.logger.With("tableau_event", ev.Type, "tableau_item_id", ev.ResourceID)

	sum := sha256.Sum256(body)
	key := state.DeliveryKey("tableau:" + hex.EncodeToString(sum[:16]))
	owner := state.NewOwner()
	hold := h.o.now().Add(30 * time.Second)
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
	if err := h.seen.Complete(bg, key, owner, res, ""); err != nil {
		log.WarnContext(ctx, "could not record the delivery", "error", err)
	}
	log.InfoContext(ctx, "Tableau event handled", "result", res)
	return http.StatusOK, TableauReply{Message: "event handled", Result: res}
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
