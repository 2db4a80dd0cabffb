package notify

import (
	"context"
	"time"
)

// SetSleep replaces how s waits between attempts, so tests record the waits
// instead of spending them.
func SetSleep(s *Slack, sleep func(context.Context, time.Duration) error) { s.sleep = sleep }
