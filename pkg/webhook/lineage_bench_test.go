package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dbtcloud"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dbtcloud/dbtcloudtest"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dynamo"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/lineage"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/logging"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refresh"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refreshmap"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/secrets"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau/tableautest"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/webhook"
)

// storeCounter counts DynamoDB requests by kind on their way to
// moto_server: reads (GetItem, Query, BatchGetItem) and writes.
type storeCounter struct {
	dynamo.API
	reads, batchGets, writes atomic.Int64
}

func (c *storeCounter) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	c.writes.Add(1)
	return c.API.PutItem(ctx, in, o...)
}
func (c *storeCounter) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	c.writes.Add(1)
	return c.API.UpdateItem(ctx, in, o...)
}
func (c *storeCounter) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	c.writes.Add(1)
	return c.API.DeleteItem(ctx, in, o...)
}
func (c *storeCounter) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	c.reads.Add(1)
	return c.API.GetItem(ctx, in, o...)
}
func (c *storeCounter) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	c.reads.Add(1)
	return c.API.Query(ctx, in, o...)
}
func (c *storeCounter) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	c.reads.Add(1)
	c.batchGets.Add(1)
	return c.API.BatchGetItem(ctx, in, o...)
}

func (c *storeCounter) reset() { c.reads.Store(0); c.batchGets.Store(0); c.writes.Store(0) }

// staticSecrets is a warm function's cached secret: no Secrets Manager
// request (BenchmarkWebhookRequests counts those).
type staticSecrets struct{}

func (staticSecrets) Credentials(context.Context) (*secrets.Credentials, error) {
	return &secrets.Credentials{DBTWebhookSecret: webhookSecret, TableauPATName: patName, TableauPATSecret: patSecret, DBTAPIToken: dbtcloudtest.DefaultToken}, nil
}

var _ secrets.Source = staticSecrets{}

// timedPlanner measures the planning part of a delivery.
type timedPlanner struct {
	*lineage.Planner
	spent atomic.Int64 // nanoseconds
}

func (p *timedPlanner) Plan(ctx context.Context, run refresh.Run) lineage.Plan {
	start := time.Now()
	defer func() { p.spent.Add(int64(time.Since(start))) }()
	return p.Planner.Plan(ctx, run)
}

// span is the wall time from the first start to the last end of
// concurrent calls: what one phase of planning adds to a delivery.
type span struct {
	mu          sync.Mutex
	first, last time.Time
}

func (s *span) start() func() {
	t := time.Now()
	s.mu.Lock()
	if s.first.IsZero() || t.Before(s.first) {
		s.first = t
	}
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if now := time.Now(); now.After(s.last) {
			s.last = now
		}
	}
}

// take returns the span's length and starts it afresh.
func (s *span) take() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.last.Sub(s.first)
	s.first, s.last = time.Time{}, time.Time{}
	return max(d, 0)
}

// phases times what the planner asks dbt Cloud (the run's steps and
// artifacts, read to the end), the lineage index and Tableau.
type phases struct {
	dbt                     *dbtcloud.Client
	index                   state.LineageIndex
	tab                     lineage.Metadata
	artifacts, read, lookup span
}

func (p *phases) Check(ctx context.Context) error { return p.dbt.Check(ctx) }

func (p *phases) GetRunSteps(ctx context.Context, runID int64) ([]dbtcloud.RunStep, error) {
	defer p.artifacts.start()()
	return p.dbt.GetRunSteps(ctx, runID)
}

func (p *phases) GetArtifact(ctx context.Context, runID int64, path string, step int) (io.ReadCloser, error) {
	done := p.artifacts.start()
	body, err := p.dbt.GetArtifact(ctx, runID, path, step)
	if err != nil {
		done()
		return nil, err
	}
	return &closeTimer{ReadCloser: body, done: done}, nil
}

// closeTimer ends a phase when the artifact has been read and closed.
type closeTimer struct {
	io.ReadCloser
	done func()
}

func (c *closeTimer) Close() error { defer c.done(); return c.ReadCloser.Close() }

func (p *phases) LookupLineage(ctx context.Context, tables []string) (map[string][]state.LineageContent, error) {
	defer p.read.start()()
	return p.index.LookupLineage(ctx, tables)
}

func (p *phases) LineageBuild(ctx context.Context) (state.LineageBuild, error) {
	return p.index.LineageBuild(ctx)
}
func (p *phases) SaveLineageBuild(ctx context.Context, b state.LineageBuild) error {
	return p.index.SaveLineageBuild(ctx, b)
}
func (p *phases) AddLineage(ctx context.Context, gen int64, tables map[string][]state.LineageContent) error {
	return p.index.AddLineage(ctx, gen, tables)
}
func (p *phases) PublishLineage(ctx context.Context, gen int64, b state.LineageBuild) error {
	return p.index.PublishLineage(ctx, gen, b)
}

func (p *phases) LookupTables(ctx context.Context, names []string) (*tableau.TableLookup, error) {
	defer p.lookup.start()()
	return p.tab.LookupTables(ctx, names)
}

func (p *phases) WalkLineage(ctx context.Context, cur tableau.LineageCursor, visit func(*tableau.LineagePage) error) (tableau.LineageCursor, error) {
	return p.tab.WalkLineage(ctx, cur, visit)
}

// lineageProject is a dbt job whose runs rebuild n table models, and a
// Tableau site with content over them:
//
//   - model i builds analytics.marts.m<i> (and a not_null test, which
//     dbt build runs too); the job's steps are those of a dbt Cloud job
//     with docs: clone, profile, deps, `dbt build`, `dbt docs generate`.
//     The manifest is read from the last step, run_results.json from the
//     build step.
//   - data source ds-<d> reads the tables of models 10d to 10d+8 (one
//     extract in five is a live connection instead: nothing to refresh);
//     models 10d+9 are read by nothing (the staging and intermediate
//     models of a real project), so a delivery's index read misses them
//     and they go to the one targeted lookup, which finds nothing for them;
//   - except model 9's table, which a data source published after the
//     index was built reads: the lookup finds it.
type lineageProject struct {
	n       int
	steps   []dbtcloudtest.Step
	targets []string // LUIDs of the data sources a run refreshes
	mapJSON string   // a refresh map listing exactly those, by LUID
}

func table(i int) tableautest.TableRef {
	return tableautest.TableRef{Database: "ANALYTICS", Schema: "MARTS", Name: fmt.Sprintf("M%04d", i), ConnectionType: "snowflake"}
}

// addContent publishes the content that the index will know; addLate the
// data source published after the index was built.
func (p *lineageProject) addContent(tab *tableautest.Server) {
	for d := 0; 10*d < p.n; d++ {
		var tables []tableautest.TableRef
		for i := 10 * d; i < min(10*d+9, p.n); i++ {
			tables = append(tables, table(i))
		}
		opts := []tableautest.ItemOption{tableautest.ReadsTables(tables...)}
		live := d%5 == 4
		if live {
			opts = append(opts, tableautest.NoExtract())
		}
		id := tab.AddDatasource(fmt.Sprintf("ds-%03d", d), "Marts", opts...)
		if !live {
			p.targets = append(p.targets, id)
		}
	}
}

func (p *lineageProject) addLate(tab *tableautest.Server) {
	if p.n > 9 {
		p.targets = append(p.targets, tab.AddDatasource("published since", "Marts", tableautest.ReadsTables(table(9))))
	}
	var entries []string
	for _, id := range p.targets {
		entries = append(entries, fmt.Sprintf(`{"datasource_id":%q}`, id))
	}
	p.mapJSON = `{"jobs":{"` + jobID + `":[` + strings.Join(entries, ",") + `]}}`
}

func newLineageProject(n int) *lineageProject {
	p := &lineageProject{n: n}
	const sql = "select\n    o.order_id,\n    o.customer_id,\n    o.amount_cents / 100 as amount,\n    o.ordered_at\n" +
		"from {{ ref('stg_orders') }} o\nwhere o.status not in ('returned', 'cancelled')\n"
	nodes := map[string]any{}
	children := map[string][]string{}
	var build, docs []any
	for i := range n {
		model := fmt.Sprintf("model.bench.m%04d", i)
		test := fmt.Sprintf("test.bench.not_null_m%04d_order_id", i)
		rel := fmt.Sprintf("analytics.marts.m%04d", i)
		nodes[model] = map[string]any{
			"unique_id": model, "resource_type": "model", "package_name": "bench", "name": fmt.Sprintf("m%04d", i),
			"database": "analytics", "schema": "marts", "alias": fmt.Sprintf("m%04d", i), "relation_name": rel,
			"config":   map[string]any{"materialized": "table", "enabled": true, "tags": []string{"daily"}},
			"raw_code": sql, "compiled_code": strings.ReplaceAll(sql, "{{ ref('stg_orders') }}", "analytics.staging.stg_orders"),
			"description": "One row per order, rebuilt daily.", "fqn": []string{"bench", "marts", fmt.Sprintf("m%04d", i)},
			"depends_on": map[string]any{"nodes": []string{}, "macros": []string{}},
		}
		nodes[test] = map[string]any{
			"unique_id": test, "resource_type": "test", "package_name": "bench", "name": "not_null_order_id",
			"database": "analytics", "schema": "marts_dbt_test__audit", "alias": "not_null_order_id",
			"config": map[string]any{"materialized": "test", "enabled": true}, "depends_on": map[string]any{"nodes": []string{model}},
		}
		children[model] = []string{test}
		children[test] = []string{}
		result := func(id, status string, relation any) map[string]any {
			return map[string]any{"status": status, "unique_id": id, "relation_name": relation, "execution_time": 1.25,
				"thread_id": "Thread-1 (worker)", "message": "SUCCESS 1", "failures": nil, "compiled": true,
				"timing": []any{}, "adapter_response": map[string]any{"_message": "SUCCESS 1", "rows_affected": 1}, "batch_results": nil}
		}
		build = append(build, result(model, "success", rel), result(test, "pass", nil))
		docs = append(docs, result(model, "success", rel))
	}
	meta := func(kind, version string) map[string]any {
		return map[string]any{"dbt_schema_version": "https://schemas.getdbt.com/dbt/" + kind + "/" + version + ".json",
			"dbt_version": "1.10.11", "generated_at": "2026-11-29T06:00:00.000000Z", "invocation_id": "bench", "adapter_type": "snowflake",
			"project_name": "bench"}
	}
	mustJSON := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			panic(err)
		}
		return b
	}
	manifest := mustJSON(map[string]any{"metadata": meta("manifest", "v12"), "nodes": nodes, "sources": map[string]any{},
		"child_map": children, "parent_map": map[string]any{}})
	runResults := func(which string, results []any) []byte {
		return mustJSON(map[string]any{"metadata": meta("run-results", "v6"), "results": results, "elapsed_time": 42.0,
			"args": map[string]any{"which": which}})
	}
	p.steps = []dbtcloudtest.Step{
		{Name: "Clone git repository"},
		{Name: "Create profile from connection Snowflake"},
		{Name: "Invoke dbt with `dbt deps`"},
		{Name: "Invoke dbt with `dbt build --select tag:daily`", Artifacts: map[string][]byte{"manifest.json": manifest, "run_results.json": runResults("build", build)}},
		{Name: "Invoke dbt with `dbt docs generate`", Artifacts: map[string][]byte{"manifest.json": manifest, "run_results.json": runResults("generate", docs)}},
	}
	return p
}

// lineageDeployment is the webhook function with lineage on, wired as in
// production (app.Build): the dbt Cloud and Tableau clients against the
// simulators, the state table (claims, the lineage index, the shared
// Tableau session) on moto_server, with every request counted; and beside
// it the same function with lineage off and a refresh map that lists
// exactly the content lineage finds, for comparison.
type lineageDeployment struct {
	project         *lineageProject
	dbt             *dbtcloudtest.Server
	tab             *tableautest.Server
	store           *storeCounter
	lineage, mapped *webhook.DBTHandler
	planner         *timedPlanner
	phases          *phases
	runs            atomic.Int64
}

func newLineageDeployment(tb testing.TB, n int, latency time.Duration) *lineageDeployment {
	tb.Helper()
	ctx := context.Background()
	d := &lineageDeployment{project: newLineageProject(n)}
	d.runs.Store(70_000_000)

	d.dbt = dbtcloudtest.NewServer()
	tb.Cleanup(d.dbt.Close)
	d.dbt.AddJob(mustAtoi(jobID), "daily", dbtcloudtest.Steps(d.project.steps...))
	d.tab = tableautest.NewServer(tableautest.WithJobTimings(0, 0))
	tb.Cleanup(d.tab.Close)
	d.tab.AddPAT(patName, patSecret)
	d.project.addContent(d.tab)

	cfg, err := moto.AWSConfig(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	table := fmt.Sprintf("lineage-bench-%d", seq.Add(1))
	if err := dynamo.CreateTable(ctx, db, table); err != nil {
		tb.Fatal(err)
	}
	d.store = &storeCounter{API: dynamo.NewClient(cfg)}
	tbl, err := dynamo.New(d.store, table)
	if err != nil {
		tb.Fatal(err)
	}
	logger := logging.New(io.Discard, slog.LevelInfo)
	tc, err := tableau.NewClient(d.tab.URL(), tableau.WithPAT(patName, patSecret), tableau.WithSessionStore(tbl), tableau.WithLogger(logger))
	if err != nil {
		tb.Fatal(err)
	}
	dc, err := dbtcloud.NewClient(dbtcloud.WithBaseURL(d.dbt.URL()), dbtcloud.WithAccountID(d.dbt.AccountID()),
		dbtcloud.WithToken(d.dbt.Token()), dbtcloud.WithLogger(logger))
	if err != nil {
		tb.Fatal(err)
	}
	// The index the scheduled function built, then content published since.
	if res, err := lineage.NewBuilder(tc, tbl, lineage.WithLogger(logger)).Build(ctx); err != nil || !res.Done {
		tb.Fatalf("index build: %+v, %v", res, err)
	}
	d.project.addLate(d.tab)

	m, err := refreshmap.Parse([]byte(d.project.mapJSON))
	if err != nil {
		tb.Fatal(err)
	}
	ref := refresh.New(tbl, tc, refresh.WithJobs(tbl), refresh.WithLogger(logger))
	d.phases = &phases{dbt: dc, index: tbl, tab: tc}
	d.planner = &timedPlanner{Planner: lineage.NewPlanner(refreshmap.Empty(), d.phases, d.phases, d.phases, lineage.WithLogger(logger))}
	if d.lineage, err = webhook.NewDBT(staticSecrets{}, ref, d.planner, webhook.WithLogger(logger)); err != nil {
		tb.Fatal(err)
	}
	if d.mapped, err = webhook.NewDBT(staticSecrets{}, ref, lineage.MapOnly(m), webhook.WithLogger(logger)); err != nil {
		tb.Fatal(err)
	}
	// Warm: signed in, the connections open, as after a first delivery.
	d.deliver(tb, d.lineage)
	d.deliver(tb, d.mapped)
	d.phases.artifacts.take()
	d.phases.read.take()
	d.phases.lookup.take()
	d.dbt.SetLatency(latency)
	d.tab.SetLatency(latency)
	return d
}

func mustAtoi(s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		panic(err)
	}
	return n
}

// requests is what one delivery cost.
type requests struct {
	dbt, tableau, metadata, reads, batchGets, writes int
	took                                             time.Duration
}

func (r requests) external() int { return r.dbt + r.tableau + r.reads + r.writes }

// deliver sends one successful run of a new dbt run to h, under dbt's
// 10 s timeout, checks that every target the project expects was refreshed
// once, and returns what it cost.
func (d *lineageDeployment) deliver(tb testing.TB, h *webhook.DBTHandler) requests {
	tb.Helper()
	runID := d.runs.Add(1)
	d.dbt.AddFinishedRun(mustAtoi(jobID), runID)
	d.dbt.ResetRequests()
	d.tab.ResetRequests()
	d.store.reset()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	resp, err := h.Handle(ctx, request(success(strconv.FormatInt(runID, 10))))
	took := time.Since(start)
	var reply webhook.DBTReply
	if err == nil {
		err = json.Unmarshal([]byte(resp.Body), &reply)
	}
	if err != nil || resp.StatusCode != http.StatusOK {
		tb.Fatalf("run %d: %d %s %v", runID, resp.StatusCode, resp.Body, err)
	}
	refreshed := map[string]bool{}
	for _, o := range reply.Targets {
		if o.Result != "refreshed" {
			tb.Fatalf("run %d: %s %s: %s", runID, o.Name, o.Result, o.Error)
		}
		refreshed[o.ItemID] = true
	}
	for _, id := range d.project.targets {
		if !refreshed[id] {
			tb.Fatalf("run %d: data source %s not refreshed; reply %s", runID, id, resp.Body)
		}
	}
	if len(reply.Targets) != len(d.project.targets) {
		tb.Fatalf("run %d: %d targets, want %d", runID, len(reply.Targets), len(d.project.targets))
	}
	return requests{
		dbt: len(d.dbt.Requests()), tableau: len(d.tab.Requests()), metadata: d.tab.Count(http.MethodPost, "/api/metadata/graphql"),
		reads: int(d.store.reads.Load()), batchGets: int(d.store.batchGets.Load()), writes: int(d.store.writes.Load()), took: took,
	}
}

// BenchmarkLineageDelivery is one warm delivery of a successful run with
// lineage on, through the webhook handler, at 50 ms of latency on every dbt
// Cloud and Tableau request, for runs that rebuilt 1, 100 and 2,000
// models (see lineageProject for the site: one data source per nine
// models, a lookup for the models the index does not know). The lineage
// index is in the state table on moto_server, built beforehand by
// lineage.Builder; claims too. Each op is one delivery with lineage and
// one, of another run, with lineage off and a map listing the same
// targets: requests to dbt Cloud, Tableau (of which Metadata API) and
// DynamoDB (reads, of which BatchGetItem, and writes) per delivery for
// each, the difference, and each delivery's time.
//
//	go test -run '^$' -bench LineageDelivery -benchtime 3x ./pkg/webhook/
func BenchmarkLineageDelivery(b *testing.B) {
	for _, n := range []int{1, 100, 2000} {
		b.Run(fmt.Sprintf("models=%d", n), func(b *testing.B) {
			d := newLineageDeployment(b, n, 50*time.Millisecond)
			var lin, mp requests
			var plan, artifacts, read, lookup, slowest time.Duration
			b.ResetTimer()
			for range b.N {
				d.planner.spent.Store(0)
				r := d.deliver(b, d.lineage)
				plan += time.Duration(d.planner.spent.Load())
				artifacts += d.phases.artifacts.take()
				read += d.phases.read.take()
				lookup += d.phases.lookup.take()
				slowest = max(slowest, r.took)
				lin = lin.add(r)
				mp = mp.add(d.deliver(b, d.mapped))
			}
			b.StopTimer()
			per := func(v int) float64 { return float64(v) / float64(b.N) }
			ms := func(v time.Duration) float64 { return float64(v.Microseconds()) / 1000 / float64(b.N) }
			b.ReportMetric(0, "ns/op") // two deliveries: the figures below say which
			b.ReportMetric(float64(len(d.project.targets)), "targets")
			b.ReportMetric(float64(len(d.project.steps[3].Artifacts["manifest.json"]))/1e6, "manifest-MB")
			b.ReportMetric(per(lin.dbt), "dbt-req")
			b.ReportMetric(per(lin.tableau), "tableau-req")
			b.ReportMetric(per(lin.metadata), "metadata-req")
			b.ReportMetric(per(lin.reads), "ddb-reads")
			b.ReportMetric(per(lin.batchGets), "ddb-batchgets")
			b.ReportMetric(per(lin.writes), "ddb-writes")
			b.ReportMetric(per(mp.dbt), "map-dbt-req")
			b.ReportMetric(per(mp.tableau), "map-tableau-req")
			b.ReportMetric(per(mp.reads), "map-ddb-reads")
			b.ReportMetric(per(mp.writes), "map-ddb-writes")
			b.ReportMetric(per(lin.external()-mp.external()), "extra-req")
			b.ReportMetric(per(lin.dbt+lin.tableau-mp.dbt-mp.tableau), "extra-dbt-tableau-req")
			b.ReportMetric(ms(lin.took), "delivery-ms")
			b.ReportMetric(float64(slowest.Microseconds())/1000, "slowest-delivery-ms")
			b.ReportMetric(ms(plan), "plan-ms")
			b.ReportMetric(ms(artifacts), "plan-artifacts-ms")
			b.ReportMetric(ms(read), "plan-index-read-ms")
			b.ReportMetric(ms(lookup), "plan-lookup-ms")
			b.ReportMetric(ms(mp.took), "map-delivery-ms")
		})
	}
}

func (r requests) add(o requests) requests {
	return requests{dbt: r.dbt + o.dbt, tableau: r.tableau + o.tableau, metadata: r.metadata + o.metadata,
		reads: r.reads + o.reads, batchGets: r.batchGets + o.batchGets, writes: r.writes + o.writes, took: r.took + o.took}
}

// TestLineageDeliveryRequests pins what the benchmark reports: whatever the
// number of models a run changed, a delivery with lineage costs what the
// map path costs for the same targets plus the run's steps, its manifest
// and one run_results.json (the one step that builds), one read of the
// index build's state and one BatchGetItem per 50 changed tables (100 keys:
// each table under its three- and its two-part name), and one Metadata API
// lookup for all the tables the index does not know.
func TestLineageDeliveryRequests(t *testing.T) {
	for _, n := range []int{1, 150} {
		t.Run(fmt.Sprintf("models=%d", n), func(t *testing.T) {
			d := newLineageDeployment(t, n, 0)
			lin, mp := d.deliver(t, d.lineage), d.deliver(t, d.mapped)
			lookups := 0
			if n > 9 {
				lookups = 1
			}
			if lin.dbt != 3 || mp.dbt != 0 {
				t.Errorf("dbt Cloud requests: %d with lineage, %d without; want 3 (steps, manifest, the build's run_results.json) and 0", lin.dbt, mp.dbt)
			}
			if lin.metadata != lookups || lin.tableau != mp.tableau+lookups {
				t.Errorf("Tableau requests: %d (%d Metadata API) with lineage, %d without; want %d more, the lookup", lin.tableau, lin.metadata, mp.tableau, lookups)
			}
			batches := (2*n + 99) / 100
			if lin.batchGets != batches || lin.reads != mp.reads+1+batches || lin.writes != mp.writes {
				t.Errorf("DynamoDB: %d reads (%d BatchGetItem), %d writes with lineage; %d reads, %d writes without; want the build state and %d BatchGetItem more",
					lin.reads, lin.batchGets, lin.writes, mp.reads, mp.writes, batches)
			}
		})
	}
}
