package dbtcloudtest

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Bodies dbt Cloud answers with, as captured from the live API by client
// projects (kestra-io/plugin-dbt#101, dbt-labs/terraform-provider-dbtcloud
// tests).
const (
	msgSuccess      = "Success!"
	msgInvalidToken = "Invalid token."
	msgNotScoped    = "Access denied: Token is not scoped to account."
	msgNotFound     = "The requested resource was not found. Please check that you have the proper permissions."
	msgInvalid      = "The request was invalid. Please double check the provided data and try again."
	msgLimit        = "Limit must not exceed 100"
)

const maxRequestBody = 1 << 20

func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v2/accounts/{account}/jobs/{job}/run/{$}", s.handleTrigger)
	mux.HandleFunc("GET /api/v2/accounts/{account}/jobs/{job}/{$}", s.handleGetJob)
	mux.HandleFunc("GET /api/v2/accounts/{account}/runs/{$}", s.handleListRuns)
	mux.HandleFunc("GET /api/v2/accounts/{account}/runs/{run}/{$}", s.handleGetRun)
	mux.HandleFunc("POST /api/v2/accounts/{account}/runs/{run}/cancel/{$}", s.handleCancel)
	mux.HandleFunc("GET /api/v2/accounts/{account}/runs/{run}/artifacts/{path...}", s.handleArtifact)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, msgNotFound, "", nil)
	})
	return mux
}

// ServeHTTP records the request, waits for the latency set, applies
// injected faults, checks the token and then serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody))
	if err != nil {
		writeError(w, http.StatusBadRequest, msgInvalid, "", "could not read the request body")
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))

	s.mu.Lock()
	s.requests = append(s.requests, Request{
		Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery,
		Header: r.Header.Clone(), Body: body, Time: s.now(),
	})
	s.mu.Unlock()
	if !s.wait(r) {
		// No reply at all (net/http would send an empty 200 for a
		// handler that just returns): the connection is closed.
		panic(http.ErrAbortHandler)
	}
	s.mu.Lock()
	f := s.matchFaultLocked(r.Method, r.URL.Path)
	s.mu.Unlock()

	switch {
	case f == nil:
		s.serveAPI(w, r)
	case f.AfterHandling:
		// The request takes effect but its reply is lost or replaced, as when
		// a gateway times out after dbt has already queued the run.
		s.serveAPI(newDiscardWriter(), r)
		writeFault(w, f)
	default:
		writeFault(w, f)
	}

	s.mu.Lock()
	s.observeLocked()
	s.mu.Unlock()
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(r.Header.Get("Authorization")) {
		writeError(w, http.StatusUnauthorized, msgInvalidToken, nullString, nil)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// authorized accepts "Token <t>" and "Bearer <t>", both of which dbt takes.
func (s *Server) authorized(header string) bool {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !(strings.EqualFold(scheme, "Token") || strings.EqualFold(scheme, "Bearer")) {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(token)), []byte(s.token)) == 1
}

// accountOK answers 403 when the path names another account. Ids that are
// not numbers do not match dbt's routes at all, hence 404.
func (s *Server) accountOK(w http.ResponseWriter, r *http.Request) bool {
	id, err := strconv.ParseInt(r.PathValue("account"), 10, 64)
	if err != nil {
		writeError(w, http.StatusNotFound, msgNotFound, "", nil)
		return false
	}
	if id != s.accountID {
		writeError(w, http.StatusForbidden, msgNotScoped, nullString, nil)
		return false
	}
	return true
}

func pathID(w http.ResponseWriter, r *http.Request, name string) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil || id <= 0 {
		writeError(w, http.StatusNotFound, msgNotFound, "", nil)
		return 0, false
	}
	return id, true
}

// triggerBody is what the Trigger Job Run endpoint accepts.
type triggerBody struct {
	Cause                  string   `json:"cause"`
	GitSHA                 string   `json:"git_sha,omitempty"`
	GitBranch              string   `json:"git_branch,omitempty"`
	AzurePullRequestID     *int64   `json:"azure_pull_request_id,omitempty"`
	GithubPullRequestID    *int64   `json:"github_pull_request_id,omitempty"`
	GitlabMergeRequestID   *int64   `json:"gitlab_merge_request_id,omitempty"`
	SchemaOverride         string   `json:"schema_override,omitempty"`
	DBTVersionOverride     string   `json:"dbt_version_override,omitempty"`
	ThreadsOverride        *int     `json:"threads_override,omitempty"`
	TargetNameOverride     string   `json:"target_name_override,omitempty"`
	GenerateDocsOverride   *bool    `json:"generate_docs_override,omitempty"`
	TimeoutSecondsOverride *int     `json:"timeout_seconds_override,omitempty"`
	StepsOverride          []string `json:"steps_override,omitempty"`
}

// decodeTrigger validates a trigger body the way dbt's JSON schema does and
// returns the schema's complaint, which dbt puts in "data".
func decodeTrigger(body []byte) (triggerBody, string) {
	var req triggerBody
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil || raw == nil {
		return req, "Request body must be a JSON object"
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return req, fmt.Sprintf("%s is not of type '%s'", raw[typeErr.Field], schemaType(typeErr.Type.String()))
		}
		if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return req, fmt.Sprintf("Additional properties are not allowed (%s was unexpected)", strings.ReplaceAll(name, `"`, "'"))
		}
		return req, err.Error()
	}
	if _, ok := raw["cause"]; !ok {
		return req, "'cause' is a required property"
	}
	if strings.TrimSpace(req.Cause) == "" {
		return req, "'cause' should be non-empty"
	}
	return req, ""
}

func schemaType(goType string) string {
	switch {
	case strings.Contains(goType, "int"):
		return "integer"
	case strings.Contains(goType, "bool"):
		return "boolean"
	case strings.HasPrefix(goType, "[]"):
		return "array"
	}
	return "string"
}

func (s *Server) handleTrigger(w http.ResponseWriter, r *http.Request) {
	if !s.accountOK(w, r) {
		return
	}
	jobID, ok := pathID(w, r, "job")
	if !ok {
		return
	}
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[jobID]
	if !ok {
		writeError(w, http.StatusNotFound, msgNotFound, "", nil)
		return
	}
	req, problem := decodeTrigger(body)
	if problem != "" {
		writeError(w, http.StatusBadRequest, msgInvalid, "", problem)
		return
	}
	now := s.now()
	run := s.triggerLocked(j, req, now)
	writeData(w, s.apiRunLocked(run, now, true, true), nil)
}

func (s *Server) handleGetRun(w http.ResponseWriter, r *http.Request) {
	if !s.accountOK(w, r) {
		return
	}
	id, ok := pathID(w, r, "run")
	if !ok {
		return
	}
	related := parseRelated(r.URL.Query().Get("include_related"))
	s.mu.Lock()
	defer s.mu.Unlock()
	run, ok := s.runs[id]
	if !ok {
		writeError(w, http.StatusNotFound, msgNotFound, "", nil)
		return
	}
	now := s.now()
	out := s.apiRunLocked(run, now, related["trigger"], related["job"])
	if related["run_steps"] {
		out.RunSteps = s.apiStepsLocked(run, run.stateAt(now), now)
	}
	writeData(w, out, nil)
}

func (s *Server) handleCancel(w http.ResponseWriter, r *http.Request) {
	if !s.accountOK(w, r) {
		return
	}
	id, ok := pathID(w, r, "run")
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	run, ok := s.runs[id]
	if !ok {
		writeError(w, http.StatusNotFound, msgNotFound, "", nil)
		return
	}
	now := s.now()
	s.cancelLocked(run, now)
	writeData(w, s.apiRunLocked(run, now, false, false), nil)
}

func (s *Server) handleGetJob(w http.ResponseWriter, r *http.Request) {
	if !s.accountOK(w, r) {
		return
	}
	id, ok := pathID(w, r, "job")
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[id]
	if !ok {
		writeError(w, http.StatusNotFound, msgNotFound, "", nil)
		return
	}
	writeData(w, s.apiJob(j), nil)
}

// listParams are the query parameters List Runs accepts; dbt rejects others
// with "Additional properties are not allowed".
var listParams = []string{
	"include_related", "job_definition_id", "environment_id", "project_id",
	"deferring_run_id", "status", "status__in", "order_by", "offset", "limit",
}

func (s *Server) handleListRuns(w http.ResponseWriter, r *http.Request) {
	if !s.accountOK(w, r) {
		return
	}
	q := r.URL.Query()
	var unexpected []string
	for name := range q {
		if !slices.Contains(listParams, name) {
			unexpected = append(unexpected, "'"+name+"'")
		}
	}
	if len(unexpected) > 0 {
		sort.Strings(unexpected)
		verb := "was"
		if len(unexpected) > 1 {
			verb = "were"
		}
		writeError(w, http.StatusBadRequest, msgInvalid, "",
			fmt.Sprintf("Additional properties are not allowed (%s %s unexpected)", strings.Join(unexpected, ", "), verb))
		return
	}
	intParam := func(name string, def int64) (int64, bool) {
		v := q.Get(name)
		if v == "" {
			return def, true
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, msgInvalid, "", fmt.Sprintf("'%s' is not of type 'integer'", v))
			return 0, false
		}
		return n, true
	}
	jobID, ok := intParam("job_definition_id", 0)
	if !ok {
		return
	}
	limit, ok := intParam("limit", 100)
	if !ok {
		return
	}
	offset, ok := intParam("offset", 0)
	if !ok {
		return
	}
	status, ok := intParam("status", 0)
	if !ok {
		return
	}
	if limit > 100 {
		writeError(w, http.StatusBadRequest, msgLimit, "", nil)
		return
	}
	if limit < 1 || offset < 0 {
		writeError(w, http.StatusBadRequest, msgInvalid, "", "limit must be at least 1 and offset at least 0")
		return
	}
	var statusIn []int
	if v := q.Get("status__in"); v != "" {
		if err := json.Unmarshal([]byte(v), &statusIn); err != nil {
			writeError(w, http.StatusBadRequest, msgInvalid, "", fmt.Sprintf("'%s' is not a list of integers", v))
			return
		}
	}
	orderBy := q.Get("order_by")
	if orderBy == "" {
		orderBy = "id"
	}
	field := strings.TrimPrefix(orderBy, "-")
	if field != "id" && field != "created_at" && field != "finished_at" {
		writeError(w, http.StatusBadRequest, msgInvalid, "", fmt.Sprintf("'%s' is not a supported order_by", orderBy))
		return
	}
	related := parseRelated(q.Get("include_related"))

	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	type row struct {
		r  *run
		st runState
	}
	var rows []row
	for _, r := range s.sortedRunsLocked() {
		st := r.stateAt(now)
		if jobID != 0 && r.job.id != jobID {
			continue
		}
		if status != 0 && int64(st.status) != status {
			continue
		}
		if statusIn != nil && !slices.Contains(statusIn, st.status) {
			continue
		}
		rows = append(rows, row{r, st})
	}
	// ids grow with creation time, so id order is also created_at order;
	// finished_at sorts unfinished runs last, as SQL sorts NULLs.
	if field == "finished_at" {
		sort.SliceStable(rows, func(i, j int) bool {
			a, b := rows[i].st.finished, rows[j].st.finished
			return a != nil && (b == nil || a.Before(*b))
		})
	}
	if strings.HasPrefix(orderBy, "-") {
		slices.Reverse(rows)
	}
	total := len(rows)
	start := min(int(offset), total)
	end := min(start+int(limit), total)
	page := make([]apiRun, 0, end-start)
	for _, rw := range rows[start:end] {
		out := s.apiRunLocked(rw.r, now, related["trigger"], related["job"])
		if related["run_steps"] {
			out.RunSteps = s.apiStepsLocked(rw.r, rw.st, now)
		}
		page = append(page, out)
	}
	filters := map[string]any{"account_id": s.accountID, "limit": limit, "offset": offset}
	if jobID != 0 {
		filters["job_definition_id"] = jobID
	}
	writeData(w, page, map[string]any{
		"filters":    filters,
		"order_by":   orderBy,
		"pagination": map[string]int{"count": len(page), "total_count": total},
	})
}

// parseRelated reads include_related in the forms clients send:
// ["trigger","job"], ['trigger'] or trigger,job.
func parseRelated(v string) map[string]bool {
	out := map[string]bool{}
	v = strings.Trim(strings.TrimSpace(v), "[]")
	for _, part := range strings.Split(v, ",") {
		if name := strings.Trim(strings.TrimSpace(part), `"'`); name != "" {
			out[name] = true
		}
	}
	return out
}

// apiRun is the run object of the Admin API v2, field for field as dbt sends
// it (see the replies quoted in data-mie/dbt-cloud-cli's README).
type apiRun struct {
	ID                      int64       `json:"id"`
	TriggerID               int64       `json:"trigger_id"`
	AccountID               int64       `json:"account_id"`
	EnvironmentID           int64       `json:"environment_id"`
	ProjectID               int64       `json:"project_id"`
	JobDefinitionID         int64       `json:"job_definition_id"`
	Status                  int         `json:"status"`
	DBTVersion              string      `json:"dbt_version"`
	GitBranch               *string     `json:"git_branch"`
	GitSHA                  *string     `json:"git_sha"`
	StatusMessage           *string     `json:"status_message"`
	OwnerThreadID           *string     `json:"owner_thread_id"`
	ExecutedByThreadID      *string     `json:"executed_by_thread_id"`
	DeferringRunID          *int64      `json:"deferring_run_id"`
	ArtifactsSaved          bool        `json:"artifacts_saved"`
	ArtifactS3Path          *string     `json:"artifact_s3_path"`
	HasDocsGenerated        bool        `json:"has_docs_generated"`
	HasSourcesGenerated     bool        `json:"has_sources_generated"`
	NotificationsSent       bool        `json:"notifications_sent"`
	BlockedBy               []int64     `json:"blocked_by"`
	ScribeEnabled           bool        `json:"scribe_enabled"`
	CreatedAt               string      `json:"created_at"`
	UpdatedAt               string      `json:"updated_at"`
	DequeuedAt              *string     `json:"dequeued_at"`
	StartedAt               *string     `json:"started_at"`
	FinishedAt              *string     `json:"finished_at"`
	LastCheckedAt           *string     `json:"last_checked_at"`
	LastHeartbeatAt         *string     `json:"last_heartbeat_at"`
	ShouldStartAt           *string     `json:"should_start_at"`
	Trigger                 *apiTrigger `json:"trigger"`
	Job                     *apiJobBody `json:"job"`
	Environment             any         `json:"environment"`
	RunSteps                []apiStep   `json:"run_steps"`
	StatusHumanized         string      `json:"status_humanized"`
	InProgress              bool        `json:"in_progress"`
	IsComplete              bool        `json:"is_complete"`
	IsSuccess               bool        `json:"is_success"`
	IsError                 bool        `json:"is_error"`
	IsCancelled             bool        `json:"is_cancelled"`
	Href                    string      `json:"href"`
	Duration                string      `json:"duration"`
	QueuedDuration          string      `json:"queued_duration"`
	RunDuration             string      `json:"run_duration"`
	DurationHumanized       string      `json:"duration_humanized"`
	QueuedDurationHumanized string      `json:"queued_duration_humanized"`
	RunDurationHumanized    string      `json:"run_duration_humanized"`
	CreatedAtHumanized      string      `json:"created_at_humanized"`
	FinishedAtHumanized     *string     `json:"finished_at_humanized"`
	JobID                   int64       `json:"job_id"`
}

type apiTrigger struct {
	ID                     int64       `json:"id"`
	Cause                  string      `json:"cause"`
	JobDefinitionID        int64       `json:"job_definition_id"`
	GitBranch              *string     `json:"git_branch"`
	GitSHA                 *string     `json:"git_sha"`
	AzurePullRequestID     *int64      `json:"azure_pull_request_id"`
	GithubPullRequestID    *int64      `json:"github_pull_request_id"`
	GitlabMergeRequestID   *int64      `json:"gitlab_merge_request_id"`
	SchemaOverride         *string     `json:"schema_override"`
	DBTVersionOverride     *string     `json:"dbt_version_override"`
	ThreadsOverride        *int        `json:"threads_override"`
	TargetNameOverride     *string     `json:"target_name_override"`
	GenerateDocsOverride   *bool       `json:"generate_docs_override"`
	TimeoutSecondsOverride *int        `json:"timeout_seconds_override"`
	StepsOverride          []string    `json:"steps_override"`
	CreatedAt              string      `json:"created_at"`
	CauseHumanized         string      `json:"cause_humanized"`
	Job                    *apiJobBody `json:"job"`
}

type apiJobBody struct {
	ID            int64    `json:"id"`
	AccountID     int64    `json:"account_id"`
	ProjectID     int64    `json:"project_id"`
	EnvironmentID int64    `json:"environment_id"`
	Name          string   `json:"name"`
	DBTVersion    *string  `json:"dbt_version"`
	ExecuteSteps  []string `json:"execute_steps"`
	State         int      `json:"state"`
	GenerateDocs  bool     `json:"generate_docs"`
	Settings      struct {
		Threads    int    `json:"threads"`
		TargetName string `json:"target_name"`
	} `json:"settings"`
}

func (s *Server) apiJob(j *job) *apiJobBody {
	b := &apiJobBody{
		ID: j.id, AccountID: s.accountID, ProjectID: j.projectID, EnvironmentID: j.environmentID,
		Name: j.name, State: 1,
	}
	b.ExecuteSteps, b.GenerateDocs = executeSteps(j.steps)
	if len(b.ExecuteSteps) == 0 {
		b.ExecuteSteps = []string{"dbt build"}
	}
	b.Settings.Threads = 4
	b.Settings.TargetName = "default"
	return b
}

const dbtVersion = "1.7.0-latest"

// fakeSHA is the commit every run checks out unless the trigger names one.
const fakeSHA = "981c5cf1ba299e942c6c277c38c8dec9b0738dd0"

func (s *Server) apiRunLocked(r *run, now time.Time, withTrigger, withJob bool) apiRun {
	st := r.stateAt(now)
	out := apiRun{
		ID: r.id, TriggerID: r.triggerID, AccountID: s.accountID,
		EnvironmentID: r.job.environmentID, ProjectID: r.job.projectID,
		JobDefinitionID: r.job.id, JobID: r.job.id,
		Status: st.status, StatusHumanized: humanStatus(st.status),
		DBTVersion: dbtVersion, ScribeEnabled: true, BlockedBy: []int64{}, RunSteps: []apiStep{},
		CreatedAt: apiTime(r.created), UpdatedAt: apiTime(st.updated),
		InProgress:  !terminal(st.status),
		IsComplete:  terminal(st.status),
		IsSuccess:   st.status == statusSuccess,
		IsError:     st.status == statusError,
		IsCancelled: st.status == statusCancelled,
		Href:        fmt.Sprintf("%s/deploy/%d/projects/%d/runs/%d/", s.URL(), s.accountID, r.job.projectID, r.id),
	}
	if st.message != "" {
		out.StatusMessage = &st.message
	}
	if st.dequeued != nil {
		// Once a worker picks the run up it has cloned the repository.
		branch, sha := orDefault(r.req.GitBranch, "main"), orDefault(r.req.GitSHA, fakeSHA)
		out.GitBranch, out.GitSHA = &branch, &sha
		out.DequeuedAt = ptr(apiTime(*st.dequeued))
		thread := fmt.Sprintf("dbt-run-%d-x7k2p", r.id)
		out.ExecutedByThreadID = &thread
	}
	if st.started != nil {
		out.StartedAt = ptr(apiTime(*st.started))
	}
	end := now
	if st.finished != nil {
		end = *st.finished
		out.FinishedAt = ptr(apiTime(end))
		out.FinishedAtHumanized = ptr(humanize(now.Sub(end)) + " ago")
		out.NotificationsSent = true
		if st.status != statusCancelled || st.started != nil {
			out.ArtifactsSaved = true
			out.ArtifactS3Path = ptr(fmt.Sprintf("prod/runs/%d/artifacts/target", r.id))
		}
	}
	queuedEnd := end
	if st.started != nil {
		queuedEnd = *st.started
		out.RunDuration = clockDuration(end.Sub(*st.started))
		out.RunDurationHumanized = humanize(end.Sub(*st.started))
	} else {
		out.RunDuration = clockDuration(0)
		out.RunDurationHumanized = humanize(0)
	}
	out.Duration = clockDuration(end.Sub(r.created))
	out.DurationHumanized = humanize(end.Sub(r.created))
	out.QueuedDuration = clockDuration(queuedEnd.Sub(r.created))
	out.QueuedDurationHumanized = humanize(queuedEnd.Sub(r.created))
	out.CreatedAtHumanized = humanize(now.Sub(r.created)) + " ago"

	if withTrigger {
		t := &apiTrigger{
			ID: r.triggerID, Cause: r.req.Cause, JobDefinitionID: r.job.id,
			GitBranch: nonEmpty(r.req.GitBranch), GitSHA: nonEmpty(r.req.GitSHA),
			AzurePullRequestID: r.req.AzurePullRequestID, GithubPullRequestID: r.req.GithubPullRequestID,
			GitlabMergeRequestID: r.req.GitlabMergeRequestID,
			SchemaOverride:       nonEmpty(r.req.SchemaOverride), DBTVersionOverride: nonEmpty(r.req.DBTVersionOverride),
			ThreadsOverride: r.req.ThreadsOverride, TargetNameOverride: nonEmpty(r.req.TargetNameOverride),
			GenerateDocsOverride: r.req.GenerateDocsOverride, TimeoutSecondsOverride: r.req.TimeoutSecondsOverride,
			StepsOverride: r.req.StepsOverride, CreatedAt: apiTime(r.created),
			CauseHumanized: r.req.Cause,
		}
		out.Trigger = t
	}
	if withJob {
		out.Job = s.apiJob(&r.job)
	}
	return out
}

// apiTime writes a time the way the v2 API does: "2021-11-26 16:48:41.431645+00:00".
func apiTime(t time.Time) string {
	return t.UTC().Format("2006-01-02 15:04:05.000000") + "+00:00"
}

func clockDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	secs := int64(d / time.Second)
	return fmt.Sprintf("%02d:%02d:%02d", secs/3600, secs/60%60, secs%60)
}

// humanize writes a duration the way dbt's *_humanized fields do: the two
// largest units, "1 minute, 50 seconds".
func humanize(d time.Duration) string {
	if d < time.Second {
		return "0 minutes"
	}
	units := []struct {
		name string
		size time.Duration
	}{
		{"week", 7 * 24 * time.Hour}, {"day", 24 * time.Hour}, {"hour", time.Hour},
		{"minute", time.Minute}, {"second", time.Second},
	}
	var parts []string
	for _, u := range units {
		if n := d / u.size; n > 0 {
			name := u.name
			if n > 1 {
				name += "s"
			}
			parts = append(parts, fmt.Sprintf("%d %s", n, name))
			d -= n * u.size
		}
		if len(parts) == 2 {
			break
		}
	}
	return strings.Join(parts, ", ")
}

func ptr[T any](v T) *T { return &v }

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func nonEmpty(v string) *string {
	if v == "" {
		return nil
	}
	return &v
}

// statusBlock is the "status" object of every reply.
type statusBlock struct {
	Code             int     `json:"code"`
	IsSuccess        bool    `json:"is_success"`
	UserMessage      string  `json:"user_message"`
	DeveloperMessage *string `json:"developer_message"`
}

// nullString marks a developer_message dbt sends as null (its 401 and 403
// bodies) rather than "".
const nullString = "\x00null"

func writeData(w http.ResponseWriter, data, extra any) {
	body := map[string]any{
		"status": statusBlock{Code: http.StatusOK, IsSuccess: true, UserMessage: msgSuccess, DeveloperMessage: ptr("")},
		"data":   data,
	}
	if extra != nil {
		body["extra"] = extra
	}
	writeJSON(w, http.StatusOK, body)
}

// writeError writes dbt's error envelope. detail, when not nil, becomes
// "data" (dbt puts validation messages there); 400 replies also carry dbt's
// empty "extra" and null "error_code".
func writeError(w http.ResponseWriter, code int, userMessage, developerMessage string, detail any) {
	status := statusBlock{Code: code, UserMessage: userMessage}
	if developerMessage != nullString {
		status.DeveloperMessage = &developerMessage
	}
	body := map[string]any{"status": status, "data": detail}
	if code == http.StatusBadRequest {
		body["extra"] = map[string]any{}
		body["error_code"] = nil
	}
	writeJSON(w, code, body)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// discardWriter swallows a reply that a fault replaces.
type discardWriter struct{ h http.Header }

func newDiscardWriter() *discardWriter               { return &discardWriter{h: http.Header{}} }
func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}
