package webhook

import (
	"testing"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dbtcloud"
)

// TestRunFinished: a ride is judged against the run's end as dbt reports
// it, or against the event's own time, which is no earlier.
func TestRunFinished(t *testing.T) {
	sent := time.Date(2026, 11, 30, 6, 1, 5, 0, time.UTC)
	tests := []struct {
		finished string
		want     time.Time
	}{
		{"2026-11-30T06:01:02Z", time.Date(2026, 11, 30, 6, 1, 2, 0, time.UTC)},
		{"2026-11-30T06:01:02.123456Z", time.Date(2026, 11, 30, 6, 1, 2, 123456000, time.UTC)},
		{"2026-11-30T07:01:02+01:00", time.Date(2026, 11, 30, 6, 1, 2, 0, time.UTC)},
		{"", sent},
		{"yesterday", sent},
	}
	for _, tt := range tests {
		t.Run(tt.finished, func(t *testing.T) {
			ev := &dbtcloud.WebhookEvent{Timestamp: sent, Data: dbtcloud.WebhookData{RunFinishedAt: tt.finished}}
			if got := runFinished(ev); !got.Equal(tt.want) {
				t.Errorf("runFinished = %s, want %s", got, tt.want)
			}
		})
	}
}
