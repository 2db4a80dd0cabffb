package dbtcloud

import (
	"errors"
	"fmt"
	"time"
)

// RetryPolicy bounds how the client retries transient failures: 429 replies
// (waiting for Retry-After when the server sends it), 5xx replies and
// connection failures. Waits grow exponentially from BaseDelay up to MaxDelay
// with full jitter, and the client never starts a wait that would end after
// the context's deadline: it returns the last error instead, so a Lambda can
// record its state before it is killed.
//
// Without WithRetryPolicy the client makes up to 4 attempts with BaseDelay
// 500ms and MaxDelay 10s.
//
// TriggerRun is retried only when dbt Cloud certainly did not act (429, 503,
// or a failed connection), because a repeated trigger starts a second run.
type RetryPolicy struct {
	// MaxAttempts counts the first try; 1 disables retries.
	MaxAttempts int
	// BaseDelay is the ceiling of the first wait; it doubles per retry.
	BaseDelay time.Duration
	// MaxDelay caps the wait ceiling. A Retry-After from the server is
	// honoured even when longer.
	MaxDelay time.Duration
}

// defaultRetryPolicy is used when WithRetryPolicy is not given: four attempts
// spread over a few seconds, enough to ride out a deploy or a burst of 429s
// without eating a Lambda's whole budget.
var defaultRetryPolicy = RetryPolicy{MaxAttempts: 4, BaseDelay: 500 * time.Millisecond, MaxDelay: 10 * time.Second}

func (p RetryPolicy) validate() error {
	var errs []error
	if p.MaxAttempts < 1 {
		errs = append(errs, fmt.Errorf("MaxAttempts must be at least 1, got %d", p.MaxAttempts))
	}
	if p.BaseDelay <= 0 {
		// Zero would turn a throttled client into a hot loop against dbt.
		errs = append(errs, fmt.Errorf("BaseDelay must be positive, got %s", p.BaseDelay))
	}
	if p.MaxDelay < p.BaseDelay {
		errs = append(errs, fmt.Errorf("MaxDelay (%s) must not be less than BaseDelay (%s)", p.MaxDelay, p.BaseDelay))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("dbtcloud: invalid retry policy: %w", err)
	}
	return nil
}
