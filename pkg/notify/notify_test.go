package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/notify"
)

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
			n := notify.LogNotifier{Logger: debugLogger(logs)}
			if err := n.Notify(context.Background(), tt.m); !errors.Is(err, notify.ErrNoChannel) {
				t.Fatalf("Notify = %v, want ErrNoChannel: the message was logged, not sent", err)
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
