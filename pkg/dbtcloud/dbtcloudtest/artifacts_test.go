package dbtcloudtest_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dbtcloud/dbtcloudtest"
)

// TestDemoArtifactsAreDBTArtifacts checks the embedded files are what they
// claim: each step's run_results.json names its command, and every file
// carries dbt's schema URL.
func TestDemoArtifactsAreDBTArtifacts(t *testing.T) {
	want := map[string]string{
		"Invoke dbt with `dbt seed`":          "seed",
		"Invoke dbt with `dbt snapshot`":      "snapshot",
		"Invoke dbt with `dbt docs generate`": "generate",
		"Invoke dbt with `dbt build --select orders+ --exclude config.materialized:view tag:weekly`": "build",
	}
	for _, st := range dbtcloudtest.DemoSteps() {
		which, has := want[st.Name]
		if len(st.Artifacts) > 0 != has {
			t.Errorf("step %q has %d artifacts", st.Name, len(st.Artifacts))
		}
		for path, body := range st.Artifacts {
			var a struct {
				Metadata struct {
					Schema string `json:"dbt_schema_version"`
				} `json:"metadata"`
				Args struct {
					Which string `json:"which"`
				} `json:"args"`
			}
			if err := json.Unmarshal(body, &a); err != nil {
				t.Fatalf("%s of %q: %v", path, st.Name, err)
			}
			wantSchema := map[string]string{
				"manifest.json":    "https://schemas.getdbt.com/dbt/manifest/v12.json",
				"run_results.json": "https://schemas.getdbt.com/dbt/run-results/v6.json",
			}[path]
			if a.Metadata.Schema != wantSchema || (path == "run_results.json" && a.Args.Which != which) {
				t.Errorf("%s of %q: schema %q, command %q", path, st.Name, a.Metadata.Schema, a.Args.Which)
			}
		}
	}
}

func TestArtifactEndpoint(t *testing.T) {
	s, clock := newServer(t)
	s.AddJob(5, "Daily", dbtcloudtest.RunTimings(0, 0, time.Minute))
	id := trigger(t, s, 5, "test")
	base := fmt.Sprintf("/api/v2/accounts/1/runs/%d/artifacts/", id)

	if r := call(t, s, "GET", base+"run_results.json", tok, ""); r.Code != 404 || r.Status.IsSuccess {
		t.Errorf("artifact of a running run: %d", r.Code)
	}
	clock.Advance(time.Hour)
	if r := call(t, s, "GET", base+"run_results.json?step=two", tok, ""); r.Code != 400 || string(r.Data) != `"'two' is not of type 'integer'"` {
		t.Errorf("step=two: %d %s", r.Code, r.Data)
	}
	if r := call(t, s, "GET", base+"run_results.json", "wrong-token", ""); r.Code != 401 {
		t.Errorf("wrong token: %d", r.Code)
	}
	if r := call(t, s, "GET", fmt.Sprintf("/api/v2/accounts/2/runs/%d/artifacts/manifest.json", id), tok, ""); r.Code != 403 {
		t.Errorf("another account: %d", r.Code)
	}

	req, _ := http.NewRequest("GET", s.URL()+base+"manifest.json?step=4", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := s.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" ||
		resp.Header.Get("Content-Length") != fmt.Sprint(len(body)) || !json.Valid(body) {
		t.Errorf("manifest: %d %q, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
	}

	// The job and the run describe the same steps.
	job := call(t, s, "GET", "/api/v2/accounts/1/jobs/5/", tok, "")
	var j struct {
		ExecuteSteps []string `json:"execute_steps"`
		GenerateDocs bool     `json:"generate_docs"`
	}
	_ = json.Unmarshal(job.Data, &j)
	if want := []string{"dbt seed", "dbt snapshot", "dbt build --select orders+ --exclude config.materialized:view tag:weekly"}; !reflect.DeepEqual(j.ExecuteSteps, want) || !j.GenerateDocs {
		t.Errorf("job execute_steps %q, generate_docs %v", j.ExecuteSteps, j.GenerateDocs)
	}
	type step struct {
		Index           int    `json:"index"`
		Status          int    `json:"status"`
		StatusHumanized string `json:"status_humanized"`
		FinishedAt      string `json:"finished_at"`
		Duration        string `json:"duration"`
	}
	type runSteps struct {
		RunSteps []step `json:"run_steps"`
	}
	var one runSteps
	var list []runSteps
	_ = json.Unmarshal(call(t, s, "GET", fmt.Sprintf(`/api/v2/accounts/1/runs/%d/?include_related=["run_steps"]`, id), tok, "").Data, &one)
	_ = json.Unmarshal(call(t, s, "GET", "/api/v2/accounts/1/runs/?include_related=run_steps,trigger", tok, "").Data, &list)
	var plain runSteps
	_ = json.Unmarshal(call(t, s, "GET", fmt.Sprintf("/api/v2/accounts/1/runs/%d/", id), tok, "").Data, &plain)
	if len(list) != 1 || len(plain.RunSteps) != 0 {
		t.Fatalf("%d runs listed; %d steps without include_related", len(list), len(plain.RunSteps))
	}
	for name, got := range map[string][]step{"get run": one.RunSteps, "list runs": list[0].RunSteps} {
		if len(got) != 7 {
			t.Errorf("%s: %d steps", name, len(got))
		}
		for i, st := range got {
			if st.Index != i+1 || st.Status != 10 || st.StatusHumanized != "Success" || !dbtTime.MatchString(st.FinishedAt) || st.Duration == "" {
				t.Errorf("%s: step %+v", name, st)
			}
		}
	}
}
