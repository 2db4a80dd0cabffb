package remote

import (
	"context"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MaxRetryAfter caps a Retry-After: no server means a wait longer than a
// day, and a larger number would overflow time.Duration.
const MaxRetryAfter = 24 * time.Hour

// Ceiling is the longest wait before the retry that follows attempt (1 for
// the first try): base doubled per attempt, capped at max.
func Ceiling(base, max time.Duration, attempt int) time.Duration {
	ceiling := base
	for i := 1; i < attempt && ceiling < max; i++ {
		ceiling *= 2
	}
	return min(ceiling, max)
}

// Jitter is "full jitter": a uniform wait in [0, ceiling], so that many
// Lambda instances throttled together do not come back together.
// See https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/.
func Jitter(ceiling time.Duration) time.Duration {
	if ceiling <= 0 {
		return 0
	}
	return rand.N(ceiling + 1)
}

// Full is Jitter(Ceiling(base, max, attempt)).
func Full(base, max time.Duration, attempt int) time.Duration {
	return Jitter(Ceiling(base, max, attempt))
}

// ParseRetryAfter reads a Retry-After header, delay-seconds or an HTTP date,
// as a wait from now; 0 when absent, malformed or past. Waits are capped at
// MaxRetryAfter. See https://www.rfc-editor.org/rfc/rfc9110#field.retry-after.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if isAllDigits(v) {
		secs, err := strconv.ParseInt(v, 10, 64)
		if err != nil || secs > int64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter // too many digits for an int64 is far away too
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), MaxRetryAfter)
	}
	return 0
}

func isAllDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// Sleep waits for d, or returns ctx's error as soon as ctx ends.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Fits reports whether a wait of d still ends before ctx's deadline: a wait
// that would not is pointless, and the caller should report the failure it
// has while it still has time to.
func Fits(ctx context.Context, d time.Duration) bool {
	deadline, ok := ctx.Deadline()
	return !ok || !time.Now().Add(d).After(deadline)
}
