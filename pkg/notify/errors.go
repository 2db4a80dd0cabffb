package notify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/remote"
)

// SlackError is a reply other than 2xx from a Slack incoming webhook. Slack
// answers with a short plain-text code: 400 invalid_payload or
// user_not_found, 403 action_prohibited, 404 channel_not_found, 410
// channel_is_archived, 500 rollup_error (all from Slack's changelog below),
// and in practice 403 invalid_token and 404 no_service for a webhook that
// was revoked or removed. Error() names only the webhook's host: the URL
// itself is the credential.
//
// See https://api.slack.com/changelog/2016-05-17-changes-to-errors-for-incoming-webhooks.
type SlackError struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Body is Slack's error code from the reply body, cut to 100 bytes of
	// printable ASCII (a proxy may answer with a whole HTML page).
	Body string
	// Host is the webhook's host, e.g. hooks.slack.com.
	Host string
	// RetryAfter is the wait Slack asked for (Retry-After header, sent with
	// 429); zero when it sent none.
	RetryAfter time.Duration
}

func (e *SlackError) Error() string {
	msg := fmt.Sprintf("notify: Slack webhook at %s replied %d %s", e.Host, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Body != "" {
		msg += ": " + e.Body
	}
	if e.RetryAfter > 0 {
		msg += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	return msg
}

// ServerWait implements remote.Waiter: the Retry-After Slack sent.
func (e *SlackError) ServerWait() time.Duration { return e.RetryAfter }

// Permanent reports whether repeating the same post cannot succeed: the
// payload was refused (400), the webhook was revoked or its channel is gone
// or archived (403, 404, 410), or Slack redirected (a webhook never should).
// Such errors need a person to fix the configuration. 408 and 429 are not
// permanent, nor are 5xx replies.
func (e *SlackError) Permanent() bool {
	switch {
	case e.StatusCode == http.StatusRequestTimeout, e.StatusCode == http.StatusTooManyRequests:
		return false
	case e.StatusCode >= 300 && e.StatusCode < 500:
		return true
	}
	return false
}

// snsError is a failed Publish.
type snsError struct {
	topicARN string
	err      error
}

func (e *snsError) Error() string {
	return fmt.Sprintf("notify: publish to SNS topic %s: %v", e.topicARN, e.err)
}

func (e *snsError) Unwrap() error { return e.err }

// Retryable reports whether sending the same message again later may
// succeed: Slack's 429, 408 and 5xx replies, failed connections, SNS
// throttling and server errors, and a deadline that ran out. It is false for
// nil, for a cancelled context and for errors that need a person to fix
// them (a revoked webhook, a payload Slack refused, a missing topic or
// permission). For an error joined by Multi it is true when any part is
// retryable.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	if multi, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range multi.Unwrap() {
			if Retryable(e) {
				return true
			}
		}
		return false
	}
	if errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		// The budget of this invocation ran out; the next one has its own.
		return true
	}
	var se *SlackError
	if errors.As(err, &se) {
		return !se.Permanent()
	}
	var te *remote.TransportError
	if errors.As(err, &te) {
		// Even one sent: a duplicate alert costs less than a missed one.
		return te.Transient()
	}
	var pe *snsError
	if errors.As(err, &pe) {
		return snsRetryable(pe.err)
	}
	return false
}

// snsRetryable asks the AWS SDK's own classification (throttling codes, 5xx,
// connection errors), and treats any server-side fault as transient.
func snsRetryable(err error) bool {
	if retry.IsErrorRetryables(retry.DefaultRetryables).IsErrorRetryable(err) == aws.TrueTernary {
		return true
	}
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorFault() == smithy.FaultServer
}
