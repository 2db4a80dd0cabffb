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

// TestScheduledRuns runs the ScheduledRuns contract against stores made by
// newStore.
func TestScheduledRuns(t *testing.T, newStore func(t *testing.T, clock func() time.Time) state.ScheduledRuns) {
	ctx := context.Background()
	held := func(t *testing.T, err error, phase string) {
		t.Helper()
		var le *state.LeaseHeldError
		if !errors.As(err, &le) || le.Existing.Phase != phase {
			t.Fatalf("err = %v, want LeaseHeldError in phase %s", err, phase)
		}
	}
	t.Run("trigger, record, follow, settle once", func(t *testing.T) {
		c := NewClock()
		s := newStore(t, c.Now)
		if err := s.BeginTrigger(ctx, "123", "a", "t1", c.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		held(t, s.BeginTrigger(ctx, "123", "b", "t1", c.Now().Add(time.Minute)), state.PhaseTriggering)
		if err := s.Started(ctx, "123", "a", 777, c.Now()); err != nil {
			t.Fatal(err)
		}
		// A run in flight blocks triggering however long it lasts.
		c.Advance(3 * time.Hour)
		held(t, s.BeginTrigger(ctx, "123", "b", "t2", c.Now().Add(time.Minute)), state.PhaseRunning)
		r, err := s.Get(ctx, "123")
		if err != nil || r == nil || r.RunID != 777 || r.Phase != state.PhaseRunning || !r.TriggeredAt.Equal(c.Now().Add(-3*time.Hour)) {
			t.Fatalf("Get = %+v, %v", r, err)
		}
		if ok, err := s.Settle(ctx, "123", 776, "failed"); err != nil || ok {
			t.Fatalf("Settle of another run = %v, %v", ok, err)
		}
		if ok, err := s.Settle(ctx, "123", 777, "refreshed"); err != nil || !ok {
			t.Fatalf("Settle = %v, %v", ok, err)
		}
		if ok, err := s.Settle(ctx, "123", 777, "refreshed"); err != nil || ok {
			t.Fatalf("second Settle = %v, %v; want false", ok, err)
		}
		r, err = s.Get(ctx, "123")
		if err != nil || r == nil || r.Phase != state.PhaseSettled || r.Outcome != "refreshed" || r.Tick != "t1" || r.RunID != 777 {
			t.Fatalf("Get after settle = %+v, %v", r, err)
		}
		// A retried invocation of tick t1 must not trigger again, nor one of
		// an earlier tick; tick t2 may.
		held(t, s.BeginTrigger(ctx, "123", "b", "t1", c.Now().Add(time.Minute)), state.PhaseSettled)
		held(t, s.BeginTrigger(ctx, "123", "b", "t0", c.Now().Add(time.Minute)), state.PhaseSettled)
		if err := s.BeginTrigger(ctx, "123", "b", "t2", c.Now().Add(time.Minute)); err != nil {
			t.Fatalf("BeginTrigger for the next tick = %v", err)
		}
	})
	t.Run("abandoned or lapsed trigger lease frees the job", func(t *testing.T) {
		c := NewClock()
		s := newStore(t, c.Now)
		if err := s.BeginTrigger(ctx, "7", "a", "t1", c.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := s.Abandon(ctx, "7", "b"); err != nil { // not b's lease: no effect
			t.Fatal(err)
		}
		held(t, s.BeginTrigger(ctx, "7", "b", "t1", c.Now().Add(time.Minute)), state.PhaseTriggering)
		if err := s.Abandon(ctx, "7", "a"); err != nil {
			t.Fatal(err)
		}
		if err := s.BeginTrigger(ctx, "7", "b", "t1", c.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		c.Advance(2 * time.Minute) // b died while triggering
		if err := s.BeginTrigger(ctx, "7", "c", "t1", c.Now().Add(time.Minute)); err != nil {
			t.Fatalf("BeginTrigger after lapse = %v", err)
		}
		if err := s.Started(ctx, "7", "b", 1, c.Now()); err == nil {
			t.Error("a lapsed owner recorded its run over the new lease")
		}
	})
	t.Run("list", func(t *testing.T) {
		c := NewClock()
		s := newStore(t, c.Now)
		for i, job := range []string{"30", "10", "20"} {
			owner := fmt.Sprint("o", i)
			if err := s.BeginTrigger(ctx, job, owner, "t1", c.Now().Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			if err := s.Started(ctx, job, owner, int64(100+i), c.Now()); err != nil {
				t.Fatal(err)
			}
		}
		list, err := s.List(ctx)
		if err != nil || len(list) != 3 || list[0].JobID != "10" || list[2].JobID != "30" || list[0].RunID != 101 {
			t.Fatalf("List = %+v, %v", list, err)
		}
	})
	t.Run("concurrent triggers: one wins", func(t *testing.T) {
		c := NewClock()
		s := newStore(t, c.Now)
		var wins atomic.Int32
		var wg sync.WaitGroup
		for i := range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if s.BeginTrigger(ctx, "55", fmt.Sprint("o", i), "t1", c.Now().Add(time.Minute)) == nil {
					wins.Add(1)
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Errorf("%d invocations took the trigger lease, want 1", wins.Load())
		}
	})
}
