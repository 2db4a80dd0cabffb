package state

import (
	"context"
	"sort"
	"time"
)

// Notification states in the outbox.
const (
	NotifyPending = "PENDING"
	NotifySent    = "SENT"
	NotifyGaveUp  = "GAVE_UP"
)

// Notification is one message about one failure. Key identifies the failure
// (e.g. the Tableau job id), so that the same failure reported twice is sent
// once.
type Notification struct {
	Key      string
	Status   string
	Payload  []byte // the message, encoded by the sender
	Attempts int
	// NotBefore is when a pending notification may be tried again.
	NotBefore time.Time
	CreatedAt time.Time
	LastError string
}

// Outbox holds notifications until they are delivered, so that a failure
// notification is retried and never lost silently, and sent once.
type Outbox interface {
	// Enqueue adds a pending notification and reports whether it is new;
	// false means the failure was already notified (or is being).
	Enqueue(ctx context.Context, n Notification) (bool, error)
	// Claim takes a pending notification for one delivery attempt until
	// holdUntil, so that two invocations do not both send it, and returns
	// the number of this attempt.
	Claim(ctx context.Context, key string, holdUntil time.Time) (attempt int, ok bool, err error)
	// Delivered marks it sent.
	Delivered(ctx context.Context, key string) error
	// Failed records a failed attempt: pending again from retryAt, or given
	// up when giveUp is set.
	Failed(ctx context.Context, key, reason string, retryAt time.Time, giveUp bool) error
	// Pending lists notifications due at now, oldest first.
	Pending(ctx context.Context, now time.Time) ([]Notification, error)
}

var _ Outbox = (*Memory)(nil)

// Enqueue implements Outbox.
func (m *Memory) Enqueue(_ context.Context, n Notification) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.outbox[n.Key]; ok {
		return false, nil
	}
	n.Status, n.CreatedAt = NotifyPending, m.now()
	m.outbox[n.Key] = n
	return true, nil
}

// Claim implements Outbox.
func (m *Memory) Claim(_ context.Context, key string, holdUntil time.Time) (int, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := m.outbox[key]
	if !ok || n.Status != NotifyPending || m.now().Before(n.NotBefore) {
		return 0, false, nil
	}
	n.NotBefore = holdUntil
	n.Attempts++
	m.outbox[key] = n
	return n.Attempts, true, nil
}

// Delivered implements Outbox.
func (m *Memory) Delivered(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if n, ok := m.outbox[key]; ok {
		n.Status = NotifySent
		m.outbox[key] = n
	}
	return nil
}

// Failed implements Outbox.
func (m *Memory) Failed(_ context.Context, key, reason string, retryAt time.Time, giveUp bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if n, ok := m.outbox[key]; ok {
		n.LastError, n.NotBefore = reason, retryAt
		if giveUp {
			n.Status = NotifyGaveUp
		}
		m.outbox[key] = n
	}
	return nil
}

// Pending implements Outbox.
func (m *Memory) Pending(_ context.Context, now time.Time) ([]Notification, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Notification
	for _, n := range m.outbox {
		if n.Status == NotifyPending && !now.Before(n.NotBefore) {
			out = append(out, n)
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].CreatedAt.Before(out[b].CreatedAt) })
	return out, nil
}
