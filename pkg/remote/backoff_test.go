package remote

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestCeilingAndJitter(t *testing.T) {
	tests := []struct {
		base, max time.Duration
		attempt   int
		want      time.Duration
	}{
		{100 * time.Millisecond, time.Second, 1, 100 * time.Millisecond},
		{100 * time.Millisecond, time.Second, 2, 200 * time.Millisecond},
		{100 * time.Millisecond, time.Second, 4, 800 * time.Millisecond},
		{100 * time.Millisecond, time.Second, 5, time.Second},
		{100 * time.Millisecond, time.Second, 500, time.Second},
		{0, time.Second, 3, 0},
		{time.Second, 500 * time.Millisecond, 1, 500 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := Ceiling(tt.base, tt.max, tt.attempt); got != tt.want {
			t.Errorf("Ceiling(%s, %s, %d) = %s, want %s", tt.base, tt.max, tt.attempt, got, tt.want)
		}
		high := false
		for range 200 {
			d := Full(tt.base, tt.max, tt.attempt)
			if d < 0 || d > tt.want {
				t.Fatalf("Full(%s, %s, %d) = %s, outside [0, %s]", tt.base, tt.max, tt.attempt, d, tt.want)
			}
			high = high || d > tt.want/2
		}
		if tt.want > 0 && !high {
			t.Errorf("Full never above half of %s: not full jitter", tt.want)
		}
	}
	if Jitter(0) != 0 || Jitter(-time.Second) != 0 {
		t.Error("Jitter of a non-positive ceiling is not 0")
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"7", 7 * time.Second},
		{" 120 ", 2 * time.Minute},
		{"0", 0},
		{"-5", 0},
		{"1.5", 0},
		{"soon", 0},
		{"86400", 24 * time.Hour},
		{"999999999999", MaxRetryAfter},
		{"99999999999999999999999", MaxRetryAfter},
		{"Mon, 23 Nov 2026 12:00:30 GMT", 30 * time.Second},
		{"Mon, 23 Nov 2026 11:59:00 GMT", 0},
		{"Tue, 23 Nov 2027 12:00:00 GMT", MaxRetryAfter},
	}
	for _, tt := range tests {
		if got := ParseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("ParseRetryAfter(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestSleepAndFits(t *testing.T) {
	if err := Sleep(context.Background(), time.Millisecond); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep on a cancelled context = %v", err)
	}
	if err := Sleep(ctx, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep(0) on a cancelled context = %v", err)
	}
	dctx, dcancel := context.WithTimeout(context.Background(), time.Minute)
	defer dcancel()
	if !Fits(dctx, time.Second) || Fits(dctx, time.Hour) || !Fits(context.Background(), 1000*time.Hour) {
		t.Error("Fits disagrees with the deadline")
	}
}
