package dynamo_test

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dynamo"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/motoserver"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state/statetest"
)

var (
	db   *dynamodb.Client
	moto *motoserver.Server
)

func TestMain(m *testing.M) {
	os.Exit(motoserver.Main(m, func(s *motoserver.Server) {
		cfg, err := s.AWSConfig(context.Background())
		if err != nil {
			panic(err)
		}
		db, moto = dynamodb.NewFromConfig(cfg), s
	}))
}

var tables atomic.Int64

// newTable creates a fresh table so that tests do not see each other's items.
func newTable(t *testing.T, now func() time.Time) *dynamo.Table {
	t.Helper()
	name := fmt.Sprintf("state-%d", tables.Add(1))
	if err := dynamo.CreateTable(context.Background(), db, name); err != nil {
		t.Fatal(err)
	}
	tbl, err := dynamo.New(db, name, dynamo.WithClock(now))
	if err != nil {
		t.Fatal(err)
	}
	return tbl
}

func TestIdempotency(t *testing.T) {
	statetest.TestIdempotency(t, func(t *testing.T, now func() time.Time) state.Idempotency {
		return newTable(t, now)
	})
}

func TestNewRequiresTable(t *testing.T) {
	if _, err := dynamo.New(db, ""); err == nil {
		t.Error("New with no table name succeeded")
	}
}

func TestScheduledRuns(t *testing.T) {
	statetest.TestScheduledRuns(t, func(t *testing.T, now func() time.Time) state.ScheduledRuns {
		return newTable(t, now).Runs()
	})
}

func TestTableauJobs(t *testing.T) {
	statetest.TestTableauJobs(t, func(t *testing.T, now func() time.Time) statetest.Store { return newTable(t, now) })
}

func TestOutbox(t *testing.T) {
	statetest.TestOutbox(t, func(t *testing.T, now func() time.Time) statetest.Store { return newTable(t, now) })
}

func TestLineageIndex(t *testing.T) {
	statetest.TestLineageIndex(t, func(t *testing.T, now func() time.Time) state.LineageIndex { return newTable(t, now) })
}

func TestSiteLineage(t *testing.T) {
	statetest.TestSiteLineage(t, func(t *testing.T, now func() time.Time) statetest.SiteLineageStore { return newTable(t, now) })
}

func TestDeferrals(t *testing.T) {
	statetest.TestDeferrals(t, func(t *testing.T, now func() time.Time) state.Deferrals { return newTable(t, now) })
}
