package followup_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dynamo"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/followup"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/localrun"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/logging"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/motoserver"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/notify"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refresh"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refreshmap"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/remote"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/secrets"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau/tableautest"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/webhook"
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

const hookToken = "tok-3f9a1c77e2b54d0c9a8e1f23"

// slack is a local Slack incoming webhook that records messages and fails
// while told to.
type slack struct {
	srv      *httptest.Server
	mu       sync.Mutex
	messages []string
	failures atomic.Int32 // replies 503 while positive
}

func newSlack(t *testing.T) *slack {
	s := &slack{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if s.failures.Add(-1) >= 0 {
			http.Error(w, "service_unavailable", http.StatusServiceUnavailable)
			return
		}
		s.mu.Lock()
		s.messages = append(s.messages, string(body))
		s.mu.Unlock()
		io.WriteString(w, "ok")
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *slack) received() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.messages...)
}

type world struct {
	t       *testing.T
	tab     *tableautest.Server
	table   *dynamo.Table
	slack   *slack
	logs    *bytes.Buffer
	logMu   *sync.Mutex
	ref     *refresh.Refresher
	alerts  *followup.Alerts
	tracker *followup.Tracker
	hook    *httptest.Server // our HTTP API: POST /tableau/webhook/{token}
	ids     map[string]string
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

var tables atomic.Int64

func newWorld(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	tab := tableautest.NewServer(tableautest.AllowHTTPDestinations(), tableautest.WithJobTimings(10*time.Millisecond, 20*time.Millisecond))
	t.Cleanup(tab.Close)
	tab.AddPAT("bot", "pat-secret")
	w := &world{t: t, tab: tab, slack: newSlack(t), logs: &bytes.Buffer{}, logMu: &sync.Mutex{}, ids: map[string]string{}}
	w.ids["Sales"] = tab.AddWorkbook("Sales", "Finance")
	w.ids["Orders"] = tab.AddDatasource("Orders", "Finance")
	w.ids["Other"] = tab.AddWorkbook("Other", "Finance")

	name := fmt.Sprintf("followup-%d", tables.Add(1))
	if err := dynamo.CreateTable(ctx, db, name); err != nil {
		t.Fatal(err)
	}
	var err error
	if w.table, err = dynamo.New(db, name); err != nil {
		t.Fatal(err)
	}
	logger := logging.New(lockedWriter{w.logMu, w.logs}, slog.LevelDebug)
	tc, err := tableau.NewClient(tab.URL(), tableau.WithPAT("bot", "pat-secret"), tableau.WithSessionStore(w.table),
		tableau.WithRetryPolicy(remote.Policy{MaxAttempts: 2, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	sl, err := notify.NewSlack(w.slack.srv.URL, notify.WithRetryPolicy(remote.Policy{MaxAttempts: 2, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	w.alerts = followup.NewAlerts(w.table, map[string]notify.Notifier{"slack": sl},
		followup.WithMaxAttempts(3), followup.WithRetryDelay(time.Nanosecond), followup.WithLogger(logger))
	w.ref = refresh.New(w.table, tc, refresh.WithJobs(w.table), refresh.WithAlerts(w.alerts), refresh.WithLogger(logger))
	w.tracker = followup.NewTracker(w.table, tc, w.alerts, followup.WithJobLimit(time.Hour), followup.WithLogger(logger))

	creds := staticCreds{TableauWebhookToken: hookToken, DBTWebhookSecret: "x", TableauPATName: "bot", TableauPATSecret: "pat-secret"}
	th, err := webhook.NewTableau(creds, w.table, w.tracker, webhook.WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	w.hook = httptest.NewServer(&localrun.Server{Handler: th.Handle, Routes: []string{webhook.TableauRoute}})
	t.Cleanup(w.hook.Close)
	for _, ev := range []string{tableau.EventWorkbookRefreshFailed, tableau.EventWorkbookRefreshSucceeded, tableau.EventDatasourceRefreshFailed} {
		if _, err := tc.CreateWebhook(ctx, tableau.NewWebhook("bridge-"+ev, ev, w.hook.URL+"/tableau/webhook/"+hookToken)); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

type staticCreds secrets.Credentials

func (c staticCreds) Credentials(context.Context) (*secrets.Credentials, error) {
	cc := secrets.Credentials(c)
	return &cc, nil
}

func (w *world) refresh(runID string, targets ...refreshmap.Target) []refresh.Outcome {
	return w.ref.Refresh(context.Background(), refresh.Run{RunID: runID, DBTJobID: "123"}, refresh.MapTargets(targets, "123"), time.Now().Add(10*time.Second))
}

func (w *world) log() string { w.logMu.Lock(); defer w.logMu.Unlock(); return w.logs.String() }

// eventually polls cond: Tableau delivers its webhooks asynchronously.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var sales = refreshmap.Target{Kind: refreshmap.Workbook, Name: "Sales", Project: "Finance"}

func TestFailedRefreshNotifiedOnceFromBothSources(t *testing.T) {
	w := newWorld(t)
	w.tab.FailNextRefresh(w.ids["Sales"], "Database login failed for user 'etl'")
	out := w.refresh("70001", sales)
	if out[0].Result != state.OutcomeRefreshed {
		t.Fatalf("refresh: %+v", out)
	}
	// Tableau's webhook reports the failure...
	eventually(t, "the Slack message", func() bool { return len(w.slack.received()) == 1 })
	// ...and the follow-up then reads the same end from the jobs API.
	res, err := w.tracker.Follow(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Open != 0 {
		t.Errorf("follow-up still sees %d open jobs", res.Open)
	}
	msgs := w.slack.received()
	if len(msgs) != 1 {
		t.Fatalf("%d Slack messages, want 1: %q", len(msgs), msgs)
	}
	var payload struct{ Text string }
	if err := json.Unmarshal([]byte(msgs[0]), &payload); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Sales", "70001", "123", "Database login failed", out[0].JobID} {
		if !strings.Contains(msgs[0], want) {
			t.Errorf("message lacks %q: %s", want, msgs[0])
		}
	}
	sum, err := w.table.RunSummary(context.Background(), "70001")
	if err != nil || len(sum) != 1 || sum[0].RefreshState != "failed" || !strings.Contains(sum[0].Notes, "Database login failed") {
		t.Fatalf("run summary = %+v, %v", sum, err)
	}
}

func TestFollowUpFindsFailureFirst(t *testing.T) {
	w := newWorld(t)
	w.dropTableauWebhooks() // the jobs API is the only source this time
	w.tab.SetJobTimings(-1, -1)
	w.tab.FailNextRefresh(w.ids["Sales"], "Out of memory")
	out := w.refresh("70002", sales)
	res, err := w.tracker.Follow(context.Background())
	if err != nil || res.Open != 1 || res.Failed != 0 {
		t.Fatalf("while running: %+v, %v", res, err)
	}
	if err := w.tab.FinishJob(out[0].JobID, 1, "Out of memory"); err != nil {
		t.Fatal(err)
	}
	if res, err = w.tracker.Follow(context.Background()); err != nil || res.Failed != 1 {
		t.Fatalf("after the failure: %+v, %v", res, err)
	}
	if res, err = w.tracker.Follow(context.Background()); err != nil || res.Open != 0 {
		t.Fatalf("second follow-up: %+v, %v", res, err)
	}
	if n := len(w.slack.received()); n != 1 {
		t.Fatalf("%d Slack messages, want 1", n)
	}
	// A Tableau webhook for the same failure arriving late adds nothing.
	body := fmt.Sprintf(`{"resource":"EXTRACTS","event_type":"WorkbookRefreshFailed","resource_name":"Sales","resource_luid":%q,"created_at":%q}`,
		w.ids["Sales"], time.Now().UTC().Format(time.RFC3339))
	if status := w.post(hookToken, body); status != 200 {
		t.Fatalf("late webhook: %d", status)
	}
	if n := len(w.slack.received()); n != 1 {
		t.Errorf("%d Slack messages after the late webhook, want 1", n)
	}
}

// dropTableauWebhooks deletes the Tableau webhooks pointing at us.
func (w *world) dropTableauWebhooks() {
	w.t.Helper()
	tc, err := tableau.NewClient(w.tab.URL(), tableau.WithPAT("bot", "pat-secret"), tableau.WithSessionStore(w.table))
	if err != nil {
		w.t.Fatal(err)
	}
	for _, h := range w.tab.Webhooks() {
		if err := tc.DeleteWebhook(context.Background(), h.ID); err != nil {
			w.t.Fatal(err)
		}
	}
}

func (w *world) post(token, body string) int {
	w.t.Helper()
	resp, err := http.Post(w.hook.URL+"/tableau/webhook/"+token, "application/json", strings.NewReader(body))
	if err != nil {
		w.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestTableauWebhookRoute(t *testing.T) {
	w := newWorld(t)
	failed := fmt.Sprintf(`{"resource":"EXTRACTS","event_type":"WorkbookRefreshFailed","resource_name":"Other","site_luid":"s","resource_luid":%q,"created_at":"2026-11-23T06:00:00Z"}`, w.ids["Other"])
	tests := []struct {
		name, token, body string
		want              int
	}{
		{"wrong token", "not-the-token", failed, 404},
		{"token prefix", hookToken[:10], failed, 404},
		{"empty test payload", hookToken, "", 200},
		{"not JSON", hookToken, "<xml/>", 400},
		{"someone else's failed refresh", hookToken, failed, 200},
		{"duplicate delivery", hookToken, failed, 200},
		{"hyphenated keys, started", hookToken, `{"event-type":"WorkbookRefreshStarted","resource-id":"x"}`, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := w.post(tt.token, tt.body); got != tt.want {
				t.Fatalf("status %d, want %d", got, tt.want)
			}
		})
	}
	// The failure of content we did not refresh is told once, despite the duplicate.
	if msgs := w.slack.received(); len(msgs) != 1 || !strings.Contains(msgs[0], "Other") {
		t.Fatalf("Slack messages = %q", msgs)
	}
	if !strings.Contains(w.log(), `"ExternalRefreshes":1`) {
		t.Error("refresh of content we did not refresh was not counted")
	}
	if strings.Contains(w.log(), hookToken) {
		t.Error("logs contain the webhook token")
	}
}

func TestWrongTokenRecordsNothing(t *testing.T) {
	w := newWorld(t)
	body := fmt.Sprintf(`{"event_type":"WorkbookRefreshFailed","resource_luid":%q}`, w.ids["Other"])
	if got := w.post("guess", body); got != 404 {
		t.Fatalf("status %d", got)
	}
	// Had it been recorded, the right token would now see a duplicate.
	if got := w.post(hookToken, body); got != 200 {
		t.Fatalf("status %d", got)
	}
	if n := len(w.slack.received()); n != 1 {
		t.Fatalf("%d messages, want 1 (the wrong-token delivery must not count)", n)
	}
}

func TestSlackDownIsRetriedThenReported(t *testing.T) {
	w := newWorld(t)
	// The follow-up alone: a Tableau webhook delivery racing it could hold
	// the notification's claim just when Follow looks.
	w.dropTableauWebhooks()
	w.slack.failures.Store(100)
	w.tab.SetJobTimings(-1, -1)
	out := w.refresh("70003", sales)
	if err := w.tab.FinishJob(out[0].JobID, 1, "Extract too large"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.tracker.Follow(context.Background()); err == nil {
		t.Fatal("Follow reported no error while Slack is down")
	}
	// Later follow-ups retry the pending message until it is given up on.
	for range 5 {
		w.tracker.Follow(context.Background())
	}
	logs := w.log()
	if !strings.Contains(logs, "notification lost") || !strings.Contains(logs, `"NotificationsLost":1`) || !strings.Contains(logs, `"CloudWatchMetrics"`) {
		t.Fatalf("the lost notification is not in the logs with its metric:\n%s", logs)
	}
	if n := len(w.slack.received()); n != 0 {
		t.Fatalf("%d messages got through a Slack that was down", n)
	}

	// Slack back before the limit: a retry delivers, once.
	w2 := newWorld(t)
	w2.dropTableauWebhooks()
	w2.slack.failures.Store(1000)
	w2.tab.SetJobTimings(-1, -1)
	out = w2.refresh("70004", sales)
	w2.tab.FinishJob(out[0].JobID, 1, "Extract too large")
	if _, err := w2.tracker.Follow(context.Background()); err == nil {
		t.Fatal("Follow reported no error while Slack is down")
	}
	w2.slack.failures.Store(0)
	if _, err := w2.tracker.Follow(context.Background()); err != nil {
		t.Fatalf("retry: %v", err)
	}
	w2.tracker.Follow(context.Background())
	if msgs := w2.slack.received(); len(msgs) != 1 || !strings.Contains(msgs[0], "Extract too large") {
		t.Fatalf("after the retry: %q", msgs)
	}
}

func TestStuckJobReportedAfterLimit(t *testing.T) {
	w := newWorld(t)
	w.tab.SetJobTimings(-1, -1)
	w.refresh("70005", sales)
	tc, err := tableau.NewClient(w.tab.URL(), tableau.WithPAT("bot", "pat-secret"), tableau.WithSessionStore(w.table))
	if err != nil {
		t.Fatal(err)
	}
	w.tracker = followup.NewTracker(w.table, tc, w.alerts,
		followup.WithJobLimit(time.Hour), followup.WithClock(func() time.Time { return time.Now().Add(2 * time.Hour) }))
	res, err := w.tracker.Follow(context.Background())
	if err != nil || res.Stuck != 1 {
		t.Fatalf("%+v, %v", res, err)
	}
	if msgs := w.slack.received(); len(msgs) != 1 || !strings.Contains(msgs[0], "not finished") {
		t.Fatalf("messages = %q", msgs)
	}
}

func TestNotQueuedIsNotified(t *testing.T) {
	w := newWorld(t)
	out := w.refresh("70006", refreshmap.Target{Kind: refreshmap.Workbook, Name: "Missing"})
	if out[0].Result != state.OutcomeFailed {
		t.Fatalf("%+v", out)
	}
	if out = w.refresh("70006", refreshmap.Target{Kind: refreshmap.Workbook, Name: "Missing"}); out[0].Result != state.OutcomeFailed { // dbt's retry
		t.Fatalf("retry: %+v", out)
	}
	if msgs := w.slack.received(); len(msgs) != 1 || !strings.Contains(msgs[0], "Missing") {
		t.Fatalf("messages = %q", msgs)
	}
}
