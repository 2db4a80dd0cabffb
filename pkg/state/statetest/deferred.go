package statetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
)

// TestDeferrals runs the Deferrals contract.
func TestDeferrals(t *testing.T, newStore func(t *testing.T, clock func() time.Time) state.Deferrals) {
	ctx := context.Background()
	mk := func(c *Clock, run, target string) state.Deferred {
		return state.Deferred{
			Key: state.Key{RunID: run, Target: target}, DBTJobID: "123",
			Payload: []byte(`{"target":"` + target + `"}`), DeferredAt: c.Now(),
		}
	}
	list := func(t *testing.T, s state.Deferrals) []state.Deferred {
		t.Helper()
		ds, err := s.DeferredTargets(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return ds
	}

	t.Run("recorded, listed in run and target order, replaced, forgotten", func(t *testing.T) {
		c := NewClock()
		s := newStore(t, c.Now)
		if ds := list(t, s); len(ds) != 0 {
			t.Fatalf("a new store lists %+v", ds)
		}
		b := mk(c, "70002", "workbook:id:b")
		a1 := mk(c, "70001", "workbook:id:z")
		a2 := mk(c, "70001", "datasource:name:\"\"/\"Orders\"")
		a2.NotBefore = c.Now().Add(29 * time.Minute)
		if err := s.Defer(ctx, []state.Deferred{b, a1, a2}, time.Hour); err != nil {
			t.Fatal(err)
		}
		ds := list(t, s)
		if len(ds) != 3 || ds[0].Key != a2.Key || ds[1].Key != a1.Key || ds[2].Key != b.Key {
			t.Fatalf("DeferredTargets = %+v, want a2, a1, b", ds)
		}
		got := ds[0]
		if got.DBTJobID != "123" || string(got.Payload) != string(a2.Payload) || !got.DeferredAt.Equal(a2.DeferredAt) || !got.NotBefore.Equal(a2.NotBefore) {
			t.Errorf("listed %+v, want %+v", got, a2)
		}
		if !ds[1].NotBefore.IsZero() {
			t.Errorf("NotBefore of a target due at once = %v, want zero", ds[1].NotBefore)
		}

		// Deferred again (a redelivery, or a follow-up that met a 429): one
		// record, the newer one.
		a1.NotBefore = c.Now().Add(time.Minute)
		if err := s.Defer(ctx, []state.Deferred{a1}, time.Hour); err != nil {
			t.Fatal(err)
		}
		if ds := list(t, s); len(ds) != 3 || !ds[1].NotBefore.Equal(a1.NotBefore) {
			t.Fatalf("after deferring a1 again: %+v", ds)
		}

		// A key named twice in one call is one record, the last. (DynamoDB
		// refuses a batch that names a key twice; moto_server does not
		// check, so only the outcome is tested here.)
		a1again := a1
		a1again.NotBefore = time.Time{}
		if err := s.Defer(ctx, []state.Deferred{a1, a1again}, time.Hour); err != nil {
			t.Fatal(err)
		}
		if ds := list(t, s); len(ds) != 3 || !ds[1].NotBefore.IsZero() {
			t.Fatalf("after deferring a1 twice in one call: %+v; want a1 once, the last record", ds)
		}
		if err := s.Undefer(ctx, []state.Key{a1.Key, b.Key, a1.Key, {RunID: "70009", Target: "never deferred"}}); err != nil {
			t.Fatal(err)
		}
		if ds := list(t, s); len(ds) != 1 || ds[0].Key != a2.Key {
			t.Fatalf("after Undefer: %+v, want a2 alone", ds)
		}
	})

	t.Run("expire after retention even before TTL deletion", func(t *testing.T) {
		c := NewClock()
		s := newStore(t, c.Now)
		if err := s.Defer(ctx, []state.Deferred{mk(c, "70003", "workbook:id:a")}, time.Hour); err != nil {
			t.Fatal(err)
		}
		c.Advance(59 * time.Minute)
		if ds := list(t, s); len(ds) != 1 {
			t.Fatalf("within retention: %+v", ds)
		}
		c.Advance(2 * time.Minute)
		if ds := list(t, s); len(ds) != 0 {
			t.Fatalf("after retention: %+v", ds)
		}
	})

	t.Run("hundreds at once, and concurrent writers", func(t *testing.T) {
		c := NewClock()
		s := newStore(t, c.Now)
		var ds []state.Deferred
		for i := range 260 {
			ds = append(ds, mk(c, fmt.Sprint(71000+i%3), fmt.Sprintf("workbook:id:%04d", i)))
		}
		// Four writers defer overlapping halves while a fifth forgets the
		// first hundred: those stay forgotten or recorded, nothing else
		// is lost.
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				half := ds[w%2*130 : w%2*130+130]
				if err := s.Defer(ctx, half, time.Hour); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if got := list(t, s); len(got) != len(ds) {
			t.Fatalf("%d recorded, want %d", len(got), len(ds))
		}
		keys := make([]state.Key, 0, 100)
		for _, d := range ds[:100] {
			keys = append(keys, d.Key)
		}
		if err := s.Undefer(ctx, keys); err != nil {
			t.Fatal(err)
		}
		got := list(t, s)
		if len(got) != len(ds)-100 {
			t.Fatalf("%d left after forgetting 100 of %d", len(got), len(ds))
		}
		left := map[state.Key]bool{}
		for _, d := range got {
			left[d.Key] = true
		}
		for _, d := range ds[100:] {
			if !left[d.Key] {
				t.Errorf("%s was lost", d.Key)
			}
		}
	})
}
