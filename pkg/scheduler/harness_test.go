package scheduler_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dbtcloud"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dbtcloud/dbtcloudtest"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dynamo"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/lineage"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/logging"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/motoserver"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refresh"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refreshmap"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/remote"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/scheduler"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau/tableautest"
)

var db *dynamodb.Client

func TestMain(m *testing.M) {
	os.Exit(motoserver.Main(m, func(s *motoserver.Server) {
		cfg, err := s.AWSConfig(context.Background())
		if err != nil {
			panic(err)
		}
		db = dynamodb.NewFromConfig(cfg)
	}))
}

const (
	token   = "dbtc_service_token_never_logged"
	account = 77
)

// world is a deployment on a simulated clock: dbt Cloud runs last as long as
// the test says without the test waiting for them.
type world struct {
	t      testing.TB
	clock  *dbtcloudtest.FakeClock
	dbt    *dbtcloudtest.Server
	client *dbtcloud.Client
	// dbtAPI, when set, is what the scheduler gets instead of client;
	// noDBT gives it none, as in a deployment without DBT_ACCOUNT_ID.
	dbtAPI scheduler.DBT
	noDBT  bool
	tab    *tableautest.Server
	table  *dynamo.Table
	ids    map[string]string
	ref    *refresh.Refresher
	cfg    settings
	// invocationLimit is each simulated invocation's time limit.
	invocationLimit time.Duration
	start           time.Time
}

var tables atomic.Int64

func newWorld(t testing.TB, jobs func(*dbtcloudtest.Server)) *world {
	t.Helper()
	clock := dbtcloudtest.NewFakeClock(time.Date(2026, 11, 23, 6, 0, 0, 0, time.UTC))
	dbt := dbtcloudtest.NewServer(dbtcloudtest.WithAccount(account), dbtcloudtest.WithToken(token), dbtcloudtest.WithClock(clock.Now))
	t.Cleanup(dbt.Close)
	jobs(dbt)
	client, err := dbtcloud.NewClient(dbtcloud.WithBaseURL(dbt.URL()), dbtcloud.WithAccountID(account), dbtcloud.WithToken(token),
		dbtcloud.WithRetryPolicy(remote.Policy{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: 2 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}

	tab := tableautest.NewServer(tableautest.WithJobTimings(time.Hour, time.Hour))
	t.Cleanup(tab.Close)
	tab.AddPAT("bot", "pat-secret")
	w := &world{t: t, clock: clock, dbt: dbt, client: client, tab: tab, ids: map[string]string{}, invocationLimit: 14 * time.Minute}
	w.ids["Sales"] = tab.AddWorkbook("Sales", "Finance")
	w.ids["Orders"] = tab.AddDatasource("Orders", "Finance")
	w.ids["Ops"] = tab.AddWorkbook("Ops", "Operations")

	name := fmt.Sprintf("sched-%d", tables.Add(1))
	if err := dynamo.CreateTable(context.Background(), db, name); err != nil {
		t.Fatal(err)
	}
	if w.table, err = dynamo.New(db, name, dynamo.WithClock(clock.Now)); err != nil {
		t.Fatal(err)
	}
	tc, err := tableau.NewClient(tab.URL(), tableau.WithPAT("bot", "pat-secret"), tableau.WithSessionStore(w.table),
		tableau.WithRetryPolicy(remote.Policy{MaxAttempts: 2, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	m, err := refreshmap.Parse([]byte(`{"jobs":{"123":[{"workbook":"Sales","project":"Finance"},{"datasource":"Orders"}],"456":[{"workbook":"Ops"}],"789":[{"workbook":"Ops"}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	w.ref = refresh.New(w.table, tc, refresh.WithClock(clock.Now))
	w.cfg = settings{
		Map:    m,
		Logger: logging.New(io.Discard, slog.LevelDebug),
		Now:    clock.Now,
		Sleep: func(ctx context.Context, d time.Duration) error {
			clock.Advance(d)
			return ctx.Err()
		},
		Deadline: func(context.Context) (time.Time, bool) { return w.start.Add(w.invocationLimit), true },
	}
	return w
}

// settings are the scheduler's options a test tunes, as fields.
type settings struct {
	Map         *refreshmap.Map
	PollWindow  time.Duration
	QueueLimit  time.Duration
	CancelStuck bool
	Follower    scheduler.Follower
	Logger      *slog.Logger
	Now         func() time.Time
	Sleep       func(ctx context.Context, d time.Duration) error
	Deadline    func(ctx context.Context) (time.Time, bool)
}

func (c settings) options() []scheduler.Option {
	opts := []scheduler.Option{scheduler.WithLogger(c.Logger), scheduler.WithClock(c.Now, c.Sleep), scheduler.WithDeadline(c.Deadline)}
	if c.PollWindow > 0 {
		opts = append(opts, scheduler.WithPollWindow(c.PollWindow))
	}
	if c.QueueLimit > 0 || c.CancelStuck {
		opts = append(opts, scheduler.WithQueueLimit(c.QueueLimit, c.CancelStuck))
	}
	if c.Follower != nil {
		opts = append(opts, scheduler.WithFollower(c.Follower))
	}
	return opts
}

// invoke runs one invocation on the simulated clock.
func (w *world) invoke(ev scheduler.Event) (scheduler.Result, error) {
	w.t.Helper()
	var api scheduler.DBT = w.client
	switch {
	case w.noDBT:
		api = nil
	case w.dbtAPI != nil:
		api = w.dbtAPI
	}
	s, err := scheduler.New(api, w.table.Runs(), w.ref, lineage.MapOnly(w.cfg.Map), w.cfg.options()...)
	if err != nil {
		w.t.Fatal(err)
	}
	w.start = w.clock.Now()
	return s.Handle(context.Background(), ev)
}

func (w *world) refreshes(name string) int { return w.tab.RefreshCount(w.ids[name]) }

func dbtcloudNewClient(url, tok string) (*dbtcloud.Client, error) {
	return dbtcloud.NewClient(dbtcloud.WithBaseURL(url), dbtcloud.WithAccountID(account), dbtcloud.WithToken(tok),
		dbtcloud.WithRetryPolicy(remote.Policy{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: 2 * time.Second}))
}
