package status_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dynamo"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/motoserver"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/status"
)

// countingDB counts the DynamoDB requests a page view makes.
type countingDB struct {
	*dynamodb.Client
	queries, others atomic.Int64
}

func (c *countingDB) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	c.queries.Add(1)
	return c.Client.Query(ctx, in, o...)
}

func (c *countingDB) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	c.others.Add(1)
	return c.Client.GetItem(ctx, in, o...)
}

func (c *countingDB) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	c.others.Add(1)
	return c.Client.PutItem(ctx, in, o...)
}

func (c *countingDB) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	c.others.Add(1)
	return c.Client.UpdateItem(ctx, in, o...)
}

func (c *countingDB) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	c.others.Add(1)
	return c.Client.DeleteItem(ctx, in, o...)
}

// BenchmarkStatusPage is one authenticated view of /status.json and of
// /status with 500 targets, each with its full history of ten runs, and 50
// refreshes running, in a state table in moto_server. It reports the
// latency percentiles and the DynamoDB requests per view (queries only:
// never a scan, never an item read per target).
//
//	go test -run '^$' -bench StatusPage -benchtime 200x ./pkg/status/
func BenchmarkStatusPage(b *testing.B) {
	const targets, running = 500, 50
	ctx := context.Background()
	moto, err := motoserver.Start(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer moto.Stop()
	cfg, err := moto.AWSConfig(ctx)
	if err != nil {
		b.Fatal(err)
	}
	db := &countingDB{Client: dynamodb.NewFromConfig(cfg)}
	if err := dynamo.CreateTable(ctx, db.Client, "status-bench"); err != nil {
		b.Fatal(err)
	}
	tbl, err := dynamo.New(db, "status-bench")
	if err != nil {
		b.Fatal(err)
	}
	fillStatuses(b, tbl, targets, running)

	// Where a view's time goes: the two reads alone.
	for _, part := range []struct {
		name string
		read func() error
	}{
		// The floor: one small request to moto_server, as busy as it is.
		{"one-item", func() error { _, err := tbl.Get(ctx, state.Key{RunID: "0", Target: "none"}); return err }},
		{"statuses", func() error { _, err := tbl.TargetStatuses(ctx); return err }},
		{"open-jobs", func() error { _, err := tbl.OpenJobs(ctx); return err }},
	} {
		b.Run("read="+part.name, func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			for range b.N {
				start := time.Now()
				if err := part.read(); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}

	p, err := status.New(withPassword(password), tbl, tbl)
	if err != nil {
		b.Fatal(err)
	}
	auth := basic("ops", password)
	for _, route := range []string{status.JSONRoute, status.Route} {
		b.Run(fmt.Sprintf("route=%s/targets=%d", strings.TrimPrefix(route, "GET /"), targets), func(b *testing.B) {
			resp := get(b, p, route, "", auth) // the template parsed, connections open
			if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Body, "Target 499") {
				b.Fatalf("view = %d %.200s", resp.StatusCode, resp.Body)
			}
			db.queries.Store(0)
			db.others.Store(0)
			lat := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				resp := get(b, p, route, "", auth)
				lat = append(lat, time.Since(start))
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("view = %d", resp.StatusCode)
				}
			}
			b.StopTimer()
			slices.Sort(lat)
			b.Logf("slowest views: %v", lat[max(0, len(lat)-8):])
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(db.queries.Load())/float64(b.N), "dynamodb-queries/op")
			b.ReportMetric(float64(db.others.Load())/float64(b.N), "dynamodb-other-req/op")
			b.ReportMetric(float64(len(resp.Body))/1024, "reply-KiB")
		})
	}
}

// BenchmarkStatusPageWork is the same views with the state in memory: the
// page's own work (building the report, encoding 2 MB of JSON or HTML),
// without the state table's.
//
//	go test -run '^$' -bench StatusPageWork ./pkg/status/
func BenchmarkStatusPageWork(b *testing.B) {
	mem := state.NewMemory()
	fillStatuses(b, mem, 500, 50)
	p, err := status.New(withPassword(password), mem, mem)
	if err != nil {
		b.Fatal(err)
	}
	for _, route := range []string{status.JSONRoute, status.Route} {
		b.Run("route="+strings.TrimPrefix(route, "GET /"), func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				if resp := get(b, p, route, "", basic("ops", password)); resp.StatusCode != http.StatusOK {
					b.Fatal(resp.StatusCode)
				}
			}
		})
	}
}

// statusStore is where fillStatuses writes.
type statusStore interface {
	state.Idempotency
	state.TableauJobs
	state.TargetStatuses
}

// fillStatuses writes n targets with state.HistoryLength runs each (the
// last one failed for a tenth of them) and opens a refresh job on the first
// running ones, 32 writers at a time.
func fillStatuses(tb testing.TB, tbl statusStore, n, running int) {
	tb.Helper()
	ctx := context.Background()
	now := time.Now()
	work := make(chan int)
	var wg sync.WaitGroup
	var failed atomic.Value
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if err := fillOne(ctx, tbl, i, i < running, now); err != nil {
					failed.Store(err)
				}
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		tb.Fatal(err)
	}
}

func fillOne(ctx context.Context, tbl statusStore, i int, running bool, now time.Time) error {
	kind := "datasource"
	if i%2 == 0 {
		kind = "workbook"
	}
	t := state.StatusTarget{
		Key: fmt.Sprintf("%s:name:%q/%q", kind, "Project "+fmt.Sprint(i%7), fmt.Sprintf("Target %d", i)), Kind: kind,
		Name: fmt.Sprintf("Target %d", i), Project: "Project " + fmt.Sprint(i%7), ItemID: fmt.Sprintf("luid-%04d", i),
		URL: fmt.Sprintf("https://tableau.example.com/#/site/s/%ss/%d", kind, i),
	}
	for r := range state.HistoryLength {
		at := now.Add(-time.Duration(state.HistoryLength-r) * time.Hour)
		run := state.TargetRun{
			RunID: fmt.Sprint(100000 + i*100 + r), DBTJobID: fmt.Sprint(100 + i%20),
			DBTRunURL: fmt.Sprintf("https://cloud.getdbt.com/deploy/1/projects/2/runs/%d", 100000+i*100+r), DBTFinishedAt: at.Add(-20 * time.Second),
			At: at, JobID: fmt.Sprintf("job-%d-%d", i, r), QueuedAt: at, FinishedAt: at.Add(3 * time.Minute), Result: state.OutcomeSucceeded,
		}
		if r == state.HistoryLength-1 && i%10 == 0 {
			run.Result, run.Notes = state.OutcomeFailed, "Database login failed for user 'etl'. Check the data source's embedded credentials."
		}
		if err := tbl.RecordRun(ctx, t, run); err != nil {
			return err
		}
	}
	if !running {
		return nil
	}
	k := state.Key{RunID: fmt.Sprint(200000 + i), Target: t.Key}
	if err := tbl.Begin(ctx, state.Claim{Key: k, Owner: "o", DBTJobID: "100", HoldUntil: now.Add(time.Minute), Retention: time.Hour}); err != nil {
		return err
	}
	return tbl.CompleteJob(ctx, "o", state.TableauJob{JobID: fmt.Sprint("job-open-", i), Run: k, DBTJobID: "100", ItemKind: kind, ItemID: t.ItemID,
		QueuedAt: now.Add(-time.Minute), DBTFinishedAt: now.Add(-80 * time.Second)})
}
