// Package webhook answers the webhooks the bridge receives through its API
// Gateway HTTP API (payload format 2.0). For dbt Cloud's job events it
// verifies the signature, ignores anything but a successful run, and
// refreshes the run's Tableau targets exactly once, inside dbt's 10 second
// delivery timeout. Tableau's refresh events, on a route protected by a
// secret token, close the loop on the refreshes.
package webhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dbtcloud"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/lineage"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/logging"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refresh"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/secrets"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
)

// DBTRoute is the HTTP API route dbt Cloud posts to.
const DBTRoute = "POST /dbt/webhook"

// MaxBodyBytes is the largest body accepted. dbt's payloads are about 1 KB.
const MaxBodyBytes = 1 << 20

// MaxClockSkew is how far ahead of the function's clock an event may be
// dated: dbt Cloud's and Lambda's clocks agree far better, and a signed
// event dated further ahead would pass the replay guard for as long.
const MaxClockSkew = 5 * time.Minute

// Defaults of the dbt handler's options.
const (
	DefaultMaxEventAge = 24 * time.Hour
	// DefaultRefreshTimeout leaves two seconds of dbt's ten for the reply
	// and API Gateway.
	DefaultRefreshTimeout = 8 * time.Second
)

// Planner says what a run refreshes: the refresh map's targets for its
// job, and with lineage what the run changed (lineage.Planner).
type Planner interface {
	Plan(ctx context.Context, run refresh.Run) lineage.Plan
	On() bool
}

// DBTHandler handles dbt Cloud's webhook deliveries.
type DBTHandler struct {
	secrets   secrets.Source
	refresher *refresh.Refresher
	planner   Planner
	o         options
}

// NewDBT returns a DBTHandler that refreshes the targets p finds for a
// successful run. It takes WithMaxEventAge, WithRefreshTimeout,
// WithDBTCloudURL, WithLogger and WithClock.
func NewDBT(src secrets.Source, r *refresh.Refresher, p Planner, opts ...Option) (*DBTHandler, error) {
	if src == nil || r == nil || p == nil {
		return nil, errors.New("webhook: secrets, refresher and planner are required")
	}
	return &DBTHandler{secrets: src, refresher: r, planner: p, o: apply(opts)}, nil
}

// DBTReply is the JSON body of every DBTHandler response.
type DBTReply struct {
	Message string            `json:"message"`
	RunID   string            `json:"run_id,omitempty"`
	JobID   string            `json:"job_id,omitempty"`
	Targets []refresh.Outcome `json:"targets,omitempty"`
	Lineage *LineageSummary   `json:"lineage,omitempty"`
}

// Handle is the Lambda handler of DBTRoute.
func (h *DBTHandler) Handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	ctx = logging.With(ctx, "request_id", requestID(ctx, req))
	status, reply := h.handle(ctx, h.o.logger, req)
	return respond(status, reply), nil
}

func (h *DBTHandler) handle(ctx context.Context, log *slog.Logger, req events.APIGatewayV2HTTPRequest) (int, DBTReply) {
	if m := req.RequestContext.HTTP.Method; m != "" && m != http.MethodPost {
		return http.StatusMethodNotAllowed, DBTReply{Message: "method " + m + " not allowed: dbt Cloud webhooks are POSTed"}
	}
	body, err := decodeBody(req, MaxBodyBytes)
	if err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, errTooLarge) {
			status = http.StatusRequestEntityTooLarge
		}
		log.WarnContext(ctx, "rejected webhook body", "error", err)
		return status, DBTReply{Message: err.Error()}
	}
	creds, err := h.secrets.Credentials(ctx)
	if err != nil {
		log.ErrorContext(ctx, "credentials unavailable", "error", err)
		return http.StatusServiceUnavailable, DBTReply{Message: "credentials unavailable; retry later"}
	}
	if err := dbtcloud.VerifySignature(body, Header(req.Headers, "Authorization"), creds.DBTWebhookSecret); err != nil {
		log.WarnContext(ctx, "rejected webhook signature", "error", err)
		return http.StatusUnauthorized, DBTReply{Message: "missing or invalid signature in the Authorization header"}
	}
	ev, err := dbtcloud.ParseWebhook(body)
	if err != nil {
		log.WarnContext(ctx, "rejected webhook payload", "error", err)
		return http.StatusBadRequest, DBTReply{Message: err.Error()}
	}
	run := refresh.Run{RunID: ev.Data.RunID, DBTJobID: ev.Data.JobID, FinishedAt: runFinished(ev),
		URL: dbtcloud.RunURL(h.o.dbtCloudURL, ev.AccountID, ev.Data.ProjectID, ev.Data.RunID)}
	log = log.With("dbt_run_id", run.RunID, "dbt_job_id", run.DBTJobID, "event_id", ev.EventID)
	reply := DBTReply{RunID: run.RunID, JobID: run.DBTJobID}

	if !ev.Succeeded() {
		reply.Message = fmt.Sprintf("nothing to do: %s with run status %q (%d); only successful completed runs refresh Tableau",
			ev.EventType, ev.Data.RunStatus, ev.Data.RunStatusCode)
		log.InfoContext(ctx, "ignored event", "event_type", ev.EventType, "dbt_status", ev.Data.RunStatus)
		return http.StatusOK, reply
	}
	// Only a successful run refreshes anything, so only its date matters:
	// dbt's "Test endpoint" delivery and failed runs got their 200 above.
	switch now := h.o.now(); {
	case ev.Timestamp.IsZero():
		log.WarnContext(ctx, "rejected event without a timestamp")
		reply.Message = "event has no timestamp: without one a replay cannot be told from a new delivery"
		return http.StatusBadRequest, reply
	case ev.Timestamp.After(now.Add(MaxClockSkew)):
		ahead := ev.Timestamp.Sub(now).Round(time.Second)
		log.WarnContext(ctx, "rejected event from the future", "ahead", ahead.String())
		reply.Message = fmt.Sprintf("event is dated %s, %s ahead of this function's clock (more than the %s allowed): a replay guard cannot trust it",
			ev.Timestamp.UTC().Format(time.RFC3339), ahead, MaxClockSkew)
		return http.StatusBadRequest, reply
	}
	if age := h.o.now().Sub(ev.Timestamp); age > h.o.maxEventAge {
		reply.Message = fmt.Sprintf("nothing to do: event is %s old, older than %s; ignored as a replay", age.Round(time.Second), h.o.maxEventAge)
		log.WarnContext(ctx, "ignored stale event", "age", age.String())
		return http.StatusOK, reply
	}
	holdUntil, rctx, cancel := h.deadline(ctx)
	defer cancel()
	plan := h.planner.Plan(rctx, run)
	reply.Lineage = lineageSummary(h.planner, plan)
	if len(plan.Targets) == 0 && plan.Err == nil {
		reply.Message = "nothing to do: no Tableau targets are mapped to dbt job " + run.DBTJobID
		if h.planner.On() {
			reply.Message += fmt.Sprintf(", and no Tableau content with an extract reads the %d relations the run changed", len(plan.Changed))
		}
		log.InfoContext(ctx, "no targets for the run")
		return http.StatusOK, reply
	}
	reply.Targets = h.refresher.Refresh(rctx, run, plan.Targets, holdUntil)
	status, reply := summarize(ctx, log, reply)
	if plan.Err != nil && plan.Retry && status == http.StatusOK {
		// The map's targets are done; what the run changed is not known yet
		// (artifacts not ready, an outage): dbt's redelivery finds it.
		reply.Message = "lineage pending: " + plan.Err.Error() + "; " + reply.Message + "; retry"
		return http.StatusServiceUnavailable, reply
	}
	return status, reply
}

// LineageSummary is what lineage saw of a run, in the reply.
type LineageSummary struct {
	Changed   int    `json:"changed"`             // relations the run changed
	Unmatched int    `json:"unmatched"`           // of those, read by no Tableau content
	Live      int    `json:"live"`                // content reading them live: nothing to refresh
	Excluded  int    `json:"excluded"`            // targets the map excludes
	Error     string `json:"error,omitempty"`     // why lineage could not say
	Retryable bool   `json:"retryable,omitempty"` // and whether a retry may
}

func lineageSummary(p Planner, plan lineage.Plan) *LineageSummary {
	if !p.On() {
		return nil
	}
	s := &LineageSummary{Changed: len(plan.Changed), Unmatched: len(plan.Unmatched), Live: len(plan.Live), Excluded: len(plan.Excluded), Retryable: plan.Retry}
	if plan.Err != nil {
		s.Error = plan.Err.Error()
	}
	return s
}

// summarize picks the status: 5xx while any target can still succeed on a
// retry, so that dbt's redelivery finishes the job; 200 otherwise, with
// failures that no retry can fix listed and logged. Deferred targets are
// settled: the follow-up queues them, and a redelivery would not.
func summarize(ctx context.Context, log *slog.Logger, reply DBTReply) (int, DBTReply) {
	var retry, failed, deferred int
	var reasons []string // of the targets to retry, distinct
	for _, o := range reply.Targets {
		switch {
		case o.Retryable:
			retry++
			if o.Error != "" && !slices.Contains(reasons, o.Error) {
				reasons = append(reasons, o.Error)
			}
		case o.Result == state.OutcomeFailed:
			failed++
		case o.Result == state.OutcomeDeferred:
			deferred++
		}
	}
	n := len(reply.Targets)
	switch {
	case retry > 0 && len(reasons) == 1 && retry == n:
		// One cause for all, such as Tableau rejecting the bridge's
		// credentials: say it once, up front.
		reply.Message = fmt.Sprintf("no target settled yet: %s; retry", reasons[0])
		log.WarnContext(ctx, "webhook incomplete", "unsettled", retry, "targets", n, "error", reasons[0])
		return http.StatusServiceUnavailable, reply
	case retry > 0:
		reply.Message = fmt.Sprintf("%d of %d targets not settled yet; retry", retry, n)
		log.WarnContext(ctx, "webhook incomplete", "unsettled", retry, "targets", n)
		return http.StatusServiceUnavailable, reply
	case failed > 0:
		reply.Message = fmt.Sprintf("%d of %d targets failed for reasons a retry cannot fix; see targets", failed, n)
		log.ErrorContext(ctx, "webhook done with permanent failures", "failed", failed, "targets", n)
		return http.StatusOK, reply
	}
	reply.Message = fmt.Sprintf("%d targets settled", n)
	if deferred > 0 {
		reply.Message += fmt.Sprintf("; %d deferred: Tableau could not take them all in dbt's time, and the five-minute follow-up queues them", deferred)
	}
	log.InfoContext(ctx, "webhook done", "targets", n, "deferred", deferred)
	return http.StatusOK, reply
}

// deadline bounds the refresh by dbt's timeout and by the Lambda's own
// deadline. Claims are held until the Lambda deadline — past it this
// invocation can no longer be working on them — counted on the handler's
// clock, which is the store's, while the context's deadline is wall time.
func (h *DBTHandler) deadline(ctx context.Context) (time.Time, context.Context, context.CancelFunc) {
	timeout, remaining := h.o.refreshTimeout, h.o.refreshTimeout
	if d, ok := ctx.Deadline(); ok {
		remaining = time.Until(d)
		timeout = min(timeout, remaining-500*time.Millisecond)
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	return h.o.now().Add(remaining), rctx, cancel
}

// runFinished is when the event's run finished: runFinishedAt, else the
// event's own time, which is no earlier (a refresh that started before it
// is then taken to have started before the run finished, the safe side).
func runFinished(ev *dbtcloud.WebhookEvent) time.Time {
	if t, err := time.Parse(time.RFC3339Nano, ev.Data.RunFinishedAt); err == nil {
		return t
	}
	return ev.Timestamp
}
