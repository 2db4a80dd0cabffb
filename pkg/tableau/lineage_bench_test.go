package tableau_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau/tableautest"
)

// BenchmarkLineageIndexBuild builds the lineage index of a site with 5,000
// published data sources over 20,000 Snowflake tables (four tables each; one
// in twenty reads two of them through custom SQL; one in three is live),
// 1,000 workbooks that read
// two published data sources each and 500 workbooks with an embedded
// extract over four tables, against the simulator with 50 ms of latency on
// every request: Metadata API calls, pages, edges, and wall time per build
// (ns/op), at the default page size and at 500.
//
//	go test -run '^$' -bench LineageIndexBuild -benchtime 1x ./pkg/tableau/
func BenchmarkLineageIndexBuild(b *testing.B) {
	srv := tableautest.NewServer(tableautest.WithSite(simSite))
	b.Cleanup(srv.Close)
	srv.AddPAT(simPAT, simSecret)
	srv.AddLargeSite()
	srv.SetLatency(50 * time.Millisecond)

	for _, size := range []int{tableau.DefaultLineagePageSize, 500} {
		b.Run(fmt.Sprintf("page=%d", size), func(b *testing.B) {
			c := newSimClientB(b, srv)
			ctx := context.Background()
			var calls, pages, edges int
			for b.Loop() {
				srv.ResetRequests()
				_, err := c.WalkLineage(ctx, tableau.LineageCursor{PageSize: size}, func(p *tableau.LineagePage) error {
					pages++
					edges += len(p.Edges())
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
				calls += srv.Count("POST", "/api/metadata/graphql")
			}
			b.ReportMetric(float64(calls)/float64(b.N), "metadata-calls/op")
			b.ReportMetric(float64(pages)/float64(b.N), "pages/op")
			b.ReportMetric(float64(edges)/float64(b.N), "edges/op")
		})
	}
}

func newSimClientB(b *testing.B, srv *tableautest.Server) *tableau.Client {
	b.Helper()
	c, err := tableau.NewClient(srv.URL(), tableau.WithSite(simSite), tableau.WithPAT(simPAT, simSecret))
	if err != nil {
		b.Fatal(err)
	}
	return c
}
