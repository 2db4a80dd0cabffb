package notify

import (
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/backoff"

	"errors"
	"fmt"
	"time"
)

// RetryPolicy bounds how the Slack notifier repeats a post that failed in a
// way a repeat can fix: 429, 5xx and connection errors. Waits grow
// exponentially from BaseDelay, capped at MaxDelay, with full jitter so that
// Lambda instances alerting at once do not retry in step. A Retry-After from
// Slack is honoured; one longer than MaxDelay ends the retries, as does any
// wait that would pass the context's deadline, so the caller still has time
// to record that the notification failed.
//
// The zero RetryPolicy means DefaultRetryPolicy.
type RetryPolicy struct {
	// MaxAttempts counts the first try; 1 disables retries.
	MaxAttempts int
	// BaseDelay is the ceiling of the first wait; it doubles per retry.
	BaseDelay time.Duration
	// MaxDelay caps the ceiling of any wait, and the Retry-After honoured.
	MaxDelay time.Duration
}

// DefaultRetryPolicy returns 4 attempts with waits of up to 0.5s, 1s and 2s:
// enough to ride out a Slack blip or rate limit (Slack allows about one
// message per second per webhook) without eating a Lambda's budget.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{MaxAttempts: 4, BaseDelay: 500 * time.Millisecond, MaxDelay: 10 * time.Second}
}

func (p RetryPolicy) validate() error {
	var errs []error
	if p.MaxAttempts < 1 {
		errs = append(errs, fmt.Errorf("MaxAttempts must be at least 1, got %d", p.MaxAttempts))
	}
	if p.BaseDelay <= 0 {
		// Zero would turn a throttled notifier into a hot loop against Slack.
		errs = append(errs, fmt.Errorf("BaseDelay must be positive, got %s", p.BaseDelay))
	}
	if p.MaxDelay < p.BaseDelay {
		errs = append(errs, fmt.Errorf("MaxDelay (%s) must not be less than BaseDelay (%s)", p.MaxDelay, p.BaseDelay))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("notify: invalid retry policy: %w", err)
	}
	return nil
}

func (p RetryPolicy) backoff(attempt int) time.Duration {
	return backoff.Full(p.BaseDelay, p.MaxDelay, attempt)
}
