package scheduler_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dbtcloud"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dbtcloud/dbtcloudtest"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/scheduler"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
)

// BenchmarkScheduledRunCost measures, on the simulated clock, what one dbt run
// costs the scheduled path: dbt Cloud API calls and Lambda seconds (time
// spent inside invocations: simulated waiting plus the real time the code
// took here against the simulators), for runs of 2, 10 and 40 minutes. "backoff" is
// this package with its defaults: the tick polls with capped backoff for up
// to 5 minutes, and a follow-up every 5 minutes checks the run once.
// "fixed-5s" is the loop teams write by hand: trigger, then poll every 5 s
// inside one invocation, which a 15-minute Lambda limit cuts off.
//
//	go test -run '^$' -bench ScheduledRunCost ./pkg/scheduler/
func BenchmarkScheduledRunCost(b *testing.B) {
	for _, mins := range []int{2, 10, 40} {
		timings := dbtcloudtest.RunTimings(20*time.Second, 10*time.Second, time.Duration(mins)*time.Minute-30*time.Second)
		b.Run(fmt.Sprintf("run=%dm/strategy=backoff", mins), func(b *testing.B) {
			w := newWorld(b, func(s *dbtcloudtest.Server) { s.AddJob(123, "Bench", timings) })
			w.invocationLimit = 15 * time.Minute
			var calls, invocations int
			var lambda time.Duration
			for i := 0; i < b.N; i++ {
				w.dbt.ResetRequests()
				tick := w.clock.Now()
				real := time.Now()
				res, err := w.invoke(scheduler.Event{Jobs: []string{"123"}, ScheduledTime: tick.Format(time.RFC3339Nano)})
				lambda += w.clock.Now().Sub(tick) + time.Since(real)
				invocations++
				for err == nil && res.Jobs[0].Outcome == state.OutcomeRunning {
					// The next follow-up fires on the 5-minute grid.
					w.clock.Set(tick.Add((w.clock.Now().Sub(tick)/(5*time.Minute) + 1) * 5 * time.Minute))
					start, real := w.clock.Now(), time.Now()
					res, err = w.invoke(scheduler.Event{Follow: true})
					lambda += w.clock.Now().Sub(start) + time.Since(real)
					invocations++
				}
				if err != nil || res.Jobs[0].Outcome != state.OutcomeRefreshed {
					b.Fatalf("run did not settle: %+v, %v", res, err)
				}
				calls += w.dbt.Count("", "/api/v2/")
				w.clock.Advance(time.Hour)
			}
			b.ReportMetric(float64(calls)/float64(b.N), "dbt-calls/run")
			b.ReportMetric(lambda.Seconds()/float64(b.N), "lambda-s/run")
			b.ReportMetric(float64(invocations)/float64(b.N), "invocations/run")
		})
		b.Run(fmt.Sprintf("run=%dm/strategy=fixed-5s", mins), func(b *testing.B) {
			w := newWorld(b, func(s *dbtcloudtest.Server) { s.AddJob(123, "Bench", timings) })
			var calls, finished int
			var lambda time.Duration
			ctx := context.Background()
			for i := 0; i < b.N; i++ {
				w.dbt.ResetRequests()
				start := w.clock.Now()
				run, err := w.client.TriggerRun(ctx, 123, &dbtcloud.TriggerRunRequest{Cause: "bench"})
				if err != nil {
					b.Fatal(err)
				}
				for w.clock.Now().Sub(start) < 15*time.Minute {
					r, err := w.client.GetRun(ctx, run.ID)
					if err != nil {
						b.Fatal(err)
					}
					if r.Status.Terminal() {
						finished++
						break
					}
					w.clock.Advance(5 * time.Second)
				}
				lambda += w.clock.Now().Sub(start)
				calls += w.dbt.Count("", "/api/v2/")
				w.clock.Advance(time.Hour)
			}
			b.ReportMetric(float64(calls)/float64(b.N), "dbt-calls/run")
			b.ReportMetric(lambda.Seconds()/float64(b.N), "lambda-s/run")
			b.ReportMetric(float64(finished)/float64(b.N), "runs-seen-finished/run")
		})
	}
}
