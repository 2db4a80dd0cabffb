package dbtcloudtest_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dbtcloud/dbtcloudtest"
)

// receiver records webhook posts; fail decides the status of each one.
type receiver struct {
	mu     sync.Mutex
	bodies [][]byte
	sigs   []string
	fail   func(n int) int
	block  func(n int) bool
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	rc.bodies = append(rc.bodies, body)
	rc.sigs = append(rc.sigs, r.Header.Get("Authorization"))
	n := len(rc.bodies)
	rc.mu.Unlock()
	if rc.block != nil && rc.block(n) {
		<-r.Context().Done() // slower than the sender's timeout
		return
	}
	if rc.fail != nil {
		w.WriteHeader(rc.fail(n))
		return
	}
	w.WriteHeader(http.StatusOK)
}

type event struct {
	AccountID json.Number `json:"accountId"`
	WebhookID string      `json:"webhookId"`
	EventID   string      `json:"eventId"`
	Timestamp string      `json:"timestamp"`
	EventType string      `json:"eventType"`
	Data      struct {
		JobID, RunID, RunStatus, RunStatusMessage, RunReason string
		RunStartedAt, RunFinishedAt, RunErroredAt            string
		RunStatusCode                                        json.Number
	} `json:"data"`
}

func (rc *receiver) events(t *testing.T, secret string) []event {
	t.Helper()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []event
	for i, b := range rc.bodies {
		m := hmac.New(sha256.New, []byte(secret))
		m.Write(b)
		if want := hex.EncodeToString(m.Sum(nil)); rc.sigs[i] != want {
			t.Errorf("event %d: Authorization %q, want %q", i, rc.sigs[i], want)
		}
		var ev event
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		if err := dec.Decode(&ev); err != nil {
			t.Fatalf("event %d is not JSON: %v", i, err)
		}
		out = append(out, ev)
	}
	return out
}

func deliver(t *testing.T, s *dbtcloudtest.Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.DeliverWebhooks(ctx); err != nil {
		t.Fatal(err)
	}
}

var fastHooks = dbtcloudtest.WithWebhookTiming(dbtcloudtest.WebhookTiming{
	Timeout: 50 * time.Millisecond, RetryDelay: time.Millisecond, PollInterval: time.Hour,
})

var nanoStamp = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$`)

func TestWebhooksFollowTheRunLifeCycle(t *testing.T) {
	tests := []struct {
		name    string
		outcome int
		events  []string
		want    []string // eventType/runStatus
	}{
		{"success, all events", 10, nil, []string{"job.run.started/Running", "job.run.completed/Success"}},
		{"error, all events", 20, nil, []string{"job.run.started/Running", "job.run.errored/Errored", "job.run.completed/Errored"}},
		{"error, completed only", 20, []string{dbtcloudtest.EventRunCompleted}, []string{"job.run.completed/Errored"}},
		{"cancelled outcome", 30, nil, []string{"job.run.started/Running", "job.run.completed/Cancelled"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, clock := newServer(t, fastHooks)
			s.AddJob(3, "Daily", dbtcloudtest.RunTimings(time.Minute, time.Minute, 10*time.Minute), dbtcloudtest.Outcome(tt.outcome))
			rc := &receiver{}
			hook := httptest.NewServer(rc)
			defer hook.Close()
			s.AddWebhook(hook.URL, "whsec", tt.events...)

			id := trigger(t, s, 3, "nightly refresh")
			deliver(t, s)
			if n := len(rc.events(t, "whsec")); n != 0 {
				t.Fatalf("%d events before the run started", n)
			}
			clock.Advance(3 * time.Minute)
			deliver(t, s)
			clock.Advance(time.Hour)
			deliver(t, s)
			deliver(t, s) // nothing new: each transition is announced once

			evs := rc.events(t, "whsec")
			var got []string
			for _, ev := range evs {
				got = append(got, ev.EventType+"/"+ev.Data.RunStatus)
				if ev.Data.RunID != strconv.FormatInt(id, 10) || ev.Data.JobID != "3" || ev.AccountID.String() != "1" ||
					ev.Data.RunReason != "nightly refresh" || !nanoStamp.MatchString(ev.Timestamp) || ev.EventID == "" {
					t.Errorf("event = %+v", ev)
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("events = %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("events = %v, want %v", got, tt.want)
				}
			}
			last := evs[len(evs)-1]
			if code, _ := last.Data.RunStatusCode.Int64(); code != int64(tt.outcome) || last.Data.RunFinishedAt != "2026-03-02T06:12:00Z" {
				t.Errorf("completed event = %+v", last.Data)
			}
		})
	}
}

func TestWebhookRetriesKeepTheEventID(t *testing.T) {
	s, clock := newServer(t, fastHooks)
	s.AddJob(3, "Daily", dbtcloudtest.RunTimings(0, 0, time.Minute))
	rc := &receiver{fail: func(n int) int {
		if n <= 2 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	}, block: func(n int) bool { return n == 3 }}
	hook := httptest.NewServer(rc)
	defer hook.Close()
	s.AddWebhook(hook.URL, "whsec", dbtcloudtest.EventRunCompleted)
	trigger(t, s, 3, "x")
	clock.Advance(time.Hour)
	deliver(t, s)

	ds := s.Deliveries()
	if len(ds) != 4 {
		t.Fatalf("deliveries = %+v", ds)
	}
	for i, d := range ds {
		if d.Attempt != i+1 || d.EventID != ds[0].EventID {
			t.Errorf("delivery %d = %+v", i, d)
		}
	}
	if ds[0].StatusCode != 500 || ds[2].StatusCode != 0 || ds[2].Err == "" || ds[3].StatusCode != 200 {
		t.Errorf("deliveries = %+v", ds)
	}
}

func TestWebhookGivesUpAfterFiveRetries(t *testing.T) {
	s, clock := newServer(t, fastHooks)
	s.AddJob(3, "Daily", dbtcloudtest.RunTimings(0, 0, time.Minute))
	rc := &receiver{fail: func(int) int { return http.StatusBadGateway }}
	hook := httptest.NewServer(rc)
	defer hook.Close()
	s.AddWebhook(hook.URL, "whsec", dbtcloudtest.EventRunCompleted)
	trigger(t, s, 3, "x")
	clock.Advance(time.Hour)
	deliver(t, s)
	if n := len(s.Deliveries()); n != 6 {
		t.Errorf("%d attempts, want 1 + 5 retries", n)
	}
}

func TestNewWebhookDoesNotReplayHistory(t *testing.T) {
	s, clock := newServer(t, fastHooks)
	s.AddJob(3, "Daily", dbtcloudtest.RunTimings(0, 0, time.Minute))
	trigger(t, s, 3, "x")
	clock.Advance(time.Hour)
	rc := &receiver{}
	hook := httptest.NewServer(rc)
	defer hook.Close()
	s.AddWebhook(hook.URL, "whsec")
	deliver(t, s)
	if n := len(rc.events(t, "whsec")); n != 0 {
		t.Errorf("new webhook got %d old events", n)
	}
}

func TestSendWebhook(t *testing.T) {
	s, clock := newServer(t)
	s.AddJob(3, "Daily (dbt build)", dbtcloudtest.RunTimings(0, time.Second, time.Minute), dbtcloudtest.Outcome(20))
	id := trigger(t, s, 3, "manual")
	clock.Advance(time.Hour)
	rc := &receiver{}
	hook := httptest.NewServer(rc)
	defer hook.Close()

	resp, err := s.SendWebhook(context.Background(), hook.URL, "s3cret", dbtcloudtest.EventRunErrored, id)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	evs := rc.events(t, "s3cret")
	if len(evs) != 1 {
		t.Fatalf("%d events", len(evs))
	}
	ev := evs[0]
	if code, _ := ev.Data.RunStatusCode.Int64(); ev.EventType != "job.run.errored" || code != 20 || ev.Data.RunStatus != "Errored" ||
		ev.Data.RunErroredAt != "2026-03-02T06:01:01Z" || ev.Data.RunFinishedAt != "" || ev.Data.RunStartedAt != "2026-03-02T06:00:01Z" ||
		ev.Data.RunStatusMessage != dbtcloudtest.DefaultErrorMessage {
		t.Errorf("event = %+v", ev)
	}

	// Ids are strings and accountId/runStatusCode numbers, as dbt sends them.
	var raw map[string]any
	body, _ := s.WebhookBody(dbtcloudtest.EventRunCompleted, id)
	_ = json.Unmarshal(body, &raw)
	data := raw["data"].(map[string]any)
	if _, ok := raw["accountId"].(float64); !ok {
		t.Errorf("accountId = %T", raw["accountId"])
	}
	if _, ok := data["runId"].(string); !ok {
		t.Errorf("runId = %T", data["runId"])
	}
	if _, ok := data["runStatusCode"].(float64); !ok {
		t.Errorf("runStatusCode = %T", data["runStatusCode"])
	}

	if _, err := s.SendWebhook(context.Background(), hook.URL, "s", dbtcloudtest.EventRunCompleted, 999); err == nil {
		t.Error("SendWebhook for an unknown run succeeded")
	}
	if _, err := s.WebhookBody("job.run.finished", id); err == nil {
		t.Error("WebhookBody accepted an unknown event type")
	}
}

func TestSignature(t *testing.T) {
	// RFC 4231 test case 2.
	got := dbtcloudtest.Signature([]byte("what do ya want for nothing?"), "Jefe")
	if want := "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"; got != want {
		t.Errorf("Signature = %s, want %s", got, want)
	}
}
