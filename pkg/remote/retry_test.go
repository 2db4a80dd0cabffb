package remote

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// failure is an error a test scripts; wait is the Retry-After it carries.
type failure struct {
	retryable bool
	wait      time.Duration
}

func (f *failure) Error() string             { return "scripted failure" }
func (f *failure) ServerWait() time.Duration { return f.wait }

func TestRetrierDo(t *testing.T) {
	policy := Policy{MaxAttempts: 4, BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second}
	transient := &failure{retryable: true}
	permanent := &failure{retryable: false}
	tests := []struct {
		name      string
		script    []error // what each attempt returns; nil is success
		deadline  time.Duration
		wantCalls int
		wantWaits []time.Duration
		wantErr   error
		wantWhy   string // in the error's message
	}{
		{name: "first try", script: []error{nil}, wantCalls: 1},
		{name: "transient then success", script: []error{transient, transient, nil}, wantCalls: 3,
			wantWaits: []time.Duration{100 * time.Millisecond, 200 * time.Millisecond}},
		{name: "permanent is not repeated", script: []error{permanent}, wantCalls: 1, wantErr: permanent},
		{name: "attempts run out", script: []error{transient, transient, transient, transient}, wantCalls: 4,
			wantWaits: []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond},
			wantErr:   transient, wantWhy: "after 4 attempts; not retried: no attempts left"},
		{name: "Retry-After honoured over backoff", script: []error{&failure{retryable: true, wait: 700 * time.Millisecond}, nil},
			wantCalls: 2, wantWaits: []time.Duration{700 * time.Millisecond}},
		{name: "Retry-After longer than MaxDelay stops", script: []error{&failure{retryable: true, wait: 2 * time.Minute}},
			wantCalls: 1, wantWhy: "the server asked to wait 2m0s, more than the 1s allowed"},
		{name: "a wait past the deadline stops", script: []error{transient, transient}, deadline: 150 * time.Millisecond,
			wantCalls: 2, wantWaits: []time.Duration{100 * time.Millisecond}, wantErr: transient, wantWhy: "would pass the deadline"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.deadline > 0 {
				// Fits reads the real clock; the fake Sleep spends none of it.
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.deadline)
				defer cancel()
			}
			var waits []time.Duration
			calls := 0
			r := &Retrier{
				Policy:    policy,
				Retryable: func(err error) bool { var f *failure; return errors.As(err, &f) && f.retryable },
				Jitter:    func(ceiling time.Duration) time.Duration { return ceiling },
				Sleep: func(_ context.Context, d time.Duration) error {
					waits = append(waits, d)
					return nil
				},
			}
			err := r.Do(ctx, func(context.Context) error {
				calls++
				return tt.script[calls-1]
			})
			if calls != tt.wantCalls {
				t.Errorf("%d calls, want %d", calls, tt.wantCalls)
			}
			if len(waits) != len(tt.wantWaits) {
				t.Fatalf("waits %v, want %v", waits, tt.wantWaits)
			}
			for i := range waits {
				if waits[i] != tt.wantWaits[i] {
					t.Errorf("wait %d = %s, want %s", i, waits[i], tt.wantWaits[i])
				}
			}
			last := tt.script[len(tt.script)-1]
			switch {
			case last == nil && tt.wantErr == nil && tt.wantWhy == "":
				if err != nil {
					t.Fatalf("Do = %v, want success", err)
				}
			default:
				if err == nil {
					t.Fatal("Do succeeded")
				}
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Errorf("Do = %v, does not unwrap to the last attempt's error", err)
				}
				if !strings.Contains(err.Error(), tt.wantWhy) {
					t.Errorf("Do = %q, want it to say %q", err, tt.wantWhy)
				}
			}
		})
	}
}

func TestRetrierStopsWhenTheCallerCancels(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	r := &Retrier{Policy: DefaultPolicy(), Retryable: func(error) bool { return true }}
	err := r.Do(ctx, func(context.Context) error {
		calls++
		cancel()
		return errors.New("boom")
	})
	if calls != 1 || err == nil {
		t.Errorf("after the caller cancelled: %d calls, %v; want 1 call and its error", calls, err)
	}
}

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		name string
		p    Policy
		want string
	}{
		{"default", DefaultPolicy(), ""},
		{"one attempt needs no delays", Policy{MaxAttempts: 1}, ""},
		{"no attempts", Policy{MaxAttempts: 0, BaseDelay: time.Second, MaxDelay: time.Second}, "MaxAttempts 0"},
		{"zero base delay", Policy{MaxAttempts: 3, MaxDelay: time.Second}, "hot loop"},
		{"max below base", Policy{MaxAttempts: 3, BaseDelay: time.Second, MaxDelay: time.Millisecond}, "less than BaseDelay"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate = %v, want %q", err, tt.want)
			}
		})
	}
}
