package status

import (
	"testing"
	"time"
)

func TestDurationWords(t *testing.T) {
	n := int64(-5)
	tests := []struct {
		in   any
		want string
	}{
		{int64(0), "0s"}, {int64(45), "45s"}, {int64(60), "1m"}, {int64(192), "3m 12s"}, {int64(3600), "1h"},
		{int64(5*3600 + 3*60 + 59), "5h 3m"}, {int64(86400), "1d"}, {int64(2*86400 + 4*3600), "2d 4h"},
		{&n, "-5s"}, {(*int64)(nil), "–"},
	}
	for _, tt := range tests {
		if got := duration(tt.in); got != tt.want {
			t.Errorf("duration(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestAt(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) *time.Time { t := now.Add(-d); return &t }
	tests := []struct {
		t    *time.Time
		want string
	}{
		{nil, "–"},
		{ago(20 * time.Second), "2026-11-30 11:59 UTC (just now)"},
		{ago(3*time.Hour + 5*time.Minute), "2026-11-30 08:55 UTC (3h 5m ago)"},
		{ago(-time.Hour), "2026-11-30 13:00 UTC"},
	}
	for _, tt := range tests {
		if got := at(now, tt.t); got != tt.want {
			t.Errorf("at(%v) = %q, want %q", tt.t, got, tt.want)
		}
	}
}
