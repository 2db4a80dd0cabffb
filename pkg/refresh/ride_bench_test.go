package refresh_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refresh"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refreshmap"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/remote"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau/tableautest"
)

// BenchmarkRide: what finding the job an already queued target rides on
// costs a delivery, against a plain 409093 that is not followed, with and
// without Tableau latency. The site holds other refresh jobs too, so that
// Query Jobs has something to filter.
func BenchmarkRide(b *testing.B) {
	for _, latency := range []time.Duration{0, 50 * time.Millisecond} {
		for _, rides := range []bool{false, true} {
			b.Run(fmt.Sprintf("tableau-latency=%s/rides=%t", latency, rides), func(b *testing.B) {
				srv := tableautest.NewServer(tableautest.WithAPIVersion("3.27"), tableautest.WithJobTimings(-1, -1))
				b.Cleanup(srv.Close)
				srv.AddPAT("admin", "admin-secret")
				ds := srv.AddDatasource("Orders", "Finance")
				for i := range 20 {
					other := srv.AddWorkbook("Other "+strconv.Itoa(i), "Finance")
					if _, err := srv.QueueRefresh(other); err != nil {
						b.Fatal(err)
					}
				}
				theirs, err := srv.QueueRefresh(ds)
				if err != nil {
					b.Fatal(err)
				}
				if err := srv.StartJob(theirs); err != nil {
					b.Fatal(err)
				}
				tc, err := tableau.NewClient(srv.URL(), tableau.WithPAT("admin", "admin-secret"), tableau.WithRetryPolicy(remote.Policy{MaxAttempts: 1}))
				if err != nil {
					b.Fatal(err)
				}
				mem := state.NewMemory()
				opts := []refresh.Option{refresh.WithJobs(mem)}
				if rides {
					opts = append(opts, refresh.WithRides(tc))
				}
				r := refresh.New(mem, tc, opts...)
				targets := refresh.MapTargets([]refreshmap.Target{{Kind: refreshmap.Datasource, ID: ds, Name: "Orders"}}, "123")
				ctx := context.Background()
				if err := tc.SignIn(ctx); err != nil {
					b.Fatal(err)
				}
				srv.SetLatency(latency)
				srv.ResetRequests()
				b.ResetTimer()
				for i := range b.N {
					out := r.Refresh(ctx, refresh.Run{RunID: strconv.Itoa(80000 + i), DBTJobID: "123", FinishedAt: time.Now()}, targets, time.Now().Add(time.Minute))
					if out[0].Result != state.OutcomeAlreadyQueued || (rides && out[0].JobID != theirs) {
						b.Fatalf("outcome %+v", out[0])
					}
				}
				b.StopTimer()
				b.ReportMetric(float64(len(srv.Requests()))/float64(b.N), "tableau-req/op")
			})
		}
	}
}
