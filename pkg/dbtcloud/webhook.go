package dbtcloud

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Webhook event types dbt Cloud sends.
// See https://docs.getdbt.com/docs/deploy/webhooks.
const (
	EventRunStarted   = "job.run.started"
	EventRunCompleted = "job.run.completed"
	EventRunErrored   = "job.run.errored"
)

// ErrBadSignature reports a webhook whose Authorization header is missing or
// does not match the body. Callers answer 401 and do nothing else.
var ErrBadSignature = errors.New("dbt webhook signature missing or invalid")

// VerifySignature checks header, the value of the webhook's Authorization
// header, against the HMAC-SHA256 of the raw body keyed with secret.
//
// dbt sends lowercase hex; uppercase is accepted because hex decoding is
// case-insensitive and rejecting it would buy nothing. The comparison is
// constant-time so the header cannot be guessed byte by byte.
func VerifySignature(body []byte, header, secret string) error {
	if secret == "" {
		return errors.New("dbt webhook secret is empty: refusing to verify")
	}
	got, err := hex.DecodeString(strings.TrimSpace(header))
	if err != nil || len(got) != sha256.Size {
		return ErrBadSignature
	}
	if !hmac.Equal(got, Sign(body, secret)) {
		return ErrBadSignature
	}
	return nil
}

// Sign returns the raw HMAC-SHA256 of body keyed with secret. Its lowercase hex
// form is what dbt Cloud puts in the Authorization header.
func Sign(body []byte, secret string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return m.Sum(nil)
}

// SignatureHeader returns the Authorization header value dbt Cloud would send
// for body. Simulators and tests use it to post signed events.
func SignatureHeader(body []byte, secret string) string {
	return hex.EncodeToString(Sign(body, secret))
}

// WebhookEvent is the payload of a dbt Cloud job webhook. Ids are strings here
// (they are integers in the Admin API); accountId and runStatusCode are numbers.
type WebhookEvent struct {
	AccountID   int64       `json:"accountId"`
	WebhookID   string      `json:"webhookId"`
	EventID     string      `json:"eventId"`
	Timestamp   time.Time   `json:"timestamp"`
	EventType   string      `json:"eventType"`
	WebhookName string      `json:"webhookName"`
	Data        WebhookData `json:"data"`
}

// WebhookData is the run a webhook event is about.
type WebhookData struct {
	JobID            string    `json:"jobId"`
	JobName          string    `json:"jobName"`
	RunID            string    `json:"runId"`
	EnvironmentID    string    `json:"environmentId"`
	EnvironmentName  string    `json:"environmentName"`
	DBTVersion       string    `json:"dbtVersion"`
	ProjectName      string    `json:"projectName"`
	ProjectID        string    `json:"projectId"`
	RunStatus        string    `json:"runStatus"`
	RunStatusCode    RunStatus `json:"runStatusCode"`
	RunStatusMessage string    `json:"runStatusMessage"`
	RunReason        string    `json:"runReason"`
	RunStartedAt     string    `json:"runStartedAt"`
	RunFinishedAt    string    `json:"runFinishedAt,omitempty"`
	RunErroredAt     string    `json:"runErroredAt,omitempty"`
}

// Succeeded reports whether the event says a run finished successfully: a
// completed event with status "Success" and code 10. Both must agree so that a
// payload with one of them missing or contradicting is not taken as success.
func (e *WebhookEvent) Succeeded() bool {
	return e.EventType == EventRunCompleted &&
		strings.EqualFold(e.Data.RunStatus, "Success") &&
		e.Data.RunStatusCode == StatusSuccess
}

// ParseError says what is wrong with a webhook payload, in words a person can
// act on; the HTTP layer answers 400 with it.
type ParseError struct{ Reason string }

func (e *ParseError) Error() string { return "invalid dbt webhook payload: " + e.Reason }

// ParseWebhook decodes and validates a webhook payload. Call it only on a body
// whose signature has been verified.
func ParseWebhook(body []byte) (*WebhookEvent, error) {
	var ev WebhookEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return nil, &ParseError{Reason: fmt.Sprintf("field %q must be a %s, got a JSON %s", typeErr.Field, jsonKind(typeErr.Type.Kind().String()), typeErr.Value)}
		}
		return nil, &ParseError{Reason: "body is not valid JSON: " + err.Error()}
	}
	var missing []string
	if ev.EventType == "" {
		missing = append(missing, "eventType")
	}
	if ev.Data.RunID == "" {
		missing = append(missing, "data.runId")
	}
	if ev.Data.JobID == "" {
		missing = append(missing, "data.jobId")
	}
	if len(missing) > 0 {
		return nil, &ParseError{Reason: "missing " + strings.Join(missing, ", ")}
	}
	return &ev, nil
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "int", "int64", "int32":
		return "number"
	case "struct":
		return "object or RFC 3339 string"
	default:
		return goKind
	}
}
