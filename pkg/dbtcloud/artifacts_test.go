package dbtcloud

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestGetArtifact(t *testing.T) {
	tests := []struct {
		name      string
		step      int
		wantQuery string
	}{
		{"last step", 0, ""},
		{"step 4", 4, "step=4"},
	}
	body := []byte(`{"metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v6.json"}, "results": []}`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, mux, _ := setup(t)
			mux.HandleFunc("/api/v2/accounts/1/runs/36053848/artifacts/run_results.json", func(w http.ResponseWriter, r *http.Request) {
				testMethod(t, r, "GET")
				if got := r.Header.Get("Authorization"); got != "Token "+testToken {
					t.Errorf("Authorization = %q", got)
				}
				if got := r.URL.RawQuery; got != tt.wantQuery {
					t.Errorf("query = %q, want %q", got, tt.wantQuery)
				}
				reply(w, 200, body)
			})
			rc, err := c.GetArtifact(context.Background(), 36053848, "run_results.json", tt.step)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if err != nil || !bytes.Equal(got, body) {
				t.Errorf("body = %q, %v", got, err)
			}
		})
	}
}

func TestGetArtifactNotAvailable(t *testing.T) {
	c, mux, rec := setup(t)
	var calls atomic.Int32
	mux.HandleFunc("/api/v2/accounts/1/runs/36053848/artifacts/manifest.json", func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		reply(w, 404, fixture(t, "error_404.json"))
	})
	rc, err := c.GetArtifact(context.Background(), 36053848, "manifest.json", 5)
	if err == nil {
		rc.Close()
		t.Fatal("GetArtifact succeeded on a 404")
	}
	var apiErr *Error
	if !errors.Is(err, ErrArtifactNotAvailable) || !errors.Is(err, ErrNotFound) || !errors.As(err, &apiErr) || apiErr.StatusCode != 404 {
		t.Errorf("error = %v, want ErrArtifactNotAvailable wrapping a 404 *Error", err)
	}
	if !Retryable(err) {
		t.Errorf("Retryable(%v) = false; an artifact not yet available is worth asking for again", err)
	}
	for _, want := range []string{"run 36053848", "manifest.json", "step 5", "not available yet", "404"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	// The client does not wait for artifacts itself: the caller decides
	// (dbt redelivers the webhook, the scheduler looks again).
	if calls.Load() != 1 || len(rec.get()) != 0 {
		t.Errorf("%d requests, waits %v; want one request and no wait", calls.Load(), rec.get())
	}
}

func TestGetArtifactRetries(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name       string
		statuses   []int
		wantErr    error
		wantSleeps []time.Duration
	}{
		{"503 then ok", []int{503, 200}, nil, []time.Duration{10 * ms}},
		{"dropped connection then ok", []int{0, 200}, nil, []time.Duration{10 * ms}},
		{"429 asking for more than MaxDelay is left to the caller", []int{429, 200}, ErrRateLimited, nil},
		{"500 until attempts run out", []int{500}, errors.New("500"), []time.Duration{10 * ms, 20 * ms, 40 * ms}},
		{"401 is final", []int{401, 200}, ErrUnauthorized, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, mux, rec := setup(t)
			var calls atomic.Int32
			mux.HandleFunc("/api/v2/accounts/1/runs/7/artifacts/run_results.json", script(t, &calls, []byte(`{"ok": true}`), tt.statuses...))
			rc, err := c.GetArtifact(context.Background(), 7, "run_results.json", 0)
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("GetArtifact: %v", err)
			case tt.wantErr == nil:
				got, _ := io.ReadAll(rc)
				rc.Close()
				if string(got) != `{"ok": true}` {
					t.Errorf("body = %q", got)
				}
			case err == nil:
				rc.Close()
				t.Fatal("GetArtifact succeeded")
			case errors.Is(tt.wantErr, ErrUnauthorized) && !errors.Is(err, ErrUnauthorized):
				t.Errorf("error = %v, want ErrUnauthorized", err)
			}
			if got := rec.get(); !reflect.DeepEqual(got, tt.wantSleeps) {
				t.Errorf("waits = %v, want %v", got, tt.wantSleeps)
			}
		})
	}
}

// TestGetArtifactStreams checks that the body is handed over as it arrives:
// the server sends the first bytes and then waits for the test to have read
// them, which a client that buffered the reply would never let happen.
func TestGetArtifactStreams(t *testing.T) {
	c, mux, _ := setup(t)
	release := make(chan struct{})
	const size = 3 * int(maxBodyBytes) // larger than anything do would accept
	mux.HandleFunc("/api/v2/accounts/1/runs/7/artifacts/manifest.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(size))
		_, _ = w.Write([]byte(`{"metadata": `))
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		_, _ = w.Write(bytes.Repeat([]byte(" "), size-len(`{"metadata": `)))
	})
	// The deadline only ends a test that would otherwise hang.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rc, err := c.GetArtifact(ctx, 7, "manifest.json", 0)
	if err != nil {
		t.Fatalf("GetArtifact before the server finished: %v", err)
	}
	defer rc.Close()
	first := make([]byte, len(`{"metadata": `))
	if _, err := io.ReadFull(rc, first); err != nil || string(first) != `{"metadata": ` {
		t.Fatalf("first bytes = %q, %v", first, err)
	}
	close(release)
	n, err := io.Copy(io.Discard, rc)
	if err != nil || n+int64(len(first)) != int64(size) {
		t.Errorf("read %d more bytes, %v; want %d in all", n, err, size)
	}
}

func TestGetArtifactConnectionLostMidway(t *testing.T) {
	c, mux, _ := setup(t)
	mux.HandleFunc("/api/v2/accounts/1/runs/7/artifacts/manifest.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100000")
		_, _ = w.Write([]byte(`{"metadata": {`))
		w.(http.Flusher).Flush()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	})
	rc, err := c.GetArtifact(context.Background(), 7, "manifest.json", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	_, err = io.ReadAll(rc)
	if err == nil || !Retryable(err) || !strings.Contains(err.Error(), "/runs/7/artifacts/manifest.json") {
		t.Errorf("read error = %v; want a retryable error naming the artifact", err)
	}
}

func TestGetArtifactRejectsBadInput(t *testing.T) {
	c, mux, _ := setup(t)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("unexpected request %s", r.URL)
	})
	tests := []struct {
		name  string
		run   int64
		path  string
		step  int
		wants string
	}{
		{"run 0", 0, "run_results.json", 0, "run id must be positive"},
		{"negative step", 1, "run_results.json", -1, "step must not be negative"},
		{"empty path", 1, "", 0, "path must be relative"},
		{"absolute path", 1, "/etc/passwd", 0, "path must be relative"},
		{"parent directory", 1, "../runs/2/artifacts/manifest.json", 0, "path must be relative"},
		{"query smuggled in the path", 1, "manifest.json?step=2", 0, "path must be relative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc, err := c.GetArtifact(context.Background(), tt.run, tt.path, tt.step)
			if err == nil {
				rc.Close()
				t.Fatal("GetArtifact succeeded")
			}
			if !strings.Contains(err.Error(), tt.wants) {
				t.Errorf("error = %v, want it to say %q", err, tt.wants)
			}
		})
	}
}

func TestGetRunSteps(t *testing.T) {
	c, mux, _ := setup(t)
	mux.HandleFunc("/api/v2/accounts/1/runs/36053848/", func(w http.ResponseWriter, r *http.Request) {
		testMethod(t, r, "GET")
		testHeaders(t, r, false)
		if got := r.URL.Query().Get("include_related"); got != `["run_steps"]` {
			t.Errorf("include_related = %q", got)
		}
		reply(w, 200, fixture(t, "get_run_steps.json"))
	})
	steps, err := c.GetRunSteps(context.Background(), 36053848)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range steps {
		got = append(got, strconv.Itoa(s.Index)+" "+s.Status.String()+" "+s.Command())
	}
	want := []string{"1 Success ", "2 Success ", "3 Success dbt deps", "4 Success dbt seed",
		"5 Success dbt build --select tag:daily", "6 Success dbt docs generate"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("steps = %q, want %q", got, want)
	}
	if s := steps[4]; s.RunID != 36053848 || s.StartedAt == nil || !s.StartedAt.Equal(utc("2021-12-07T10:34:08.034561Z")) ||
		s.FinishedAt == nil || !s.FinishedAt.Equal(utc("2021-12-07T10:34:12.771092Z")) {
		t.Errorf("step 5 = %+v", s)
	}
	if _, err := c.GetRunSteps(context.Background(), -1); err == nil {
		t.Error("GetRunSteps(-1) succeeded")
	}
}

func TestRunStepCommand(t *testing.T) {
	tests := []struct {
		name string
		step RunStep
		want string
	}{
		{"build", RunStep{Name: "Invoke dbt with `dbt build`"}, "dbt build"},
		{"with selectors", RunStep{Name: "Invoke dbt with `dbt run --select +orders --exclude tag:weekly`"}, "dbt run --select +orders --exclude tag:weekly"},
		{"platform step", RunStep{Name: "Clone git repository"}, ""},
		{"profile step", RunStep{Name: "Create profile from connection Snowflake"}, ""},
		{"unterminated backtick", RunStep{Name: "Invoke dbt with `dbt build"}, ""},
		{"backticks elsewhere", RunStep{Name: "Run `something`"}, ""},
		{"run_step_command wins", RunStep{Name: "Invoke dbt with `dbt build`", RunStepCommand: &RunStepCommand{DBTCommand: "dbt build --full-refresh"}}, "dbt build --full-refresh"},
	}
	for _, tt := range tests {
		if got := tt.step.Command(); got != tt.want {
			t.Errorf("%s: Command() = %q, want %q", tt.name, got, tt.want)
		}
	}
}
