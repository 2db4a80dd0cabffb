package dbtcloudtest

import (
	"embed"
	"fmt"
	"maps"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
)

// shopArtifacts are the artifacts of the demo dbt project, written to dbt's
// published schemas (manifest v12, run_results v6) for dbt 1.10 on
// Snowflake.
//
//go:embed testdata/shop/*.json
var shopArtifacts embed.FS

// Step is one step of a job's runs, as run_steps lists it, and the
// artifacts it leaves.
type Step struct {
	// Name is the step's name in run_steps; dbt Cloud names the steps that
	// run dbt "Invoke dbt with `<command>`".
	Name string
	// Artifacts maps an artifact's path ("run_results.json",
	// "manifest.json") to its content. Steps that run no dbt command, or one
	// that writes nothing (dbt deps), have none.
	Artifacts map[string][]byte
}

// DemoSteps returns the steps of the demo job and the artifacts each
// leaves. The demo dbt project "shop" (Snowflake, database analytics) has:
//
//	seed.shop.country_codes          seed         analytics.seeds.country_codes
//	snapshot.shop.customers_snapshot snapshot     analytics.snapshots.customers_snapshot
//	model.shop.stg_orders            ephemeral    (reads source raw.orders)
//	model.shop.orders                table        analytics.marts.orders       (stg_orders, country_codes)
//	model.shop.orders_v              view         analytics.marts.orders_v     (orders)
//	model.shop.order_facts           ephemeral    (orders)
//	model.shop.order_facts_v         view         analytics.marts.order_facts_v (order_facts)
//	model.shop.orders_daily          incremental  analytics.marts.orders_daily (orders)
//	model.shop.customer_ltv          table        analytics.marts.customer_ltv (customers, orders; tag weekly)
//	model.shop.customer_ltv_v        view         analytics.marts.customer_ltv_v (customer_ltv)
//	model.shop.customers             table        analytics.marts.customers    (source raw.customers)
//	model.shop.customers_v           view         analytics.marts.customers_v  (customers)
//
// plus tests on orders and customers, an on-run-end hook, an exposure over
// orders_v and a disabled model. The job runs dbt seed, dbt snapshot, dbt
// build --select orders+ --exclude config.materialized:view tag:weekly,
// then dbt docs generate. So a run rebuilds country_codes,
// customers_snapshot, orders and orders_daily (incrementally); orders_v and
// order_facts_v change with orders; customers, customer_ltv and their
// views do not change, although docs generate reports every model as
// "success" (it compiles them).
func DemoSteps() []Step {
	files := func(names ...string) map[string][]byte {
		out := map[string][]byte{}
		for _, n := range names {
			b, err := shopArtifacts.ReadFile("testdata/shop/" + n)
			if err != nil {
				panic(fmt.Sprintf("dbtcloudtest: embedded artifact %s: %v", n, err))
			}
			target := n
			if strings.HasPrefix(n, "run_results_") {
				target = "run_results.json"
			}
			out[target] = b
		}
		return out
	}
	return []Step{
		{Name: "Clone git repository"},
		{Name: "Create profile from connection Snowflake"},
		{Name: "Invoke dbt with `dbt deps`"},
		{Name: "Invoke dbt with `dbt seed`", Artifacts: files("manifest.json", "run_results_seed.json")},
		{Name: "Invoke dbt with `dbt snapshot`", Artifacts: files("manifest.json", "run_results_snapshot.json")},
		{Name: "Invoke dbt with `dbt build --select orders+ --exclude config.materialized:view tag:weekly`", Artifacts: files("manifest.json", "run_results_build.json")},
		{Name: "Invoke dbt with `dbt docs generate`", Artifacts: files("manifest.json", "run_results_docs_generate.json")},
	}
}

// Steps sets the steps the job's runs go through and the artifacts each
// leaves. Jobs added without it run DemoSteps.
func Steps(steps ...Step) JobOption {
	if len(steps) == 0 {
		panic("dbtcloudtest: Steps needs at least one step")
	}
	copied := make([]Step, len(steps))
	for i, st := range steps {
		copied[i] = Step{Name: st.Name, Artifacts: maps.Clone(st.Artifacts)}
	}
	return func(j *job) { j.steps = copied }
}

// stepCommand returns the dbt command a step runs, from dbt Cloud's step
// name, or "".
func stepCommand(name string) string {
	rest, ok := strings.CutPrefix(name, "Invoke dbt with `")
	if !ok {
		return ""
	}
	cmd, _, _ := strings.Cut(rest, "`")
	return cmd
}

// executeSteps returns the job's execute_steps and generate_docs as dbt
// reports them: the commands the user configured, without the implicit
// dbt deps and the docs step that generate_docs adds.
func executeSteps(steps []Step) ([]string, bool) {
	var cmds []string
	docs := false
	for _, st := range steps {
		switch cmd := stepCommand(st.Name); cmd {
		case "":
		case "dbt deps":
		case "dbt docs generate":
			docs = true
		default:
			cmds = append(cmds, cmd)
		}
	}
	return cmds, docs
}

// stepSpan is when one step of a run runs.
type stepSpan struct {
	start, end time.Time
}

// stepSpans shares the run's running phase equally among its steps.
func (r *run) stepSpans() []stepSpan {
	n := len(r.job.steps)
	started := r.created.Add(r.job.queued + r.job.starting)
	each := r.job.running / time.Duration(max(n, 1))
	spans := make([]stepSpan, n)
	for i := range spans {
		spans[i] = stepSpan{start: started.Add(time.Duration(i) * each), end: started.Add(time.Duration(i+1) * each)}
	}
	if n > 0 {
		spans[n-1].end = started.Add(r.job.running) // no rounding gap before the run ends
	}
	return spans
}

// apiStep is an element of a run's run_steps, as dbt sends it with
// include_related=["run_steps"].
type apiStep struct {
	ID                 int64   `json:"id"`
	RunID              int64   `json:"run_id"`
	AccountID          int64   `json:"account_id"`
	Index              int     `json:"index"`
	Status             int     `json:"status"`
	Name               string  `json:"name"`
	Logs               string  `json:"logs"`
	DebugLogs          string  `json:"debug_logs"`
	LogLocation        string  `json:"log_location"`
	LogPath            *string `json:"log_path"`
	DebugLogPath       *string `json:"debug_log_path"`
	LogArchiveType     string  `json:"log_archive_type"`
	TruncatedDebugLogs string  `json:"truncated_debug_logs"`
	CreatedAt          string  `json:"created_at"`
	UpdatedAt          string  `json:"updated_at"`
	StartedAt          string  `json:"started_at"`
	FinishedAt         *string `json:"finished_at"`
	StatusColor        string  `json:"status_color"`
	StatusHumanized    string  `json:"status_humanized"`
	Duration           string  `json:"duration"`
	DurationHumanized  string  `json:"duration_humanized"`
}

func stepColor(status int) string {
	switch status {
	case statusSuccess:
		return "#0BB07A"
	case statusError:
		return "#EF4444"
	case statusCancelled:
		return "#6B7280"
	}
	return "#3B82F6"
}

// apiStepsLocked returns the steps of r that have started by now, each in
// its state at now: the last step of an errored run fails, and the step a
// cancel interrupts is cancelled.
func (s *Server) apiStepsLocked(r *run, st runState, now time.Time) []apiStep {
	out := []apiStep{}
	if st.started == nil {
		return out
	}
	end := now
	if st.finished != nil {
		end = *st.finished
	}
	for i, span := range r.stepSpans() {
		if span.start.After(end) {
			break // not reached
		}
		status, finished := statusSuccess, span.end
		switch {
		case span.end.After(end) && st.status == statusCancelled:
			status, finished = statusCancelled, end
		case span.end.After(end):
			status = statusRunning
		case st.status == statusError && i == len(r.job.steps)-1:
			status = statusError
		}
		step := apiStep{
			ID: r.id*100 + int64(i+1), RunID: r.id, AccountID: s.accountID, Index: i + 1, Status: status,
			Name: r.job.steps[i].Name, LogLocation: "db", LogArchiveType: "db",
			CreatedAt: apiTime(span.start), UpdatedAt: apiTime(span.start), StartedAt: apiTime(span.start),
			StatusColor: stepColor(status), StatusHumanized: humanStatus(status),
		}
		stop := now
		if status != statusRunning {
			step.FinishedAt = ptr(apiTime(finished))
			step.UpdatedAt = apiTime(finished)
			stop = finished
		}
		step.Duration = clockDuration(stop.Sub(span.start))
		step.DurationHumanized = humanize(stop.Sub(span.start))
		step.Logs = fmt.Sprintf("%s  %s\n", span.start.UTC().Format("15:04:05"), r.job.steps[i].Name)
		step.TruncatedDebugLogs = step.Logs
		out = append(out, step)
		if status == statusCancelled {
			break
		}
	}
	return out
}

// handleArtifact serves a run's artifact the way the Admin API does: the
// file itself, not an envelope; ?step=N picks a step (from 1), the last step
// by default. Until the run has finished, and for steps or files that do not
// exist, it answers dbt's 404.
// See https://docs.getdbt.com/dbt-cloud/api-v2#/operations/Retrieve%20Run%20Artifact.
func (s *Server) handleArtifact(w http.ResponseWriter, r *http.Request) {
	if !s.accountOK(w, r) {
		return
	}
	id, ok := pathID(w, r, "run")
	if !ok {
		return
	}
	name := path.Clean(r.PathValue("path"))
	step := 0
	if v := r.URL.Query().Get("step"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, msgInvalid, "", fmt.Sprintf("'%s' is not of type 'integer'", v))
			return
		}
		step = n
	}
	s.mu.Lock()
	run, ok := s.runs[id]
	var body []byte
	if ok {
		body, ok = s.artifactLocked(run, step, name, s.now())
	}
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, msgNotFound, "", nil)
		return
	}
	ctype := "application/octet-stream"
	if strings.HasSuffix(name, ".json") {
		ctype = "application/json"
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// artifactLocked returns the file name of step (0 for the last) of r, if
// the run has finished and the step ran and left it.
func (s *Server) artifactLocked(r *run, step int, name string, now time.Time) ([]byte, bool) {
	st := r.stateAt(now)
	if !terminal(st.status) || st.started == nil || len(r.job.steps) == 0 {
		return nil, false
	}
	if step == 0 {
		step = len(r.job.steps)
	}
	if step < 1 || step > len(r.job.steps) || r.stepSpans()[step-1].start.After(*st.finished) {
		return nil, false
	}
	body, ok := r.job.steps[step-1].Artifacts[name]
	return body, ok
}
