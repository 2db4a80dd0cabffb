package dynamo_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state/statetest"
)

func TestTargetStatuses(t *testing.T) {
	statetest.TestTargetStatuses(t, func(t *testing.T, now func() time.Time) state.TargetStatuses { return newTable(t, now) })
}

func TestJobRunDetails(t *testing.T) {
	statetest.TestJobRunDetails(t, func(t *testing.T, now func() time.Time) statetest.Store { return newTable(t, now) })
}

// TestStatusBuckets: many targets share 64 buckets, written concurrently,
// and none is lost; a target not written for 90 days drops out.
func TestStatusBuckets(t *testing.T) {
	c := statetest.NewClock()
	tbl := newTable(t, c.Now)
	ctx := context.Background()
	const targets = 200
	var wg sync.WaitGroup
	errs := make(chan error, targets)
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < targets; i += 16 {
				tg := state.StatusTarget{Key: fmt.Sprintf("datasource:id:ds-%03d", i), Kind: "datasource", ItemID: fmt.Sprintf("ds-%03d", i)}
				errs <- tbl.RecordRun(ctx, tg, state.TargetRun{RunID: "1", At: c.Now(), Result: state.OutcomeSucceeded})
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got, err := tbl.TargetStatuses(ctx)
	if err != nil || len(got) != targets {
		t.Fatalf("TargetStatuses = %d statuses, %v; want %d", len(got), err, targets)
	}
	c.Advance(89 * 24 * time.Hour)
	if err := tbl.RecordRun(ctx, state.StatusTarget{Key: "datasource:id:ds-000"}, state.TargetRun{RunID: "2", At: c.Now(), Result: state.OutcomeFailed}); err != nil {
		t.Fatal(err)
	}
	c.Advance(2 * 24 * time.Hour)
	got, err = tbl.TargetStatuses(ctx)
	if err != nil || len(got) != 1 || got[0].Key != "datasource:id:ds-000" || len(got[0].Runs) != 2 {
		t.Fatalf("after 91 days: %+v, %v; want only the target written since", got, err)
	}
}
