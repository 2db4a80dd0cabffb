package dynamo_test

import (
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
