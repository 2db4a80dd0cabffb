package state

import (
	"context"
	"sort"
	"time"
)

// Deferred is a target of a dbt run that no invocation queued within its
// time (Tableau's capacity for the site was taken), recorded so that the
// five-minute follow-up queues it. It is not claimed: whoever queues it
// later claims it then, as every refresh is claimed, so a target recorded
// twice, or queued meanwhile by a redelivery of the run, is still queued
// once.
type Deferred struct {
	Key      // the run and target; never a delivery
	DBTJobID string
	// Payload is the target as package refresh encodes it: what it needs
	// to queue the target without planning the run again.
	Payload []byte
	// DeferredAt is when the target was first deferred; the follow-up gives
	// up on targets deferred too long ago.
	DeferredAt time.Time
	// NotBefore is when the target may be tried again: Tableau's
	// Retry-After, when it asked for a wait; zero for at once.
	NotBefore time.Time
}

// Deferrals records deferred targets until they are queued. Stores find
// them with a Query (DynamoDB), never a Scan.
type Deferrals interface {
	// Defer records targets, replacing a record of the same key; each is
	// kept for retention at most.
	Defer(ctx context.Context, ds []Deferred, retention time.Duration) error
	// DeferredTargets lists every recorded target, in run and target order.
	DeferredTargets(ctx context.Context) ([]Deferred, error)
	// Undefer forgets targets that are settled. Forgetting one that is not
	// recorded does nothing.
	Undefer(ctx context.Context, keys []Key) error
}

var _ Deferrals = (*Memory)(nil)

// deferredEntry is a Deferred in memory, with when it expires.
type deferredEntry struct {
	Deferred
	expires time.Time
}

// Defer implements Deferrals.
func (m *Memory) Defer(_ context.Context, ds []Deferred, retention time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, d := range ds {
		d.Payload = append([]byte(nil), d.Payload...)
		m.deferred[d.Key] = deferredEntry{Deferred: d, expires: m.now().Add(retention)}
	}
	return nil
}

// DeferredTargets implements Deferrals.
func (m *Memory) DeferredTargets(context.Context) ([]Deferred, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	out := make([]Deferred, 0, len(m.deferred))
	for _, d := range m.deferred {
		if now.Before(d.expires) {
			out = append(out, d.Deferred)
		}
	}
	sort.Slice(out, func(a, b int) bool {
		if out[a].RunID != out[b].RunID {
			return out[a].RunID < out[b].RunID
		}
		return out[a].Target < out[b].Target
	})
	return out, nil
}

// Undefer implements Deferrals.
func (m *Memory) Undefer(_ context.Context, keys []Key) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range keys {
		delete(m.deferred, k)
	}
	return nil
}
