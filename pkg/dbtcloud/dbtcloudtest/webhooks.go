package dbtcloudtest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// Webhook event types dbt Cloud sends.
// See https://docs.getdbt.com/docs/deploy/webhooks.
const (
	EventRunStarted   = "job.run.started"
	EventRunCompleted = "job.run.completed"
	EventRunErrored   = "job.run.errored"
)

// webhookRetries is how often dbt retries a failed delivery, per its docs.
const webhookRetries = 5

// WebhookTiming tunes webhook delivery.
type WebhookTiming struct {
	// Timeout is how long a receiver may take to answer before the attempt
	// counts as failed; dbt allows 10 seconds.
	Timeout time.Duration
	// RetryDelay is the wait between attempts.
	RetryDelay time.Duration
	// PollInterval is how often, in real time, the server looks for runs
	// that started or finished, once a webhook is registered.
	PollInterval time.Duration
}

var defaultWebhookTiming = WebhookTiming{Timeout: 10 * time.Second, RetryDelay: time.Second, PollInterval: 100 * time.Millisecond}

// Signature returns the Authorization header dbt Cloud sends with a webhook:
// the lowercase hex HMAC-SHA256 of the raw body keyed with the secret.
func Signature(body []byte, secret string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

type subscription struct {
	id, url, secret string
	events          []string
}

// Delivery is one attempt to deliver a webhook event.
type Delivery struct {
	URL, EventType, EventID string
	RunID                   int64
	// Attempt counts from 1; a retry of the same event keeps its EventID.
	Attempt int
	// StatusCode is the receiver's reply, 0 when there was none.
	StatusCode int
	// Err is why the attempt failed before a reply, such as a timeout.
	Err string
	// Body and Signature are exactly what was posted.
	Body      []byte
	Signature string
}

// AddWebhook subscribes url to events (all three when none are given), signed
// with secret. From then on the server posts an event whenever a run starts,
// finishes or errors, as dbt Cloud does: each event is retried up to five
// times after a non-2xx reply or a reply slower than WebhookTiming.Timeout,
// so receivers must expect duplicates (same eventId).
//
// Runs are checked after every API request and every PollInterval. With a
// fake clock, call DeliverWebhooks after moving it to get deliveries at once.
// dbt sends job.run.completed for errored and cancelled runs too, and
// job.run.errored as well for errored ones (before completed).
func (s *Server) AddWebhook(url, secret string, events ...string) {
	if url == "" || secret == "" {
		panic("dbtcloudtest: AddWebhook needs a URL and a secret")
	}
	if len(events) == 0 {
		events = []string{EventRunStarted, EventRunCompleted, EventRunErrored}
	}
	for _, e := range events {
		if e != EventRunStarted && e != EventRunCompleted && e != EventRunErrored {
			panic(fmt.Sprintf("dbtcloudtest: unknown webhook event %q", e))
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Settle what happened before the subscription existed; dbt does not
	// replay history to a new webhook.
	s.observeLocked()
	s.hooks = append(s.hooks, &subscription{id: "wsu_" + randomID(14), url: url, secret: secret, events: events})
	if !s.pollerStarted && !s.closed {
		s.pollerStarted = true
		s.wg.Add(1)
		go s.poll()
	}
}

func (s *Server) poll() {
	defer s.wg.Done()
	t := time.NewTicker(s.timing.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-s.closing:
			return
		case <-t.C:
			s.mu.Lock()
			s.observeLocked()
			s.mu.Unlock()
		}
	}
}

// DeliverWebhooks checks runs at the current clock, sends the events that
// are due, and waits until every delivery in flight has succeeded or used up
// its retries (or ctx ends).
func (s *Server) DeliverWebhooks(ctx context.Context) error {
	s.mu.Lock()
	s.observeLocked()
	s.mu.Unlock()
	for {
		s.mu.Lock()
		n := s.inflight
		s.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("dbtcloudtest: %d webhook deliveries still in flight: %w", n, ctx.Err())
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// Deliveries returns every delivery attempt so far, in order.
func (s *Server) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.deliveries)
}

type pendingEvent struct {
	eventType, eventID string
	runID              int64
	body               []byte
}

// observeLocked announces the transitions that happened since the last look.
func (s *Server) observeLocked() {
	now := s.now()
	for _, r := range s.sortedRunsLocked() {
		if r.announcedEnd {
			continue
		}
		st := r.stateAt(now)
		var events []string
		if !r.announcedStart && st.started != nil {
			r.announcedStart = true
			events = append(events, EventRunStarted)
		}
		if terminal(st.status) {
			r.announcedEnd = true
			// errored fires at once; completed waits for artifacts.
			if st.status == statusError {
				events = append(events, EventRunErrored)
			}
			events = append(events, EventRunCompleted)
		}
		if len(events) == 0 || s.closed {
			continue
		}
		for _, h := range s.hooks {
			var batch []pendingEvent
			for _, e := range events {
				if slices.Contains(h.events, e) {
					id := "wev_" + randomID(27)
					batch = append(batch, pendingEvent{
						eventType: e, eventID: id, runID: r.id,
						body: s.payloadLocked(h.id, id, e, r, st, now),
					})
				}
			}
			if len(batch) > 0 {
				s.startDeliveryLocked(h, batch)
			}
		}
	}
}

func (s *Server) startDeliveryLocked(h *subscription, batch []pendingEvent) {
	s.inflight++
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			s.inflight--
			s.mu.Unlock()
		}()
		ctx, cancel := s.closingContext()
		defer cancel()
		client := &http.Client{Timeout: s.timing.Timeout}
		// One goroutine per batch keeps a run's started event ahead of its
		// completed event at each receiver.
		for _, ev := range batch {
			s.deliver(ctx, client, h, ev)
		}
	}()
}

func (s *Server) deliver(ctx context.Context, client *http.Client, h *subscription, ev pendingEvent) {
	sig := Signature(ev.body, h.secret)
	for attempt := 1; attempt <= 1+webhookRetries; attempt++ {
		code, err := post(ctx, client, h.url, sig, ev.body)
		d := Delivery{
			URL: h.url, EventType: ev.eventType, EventID: ev.eventID, RunID: ev.runID,
			Attempt: attempt, StatusCode: code, Body: ev.body, Signature: sig,
		}
		if err != nil {
			d.Err = err.Error()
		}
		s.mu.Lock()
		s.deliveries = append(s.deliveries, d)
		s.mu.Unlock()
		if err == nil && code >= 200 && code <= 299 {
			return
		}
		if attempt > webhookRetries {
			return
		}
		t := time.NewTimer(s.timing.RetryDelay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func post(ctx context.Context, client *http.Client, url, signature string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", signature)
	req.Header.Set("User-Agent", "dbtcloudtest-webhooks/1")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return resp.StatusCode, nil
}

// SendWebhook posts one signed eventType event about run runID to url, as it
// is at the server's clock, once and without retries. The caller closes the
// response body.
func (s *Server) SendWebhook(ctx context.Context, url, secret, eventType string, runID int64) (*http.Response, error) {
	body, err := s.WebhookBody(eventType, runID)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("dbtcloudtest: send webhook: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", Signature(body, secret))
	req.Header.Set("User-Agent", "dbtcloudtest-webhooks/1")
	client := &http.Client{Timeout: s.timing.Timeout}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("dbtcloudtest: send webhook: %w", err)
	}
	return resp, nil
}

// WebhookBody returns the payload of an eventType event about run runID as
// it is at the server's clock, for tests that call a handler directly. Sign
// it with Signature.
func (s *Server) WebhookBody(eventType string, runID int64) ([]byte, error) {
	if eventType != EventRunStarted && eventType != EventRunCompleted && eventType != EventRunErrored {
		return nil, fmt.Errorf("dbtcloudtest: unknown webhook event %q", eventType)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.runs[runID]
	if !ok {
		return nil, fmt.Errorf("dbtcloudtest: no run %d", runID)
	}
	now := s.now()
	return s.payloadLocked("wsu_dbtcloudtest0", "wev_"+randomID(27), eventType, r, r.stateAt(now), now), nil
}

// webhookPayload is the body dbt posts. Ids are strings here, unlike in the
// Admin API; accountId and runStatusCode are numbers.
type webhookPayload struct {
	AccountID   int64       `json:"accountId"`
	WebhookID   string      `json:"webhookId"`
	EventID     string      `json:"eventId"`
	Timestamp   string      `json:"timestamp"`
	EventType   string      `json:"eventType"`
	WebhookName string      `json:"webhookName"`
	Data        webhookData `json:"data"`
}

type webhookData struct {
	JobID            string `json:"jobId"`
	JobName          string `json:"jobName"`
	RunID            string `json:"runId"`
	EnvironmentID    string `json:"environmentId"`
	EnvironmentName  string `json:"environmentName"`
	DBTVersion       string `json:"dbtVersion"`
	ProjectName      string `json:"projectName"`
	ProjectID        string `json:"projectId"`
	RunStatus        string `json:"runStatus"`
	RunStatusCode    int    `json:"runStatusCode"`
	RunStatusMessage string `json:"runStatusMessage"`
	RunReason        string `json:"runReason"`
	RunStartedAt     string `json:"runStartedAt"`
	RunFinishedAt    string `json:"runFinishedAt,omitempty"`
	RunErroredAt     string `json:"runErroredAt,omitempty"`
}

// webhookStatus is the runStatus word of webhook payloads, which says
// "Errored" where the API says "Error".
func webhookStatus(status int) string {
	if status == statusError {
		return "Errored"
	}
	return humanStatus(status)
}

func (s *Server) payloadLocked(webhookID, eventID, eventType string, r *run, st runState, now time.Time) []byte {
	status, message := st.status, st.message
	if eventType == EventRunStarted {
		// The event describes the moment the run started, even when it is
		// observed late.
		status, message = statusRunning, ""
	}
	if message == "" {
		// dbt renders a missing message as Python's None.
		message = "None"
	}
	started := "None"
	if st.started != nil {
		started = webhookTime(*st.started)
	}
	d := webhookData{
		JobID: strconv.FormatInt(r.job.id, 10), JobName: r.job.name, RunID: strconv.FormatInt(r.id, 10),
		EnvironmentID: strconv.FormatInt(r.job.environmentID, 10), EnvironmentName: "Production",
		DBTVersion: dbtVersion, ProjectName: "Analytics", ProjectID: strconv.FormatInt(r.job.projectID, 10),
		RunStatus: webhookStatus(status), RunStatusCode: status, RunStatusMessage: message,
		RunReason: r.req.Cause, RunStartedAt: started,
	}
	if st.finished != nil {
		switch eventType {
		case EventRunCompleted:
			d.RunFinishedAt = webhookTime(*st.finished)
		case EventRunErrored:
			d.RunErroredAt = webhookTime(*st.finished)
		}
	}
	b, err := json.Marshal(webhookPayload{
		AccountID: s.accountID, WebhookID: webhookID, EventID: eventID,
		Timestamp: now.UTC().Format("2006-01-02T15:04:05.000000000Z"),
		EventType: eventType, WebhookName: "dbtcloudtest", Data: d,
	})
	if err != nil {
		panic(err) // plain strings and numbers always encode
	}
	return b
}

func webhookTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

const idAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

func randomID(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = idAlphabet[rand.IntN(len(idAlphabet))]
	}
	return string(b)
}
