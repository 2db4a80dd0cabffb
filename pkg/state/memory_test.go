package state_test

import (
	"testing"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state/statetest"
)

func TestMemory(t *testing.T) {
	statetest.TestIdempotency(t, func(_ *testing.T, now func() time.Time) state.Idempotency {
		return state.NewMemory(state.WithClock(now))
	})
}

func TestMemoryRuns(t *testing.T) {
	statetest.TestScheduledRuns(t, func(_ *testing.T, now func() time.Time) state.ScheduledRuns {
		return state.NewMemory(state.WithClock(now)).Runs()
	})
}

func TestMemoryTableauJobs(t *testing.T) {
	statetest.TestTableauJobs(t, func(_ *testing.T, now func() time.Time) statetest.Store { return state.NewMemory(state.WithClock(now)) })
}

func TestMemoryOutbox(t *testing.T) {
	statetest.TestOutbox(t, func(_ *testing.T, now func() time.Time) statetest.Store { return state.NewMemory(state.WithClock(now)) })
}

func TestMemoryLineageIndex(t *testing.T) {
	statetest.TestLineageIndex(t, func(_ *testing.T, now func() time.Time) state.LineageIndex {
		return state.NewMemory(state.WithClock(now))
	})
}

func TestMemoryDeferrals(t *testing.T) {
	statetest.TestDeferrals(t, func(_ *testing.T, now func() time.Time) state.Deferrals {
		return state.NewMemory(state.WithClock(now))
	})
}

func TestMemorySiteLineage(t *testing.T) {
	statetest.TestSiteLineage(t, func(_ *testing.T, now func() time.Time) statetest.SiteLineageStore {
		return state.NewMemory(state.WithClock(now))
	})
}
