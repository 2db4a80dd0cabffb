package dbtcloud_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dbtcloud"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dbtcloud/dbtcloudtest"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/remote"
)

// These tests run the client against the simulator, an independent reading
// of the same API, so a shared misunderstanding is less likely to hide.

var start = time.Date(2026, 3, 2, 6, 0, 0, 0, time.UTC)

// fast keeps retries quick; the tests assert outcomes, never durations.
var fast = remote.Policy{MaxAttempts: 4, BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond}

func newSim(t *testing.T, opts ...dbtcloudtest.Option) (*dbtcloudtest.Server, *dbtcloudtest.FakeClock, *dbtcloud.Client) {
	t.Helper()
	clock := dbtcloudtest.NewFakeClock(start)
	sim := dbtcloudtest.NewServer(append([]dbtcloudtest.Option{dbtcloudtest.WithClock(clock.Now), dbtcloudtest.WithAccount(4242)}, opts...)...)
	t.Cleanup(sim.Close)
	c, err := dbtcloud.NewClient(
		dbtcloud.WithBaseURL(sim.URL()),
		dbtcloud.WithAccountID(4242),
		dbtcloud.WithToken(sim.Token()),
		dbtcloud.WithRetryPolicy(fast),
	)
	if err != nil {
		t.Fatal(err)
	}
	return sim, clock, c
}

func TestSimLifecycle(t *testing.T) {
	sim, clock, c := newSim(t)
	sim.AddJob(101, "Nightly build", dbtcloudtest.RunTimings(2*time.Minute, time.Minute, 40*time.Minute))
	ctx := context.Background()

	run, err := c.TriggerRun(ctx, 101, &dbtcloud.TriggerRunRequest{Cause: "bridge 2026-03-02", GitBranch: "main"})
	if err != nil {
		t.Fatal(err)
	}
	if run.Status != dbtcloud.StatusQueued || run.JobDefinitionID != 101 || run.AccountID != 4242 ||
		run.Trigger == nil || run.Trigger.Cause != "bridge 2026-03-02" || !run.CreatedAt.Equal(start) {
		t.Fatalf("triggered run = %+v", run)
	}
	steps := []struct {
		advance time.Duration
		want    dbtcloud.RunStatus
	}{
		{time.Minute, dbtcloud.StatusQueued},
		{time.Minute, dbtcloud.StatusStarting},
		{time.Minute, dbtcloud.StatusRunning},
		{39 * time.Minute, dbtcloud.StatusRunning},
		{time.Minute, dbtcloud.StatusSuccess},
	}
	for i, st := range steps {
		clock.Advance(st.advance)
		got, err := c.GetRun(ctx, run.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != st.want || got.StatusHumanized != st.want.String() || got.InProgress == st.want.Terminal() {
			t.Fatalf("step %d: status %v (%s), in progress %v", i, got.Status, got.StatusHumanized, got.InProgress)
		}
	}
	done, _ := c.GetRun(ctx, run.ID)
	if !done.IsSuccess || done.FinishedAt == nil || !done.FinishedAt.Equal(start.Add(43*time.Minute)) ||
		done.StartedAt == nil || !done.StartedAt.Equal(start.Add(3*time.Minute)) || done.Trigger.Cause != "bridge 2026-03-02" ||
		done.GitBranch != "main" || done.GitSHA == "" {
		t.Errorf("finished run = %+v", done)
	}
}

func TestSimOutcomes(t *testing.T) {
	tests := []struct {
		name    string
		opts    []dbtcloudtest.JobOption
		want    dbtcloud.RunStatus
		message string
	}{
		{"error", []dbtcloudtest.JobOption{dbtcloudtest.Outcome(20), dbtcloudtest.ErrorMessage("Compilation Error in model x")}, dbtcloud.StatusError, "Compilation Error in model x"},
		{"cancelled", []dbtcloudtest.JobOption{dbtcloudtest.Outcome(30)}, dbtcloud.StatusCancelled, "Cancelled by user."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim, clock, c := newSim(t)
			sim.AddJob(1, "job", tt.opts...)
			run, err := c.TriggerRun(context.Background(), 1, &dbtcloud.TriggerRunRequest{Cause: "x"})
			if err != nil {
				t.Fatal(err)
			}
			clock.Advance(time.Hour)
			got, err := c.GetRun(context.Background(), run.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != tt.want || got.StatusMessage != tt.message || got.IsSuccess || !got.IsComplete ||
				got.IsError != (tt.want == dbtcloud.StatusError) || got.IsCancelled != (tt.want == dbtcloud.StatusCancelled) {
				t.Errorf("run = %+v", got)
			}
		})
	}
}

func TestSimStuckInQueueThenCancel(t *testing.T) {
	sim, clock, c := newSim(t)
	sim.AddJob(1, "job", dbtcloudtest.StuckInQueue())
	ctx := context.Background()
	run, err := c.TriggerRun(ctx, 1, &dbtcloud.TriggerRunRequest{Cause: "x"})
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(6 * time.Hour)
	if got, _ := c.GetRun(ctx, run.ID); got.Status != dbtcloud.StatusQueued {
		t.Fatalf("status after six hours = %v", got.Status)
	}
	cancelled, err := c.CancelRun(ctx, run.ID)
	if err != nil || cancelled.Status != dbtcloud.StatusCancelled || cancelled.StartedAt != nil || cancelled.FinishedAt == nil {
		t.Fatalf("CancelRun = %+v, %v", cancelled, err)
	}
	// A second cancel is a no-op that still answers 200.
	again, err := c.CancelRun(ctx, run.ID)
	if err != nil || again.Status != dbtcloud.StatusCancelled {
		t.Errorf("second CancelRun = %+v, %v", again, err)
	}
}

func TestSimCancelFinishedRunChangesNothing(t *testing.T) {
	sim, clock, c := newSim(t)
	sim.AddJob(1, "job")
	run, _ := c.TriggerRun(context.Background(), 1, &dbtcloud.TriggerRunRequest{Cause: "x"})
	clock.Advance(time.Hour)
	got, err := c.CancelRun(context.Background(), run.ID)
	if err != nil || got.Status != dbtcloud.StatusSuccess {
		t.Errorf("CancelRun of a finished run = %+v, %v", got, err)
	}
}

func TestSimErrors(t *testing.T) {
	sim, _, c := newSim(t)
	sim.AddJob(1, "job")
	ctx := context.Background()

	bad, err := dbtcloud.NewClient(dbtcloud.WithBaseURL(sim.URL()), dbtcloud.WithAccountID(4242),
		dbtcloud.WithToken("not-the-token"), dbtcloud.WithRetryPolicy(fast))
	if err != nil {
		t.Fatal(err)
	}
	wrongAccount, _ := dbtcloud.NewClient(dbtcloud.WithBaseURL(sim.URL()), dbtcloud.WithAccountID(1),
		dbtcloud.WithToken(sim.Token()), dbtcloud.WithRetryPolicy(fast))

	tests := []struct {
		name    string
		call    func() error
		status  int
		is      error
		message string
	}{
		{"bad token", func() error { _, err := bad.GetRun(ctx, 1); return err }, 401, dbtcloud.ErrUnauthorized, "Invalid token."},
		{"bad token on trigger", func() error {
			_, err := bad.TriggerRun(ctx, 1, &dbtcloud.TriggerRunRequest{Cause: "x"})
			return err
		}, 401, dbtcloud.ErrUnauthorized, "Invalid token."},
		{"other account", func() error { _, err := wrongAccount.ListRuns(ctx, 1, nil); return err }, 403, dbtcloud.ErrUnauthorized, "Access denied: Token is not scoped to account."},
		{"unknown job", func() error {
			_, err := c.TriggerRun(ctx, 999, &dbtcloud.TriggerRunRequest{Cause: "x"})
			return err
		}, 404, dbtcloud.ErrNotFound, "The requested resource was not found. Please check that you have the proper permissions."},
		{"unknown run", func() error { _, err := c.GetRun(ctx, 12345); return err }, 404, dbtcloud.ErrNotFound, ""},
		{"cancel unknown run", func() error { _, err := c.CancelRun(ctx, 12345); return err }, 404, dbtcloud.ErrNotFound, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim.ResetRequests()
			err := tt.call()
			var apiErr *dbtcloud.Error
			if !errors.As(err, &apiErr) || apiErr.StatusCode != tt.status || !errors.Is(err, tt.is) || dbtcloud.Retryable(err) {
				t.Fatalf("err = %v", err)
			}
			if tt.message != "" && apiErr.Message != tt.message {
				t.Errorf("Message = %q, want %q", apiErr.Message, tt.message)
			}
			if n := len(sim.Requests()); n != 1 {
				t.Errorf("%d requests for a final error", n)
			}
		})
	}
	if sim.TriggerCount(1) != 0 || sim.TriggerCount(999) != 0 {
		t.Error("a failed trigger created a run")
	}
}

func TestSimRateLimitHonoursRetryAfter(t *testing.T) {
	sim, _, _ := newSim(t)
	// Patient enough to wait for the simulator's Retry-After of 1 s.
	c, err := dbtcloud.NewClient(dbtcloud.WithBaseURL(sim.URL()), dbtcloud.WithAccountID(4242), dbtcloud.WithToken(sim.Token()),
		dbtcloud.WithRetryPolicy(remote.Policy{MaxAttempts: 2, BaseDelay: time.Millisecond, MaxDelay: 2 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	sim.AddJob(1, "job")
	sim.Inject(dbtcloudtest.Fault{Method: "POST", Path: "/jobs/1/run/", Status: 429, RetryAfter: time.Second, Times: 1})
	run, err := c.TriggerRun(context.Background(), 1, &dbtcloud.TriggerRunRequest{Cause: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if sim.Count("POST", "/jobs/1/run/") != 2 || sim.TriggerCount(1) != 1 || run.ID == 0 {
		t.Errorf("%d requests, %d runs", sim.Count("POST", "/jobs/1/run/"), sim.TriggerCount(1))
	}
}

func TestSimRateLimitBeyondTheDeadline(t *testing.T) {
	sim, _, c := newSim(t)
	sim.Inject(dbtcloudtest.Fault{Status: 429, RetryAfter: 2 * time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := c.ListRuns(ctx, 1, nil)
	var apiErr *dbtcloud.Error
	if !errors.As(err, &apiErr) || apiErr.RetryAfter != 2*time.Minute || !errors.Is(err, dbtcloud.ErrRateLimited) || !dbtcloud.Retryable(err) {
		t.Fatalf("err = %v", err)
	}
	if n := sim.Count("GET", "/runs/"); n != 1 {
		t.Errorf("%d requests; the client should give up rather than sleep past its deadline", n)
	}
}

func TestSimServerErrorsAreRetriedForReads(t *testing.T) {
	sim, _, c := newSim(t)
	sim.AddJob(1, "job")
	run, _ := c.TriggerRun(context.Background(), 1, &dbtcloud.TriggerRunRequest{Cause: "x"})
	sim.Inject(dbtcloudtest.Fault{Method: "GET", Status: 500, Times: 1})
	sim.Inject(dbtcloudtest.Fault{Method: "GET", Status: 502, RawBody: "<html>502 Bad Gateway</html>", Times: 1})
	if _, err := c.GetRun(context.Background(), run.ID); err != nil {
		t.Fatal(err)
	}
	if n := sim.Count("GET", "/runs/"); n != 3 {
		t.Errorf("%d GETs, want 3", n)
	}
}

func TestSimTriggerIsNotRepeatedWhenTheOutcomeIsUnknown(t *testing.T) {
	tests := []struct {
		name     string
		fault    dbtcloudtest.Fault
		wantRuns int
	}{
		{"gateway timeout after dbt queued the run", dbtcloudtest.Fault{Status: 504, AfterHandling: true}, 1},
		{"connection dropped after dbt queued the run", dbtcloudtest.Fault{Drop: true, AfterHandling: true}, 1},
		{"connection dropped before dbt saw it", dbtcloudtest.Fault{Drop: true}, 0},
		{"500 before dbt acted", dbtcloudtest.Fault{Status: 500}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim, _, c := newSim(t)
			sim.AddJob(1, "job")
			f := tt.fault
			f.Method, f.Path, f.Times = "POST", "/jobs/1/run/", 1
			sim.Inject(f)
			cause := "bridge: " + tt.name
			_, err := c.TriggerRun(context.Background(), 1, &dbtcloud.TriggerRunRequest{Cause: cause})
			if !errors.Is(err, dbtcloud.ErrTriggerOutcomeUnknown) || dbtcloud.Retryable(err) {
				t.Fatalf("err = %v", err)
			}
			if n := sim.Count("POST", "/jobs/1/run/"); n != 1 {
				t.Errorf("trigger sent %d times", n)
			}
			if got := sim.TriggerCount(1); got != tt.wantRuns {
				t.Errorf("%d runs, want %d", got, tt.wantRuns)
			}
			// The documented recovery: look for the cause before triggering again.
			runs, err := c.ListRuns(context.Background(), 1, &dbtcloud.ListRunsOptions{Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			found := 0
			for _, r := range runs {
				if r.Trigger != nil && r.Trigger.Cause == cause {
					found++
				}
			}
			if found != tt.wantRuns {
				t.Errorf("ListRuns found %d runs with the cause, want %d", found, tt.wantRuns)
			}
		})
	}
}

func TestSimTriggerRetriedOn503(t *testing.T) {
	sim, _, c := newSim(t)
	sim.AddJob(1, "job")
	sim.Inject(dbtcloudtest.Fault{Method: "POST", Status: 503, Times: 2})
	if _, err := c.TriggerRun(context.Background(), 1, &dbtcloud.TriggerRunRequest{Cause: "x"}); err != nil {
		t.Fatal(err)
	}
	if sim.Count("POST", "/run/") != 3 || sim.TriggerCount(1) != 1 {
		t.Errorf("%d requests, %d runs", sim.Count("POST", "/run/"), sim.TriggerCount(1))
	}
}

func TestSimDroppedConnectionOnRead(t *testing.T) {
	sim, _, c := newSim(t)
	sim.Inject(dbtcloudtest.Fault{Method: "GET", Drop: true, Times: 2})
	if _, err := c.ListRuns(context.Background(), 1, nil); err != nil {
		t.Fatal(err)
	}
	if n := sim.Count("GET", "/runs/"); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
}

func TestSimListRunsPaging(t *testing.T) {
	sim, clock, c := newSim(t)
	sim.AddJob(1, "one")
	sim.AddJob(2, "two")
	ctx := context.Background()
	var ids []int64
	for i := range 7 {
		r, err := c.TriggerRun(ctx, 1, &dbtcloud.TriggerRunRequest{Cause: "run " + strconv.Itoa(i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
		_, _ = c.TriggerRun(ctx, 2, &dbtcloud.TriggerRunRequest{Cause: "other"})
		clock.Advance(time.Minute)
	}
	var seen []int64
	for offset := 0; ; offset += 3 {
		page, err := c.ListRuns(ctx, 1, &dbtcloud.ListRunsOptions{Limit: 3, Offset: offset})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, r := range page {
			if r.JobDefinitionID != 1 {
				t.Errorf("run of job %d in job 1's list", r.JobDefinitionID)
			}
			seen = append(seen, r.ID)
		}
	}
	if len(seen) != 7 || seen[0] != ids[6] || seen[6] != ids[0] {
		t.Errorf("paged ids = %v, triggered %v", seen, ids)
	}
	if page, _ := c.ListRuns(ctx, 1, &dbtcloud.ListRunsOptions{Limit: 100, OrderBy: "id", Status: dbtcloud.StatusSuccess}); len(page) != 7 || page[0].ID != ids[0] {
		t.Errorf("ascending successful runs = %d", len(page))
	}
	if _, err := c.ListRuns(ctx, 1, &dbtcloud.ListRunsOptions{Limit: 101}); err == nil {
		t.Error("limit 101 accepted")
	}
}

// hookReceiver checks each webhook the way the bridge's handler does. With a
// nil t it rejects bad events silently, for tests that expect rejection.
type hookReceiver struct {
	t      *testing.T
	secret string
	mu     sync.Mutex
	events []*dbtcloud.WebhookEvent
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := dbtcloud.VerifySignature(body, r.Header.Get("Authorization"), h.secret); err != nil {
		if h.t != nil {
			h.t.Errorf("signature: %v", err)
		}
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	ev, err := dbtcloud.ParseWebhook(body)
	if err != nil {
		if h.t != nil {
			h.t.Errorf("parse: %v", err)
		}
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	h.events = append(h.events, ev)
	h.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (h *hookReceiver) got() []*dbtcloud.WebhookEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*dbtcloud.WebhookEvent(nil), h.events...)
}

func TestSimSendWebhookVerifiesAndParses(t *testing.T) {
	sim, clock, c := newSim(t)
	sim.AddJob(123, "Daily Job (dbt build)", dbtcloudtest.RunTimings(time.Second, time.Second, time.Minute))
	run, _ := c.TriggerRun(context.Background(), 123, &dbtcloud.TriggerRunRequest{Cause: "scheduled"})
	clock.Advance(time.Hour)
	h := &hookReceiver{t: t, secret: "whsec-test"}
	srv := httptest.NewServer(h)
	defer srv.Close()

	resp, err := sim.SendWebhook(context.Background(), srv.URL, "whsec-test", dbtcloudtest.EventRunCompleted, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("receiver answered %d", resp.StatusCode)
	}
	evs := h.got()
	if len(evs) != 1 {
		t.Fatalf("%d events", len(evs))
	}
	ev := evs[0]
	if !ev.Succeeded() || ev.AccountID != 4242 || ev.Data.RunID != strconv.FormatInt(run.ID, 10) || ev.Data.JobID != "123" ||
		ev.Data.JobName != "Daily Job (dbt build)" || ev.Data.RunReason != "scheduled" || !ev.Timestamp.Equal(start.Add(time.Hour)) ||
		ev.Data.RunFinishedAt != "2026-03-02T06:01:02Z" {
		t.Errorf("event = %+v", ev)
	}

	// A receiver holding another secret must reject it.
	other := httptest.NewServer(&hookReceiver{secret: "other"})
	defer other.Close()
	resp, err = sim.SendWebhook(context.Background(), other.URL, "whsec-test", dbtcloudtest.EventRunCompleted, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong-secret receiver answered %d", resp.StatusCode)
	}
}

func TestSimAutomaticWebhooks(t *testing.T) {
	sim, clock, c := newSim(t, dbtcloudtest.WithWebhookTiming(dbtcloudtest.WebhookTiming{RetryDelay: time.Millisecond, PollInterval: time.Hour}))
	sim.AddJob(1, "ok", dbtcloudtest.RunTimings(time.Minute, time.Minute, time.Minute))
	sim.AddJob(2, "broken", dbtcloudtest.RunTimings(time.Minute, time.Minute, time.Minute), dbtcloudtest.Outcome(20))
	h := &hookReceiver{t: t, secret: "s"}
	srv := httptest.NewServer(h)
	defer srv.Close()
	sim.AddWebhook(srv.URL, "s", dbtcloudtest.EventRunCompleted)

	ok, _ := c.TriggerRun(context.Background(), 1, &dbtcloud.TriggerRunRequest{Cause: "a"})
	broken, _ := c.TriggerRun(context.Background(), 2, &dbtcloud.TriggerRunRequest{Cause: "b"})
	clock.Advance(time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sim.DeliverWebhooks(ctx); err != nil {
		t.Fatal(err)
	}
	evs := h.got()
	if len(evs) != 2 {
		t.Fatalf("%d events", len(evs))
	}
	byRun := map[string]*dbtcloud.WebhookEvent{}
	for _, ev := range evs {
		byRun[ev.Data.RunID] = ev
	}
	if ev := byRun[strconv.FormatInt(ok.ID, 10)]; ev == nil || !ev.Succeeded() {
		t.Errorf("success event = %+v", ev)
	}
	if ev := byRun[strconv.FormatInt(broken.ID, 10)]; ev == nil || ev.Succeeded() || ev.Data.RunStatusCode != dbtcloud.StatusError || ev.EventType != dbtcloud.EventRunCompleted {
		t.Errorf("error event = %+v", ev)
	}
}
