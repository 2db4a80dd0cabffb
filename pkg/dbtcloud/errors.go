package dbtcloud

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/remote"
)

// Sentinel errors to test with errors.Is. An *Error matches the sentinel for
// its status code.
var (
	// ErrUnauthorized: the token is invalid (401) or not allowed to act on the
	// account or object (403). Retrying will not help; fix the token or the
	// account id.
	ErrUnauthorized = errors.New("dbt Cloud rejected the API token")

	// ErrNotFound: the job or run does not exist in the account (404).
	ErrNotFound = errors.New("dbt Cloud object not found")

	// ErrRateLimited: the account went over the Admin API rate limit (429).
	// The *Error carries the server's Retry-After, if it sent one.
	// See https://docs.getdbt.com/docs/dbt-apis/rate-limits.
	ErrRateLimited = errors.New("dbt Cloud rate limit exceeded")

	// ErrTriggerOutcomeUnknown: a TriggerRun request may have reached dbt
	// Cloud and started a run, but no usable reply came back (a dropped
	// connection, a timeout after the request was sent, a 500/502/504). It
	// is not retried automatically because a duplicate trigger starts a
	// second run: list the job's recent runs (ListRuns) and look for the
	// cause you sent before triggering again.
	ErrTriggerOutcomeUnknown = errors.New("dbt Cloud may or may not have started the run")
)

// Error is a non-2xx reply from the Admin API. Test for it with errors.As,
// or for its kind with errors.Is and the sentinels above.
type Error struct {
	// StatusCode is the HTTP status, e.g. 404.
	StatusCode int
	// Message is dbt's explanation: the envelope's user_message, then its
	// developer_message and validation detail when present.
	Message string
	// Method and Path name the request, without host or query.
	Method, Path string
	// RetryAfter is the server's Retry-After, zero when absent. Set on 429
	// replies and sometimes on 503.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("dbt Cloud API %s %s: %d %s", e.Method, e.Path, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Message != "" && e.Message != http.StatusText(e.StatusCode) {
		msg += ": " + e.Message
	}
	if e.RetryAfter > 0 {
		msg += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	return msg
}

// ServerWait implements remote.Waiter: the Retry-After dbt Cloud sent.
func (e *Error) ServerWait() time.Duration { return e.RetryAfter }

// Is lets errors.Is(err, ErrNotFound) and friends classify an *Error.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	case ErrRateLimited:
		return e.StatusCode == http.StatusTooManyRequests
	}
	return false
}

// Retryable reports whether err is a transient failure worth trying again
// later: a 429, a 5xx, a connection failure, or an artifact that is not
// available yet (ErrArtifactNotAvailable). It is false for a caller's
// cancelled or expired context, for other 4xx replies, and for errors
// wrapping ErrTriggerOutcomeUnknown, because repeating that trigger may start
// a second run.
func Retryable(err error) bool {
	if err == nil || errors.Is(err, ErrTriggerOutcomeUnknown) {
		return false
	}
	return transient(err) || errors.Is(err, ErrArtifactNotAvailable)
}

func transient(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var apiErr *Error
	if errors.As(err, &apiErr) {
		return apiErr.StatusCode == http.StatusTooManyRequests || apiErr.StatusCode >= 500
	}
	var te *remote.TransportError
	if errors.As(err, &te) {
		// A certificate that does not verify will not verify next time either.
		return te.Transient()
	}
	return false
}

// retryDecision reports whether err deserves another attempt and, for a
// one-shot request, whether the server may already have acted on it.
func retryDecision(err error, mode repeatability) (retry, unknown bool) {
	if mode == idempotent {
		return transient(err), false
	}
	if outcomeUnknown(err) {
		return false, true
	}
	var apiErr *Error
	if errors.As(err, &apiErr) {
		// 429 and 503 are refusals at the door: dbt rate limiting and an
		// unavailable service do not create runs.
		return apiErr.StatusCode == http.StatusTooManyRequests || apiErr.StatusCode == http.StatusServiceUnavailable, false
	}
	var te *remote.TransportError
	if errors.As(err, &te) && !te.Sent {
		return transient(err), false
	}
	return false, false
}

// outcomeUnknown reports whether a failed request may still have taken effect.
func outcomeUnknown(err error) bool {
	var apiErr *Error
	if errors.As(err, &apiErr) {
		return apiErr.StatusCode >= 500 && apiErr.StatusCode != http.StatusServiceUnavailable
	}
	var de *decodeError
	if errors.As(err, &de) {
		// A 2xx arrived, so the server acted; we just cannot read what it did.
		return true
	}
	var te *remote.TransportError
	if errors.As(err, &te) {
		return te.Sent
	}
	return false
}

// decodeError is a 2xx reply whose body is not what the API documents.
type decodeError struct {
	method, path string
	err          error
}

func (e *decodeError) Error() string {
	return fmt.Sprintf("dbt Cloud API %s %s: unreadable reply: %v", e.method, e.path, e.err)
}

func (e *decodeError) Unwrap() error { return e.err }
