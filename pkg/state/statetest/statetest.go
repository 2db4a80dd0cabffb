// Package statetest holds the behaviour every state store must have, as tests
// that each implementation runs against itself.
package statetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
)

// Clock is a settable clock shared by a store and its test.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock at a fixed instant. Whole seconds, because the
// DynamoDB store keeps its TTL in epoch seconds.
func NewClock() *Clock { return &Clock{t: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// TestIdempotency runs the contract against stores made by newStore, each
// reading time from the clock it is given.
func TestIdempotency(t *testing.T, newStore func(t *testing.T, clock func() time.Time) state.Idempotency) {
	ctx := context.Background()
	var n atomic.Int64
	key := func() state.Key {
		return state.Key{RunID: fmt.Sprint(900000 + n.Add(1)), Target: "workbook:name:Finance/Sales Overview"}
	}
	claim := func(c *Clock, k state.Key, owner string, hold time.Duration) state.Claim {
		return state.Claim{Key: k, Owner: owner, DBTJobID: "123", HoldUntil: c.Now().Add(hold), Retention: 72 * time.Hour}
	}
	// wantClaimed returns the record that holds the key.
	wantClaimed := func(t *testing.T, err error, status state.Status) state.Record {
		t.Helper()
		var ce *state.ClaimedError
		if !errors.As(err, &ce) {
			t.Fatalf("Begin() = %v, want ClaimedError", err)
		}
		if ce.Existing.Status != status {
			t.Fatalf("existing status = %s, want %s", ce.Existing.Status, status)
		}
		return ce.Existing
	}

	t.Run("claim, complete, repeat is refused with the outcome", func(t *testing.T) {
		c := NewClock()
		s := newStore(t, c.Now)
		k := key()
		if err := s.Begin(ctx, claim(c, k, "a", time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := s.Complete(ctx, k, "a", state.OutcomeRefreshed, "job-1"); err != nil {
			t.Fatal(err)
		}
		// Repeating the same completion is how a retry after a lost reply
		// looks: it succeeds. Another outcome does not.
		if err := s.Complete(ctx, k, "a", state.OutcomeRefreshed, "job-1"); err != nil {
			t.Errorf("repeated Complete = %v", err)
		}
		if err := s.Complete(ctx, k, "a", state.OutcomeRefreshed, "job-2"); !errors.Is(err, state.ErrNotHeld) {
			t.Errorf("Complete with another job = %v, want ErrNotHeld", err)
		}
		existing := wantClaimed(t, s.Begin(ctx, claim(c, k, "b", time.Minute)), state.StatusCompleted)
		if existing.JobID != "job-1" || existing.Outcome != state.OutcomeRefreshed || existing.DBTJobID != "123" {
			t.Errorf("existing = %+v", existing)
		}
		r, err := s.Get(ctx, k)
		if err != nil || r == nil || r.Status != state.StatusCompleted || r.JobID != "job-1" {
			t.Fatalf("Get() = %+v, %v", r, err)
		}
	})
	t.Run("in-progress claim blocks until it lapses", func(t *testing.T) {
		c := NewClock()
		s := newStore(t, c.Now)
		k := key()
		if err := s.Begin(ctx, claim(c, k, "a", 10*time.Second)); err != nil {
			t.Fatal(err)
		}
		wantClaimed(t, s.Begin(ctx, claim(c, k, "b", 10*time.Second)), state.StatusInProgress)
		c.Advance(11 * time.Second)
		if err := s.Begin(ctx, claim(c, k, "b", 10*time.Second)); err != nil {
			t.Fatalf("Begin after lapse = %v", err)
		}
		// The crashed owner must not complete or release its successor's claim.
		if err := s.Complete(ctx, k, "a", state.OutcomeRefreshed, "job-a"); !errors.Is(err, state.ErrNotHeld) {
			t.Errorf("stale owner's Complete = %v, want ErrNotHeld", err)
		}
		if err := s.Release(ctx, k, "a"); err != nil {
			t.Fatal(err)
		}
		wantClaimed(t, s.Begin(ctx, claim(c, k, "c", time.Second)), state.StatusInProgress)
		if err := s.Complete(ctx, k, "b", state.OutcomeAlreadyQueued, ""); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("release lets a retry claim", func(t *testing.T) {
		c := NewClock()
		s := newStore(t, c.Now)
		k := key()
		if err := s.Begin(ctx, claim(c, k, "a", time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := s.Release(ctx, k, "a"); err != nil {
			t.Fatal(err)
		}
		if r, err := s.Get(ctx, k); err != nil || r != nil {
			t.Fatalf("Get after release = %+v, %v", r, err)
		}
		if err := s.Begin(ctx, claim(c, k, "b", time.Minute)); err != nil {
			t.Fatalf("Begin after release = %v", err)
		}
	})
	t.Run("completed record expires after retention even before TTL deletion", func(t *testing.T) {
		c := NewClock()
		s := newStore(t, c.Now)
		k := key()
		if err := s.Begin(ctx, claim(c, k, "a", time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := s.Complete(ctx, k, "a", state.OutcomeRefreshed, "j"); err != nil {
			t.Fatal(err)
		}
		c.Advance(71 * time.Hour)
		wantClaimed(t, s.Begin(ctx, claim(c, k, "b", time.Minute)), state.StatusCompleted)
		c.Advance(2 * time.Hour)
		if err := s.Begin(ctx, claim(c, k, "b", time.Minute)); err != nil {
			t.Fatalf("Begin after retention = %v", err)
		}
	})
	t.Run("targets of one run are independent", func(t *testing.T) {
		c := NewClock()
		s := newStore(t, c.Now)
		k1 := key()
		k2 := state.Key{RunID: k1.RunID, Target: "datasource:name:/Orders"}
		if err := s.Begin(ctx, claim(c, k1, "a", time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := s.Begin(ctx, claim(c, k2, "a", time.Minute)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("concurrent claims: exactly one wins", func(t *testing.T) {
		c := NewClock()
		s := newStore(t, c.Now)
		k := key()
		var wins, refused atomic.Int32
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := s.Begin(ctx, claim(c, k, fmt.Sprint("owner-", i), time.Minute))
				var ce *state.ClaimedError
				switch {
				case err == nil:
					wins.Add(1)
				case errors.As(err, &ce):
					refused.Add(1)
				default:
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 || refused.Load() != 19 {
			t.Errorf("wins=%d refused=%d, want 1 and 19", wins.Load(), refused.Load())
		}
	})
}
