package state_test

import (
	"testing"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state/statetest"
)

func TestMemory(t *testing.T) {
	statetest.TestIdempotency(t, func(_ *testing.T, now func() time.Time) state.Idempotency {
		return state.NewMemory(now)
	})
}
