package dbtcloud_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dbtcloud"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dbtcloud/dbtcloudtest"
)

func readArtifact(t *testing.T, c *dbtcloud.Client, runID int64, path string, step int) ([]byte, error) {
	t.Helper()
	rc, err := c.GetArtifact(context.Background(), runID, path, step)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func TestSimArtifacts(t *testing.T) {
	sim, clock, c := newSim(t)
	// Seven demo steps over 70 s of running: one step every 10 s.
	sim.AddJob(123, "Daily", dbtcloudtest.RunTimings(time.Minute, 10*time.Second, 70*time.Second))
	ctx := context.Background()
	run, err := c.TriggerRun(ctx, 123, &dbtcloud.TriggerRunRequest{Cause: "test"})
	if err != nil {
		t.Fatal(err)
	}
	demo := dbtcloudtest.DemoSteps()

	// Queued: no steps, no artifacts.
	if steps, err := c.GetRunSteps(ctx, run.ID); err != nil || len(steps) != 0 {
		t.Fatalf("queued run steps = %+v, %v", steps, err)
	}
	if _, err := readArtifact(t, c, run.ID, "run_results.json", 0); !errors.Is(err, dbtcloud.ErrArtifactNotAvailable) {
		t.Fatalf("artifact of a queued run: %v", err)
	}

	// Running, 35 s in: steps 1-3 done, step 4 running; artifacts still 404.
	clock.Advance(time.Minute + 10*time.Second + 35*time.Second)
	steps, err := c.GetRunSteps(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	var states []string
	for _, s := range steps {
		states = append(states, fmt.Sprintf("%d:%s", s.Index, s.Status))
	}
	if fmt.Sprint(states) != "[1:Success 2:Success 3:Success 4:Running]" {
		t.Errorf("running run steps = %v", states)
	}
	if _, err := readArtifact(t, c, run.ID, "run_results.json", 4); !errors.Is(err, dbtcloud.ErrArtifactNotAvailable) || !dbtcloud.Retryable(err) {
		t.Errorf("artifact of a running run: %v", err)
	}

	// Finished: every step, and each step's own artifacts.
	clock.Advance(time.Minute)
	steps, err = c.GetRunSteps(ctx, run.ID)
	if err != nil || len(steps) != len(demo) {
		t.Fatalf("finished run steps = %+v, %v", steps, err)
	}
	for i, s := range steps {
		if s.Index != i+1 || s.Status != dbtcloud.StatusSuccess || s.Name != demo[i].Name || s.FinishedAt == nil {
			t.Errorf("step %d = %+v", i+1, s)
		}
		for _, path := range []string{"run_results.json", "manifest.json"} {
			got, err := readArtifact(t, c, run.ID, path, s.Index)
			want, has := demo[i].Artifacts[path]
			switch {
			case !has && !errors.Is(err, dbtcloud.ErrArtifactNotAvailable):
				t.Errorf("step %d (%s) %s: %v, want not available", s.Index, s.Name, path, err)
			case has && (err != nil || !bytes.Equal(got, want)):
				t.Errorf("step %d %s: %d bytes, %v; want the step's %d bytes", s.Index, path, len(got), err, len(want))
			}
		}
	}
	if got := []string{steps[2].Command(), steps[5].Command()}; got[0] != "dbt deps" ||
		got[1] != "dbt build --select orders+ --exclude config.materialized:view tag:weekly" {
		t.Errorf("commands = %q", got)
	}
	// No step: the last one's, which is docs generate's.
	last, err := readArtifact(t, c, run.ID, "run_results.json", 0)
	if err != nil || !bytes.Equal(last, demo[len(demo)-1].Artifacts["run_results.json"]) {
		t.Errorf("default step run_results = %d bytes, %v", len(last), err)
	}
	for _, bad := range []struct {
		path string
		step int
	}{{"run_results.json", 8}, {"catalog.json", 7}, {"sources.json", 0}} {
		if _, err := readArtifact(t, c, run.ID, bad.path, bad.step); !errors.Is(err, dbtcloud.ErrArtifactNotAvailable) {
			t.Errorf("%s step %d: %v, want not available", bad.path, bad.step, err)
		}
	}
}

func TestSimArtifactsOfEndedRuns(t *testing.T) {
	sim, clock, c := newSim(t)
	steps := []dbtcloudtest.Step{
		{Name: "Clone git repository"},
		{Name: "Invoke dbt with `dbt run`", Artifacts: map[string][]byte{"run_results.json": []byte(`{"step": 2}`)}},
		{Name: "Invoke dbt with `dbt test`", Artifacts: map[string][]byte{"run_results.json": []byte(`{"step": 3}`)}},
	}
	sim.AddJob(1, "errors", dbtcloudtest.RunTimings(0, 0, 30*time.Second), dbtcloudtest.Outcome(20), dbtcloudtest.Steps(steps...))
	sim.AddJob(2, "cancelled while running", dbtcloudtest.RunTimings(0, 0, 30*time.Second), dbtcloudtest.Steps(steps...))
	sim.AddJob(3, "cancelled while queued", dbtcloudtest.StuckInQueue(), dbtcloudtest.Steps(steps...))
	ctx := context.Background()
	trigger := func(job int64) int64 {
		r, err := c.TriggerRun(ctx, job, &dbtcloud.TriggerRunRequest{Cause: "test"})
		if err != nil {
			t.Fatal(err)
		}
		return r.ID
	}
	errored, cancelled, queued := trigger(1), trigger(2), trigger(3)
	clock.Advance(15 * time.Second) // step 2 of the cancelled run is running
	for _, id := range []int64{cancelled, queued} {
		if _, err := c.CancelRun(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(time.Minute)

	tests := []struct {
		name      string
		run       int64
		wantSteps string
		artifacts map[int]string // step → body; missing steps are not available
	}{
		{"errored: the last step failed, its results are kept", errored, "[1:Success 2:Success 3:Error]", map[int]string{2: `{"step": 2}`, 3: `{"step": 3}`, 0: `{"step": 3}`}},
		{"cancelled while running: steps up to the cancel", cancelled, "[1:Success 2:Cancelled]", map[int]string{2: `{"step": 2}`}},
		{"cancelled before it started: nothing", queued, "[]", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			steps, err := c.GetRunSteps(ctx, tt.run)
			if err != nil {
				t.Fatal(err)
			}
			var states []string
			for _, s := range steps {
				states = append(states, fmt.Sprintf("%d:%s", s.Index, s.Status))
			}
			if got := fmt.Sprint(states); got != tt.wantSteps {
				t.Errorf("steps = %s, want %s", got, tt.wantSteps)
			}
			for step := 0; step <= 3; step++ {
				got, err := readArtifact(t, c, tt.run, "run_results.json", step)
				want, ok := tt.artifacts[step]
				if ok && (err != nil || string(got) != want) {
					t.Errorf("step %d: %q, %v; want %s", step, got, err, want)
				}
				if !ok && !errors.Is(err, dbtcloud.ErrArtifactNotAvailable) {
					t.Errorf("step %d: %q, %v; want not available", step, got, err)
				}
			}
		})
	}
}

func TestSimArtifactFaults(t *testing.T) {
	sim, clock, c := newSim(t)
	sim.AddJob(123, "Daily", dbtcloudtest.RunTimings(0, 0, time.Minute))
	ctx := context.Background()
	run, err := c.TriggerRun(ctx, 123, &dbtcloud.TriggerRunRequest{Cause: "test"})
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Minute)
	sim.Inject(dbtcloudtest.Fault{Path: "/artifacts/", Status: http.StatusServiceUnavailable, Times: 2})
	body, err := readArtifact(t, c, run.ID, "manifest.json", 4)
	if err != nil || !bytes.HasPrefix(body, []byte("{")) {
		t.Fatalf("manifest after two 503s: %d bytes, %v", len(body), err)
	}
	if n := sim.Count("GET", "/artifacts/manifest.json"); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
}
