package tableau

import (
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/backoff"

	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// RetryPolicy says how often and how patiently the Client repeats a request
// that failed in a way a repeat can fix: 429, 5xx and connection errors.
// Waits grow exponentially from BaseDelay, capped at MaxDelay, with full
// jitter so that many Lambda instances do not retry in step. A Retry-After
// from the server is honoured; one longer than MaxDelay ends the retries, as
// does a wait that would pass the context's deadline.
//
// Requests that are not safe to repeat (a refresh POST, creating a webhook)
// are repeated only when the server certainly did not act: 429, 503, or a
// connection that could not be made.
type RetryPolicy struct {
	MaxAttempts int           // total tries, including the first; 1 disables retries
	BaseDelay   time.Duration // upper bound of the first wait
	MaxDelay    time.Duration // upper bound of any wait
}

// DefaultRetryPolicy returns the policy a Client uses unless told otherwise:
// 4 attempts, waits up to 0.5s, 1s, 2s (capped at 10s).
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{MaxAttempts: 4, BaseDelay: 500 * time.Millisecond, MaxDelay: 10 * time.Second}
}

func (p RetryPolicy) validate() error {
	switch {
	case p.MaxAttempts < 1:
		return fmt.Errorf("retry policy: MaxAttempts %d: want at least 1", p.MaxAttempts)
	case p.BaseDelay < 0 || p.MaxDelay < 0:
		return errors.New("retry policy: delays must not be negative")
	case p.MaxDelay < p.BaseDelay:
		return fmt.Errorf("retry policy: MaxDelay %s is less than BaseDelay %s", p.MaxDelay, p.BaseDelay)
	}
	return nil
}

// exchange runs one request with retries. sess may be nil for calls that need
// no session.
func (c *Client) exchange(ctx context.Context, r *request, sess *Session) error {
	for attempt := 1; ; attempt++ {
		err := c.attempt(ctx, r, sess)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || attempt >= c.retry.MaxAttempts || !retryAllowed(r.mode, err) {
			return err
		}
		delay, ok := c.retryDelay(attempt, err)
		if !ok {
			return err
		}
		if !backoff.Fits(ctx, delay) {
			// Sleeping would only run into the deadline: report the real cause now.
			return err
		}
		c.logger.DebugContext(ctx, "tableau retrying", "method", r.method, "attempt", attempt+1,
			"retry_in", delay.String(), "error", err.Error())
		if c.sleep(ctx, delay) != nil {
			return err
		}
	}
}

// retryAllowed decides whether err, for a request of the given mode, is worth
// repeating.
func retryAllowed(mode retryMode, err error) bool {
	var te *Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusTooManyRequests, http.StatusServiceUnavailable:
			// The server turned the request away without acting on it.
			return true
		case http.StatusInternalServerError, http.StatusBadGateway, http.StatusGatewayTimeout:
			// The server (or the one behind the gateway) may have acted.
			return mode == retryIdempotent
		}
		return false
	}
	var tr *TransportError
	if errors.As(err, &tr) {
		if errors.Is(err, context.Canceled) {
			return false
		}
		return !tr.Sent || mode == retryIdempotent
	}
	var fe *FormatError
	if errors.As(err, &fe) {
		// A cut-off body may come whole next time; for a POST, the server acted.
		return fe.truncated() && mode == retryIdempotent
	}
	return false
}

// retryDelay returns how long to wait before attempt+1, and false when the
// server asked for a longer wait than the policy allows.
func (c *Client) retryDelay(attempt int, err error) (time.Duration, bool) {
	var te *Error
	if errors.As(err, &te) && te.RetryAfter > 0 {
		if te.RetryAfter > c.retry.MaxDelay {
			return 0, false
		}
		return te.RetryAfter, true
	}
	return backoff.Full(c.retry.BaseDelay, c.retry.MaxDelay, attempt), true
}
