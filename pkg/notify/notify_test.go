package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/notify"
)

// funcNotifier adapts a function to Notifier and counts its calls.
type funcNotifier struct {
	calls atomic.Int64
	fn    func(notify.Message) error
}

func (f *funcNotifier) Notify(_ context.Context, m notify.Message) error {
	f.calls.Add(1)
	return f.fn(m)
}

func TestMultiTriesAll(t *testing.T) {
	errA := errors.New("a is down")
	errC := errors.New("c is down")
	a := &funcNotifier{fn: func(notify.Message) error { return errA }}
	b := &funcNotifier{fn: func(notify.Message) error { return nil }}
	c := &funcNotifier{fn: func(notify.Message) error { return errC }}

	err := notify.Multi{a, b, c}.Notify(context.Background(), failed())

	for i, n := range []*funcNotifier{a, b, c} {
		if n.calls.Load() != 1 {
			t.Errorf("notifier %d called %d times, want 1", i, n.calls.Load())
		}
	}
	if !errors.Is(err, errA) || !errors.Is(err, errC) {
		t.Errorf("error = %v, want both failures", err)
	}
	if err := (notify.Multi{b, b}).Notify(context.Background(), failed()); err != nil {
		t.Errorf("all succeeded, error = %v", err)
	}
	if err := (notify.Multi{}).Notify(context.Background(), failed()); err != nil {
		t.Errorf("empty Multi: %v", err)
	}
}

func TestMultiSlackAndSNS(t *testing.T) {
	rcv, url := newReceiver(t, reply{status: 404, body: "no_service"})
	fake := &fakeSNS{}
	logs := &logBuffer{}
	n, err := notify.New(notify.Options{
		SlackWebhookURL: url,
		SNSTopicARN:     "arn:aws:sns:eu-west-1:111122223333:alerts",
		SNS:             fake,
		Logger:          debugLogger(logs),
		Retry:           fastRetry,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, isMulti := n.(notify.Multi); !isMulti {
		t.Fatalf("New with both = %T, want Multi", n)
	}
	err = n.Notify(context.Background(), failed())
	var se *notify.SlackError
	if !errors.As(err, &se) || se.Body != "no_service" {
		t.Errorf("error = %v, want Slack's no_service", err)
	}
	if len(fake.calls) != 1 || rcv.attempts() != 1 {
		t.Errorf("SNS published %d, Slack posted %d; want 1 each", len(fake.calls), rcv.attempts())
	}
	if notify.Retryable(err) {
		t.Error("Retryable = true though the only failure is permanent")
	}
	assertNoSecret(t, "error", err.Error())
	assertNoSecret(t, "log", logs.String())
}

func TestNew(t *testing.T) {
	slackURL := "https://hooks.slack.com/services/" + secret
	arn := "arn:aws:sns:eu-west-1:111122223333:alerts"
	tests := []struct {
		name     string
		opts     notify.Options
		wantType string
		wantErr  bool
	}{
		{name: "nothing configured logs", opts: notify.Options{}, wantType: "notify.LogNotifier"},
		{name: "SNS client alone is not a channel", opts: notify.Options{SNS: &fakeSNS{}}, wantType: "notify.LogNotifier"},
		{name: "Slack", opts: notify.Options{SlackWebhookURL: slackURL, HTTPClient: &http.Client{}}, wantType: "*notify.Slack"},
		{name: "SNS", opts: notify.Options{SNSTopicARN: arn, SNS: &fakeSNS{}}, wantType: "*notify.SNS"},
		{name: "both", opts: notify.Options{SlackWebhookURL: slackURL, SNSTopicARN: arn, SNS: &fakeSNS{}}, wantType: "notify.Multi"},
		{name: "topic without client", opts: notify.Options{SNSTopicARN: arn}, wantErr: true},
		{name: "bad topic", opts: notify.Options{SNSTopicARN: "alerts", SNS: &fakeSNS{}}, wantErr: true},
		{name: "http Slack URL", opts: notify.Options{SlackWebhookURL: "http://hooks.slack.com/services/" + secret}, wantErr: true},
		{name: "bad retry policy", opts: notify.Options{SlackWebhookURL: slackURL, Retry: notify.RetryPolicy{MaxAttempts: 3}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := notify.New(tt.opts)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("New = %T, want an error", n)
				}
				assertNoSecret(t, "error", err.Error())
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprintf("%T", n); got != tt.wantType {
				t.Errorf("New = %s, want %s", got, tt.wantType)
			}
		})
	}
}

func TestLogNotifier(t *testing.T) {
	tests := []struct {
		name      string
		m         notify.Message
		wantLevel string
	}{
		{"failure at error", failed(), "ERROR"},
		{"success at info", notify.Message{Kind: notify.KindTableauRefreshSucceeded, TableauItemName: "Sales"}, "INFO"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := &logBuffer{}
			n, err := notify.New(notify.Options{Logger: debugLogger(logs)})
			if err != nil {
				t.Fatal(err)
			}
			if err := n.Notify(context.Background(), tt.m); err != nil {
				t.Fatal(err)
			}
			var rec map[string]any
			if err := json.Unmarshal([]byte(logs.String()), &rec); err != nil {
				t.Fatalf("log is not one JSON line: %v\n%s", err, logs.String())
			}
			if rec["level"] != tt.wantLevel || rec["kind"] != string(tt.m.Kind) ||
				!strings.Contains(rec["msg"].(string), tt.m.Subject()) || rec["tableau_item_name"] != tt.m.TableauItemName {
				t.Errorf("log record = %v", rec)
			}
		})
	}
}

func TestRetryable(t *testing.T) {
	permanent := &notify.SlackError{StatusCode: 410, Body: "channel_is_archived"}
	throttled := &notify.SlackError{StatusCode: 429, RetryAfter: time.Second}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain error", errors.New("boom"), false},
		{"cancelled", context.Canceled, false},
		{"deadline", fmt.Errorf("post: %w", context.DeadlineExceeded), true},
		{"429", throttled, true},
		{"408", &notify.SlackError{StatusCode: 408}, true},
		{"502", &notify.SlackError{StatusCode: 502}, true},
		{"410", permanent, false},
		{"wrapped 400", fmt.Errorf("alert: %w", &notify.SlackError{StatusCode: 400, Body: "invalid_payload"}), false},
		{"joined, one retryable", errors.Join(permanent, throttled), true},
		{"joined, none retryable", errors.Join(permanent, errors.New("boom")), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := notify.Retryable(tt.err); got != tt.want {
				t.Errorf("Retryable(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestSlackErrorMessage(t *testing.T) {
	err := &notify.SlackError{StatusCode: 429, Body: "rate_limited", Host: "hooks.slack.com", RetryAfter: 3 * time.Second}
	want := "notify: Slack webhook at hooks.slack.com replied 429 Too Many Requests: rate_limited (retry after 3s)"
	if err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
}
