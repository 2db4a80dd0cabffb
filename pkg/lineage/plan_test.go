package lineage_test

import (
	"context"
	"errors"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dbtcloud"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/demo"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/lineage"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/notify"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refresh"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refreshmap"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/relname"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/remote"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau/tableautest"
)

// alerts records what would be notified, keyed as the outbox dedupes.
type alerts struct {
	mu   sync.Mutex
	keys map[string]notify.Message
}

func (a *alerts) Raise(_ context.Context, key string, m notify.Message) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.keys == nil {
		a.keys = map[string]notify.Message{}
	}
	a.keys[key] = m
	return nil
}

// rig is the demo: a dbt Cloud whose job 123 builds a small project, and a
// Tableau site with content over its tables (see package demo).
type rig struct {
	d      *demo.Demo
	dbt    *dbtcloud.Client
	tab    *tableau.Client
	index  *state.Memory
	alerts *alerts
	m      *refreshmap.Map
}

func newRig(t *testing.T) *rig {
	t.Helper()
	d := demo.Start()
	t.Cleanup(d.Close)
	dbt, err := dbtcloud.NewClient(dbtcloud.WithBaseURL(d.DBT.URL()), dbtcloud.WithAccountID(d.DBT.AccountID()), dbtcloud.WithToken(demo.DBTToken),
		dbtcloud.WithRetryPolicy(remote.Policy{MaxAttempts: 1}))
	if err != nil {
		t.Fatal(err)
	}
	tab, err := tableau.NewClient(d.Tableau.URL(), tableau.WithSite(demo.Site), tableau.WithPAT(demo.PATName, demo.PATSecret),
		tableau.WithRetryPolicy(remote.Policy{MaxAttempts: 1}))
	if err != nil {
		t.Fatal(err)
	}
	m, err := refreshmap.Parse([]byte(demo.RefreshMap))
	if err != nil {
		t.Fatal(err)
	}
	return &rig{d: d, dbt: dbt, tab: tab, index: state.NewMemory(), alerts: &alerts{}, m: m}
}

func (r *rig) planner(opts ...lineage.Option) *lineage.Planner {
	return lineage.NewPlanner(r.m, r.dbt, r.tab, r.index, append([]lineage.Option{lineage.WithAlerts(r.alerts)}, opts...)...)
}

// names lists targets as "source kind name".
func names(ts []refresh.Target) []string {
	var out []string
	for _, t := range ts {
		out = append(out, string(t.Source)+" "+string(t.Kind)+" "+t.Name)
	}
	sort.Strings(out)
	return out
}

// The demo run rebuilt orders, orders_daily and the seed country_codes
// (changing the views orders_v and order_facts_v), and not customers.
var wantDemoTargets = []string{
	"lineage datasource Daily Orders",
	"lineage datasource Orders",
	"lineage workbook Country Report", // custom SQL over the seed
	"lineage workbook Order Facts",    // a view over an ephemeral model over orders
	"lineage workbook Sales Overview", // an embedded extract, refreshed through its workbook
	"map workbook Executive Summary",  // the map's own entry
}

func TestPlanDemoRun(t *testing.T) {
	r := newRig(t)
	plan := r.planner().Plan(context.Background(), refresh.Run{RunID: "70001", DBTJobID: demo.JobID})
	if plan.Err != nil {
		t.Fatal(plan.Err)
	}
	if got := names(plan.Targets); !slices.Equal(got, wantDemoTargets) {
		t.Errorf("targets:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(wantDemoTargets, "\n  "))
	}
	for _, not := range []string{"Customers", "Orders Dashboard", "Orders (live)", "Scratchpad"} {
		for _, tg := range plan.Targets {
			if tg.Name == not {
				t.Errorf("%s is a target: %s", not, tg.Why)
			}
		}
	}
	if got := names(plan.Live); !slices.Equal(got, []string{"lineage datasource Orders (live)"}) {
		t.Errorf("live connections skipped: %v", got)
	}
	if got := names(plan.Excluded); !slices.Equal(got, []string{"lineage workbook Scratchpad"}) {
		t.Errorf("excluded: %v", got)
	}
	if plan.Lookups != 1 {
		t.Errorf("%d targeted lookups with an empty index, want 1", plan.Lookups)
	}
	var unmatched []string
	for _, c := range plan.Unmatched {
		unmatched = append(unmatched, c.Node)
	}
	if !slices.Equal(unmatched, []string{"snapshot.shop.customers_snapshot"}) {
		t.Errorf("changes no content reads: %v", unmatched)
	}
	for _, tg := range plan.Targets {
		if tg.Name == "Order Facts" {
			want := `model.shop.orders → model.shop.order_facts → model.shop.order_facts_v → ANALYTICS.MARTS.ORDER_FACTS_V → workbook "Order Facts" (Finance)`
			if !strings.HasPrefix(tg.Why, want) {
				t.Errorf("why = %q, want it to start %q", tg.Why, want)
			}
		}
	}

	// Once the index is built, the plan is the same. The one lookup left
	// is for the snapshot's table, which no content reads, so no index
	// entry names it.
	res, err := lineage.NewBuilder(r.tab, r.index).Build(context.Background())
	if err != nil || !res.Done {
		t.Fatalf("index build: %+v, %v", res, err)
	}
	known, err := r.index.LookupLineage(context.Background(), []string{"ANALYTICS.MARTS.ORDERS", "ANALYTICS.MARTS.ORDER_FACTS_V", "ANALYTICS.SEEDS.COUNTRY_CODES"})
	if err != nil || len(known) != 3 {
		t.Fatalf("the index knows %v, %v", known, err)
	}
	plan = r.planner().Plan(context.Background(), refresh.Run{RunID: "70001", DBTJobID: demo.JobID})
	if plan.Err != nil || plan.Lookups != 1 || !slices.Equal(names(plan.Targets), wantDemoTargets) {
		t.Errorf("with the index: %d lookups, %v, err %v", plan.Lookups, names(plan.Targets), plan.Err)
	}
}

// Content published since the index was built, over a table the index does
// not know, is found by the one targeted lookup.
func TestPlanFindsContentNewerThanTheIndex(t *testing.T) {
	r := newRig(t)
	if _, err := lineage.NewBuilder(r.tab, r.index).Build(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.d.Tableau.AddDatasource("Customer history", "Finance", tableautest.ReadsTables(tableautest.TableRef{
		Database: "ANALYTICS", Schema: "SNAPSHOTS", Name: "CUSTOMERS_SNAPSHOT", ConnectionType: "snowflake"}))
	plan := r.planner().Plan(context.Background(), refresh.Run{RunID: "70001", DBTJobID: demo.JobID})
	if plan.Err != nil || plan.Lookups != 1 || !slices.Contains(names(plan.Targets), "lineage datasource Customer history") {
		t.Errorf("%d lookups, %v, err %v", plan.Lookups, names(plan.Targets), plan.Err)
	}
}

// dbt and Tableau may name the database differently; an alias maps them.
func TestPlanAliases(t *testing.T) {
	r := newRig(t)
	r.d.Tableau.AddDatasource("Orders (prod share)", "Finance", tableautest.ReadsTables(tableautest.TableRef{
		Database: "ANALYTICS_PROD", Schema: "MARTS", Name: "ORDERS", ConnectionType: "snowflake"}))
	aliases, err := relname.ParseAliases(`{"analytics": ["ANALYTICS", "analytics_prod"]}`)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		opts []lineage.Option
		want bool
	}{{"without the alias", nil, false}, {"with it", []lineage.Option{lineage.WithAliases(aliases)}, true}} {
		plan := r.planner(tt.opts...).Plan(context.Background(), refresh.Run{RunID: "70001", DBTJobID: demo.JobID})
		if got := slices.Contains(names(plan.Targets), "lineage datasource Orders (prod share)"); got != tt.want || plan.Err != nil {
			t.Errorf("%s: found the share's content: %t, want %t (err %v)", tt.name, got, tt.want, plan.Err)
		}
	}
}

// The map's entry and lineage reaching the same content: refreshed once,
// as the map's.
func TestPlanMapAndLineageMeet(t *testing.T) {
	r := newRig(t)
	var err error
	if r.m, err = refreshmap.Parse([]byte(`{"jobs": {"123": [{"datasource": "Orders", "project": "Finance"}]}}`)); err != nil {
		t.Fatal(err)
	}
	plan := r.planner().Plan(context.Background(), refresh.Run{RunID: "70001", DBTJobID: demo.JobID})
	n := 0
	for _, tg := range plan.Targets {
		if tg.Name == "Orders" {
			n++
			if tg.Source != refresh.SourceMap {
				t.Errorf("Orders came from %s, want the map", tg.Source)
			}
		}
	}
	if n != 1 {
		t.Errorf("Orders is a target %d times, want once", n)
	}
}

func TestPlanFailures(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(*rig) refresh.Run
		wantRetry bool
		wantErr   string
		notified  bool
	}{
		{name: "a run still running: its artifacts are not there yet", wantRetry: true, wantErr: "not available yet",
			setup: func(r *rig) refresh.Run {
				run, err := r.dbt.TriggerRun(context.Background(), 123, &dbtcloud.TriggerRunRequest{Cause: "test"})
				if err != nil {
					panic(err)
				}
				return refresh.Run{RunID: strconv.FormatInt(run.ID, 10), DBTJobID: demo.JobID}
			}},
		{name: "the Metadata API off", wantErr: "Metadata API", notified: true,
			setup: func(r *rig) refresh.Run {
				r.d.Tableau.SetMetadataEnabled(false)
				return refresh.Run{RunID: "70001", DBTJobID: demo.JobID}
			}},
		{name: "a run of another account", wantErr: "no run 99999",
			setup: func(r *rig) refresh.Run { return refresh.Run{RunID: "99999", DBTJobID: demo.JobID} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t)
			run := tt.setup(r)
			p := r.planner()
			for range 2 {
				plan := p.Plan(context.Background(), run)
				if plan.Err == nil || !strings.Contains(plan.Err.Error(), tt.wantErr) || plan.Retry != tt.wantRetry {
					t.Fatalf("Err = %v, Retry = %t; want %q, retry %t", plan.Err, plan.Retry, tt.wantErr, tt.wantRetry)
				}
				// The map's targets never wait for lineage.
				if got := names(plan.Targets); !slices.Contains(got, "map workbook Executive Summary") {
					t.Errorf("targets %v lack the map's", got)
				}
			}
			if got := len(r.alerts.keys); tt.notified && got != 1 || !tt.notified && got != 0 {
				t.Errorf("%d notifications over two plans, want %t", got, tt.notified)
			}
			for _, m := range r.alerts.keys {
				if m.Kind != notify.KindLineageUnavailable || !strings.Contains(m.Reason, "tsm maintenance metadata-services enable") {
					t.Errorf("notification %+v does not say what to fix", m)
				}
			}
		})
	}
}

// Without the secret's dbt_api_token lineage is off, which is no failure.
func TestPlanWithoutToken(t *testing.T) {
	r := newRig(t)
	var err error
	r.dbt, err = dbtcloud.NewClient(dbtcloud.WithBaseURL(r.d.DBT.URL()), dbtcloud.WithAccountID(r.d.DBT.AccountID()),
		dbtcloud.WithTokenProvider(dbtcloud.TokenProviderFunc(func(context.Context) (string, error) {
			return "", errors.New("the secret has no dbt_api_token")
		})))
	if err != nil {
		t.Fatal(err)
	}
	plan := r.planner().Plan(context.Background(), refresh.Run{RunID: "70001", DBTJobID: demo.JobID})
	if plan.Err != nil || !slices.Equal(names(plan.Targets), []string{"map workbook Executive Summary"}) {
		t.Errorf("targets %v, err %v; want the map's alone and no error", names(plan.Targets), plan.Err)
	}
}

// make plan's report: a table Tableau reads under a database name dbt does
// not use shows up until an alias maps it.
func TestTablesWithoutModel(t *testing.T) {
	r := newRig(t)
	r.d.Tableau.AddDatasource("Orders (prod share)", "Finance", tableautest.ReadsTables(tableautest.TableRef{
		Database: "ANALYTICS_PROD", Schema: "MARTS", Name: "ORDERS", ConnectionType: "snowflake"}))
	got, err := r.planner().TablesWithoutModel(context.Background(), 70001)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got["ANALYTICS_PROD.MARTS.ORDERS"] == nil {
		t.Fatalf("tables without a model = %v, want the share's alone", got)
	}
	aliases, _ := relname.ParseAliases(`{"analytics": ["ANALYTICS", "ANALYTICS_PROD"]}`)
	if got, err := r.planner(lineage.WithAliases(aliases)).TablesWithoutModel(context.Background(), 70001); err != nil || len(got) != 0 {
		t.Errorf("with the alias: %v, %v; want none", got, err)
	}
}

// TestPlanIncremental: content over a model the run built incrementally is
// refreshed incrementally when the map asks for it (at the top or for the
// job); a map entry that asks for it is refreshed in full when the run
// rebuilt what it reads in full.
func TestPlanIncremental(t *testing.T) {
	const exclude = `"exclude":[{"workbook":"Scratchpad","project":"Sandbox"}]`
	tests := []struct {
		name, refreshMap string
		incremental      []string // targets refreshed incrementally, as names() lists them
		why              map[string]string
	}{
		{"not asked", `{"jobs":{"123":[{"workbook":"Executive Summary","project":"Finance"}]},` + exclude + `}`, nil, nil},
		{"lineage asks", `{"jobs":{"123":[{"workbook":"Executive Summary","project":"Finance"}]},` + exclude + `,"lineage":{"incremental":true}}`,
			[]string{"lineage datasource Daily Orders"},
			map[string]string{"Daily Orders": "the model was built incrementally; refreshed incrementally, as the map's lineage.incremental asks"}},
		{"the job says no", `{"jobs":{"123":{"targets":[{"workbook":"Executive Summary","project":"Finance"}],"lineage":{"incremental":false}}},` + exclude + `,"lineage":{"incremental":true}}`,
			nil, nil},
		{"an entry over an incremental model", `{"jobs":{"123":[{"datasource":"Daily Orders","project":"Finance","incremental":true}]},` + exclude + `}`,
			[]string{"map datasource Daily Orders"}, nil},
		{"an entry over a model rebuilt in full", `{"jobs":{"123":[{"datasource":"Orders","project":"Finance","incremental":true},{"workbook":"Executive Summary","incremental":true}]},` + exclude + `}`,
			[]string{"map workbook Executive Summary"},
			map[string]string{"Orders": "; refreshed in full: the run rebuilt model.shop.orders in full"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t)
			m, err := refreshmap.Parse([]byte(tt.refreshMap))
			if err != nil {
				t.Fatal(err)
			}
			r.m = m
			plan := r.planner().Plan(context.Background(), refresh.Run{RunID: "70001", DBTJobID: demo.JobID})
			if plan.Err != nil {
				t.Fatal(plan.Err)
			}
			var got []refresh.Target
			for _, tg := range plan.Targets {
				if tg.Incremental {
					got = append(got, tg)
				}
				if w, ok := tt.why[tg.Name]; ok && !strings.HasSuffix(tg.Why, w) {
					t.Errorf("why of %s = %q, want it to end %q", tg.Name, tg.Why, w)
				}
			}
			if names := names(got); !slices.Equal(names, tt.incremental) {
				t.Errorf("incremental: %v, want %v", names, tt.incremental)
			}
		})
	}
}
