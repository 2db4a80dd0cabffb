package state_test

import (
	"testing"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state/statetest"
)

func TestMemoryTargetStatuses(t *testing.T) {
	statetest.TestTargetStatuses(t, func(_ *testing.T, now func() time.Time) state.TargetStatuses {
		return state.NewMemory(state.WithClock(now))
	})
}

func TestMemoryJobRunDetails(t *testing.T) {
	statetest.TestJobRunDetails(t, func(_ *testing.T, now func() time.Time) statetest.Store { return state.NewMemory(state.WithClock(now)) })
}
