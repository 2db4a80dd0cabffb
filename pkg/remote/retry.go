package remote

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Policy says how often and how patiently a failed call is repeated. Waits
// grow exponentially from BaseDelay, capped at MaxDelay, with full jitter, so
// that many Lambda instances throttled together do not come back together.
type Policy struct {
	MaxAttempts int           // total tries, including the first; 1 disables retries
	BaseDelay   time.Duration // upper bound of the first wait; must be positive if MaxAttempts > 1
	MaxDelay    time.Duration // upper bound of any wait, the server's Retry-After included
}

// DefaultPolicy is 4 attempts with waits of up to 0.5 s, 1 s and 2 s
// (capped at 10 s): enough to ride out a deploy, a blip or a burst of 429s
// without eating a Lambda's budget.
func DefaultPolicy() Policy {
	return Policy{MaxAttempts: 4, BaseDelay: 500 * time.Millisecond, MaxDelay: 10 * time.Second}
}

// Validate reports every problem with p at once.
func (p Policy) Validate() error {
	var errs []error
	if p.MaxAttempts < 1 {
		errs = append(errs, fmt.Errorf("MaxAttempts %d: want at least 1", p.MaxAttempts))
	}
	if p.BaseDelay <= 0 && p.MaxAttempts > 1 {
		errs = append(errs, fmt.Errorf("BaseDelay %s: want a positive delay, or a throttled client retries in a hot loop", p.BaseDelay))
	}
	if p.MaxDelay < p.BaseDelay {
		errs = append(errs, fmt.Errorf("MaxDelay %s is less than BaseDelay %s", p.MaxDelay, p.BaseDelay))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("retry policy: %w", err)
	}
	return nil
}

// Waiter is implemented by errors that carry the wait the server asked for
// (its Retry-After), zero when it named none.
type Waiter interface {
	ServerWait() time.Duration
}

// Retrier repeats a call as its Policy allows. The zero Retrier makes one
// attempt; it is safe for concurrent use once built.
type Retrier struct {
	Policy Policy
	// Retryable says whether a failure is worth another attempt; nil means
	// none is. It is the client's rule: only the client knows whether its
	// request is safe to repeat after that failure.
	Retryable func(error) bool
	// OnRetry, when set, is told of each retry before its wait, to log it.
	OnRetry func(ctx context.Context, attempt int, wait time.Duration, err error)
	// Sleep and Jitter default to this package's; tests replace them to see
	// the waits without spending them.
	Sleep  func(ctx context.Context, d time.Duration) error
	Jitter func(ceiling time.Duration) time.Duration
}

// Do calls op until it succeeds, fails in a way Retryable rejects, runs out
// of attempts, or the next wait is longer than the server may ask for or
// would pass ctx's deadline. It returns op's last error; when it stopped for
// want of time or attempts after more than one try, the error says so and
// still unwraps to op's.
func (r *Retrier) Do(ctx context.Context, op func(ctx context.Context) error) error {
	if err := ctx.Err(); err != nil {
		// Nothing is sent: even a request that must not be repeated is
		// certainly not done.
		return err
	}
	max := max(r.Policy.MaxAttempts, 1)
	for attempt := 1; ; attempt++ {
		err := op(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || r.Retryable == nil || !r.Retryable(err) {
			return err
		}
		if attempt >= max {
			return stopped(err, attempt, "no attempts left")
		}
		wait, ok := r.wait(attempt, err)
		if !ok {
			return stopped(err, attempt, fmt.Sprintf("the server asked to wait %s, more than the %s allowed", wait, r.Policy.MaxDelay))
		}
		if !Fits(ctx, wait) {
			// Sleeping would only run into the deadline: report the real
			// cause while the caller still has time to act on it.
			return stopped(err, attempt, fmt.Sprintf("waiting %s would pass the deadline", wait.Round(time.Millisecond)))
		}
		if r.OnRetry != nil {
			r.OnRetry(ctx, attempt+1, wait, err)
		}
		sleep := r.Sleep
		if sleep == nil {
			sleep = Sleep
		}
		if sleep(ctx, wait) != nil {
			return stopped(err, attempt, "the caller gave up waiting")
		}
	}
}

// wait is the pause before the attempt after attempt: the server's wait when
// it named one (false when that is longer than MaxDelay), else backoff.
func (r *Retrier) wait(attempt int, err error) (time.Duration, bool) {
	var w Waiter
	if errors.As(err, &w) && w.ServerWait() > 0 {
		return w.ServerWait(), w.ServerWait() <= r.Policy.MaxDelay
	}
	jitter := r.Jitter
	if jitter == nil {
		jitter = Jitter
	}
	return jitter(Ceiling(r.Policy.BaseDelay, r.Policy.MaxDelay, attempt)), true
}

// StoppedError is a call that failed and was not repeated further, with why.
type StoppedError struct {
	Err      error // the last attempt's error
	Attempts int
	Reason   string
}

func (e *StoppedError) Error() string {
	tries := "1 attempt"
	if e.Attempts != 1 {
		tries = fmt.Sprintf("%d attempts", e.Attempts)
	}
	return fmt.Sprintf("%v (after %s; not retried: %s)", e.Err, tries, e.Reason)
}

// Unwrap returns the last attempt's error, so errors.Is and errors.As see
// through to the service's own error.
func (e *StoppedError) Unwrap() error { return e.Err }

func stopped(err error, attempts int, reason string) error {
	if attempts == 1 && reason == "no attempts left" {
		return err // a policy of one attempt: nothing to explain
	}
	return &StoppedError{Err: err, Attempts: attempts, Reason: reason}
}
