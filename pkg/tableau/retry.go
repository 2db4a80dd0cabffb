package tableau

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/remote"
)

// exchange runs one request, repeating it as the retry policy and the
// request's mode allow (see remote.Retrier). sess may be nil for calls that
// need no session.
//
// Requests that are not safe to repeat (a refresh POST, creating a webhook)
// are repeated only when the server certainly did not act: 429, 503, or a
// connection that could not be made.
func (c *Client) exchange(ctx context.Context, r *request, sess *Session) error {
	rt := remote.Retrier{
		Policy:    c.retry,
		Retryable: func(err error) bool { return retryAllowed(r.mode, err) },
		Sleep:     c.sleep,
		OnRetry: func(ctx context.Context, attempt int, wait time.Duration, err error) {
			c.logger.DebugContext(ctx, "tableau retrying", "method", r.method, "attempt", attempt,
				"retry_in", wait.String(), "error", err.Error())
		},
	}
	return rt.Do(ctx, func(ctx context.Context) error { return c.attempt(ctx, r, sess) })
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
	var tr *remote.TransportError
	if errors.As(err, &tr) {
		return tr.Transient() && (!tr.Sent || mode == retryIdempotent)
	}
	var fe *FormatError
	if errors.As(err, &fe) {
		// A cut-off body may come whole next time; for a POST, the server acted.
		return fe.truncated() && mode == retryIdempotent
	}
	return false
}
