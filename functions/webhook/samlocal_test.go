package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// `sam local invoke` runs the bootstrap `sam build` made, in a container,
// with an environment SAM CLI builds (samcli/local/lambdafn/env_vars.py):
// its own AWS_* variables, placeholder credentials when the user has none,
// and, for each variable the template declares for the function, the value
// from events/env.json (samconfig.toml names it), or else the template's
// value with intrinsics resolved as SAM resolves them (a resource's Ref is
// its logical id, which is no table name or topic ARN). Variables env.json
// gives that the template does not declare are dropped. These tests build
// that environment from template.yaml and events/env.json and run both
// bootstraps on the sample events, as `sam local invoke` would minus
// Docker, which this machine lacks.

// templateVariables returns the environment variables template.yaml declares
// for each function: Globals' and the function's own.
func templateVariables(t *testing.T) map[string][]string {
	t.Helper()
	tpl := loadTemplate(t)
	out := map[string][]string{}
	for _, fn := range []string{"WebhookFunction", "SchedulerFunction"} {
		var names []string
		for k := range tpl.Globals.Function.Environment.Variables {
			names = append(names, k)
		}
		for k := range tpl.Resources[fn].Properties.Environment.Variables {
			names = append(names, k)
		}
		sort.Strings(names)
		out[fn] = names
	}
	if len(tpl.Globals.Function.Environment.Variables) == 0 || len(tpl.Resources["SchedulerFunction"].Properties.Environment.Variables) == 0 {
		t.Fatalf("found no Environment.Variables in template.yaml's Globals and SchedulerFunction: %v", out)
	}
	return out
}

func envJSON(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "events", "env.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct{ Parameters map[string]string }
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("events/env.json: %v", err)
	}
	return f.Parameters
}

// TestEnvJSONCoversTemplate: every variable the template declares has a
// value in events/env.json, so that no template value SAM resolves on its
// own (STATE_TABLE would be "StateTable", NOTIFY_TOPIC_ARN
// "NotificationTopic") reaches a local run, and env.json names nothing SAM
// would drop.
func TestEnvJSONCoversTemplate(t *testing.T) {
	params := envJSON(t)
	declared := map[string]bool{}
	for fn, names := range templateVariables(t) {
		for _, n := range names {
			declared[n] = true
			if _, ok := params[n]; !ok {
				t.Errorf("%s declares %s, which events/env.json does not set: sam local invoke would run with the template's value", fn, n)
			}
		}
	}
	var extra []string
	for n := range params {
		if !declared[n] {
			extra = append(extra, n)
		}
	}
	sort.Strings(extra)
	if len(extra) > 0 {
		t.Errorf("events/env.json sets %v, which template.yaml does not declare: sam local invoke ignores them", extra)
	}
}

// samLocalEnv is the environment `sam local invoke <function>` gives the
// bootstrap, for a user with no AWS credentials configured.
func samLocalEnv(t *testing.T, function string, timeout time.Duration) []string {
	t.Helper()
	env := []string{
		"AWS_SAM_LOCAL=true",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256",
		"AWS_LAMBDA_FUNCTION_TIMEOUT=" + strconv.Itoa(int(timeout.Seconds())),
		"AWS_LAMBDA_FUNCTION_HANDLER=bootstrap",
		"AWS_LAMBDA_FUNCTION_NAME=" + function,
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_LOG_GROUP_NAME=aws/lambda/" + function,
		"AWS_LAMBDA_LOG_STREAM_NAME=$LATEST",
		"AWS_REGION=us-east-1",
		"AWS_DEFAULT_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=defaultkey",
		"AWS_SECRET_ACCESS_KEY=defaultsecret",
		"AWS_ACCOUNT_ID=123456789012",
		"HOME=" + t.TempDir(),
	}
	params := envJSON(t)
	for _, n := range templateVariables(t)[function] {
		env = append(env, n+"="+params[n])
	}
	return env
}

func readEvent(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "events", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSamLocalInvokeSampleEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("builds both bootstraps with go build and runs them; run without -short")
	}
	t.Run("WebhookFunction", func(t *testing.T) {
		t.Parallel()
		bin := buildBootstrap(t, ".", runtime.GOOS, runtime.GOARCH)
		env := samLocalEnv(t, "WebhookFunction", 12*time.Second)
		for _, tc := range []struct {
			event   string
			status  int
			results int // targets reported refreshed
		}{
			// The demo: one target from the map, five found by lineage.
			{"dbt-run-succeeded.json", http.StatusOK, 6},
			{"dbt-run-succeeded-base64.json", http.StatusOK, 6},
			{"dbt-run-errored.json", http.StatusOK, 0},
			{"dbt-bad-signature.json", http.StatusUnauthorized, 0},
			{"tableau-refresh-failed.json", http.StatusOK, 0},
		} {
			r := apiResponse(t, startCold(t, bin, env, readEvent(t, tc.event)).res)
			if r.StatusCode != tc.status {
				t.Errorf("%s: %d %s, want %d", tc.event, r.StatusCode, r.Body, tc.status)
				continue
			}
			if n := strings.Count(r.Body, `"result":"refreshed"`); n != tc.results {
				t.Errorf("%s: %s, want %d targets refreshed", tc.event, r.Body, tc.results)
			}
		}
	})
	t.Run("SchedulerFunction", func(t *testing.T) {
		t.Parallel()
		bin := buildBootstrap(t, "../scheduler", runtime.GOOS, runtime.GOARCH)
		// The demo's dbt job takes about ten seconds.
		cs := startColdWithin(t, bin, samLocalEnv(t, "SchedulerFunction", time.Minute), readEvent(t, "schedule.json"), time.Minute)
		if cs.res.IsError {
			t.Fatalf("schedule.json: %s: %s", cs.res.ErrorType, cs.res.Body)
		}
		var out struct {
			Jobs []struct {
				JobID   string `json:"job_id"`
				Outcome string `json:"outcome"`
				Targets []struct {
					Result string `json:"result"`
				} `json:"targets"`
			} `json:"jobs"`
		}
		if err := json.Unmarshal(cs.res.Body, &out); err != nil {
			t.Fatalf("schedule.json: %s: %v", cs.res.Body, err)
		}
		if len(out.Jobs) != 1 || out.Jobs[0].Outcome != "refreshed" || len(out.Jobs[0].Targets) != 6 {
			t.Errorf("schedule.json: %s, want job 123 refreshed with six targets (the demo's map and lineage)", cs.res.Body)
		}
	})
}
