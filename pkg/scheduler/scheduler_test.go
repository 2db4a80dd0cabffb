package scheduler_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dbtcloud/dbtcloudtest"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/followup"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/lineage"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/localrun"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/logging"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/scheduler"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/secrets"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/webhook"
)

func minutes(q, s, r float64) dbtcloudtest.JobOption {
	d := func(m float64) time.Duration { return time.Duration(m * float64(time.Minute)) }
	return dbtcloudtest.RunTimings(d(q), d(s), d(r))
}

func TestRunOutcomes(t *testing.T) {
	tests := []struct {
		name        string
		job         []dbtcloudtest.JobOption
		wantOutcome state.Outcome
		wantErr     string
		wantMsg     string
		refreshed   int
	}{
		{"success", []dbtcloudtest.JobOption{minutes(0.2, 0.3, 1.5)}, state.OutcomeRefreshed, "", "", 1},
		{"error", []dbtcloudtest.JobOption{minutes(0.2, 0.3, 1.5), dbtcloudtest.Outcome(20), dbtcloudtest.ErrorMessage("Database Error in model orders")},
			state.OutcomeFailed, "job 123 run", "Database Error in model orders", 0},
		{"cancelled", []dbtcloudtest.JobOption{minutes(0.2, 0.3, 1.5), dbtcloudtest.Outcome(30)}, state.OutcomeCancelled, "cancelled", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, func(s *dbtcloudtest.Server) { s.AddJob(123, "Daily", tt.job...) })
			res, err := w.invoke(scheduler.Event{Jobs: []string{"123"}})
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Handle error = %v, want %q", err, tt.wantErr)
			}
			j := res.Jobs[0]
			if j.Outcome != tt.wantOutcome || !strings.Contains(j.Message, tt.wantMsg) || j.RunID == 0 {
				t.Fatalf("job result = %+v", j)
			}
			if w.refreshes("Sales") != tt.refreshed || w.refreshes("Orders") != tt.refreshed {
				t.Errorf("refreshes = %d, %d; want %d each", w.refreshes("Sales"), w.refreshes("Orders"), tt.refreshed)
			}
			if n := w.dbt.TriggerCount(123); n != 1 {
				t.Errorf("dbt runs triggered = %d, want 1", n)
			}
		})
	}
}

// A 40-minute run outlives two 14-minute invocations: the later ones follow
// it instead of starting another, and the webhook for the same run, arriving
// in between, shares the refresh.
func TestLongRunAcrossInvocationsAndWebhook(t *testing.T) {
	w := newWorld(t, func(s *dbtcloudtest.Server) { s.AddJob(123, "Long", minutes(1, 1, 38)) })
	w.cfg.PollWindow = 14 * time.Minute

	res, err := w.invoke(scheduler.Event{Jobs: []string{"123"}, ScheduledTime: "2026-11-23T06:00:00Z"})
	if err != nil || res.Jobs[0].Outcome != state.OutcomeRunning {
		t.Fatalf("first invocation: %+v, %v", res, err)
	}
	runID := res.Jobs[0].RunID
	if elapsed := w.clock.Now().Sub(w.start); elapsed > w.invocationLimit-30*time.Second {
		t.Errorf("first invocation ran %s of its %s, past the safety margin", elapsed, w.invocationLimit)
	}

	res, err = w.invoke(scheduler.Event{Jobs: []string{"123"}, ScheduledTime: "2026-11-23T06:15:00Z"})
	if err != nil || res.Jobs[0].Outcome != state.OutcomeRunning || res.Jobs[0].RunID != runID {
		t.Fatalf("second invocation: %+v, %v", res, err)
	}

	// The run ends; dbt's webhook reaches the webhook function first.
	w.clock.Advance(15 * time.Minute)
	hook := webhookServer(t, w)
	resp, err := w.dbt.SendWebhook(context.Background(), hook.URL+"/dbt/webhook", "whsec", dbtcloudtest.EventRunCompleted, runID)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"refreshed"`) {
		t.Fatalf("webhook reply %d %s", resp.StatusCode, body)
	}

	res, err = w.invoke(scheduler.Event{Jobs: []string{"123"}, ScheduledTime: "2026-11-23T06:30:00Z"})
	if err != nil || res.Jobs[0].Outcome != state.OutcomeRefreshed || res.Jobs[0].RunID != runID {
		t.Fatalf("third invocation: %+v, %v", res, err)
	}
	for _, o := range res.Jobs[0].Targets {
		if o.Result != "duplicate" {
			t.Errorf("target %s: %s, want duplicate of the webhook's refresh", o.Name, o.Result)
		}
	}
	if w.refreshes("Sales") != 1 || w.refreshes("Orders") != 1 {
		t.Errorf("refreshes = %d, %d; want 1 each", w.refreshes("Sales"), w.refreshes("Orders"))
	}
	if n := w.dbt.TriggerCount(123); n != 1 {
		t.Errorf("dbt runs triggered = %d, want 1", n)
	}
}

// webhookServer serves the webhook function over HTTP, sharing the
// scheduler's state and refresher as the deployed stack does.
func webhookServer(t *testing.T, w *world) *httptest.Server {
	h, err := webhook.NewDBT(secrets.Env{Getenv: func(k string) string {
		return map[string]string{"DBT_WEBHOOK_SECRET": "whsec", "TABLEAU_PAT_NAME": "bot", "TABLEAU_PAT_SECRET": "pat-secret"}[k]
	}}, w.ref, lineage.MapOnly(w.cfg.Map), webhook.WithClock(w.clock.Now), webhook.WithLogger(logging.New(io.Discard, slog.LevelInfo)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(&localrun.Server{Handler: h.Handle, Routes: []string{webhook.DBTRoute}})
	t.Cleanup(srv.Close)
	return srv
}

func TestFollowUpFinishesRunsInFlight(t *testing.T) {
	w := newWorld(t, func(s *dbtcloudtest.Server) { s.AddJob(123, "Long", minutes(1, 1, 20)) })
	res, err := w.invoke(scheduler.Event{Jobs: []string{"123"}})
	if err != nil || res.Jobs[0].Outcome != state.OutcomeRunning {
		t.Fatalf("tick: %+v, %v", res, err)
	}
	var last scheduler.Result
	for i := 0; i < 10; i++ {
		w.clock.Advance(5 * time.Minute)
		if last, err = w.invoke(scheduler.Event{Follow: true}); err != nil {
			t.Fatal(err)
		}
		if len(last.Jobs) == 0 {
			break
		}
		if o := last.Jobs[0].Outcome; o == state.OutcomeRefreshed {
			break
		}
	}
	if w.refreshes("Sales") != 1 {
		t.Fatalf("refreshes = %d, want 1; last follow-up %+v", w.refreshes("Sales"), last)
	}
	// Once settled, follow-ups have nothing to look at.
	if res, err := w.invoke(scheduler.Event{Follow: true}); err != nil || len(res.Jobs) != 0 {
		t.Errorf("follow-up after settle: %+v, %v", res, err)
	}
	if n := w.dbt.TriggerCount(123); n != 1 {
		t.Errorf("dbt runs triggered = %d, want 1", n)
	}
}

func TestStuckInQueue(t *testing.T) {
	for _, cancel := range []bool{false, true} {
		t.Run(map[bool]string{false: "reported", true: "reported and cancelled"}[cancel], func(t *testing.T) {
			w := newWorld(t, func(s *dbtcloudtest.Server) { s.AddJob(123, "Stuck", dbtcloudtest.StuckInQueue()) })
			w.cfg.PollWindow, w.cfg.QueueLimit, w.cfg.CancelStuck = 14*time.Minute, 20*time.Minute, cancel
			res, err := w.invoke(scheduler.Event{Jobs: []string{"123"}})
			if err != nil || res.Jobs[0].Outcome != state.OutcomeRunning {
				t.Fatalf("first invocation: %+v, %v", res, err)
			}
			res, err = w.invoke(scheduler.Event{Jobs: []string{"123"}})
			if err == nil || res.Jobs[0].Outcome != state.OutcomeStuck || !strings.Contains(res.Jobs[0].Message, "limit 20m0s") {
				t.Fatalf("second invocation: %+v, %v", res, err)
			}
			run, _ := w.dbt.Run(res.Jobs[0].RunID)
			if cancelled := run.Status == 30; cancelled != cancel {
				t.Errorf("run status %d, cancel=%v", run.Status, cancel)
			}
			// Reported once: the next tick starts afresh rather than polling forever.
			if res, _ := w.invoke(scheduler.Event{Jobs: []string{"123"}}); res.Jobs[0].RunID == run.ID {
				t.Errorf("stuck run still followed: %+v", res)
			}
		})
	}
}

func TestDBTFaultsAreRetried(t *testing.T) {
	w := newWorld(t, func(s *dbtcloudtest.Server) { s.AddJob(123, "Daily", minutes(0.2, 0.3, 1.5)) })
	w.dbt.Inject(dbtcloudtest.Fault{Method: "POST", Path: "/run/", Status: 429, RetryAfter: time.Millisecond, Times: 1})
	w.dbt.Inject(dbtcloudtest.Fault{Method: "GET", Path: "/runs/", Status: 503, Times: 5})
	res, err := w.invoke(scheduler.Event{Jobs: []string{"123"}})
	if err != nil || res.Jobs[0].Outcome != state.OutcomeRefreshed {
		t.Fatalf("%+v, %v", res, err)
	}
	if n := w.dbt.TriggerCount(123); n != 1 {
		t.Errorf("dbt runs triggered = %d, want 1", n)
	}
}

func TestBadTokenIsAClearError(t *testing.T) {
	w := newWorld(t, func(s *dbtcloudtest.Server) { s.AddJob(123, "Daily", minutes(0.2, 0.3, 1.5)) })
	bad, err := dbtcloudNewClient(w.dbt.URL(), "not-the-token")
	if err != nil {
		t.Fatal(err)
	}
	w.client = bad
	res, err := w.invoke(scheduler.Event{Jobs: []string{"123"}})
	if err == nil || res.Jobs[0].Outcome != state.OutcomeError || !strings.Contains(res.Jobs[0].Message, "401") {
		t.Fatalf("%+v, %v", res, err)
	}
	if strings.Contains(err.Error(), "not-the-token") {
		t.Error("error reveals the token")
	}
	// The lease is dropped: with the right token the next tick triggers.
	w.client, _ = dbtcloudNewClient(w.dbt.URL(), token)
	if res, err := w.invoke(scheduler.Event{Jobs: []string{"123"}}); err != nil || res.Jobs[0].Outcome != state.OutcomeRefreshed {
		t.Fatalf("after fixing the token: %+v, %v", res, err)
	}
}

func TestJobsAreIndependent(t *testing.T) {
	w := newWorld(t, func(s *dbtcloudtest.Server) {
		s.AddJob(123, "Daily", minutes(0.2, 0.3, 1.5))
		s.AddJob(456, "Ops", minutes(0.2, 0.3, 1), dbtcloudtest.Outcome(20))
		// 789 is mapped but unknown to dbt Cloud: 404 on trigger.
	})
	res, err := w.invoke(scheduler.Event{Jobs: []string{"123", "456", "789"}})
	if err == nil || !strings.Contains(err.Error(), "2 of 3 dbt jobs failed") {
		t.Fatalf("err = %v", err)
	}
	got := map[string]state.Outcome{}
	for _, j := range res.Jobs {
		got[j.JobID] = j.Outcome
	}
	if got["123"] != state.OutcomeRefreshed || got["456"] != state.OutcomeFailed || got["789"] != state.OutcomeError {
		t.Fatalf("outcomes = %v", got)
	}
	if w.refreshes("Sales") != 1 || w.refreshes("Ops") != 0 {
		t.Errorf("refreshes Sales=%d Ops=%d", w.refreshes("Sales"), w.refreshes("Ops"))
	}
}

func TestRetriedTickDoesNotTriggerAgain(t *testing.T) {
	w := newWorld(t, func(s *dbtcloudtest.Server) {
		s.AddJob(123, "Daily", minutes(0.2, 0.3, 1.5))
		s.AddJob(456, "Ops", minutes(0.2, 0.3, 1), dbtcloudtest.Outcome(20))
	})
	ev := scheduler.Event{Jobs: []string{"123", "456"}, ScheduledTime: "2026-11-23T07:00:00Z"}
	if _, err := w.invoke(ev); err == nil {
		t.Fatal("first invocation: want the failure of job 456")
	}
	// EventBridge retries the failed invocation with the same event.
	res, err := w.invoke(ev)
	if err == nil || !strings.Contains(err.Error(), "job 456") {
		t.Fatalf("retry: err = %v, want job 456's failure again", err)
	}
	if w.dbt.TriggerCount(123) != 1 || w.dbt.TriggerCount(456) != 1 {
		t.Errorf("triggers = %d, %d; want 1 each", w.dbt.TriggerCount(123), w.dbt.TriggerCount(456))
	}
	if res.Jobs[0].Outcome != state.OutcomeAlreadyHandled {
		t.Errorf("job 123 on retry: %+v", res.Jobs[0])
	}
	// The next tick runs both again.
	ev.ScheduledTime = "2026-11-23T08:00:00Z"
	w.invoke(ev)
	if w.dbt.TriggerCount(123) != 2 || w.dbt.TriggerCount(456) != 2 {
		t.Errorf("next tick triggers = %d, %d; want 2 each", w.dbt.TriggerCount(123), w.dbt.TriggerCount(456))
	}
}

func TestBadEvents(t *testing.T) {
	w := newWorld(t, func(s *dbtcloudtest.Server) { s.AddJob(123, "Daily") })
	tests := []struct {
		name string
		ev   scheduler.Event
		want string
	}{
		{"no jobs", scheduler.Event{}, `want {"jobs"`},
		{"not a number", scheduler.Event{Jobs: []string{"123", "daily"}}, `"daily" is not a positive integer`},
		{"negative", scheduler.Event{Jobs: []string{"-123"}}, `"-123" is not a positive integer`},
		{"unmapped", scheduler.Event{Jobs: []string{"123", "999"}}, "dbt job 999 has no Tableau targets"},
		{"twice", scheduler.Event{Jobs: []string{"123", "123"}}, "listed twice"},
		{"follow with jobs", scheduler.Event{Jobs: []string{"123"}, Follow: true}, `do not list "jobs"`},
		{"bad scheduled time", scheduler.Event{Jobs: []string{"123"}, ScheduledTime: "<aws.scheduler.scheduled-time>"}, "not an RFC 3339 time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := w.invoke(tt.ev)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	if n := w.dbt.TriggerCount(123); n != 0 {
		t.Errorf("bad events triggered %d runs", n)
	}
}

// unconfigured is a dbt Cloud client whose configuration check fails, as
// when the secret has no dbt_api_token.
type unconfigured struct{ scheduler.DBT }

func (unconfigured) Check(context.Context) error {
	return errors.New("the secret has no dbt_api_token")
}

type followerFunc func(context.Context) (followup.FollowResult, error)

func (f followerFunc) Follow(ctx context.Context) (followup.FollowResult, error) { return f(ctx) }

// A deployment without dbt Cloud settings (the template's defaults) still
// follows the Tableau jobs its webhook queued every five minutes, and a tick
// that names jobs fails once, as a configuration error, touching nothing.
func TestWithoutDBTCloudSettings(t *testing.T) {
	w := newWorld(t, func(s *dbtcloudtest.Server) { s.AddJob(123, "Daily", minutes(0.2, 0.3, 1.5)) })
	followed := 0
	w.cfg.Follower = followerFunc(func(context.Context) (followup.FollowResult, error) {
		followed++
		return followup.FollowResult{}, nil
	})
	w.noDBT = true
	if res, err := w.invoke(scheduler.Event{Follow: true}); err != nil || len(res.Jobs) != 0 || followed != 1 {
		t.Fatalf("follow-up without DBT_ACCOUNT_ID: %+v, %v; Tableau jobs followed %d times, want once", res, err, followed)
	}

	tests := []struct {
		name   string
		noDBT  bool
		api    scheduler.DBT
		want   string
		target error
	}{
		{"no account", true, nil, "configuration: the event names dbt jobs 123, 456, but the scheduled path is not configured: set DBT_ACCOUNT_ID", scheduler.ErrNoDBT},
		{"no token", false, unconfigured{w.client}, "configuration: the secret has no dbt_api_token", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w.noDBT, w.dbtAPI = tt.noDBT, tt.api
			res, err := w.invoke(scheduler.Event{Jobs: []string{"123", "456"}})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("tick: %+v, %v; want the error %q", res, err, tt.want)
			}
			if tt.target != nil && !errors.Is(err, tt.target) {
				t.Errorf("error %q does not match %v", err, tt.target)
			}
			if strings.Contains(err.Error(), "job 123 run") || len(res.Jobs) != 0 {
				t.Errorf("error %q, jobs %+v: want one configuration error, not one per job", err, res.Jobs)
			}
		})
	}
	if n := w.dbt.TriggerCount(123); n != 0 {
		t.Errorf("dbt runs triggered = %d, want 0", n)
	}
}
