package dynamo_test

import (
	"context"
	"testing"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state/statetest"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
)

func TestSessionStore(t *testing.T) {
	ctx := context.Background()
	clock := statetest.NewClock()
	tbl := newTable(t, clock.Now)
	const k = "tableau-session|https://tableau.example.com|site|pat=bot"

	if s, err := tbl.Load(ctx, k); err != nil || s != nil {
		t.Fatalf("Load on empty table = %+v, %v", s, err)
	}
	want := &tableau.Session{Token: "tok-1", SiteID: "site-luid", UserID: "user-luid", CreatedAt: clock.Now()}
	if err := tbl.Save(ctx, k, want); err != nil {
		t.Fatal(err)
	}
	got, err := tbl.Load(ctx, k)
	if err != nil || got == nil || *got != *want {
		t.Fatalf("Load = %+v, %v; want %+v", got, err, want)
	}
	if err := tbl.Save(ctx, k, &tableau.Session{}); err != nil {
		t.Fatal(err)
	}
	if s, err := tbl.Load(ctx, k); err != nil || s != nil {
		t.Fatalf("Load after saving an empty session = %+v, %v", s, err)
	}

	steps := []struct {
		name  string
		do    func() (bool, error)
		wantL bool
	}{
		{"a takes the free lease", func() (bool, error) { return tbl.TryLock(ctx, k, "a", 10*time.Second) }, true},
		{"b is refused while a holds it", func() (bool, error) { return tbl.TryLock(ctx, k, "b", 10*time.Second) }, false},
		{"a may take it again", func() (bool, error) { return tbl.TryLock(ctx, k, "a", 10*time.Second) }, true},
		{"b's unlock does not free a's lease", func() (bool, error) {
			if err := tbl.Unlock(ctx, k, "b"); err != nil {
				return false, err
			}
			return tbl.TryLock(ctx, k, "b", 10*time.Second)
		}, false},
		{"b takes it once a's lease lapsed", func() (bool, error) {
			clock.Advance(11 * time.Second)
			return tbl.TryLock(ctx, k, "b", 10*time.Second)
		}, true},
		{"a takes it after b unlocks", func() (bool, error) {
			if err := tbl.Unlock(ctx, k, "b"); err != nil {
				return false, err
			}
			return tbl.TryLock(ctx, k, "a", 10*time.Second)
		}, true},
	}
	for _, st := range steps {
		got, err := st.do()
		if err != nil || got != st.wantL {
			t.Fatalf("%s: got %v, %v; want %v", st.name, got, err, st.wantL)
		}
	}
}
