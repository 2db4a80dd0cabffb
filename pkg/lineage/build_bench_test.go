package lineage_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dynamo"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/lineage"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/motoserver"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau/tableautest"
)

// countingAPI counts DynamoDB requests on their way to moto_server.
type countingAPI struct {
	dynamo.API
	updates, puts, reads atomic.Int64
}

func (c *countingAPI) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	c.updates.Add(1)
	return c.API.UpdateItem(ctx, in, o...)
}
func (c *countingAPI) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	c.puts.Add(1)
	return c.API.PutItem(ctx, in, o...)
}
func (c *countingAPI) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	c.reads.Add(1)
	return c.API.GetItem(ctx, in, o...)
}

// benchSite is the site of BenchmarkLineageIndexBuild in package tableau
// (tableautest.AddLargeSite).
func benchSite(tb testing.TB) (*tableautest.Server, []string) {
	srv := tableautest.NewServer(tableautest.WithSite("bench"))
	tb.Cleanup(srv.Close)
	srv.AddPAT("indexer", "indexer-secret")
	keys := srv.AddLargeSite()
	return srv, keys
}

func benchClient(tb testing.TB, srv *tableautest.Server) *tableau.Client {
	tb.Helper()
	c, err := tableau.NewClient(srv.URL(), tableau.WithSite("bench"), tableau.WithPAT("indexer", "indexer-secret"))
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// wantIndex is what a whole index of the site holds: every page's tables,
// merged, each table's content sorted, as a lookup returns it.
func wantIndex(tb testing.TB, c *tableau.Client) map[string][]state.LineageContent {
	tb.Helper()
	sets := map[string]map[state.LineageContent]bool{}
	_, err := c.WalkLineage(context.Background(), tableau.LineageCursor{}, func(p *tableau.LineagePage) error {
		for t, cs := range lineage.Tables(p.Edges()) {
			if sets[t] == nil {
				sets[t] = map[state.LineageContent]bool{}
			}
			for _, c := range cs {
				sets[t][c] = true
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string][]state.LineageContent{}
	for t, set := range sets {
		for c := range set {
			out[t] = append(out[t], c)
		}
		state.SortContent(out[t])
	}
	return out
}

// BenchmarkLineageIndexStore builds the lineage index of the site above
// (benchSite) with lineage.Builder into the state table on moto_server,
// at 50 ms of latency on every Tableau request, as the scheduled function
// does on {"lineage_index": true}:
//
//   - lambda-timeout=900s: the scheduled function's timeout; the build
//     gets the scheduler's deadline, 30 s before the function's;
//   - lambda-timeout=60s: invocations of 60 s (a 30 s deadline each), so
//     that the build stops before the deadline and the next invocation
//     resumes it, until it is published.
//
// Each reports Metadata API calls, store writes (UpdateItem: one per table
// and page that reaches it; PutItem: the build's progress after every page
// and its publication), invocations, and the time from the first
// invocation's start to publication (build-s, and its share of the 900 s
// window); then checks that the published index is whole: a lookup of all
// 20,000 tables returns, for each, exactly the content a walk of the site
// finds (tables-found). Run it alone, once (moto_server handles one
// DynamoDB request at a time, so the writes dominate):
//
//	go test -run '^$' -bench LineageIndexStore -benchtime 1x -timeout 60m ./pkg/lineage/
func BenchmarkLineageIndexStore(b *testing.B) {
	ctx := context.Background()
	moto, err := motoserver.Start(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(moto.Stop)
	cfg, err := moto.AWSConfig(ctx)
	if err != nil {
		b.Fatal(err)
	}
	srv, keys := benchSite(b)
	want := wantIndex(b, benchClient(b, srv))
	if len(want) != len(keys) {
		b.Fatalf("the site's walk finds %d tables, want %d", len(want), len(keys))
	}
	srv.SetLatency(50 * time.Millisecond)

	const window, margin = 900 * time.Second, 30 * time.Second
	for _, budget := range []time.Duration{window, 60 * time.Second} {
		b.Run(fmt.Sprintf("lambda-timeout=%ds", budget/time.Second), func(b *testing.B) {
			var calls, updates, puts, invocations, failed int
			var took time.Duration
			var tbl *dynamo.Table
			for i := range b.N {
				name := fmt.Sprintf("index-%d-%d", budget/time.Second, i)
				if err := dynamo.CreateTable(ctx, dynamo.NewClient(cfg), name); err != nil {
					b.Fatal(err)
				}
				api := &countingAPI{API: dynamo.NewClient(cfg)}
				if tbl, err = dynamo.New(api, name); err != nil {
					b.Fatal(err)
				}
				builder := lineage.NewBuilder(benchClient(b, srv), tbl)
				srv.ResetRequests()
				start := time.Now()
				for done := false; !done; {
					if invocations++; invocations > 100*b.N {
						b.Fatalf("not published after %d invocations", invocations)
					}
					ictx, cancel := context.WithTimeout(ctx, budget-margin)
					res, err := builder.Build(ictx)
					cancel()
					switch {
					case errors.Is(err, context.DeadlineExceeded):
						failed++ // cut off mid-page: the next invocation redoes the page
					case err != nil:
						b.Fatal(err)
					}
					done = res.Done
				}
				took += time.Since(start)
				calls += srv.Count("POST", "/api/metadata/graphql")
				updates += int(api.updates.Load())
				puts += int(api.puts.Load())
			}
			b.StopTimer()
			// In slices: moto_server answers one request at a time, and 200
			// BatchGetItems at once would outwait the client's 2 s attempts.
			got := map[string][]state.LineageContent{}
			for i := 0; i < len(keys); i += 1000 {
				part, err := tbl.LookupLineage(ctx, keys[i:min(i+1000, len(keys))])
				if err != nil {
					b.Fatal(err)
				}
				for k, cs := range part {
					got[k] = cs
				}
			}
			if !reflect.DeepEqual(got, want) {
				missing := 0
				for _, k := range keys {
					if !reflect.DeepEqual(got[k], want[k]) {
						missing++
					}
				}
				b.Fatalf("the published index differs from the site's lineage for %d of %d tables", missing, len(keys))
			}
			per := func(v int) float64 { return float64(v) / float64(b.N) }
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(per(calls), "metadata-calls")
			b.ReportMetric(per(updates), "store-item-writes")
			b.ReportMetric(per(puts), "store-state-writes")
			b.ReportMetric(per(invocations), "invocations")
			b.ReportMetric(per(failed), "invocations-cut-off")
			b.ReportMetric(took.Seconds()/float64(b.N), "build-s")
			b.ReportMetric(took.Seconds()/float64(b.N)/window.Seconds(), "window-share")
			b.ReportMetric(float64(len(got)), "tables-found")
		})
	}
}
