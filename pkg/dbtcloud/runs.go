package dbtcloud

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Run is a dbt Cloud job run as the Admin API v2 returns it. Fields the API
// sends as null (a run that has not started has no started_at, a successful
// run has no status_message) are nil pointers or empty strings.
// See https://docs.getdbt.com/dbt-cloud/api-v2#/operations/Retrieve%20Run.
type Run struct {
	ID              int64 `json:"id"`
	TriggerID       int64 `json:"trigger_id"`
	AccountID       int64 `json:"account_id"`
	EnvironmentID   int64 `json:"environment_id"`
	ProjectID       int64 `json:"project_id"`
	JobDefinitionID int64 `json:"job_definition_id"`

	// Status is the run's state; StatusHumanized is dbt's word for it
	// ("Queued", "Starting", "Running", "Success", "Error", "Cancelled").
	Status          RunStatus `json:"status"`
	StatusHumanized string    `json:"status_humanized"`
	// StatusMessage says why a run errored or was cancelled
	// ("Cancelled by user."); empty (null) for other runs.
	StatusMessage string `json:"status_message"`

	InProgress  bool `json:"in_progress"`
	IsComplete  bool `json:"is_complete"`
	IsSuccess   bool `json:"is_success"`
	IsError     bool `json:"is_error"`
	IsCancelled bool `json:"is_cancelled"`

	DBTVersion       string `json:"dbt_version"`
	GitBranch        string `json:"git_branch"`
	GitSHA           string `json:"git_sha"`
	ArtifactsSaved   bool   `json:"artifacts_saved"`
	HasDocsGenerated bool   `json:"has_docs_generated"`

	CreatedAt  Timestamp  `json:"created_at"`
	UpdatedAt  Timestamp  `json:"updated_at"`
	DequeuedAt *Timestamp `json:"dequeued_at"`
	StartedAt  *Timestamp `json:"started_at"`
	FinishedAt *Timestamp `json:"finished_at"`

	// Durations as dbt formats them, "HH:MM:SS".
	Duration       string `json:"duration"`
	QueuedDuration string `json:"queued_duration"`
	RunDuration    string `json:"run_duration"`

	// Href is the run's page in the dbt Cloud UI, for log lines and alerts.
	Href string `json:"href"`

	// Trigger says who started the run and with which overrides. dbt sends
	// it on a trigger reply and, when asked with include_related, on reads;
	// this client always asks.
	Trigger *Trigger `json:"trigger"`
}

// Trigger is why and how a run was started.
type Trigger struct {
	ID                     int64      `json:"id"`
	Cause                  string     `json:"cause"`
	JobDefinitionID        int64      `json:"job_definition_id"`
	GitBranch              string     `json:"git_branch"`
	GitSHA                 string     `json:"git_sha"`
	SchemaOverride         string     `json:"schema_override"`
	DBTVersionOverride     string     `json:"dbt_version_override"`
	ThreadsOverride        *int       `json:"threads_override"`
	TargetNameOverride     string     `json:"target_name_override"`
	GenerateDocsOverride   *bool      `json:"generate_docs_override"`
	TimeoutSecondsOverride *int       `json:"timeout_seconds_override"`
	StepsOverride          []string   `json:"steps_override"`
	CreatedAt              *Timestamp `json:"created_at"`
}

// Timestamp is a time in the Admin API. dbt writes run times as
// "2021-11-26 16:48:41.431645+00:00" (a space, not RFC 3339's "T"), which
// time.Time cannot decode; Timestamp reads that and RFC 3339.
type Timestamp struct{ time.Time }

// timestampLayout is how dbt Cloud v2 writes run times.
const timestampLayout = "2006-01-02 15:04:05.000000-07:00"

// UnmarshalJSON accepts dbt's layout, RFC 3339 and null.
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		t.Time = time.Time{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("dbt Cloud timestamp must be a string: %w", err)
	}
	for _, layout := range []string{"2006-01-02 15:04:05.999999999Z07:00", time.RFC3339Nano} {
		if parsed, err := time.Parse(layout, s); err == nil {
			t.Time = parsed
			return nil
		}
	}
	return fmt.Errorf("dbt Cloud timestamp %q is neither %q nor RFC 3339", s, timestampLayout)
}

// MarshalJSON writes dbt's layout so that a decoded Run encodes back the way
// dbt sent it.
func (t Timestamp) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return json.Marshal(t.UTC().Format(timestampLayout))
}

// TriggerRunRequest is the body of a trigger. Cause is required; every other
// field overrides the job's setting for this run only and is left out when
// zero. Pointer fields distinguish "not set" from a meaningful zero; with Go
// 1.26 write new(8) or new(true).
// See https://docs.getdbt.com/dbt-cloud/api-v2#/operations/Trigger%20Job%20Run.
type TriggerRunRequest struct {
	// Cause is shown in the dbt Cloud UI and comes back in Run.Trigger.Cause;
	// make it specific enough to find the run again after a lost reply.
	Cause                  string   `json:"cause"`
	GitSHA                 string   `json:"git_sha,omitempty"`
	GitBranch              string   `json:"git_branch,omitempty"`
	SchemaOverride         string   `json:"schema_override,omitempty"`
	DBTVersionOverride     string   `json:"dbt_version_override,omitempty"`
	ThreadsOverride        *int     `json:"threads_override,omitempty"`
	TargetNameOverride     string   `json:"target_name_override,omitempty"`
	GenerateDocsOverride   *bool    `json:"generate_docs_override,omitempty"`
	TimeoutSecondsOverride *int     `json:"timeout_seconds_override,omitempty"`
	StepsOverride          []string `json:"steps_override,omitempty"`
}

func (r *TriggerRunRequest) validate() error {
	if r == nil || strings.TrimSpace(r.Cause) == "" {
		return errors.New("cause is required")
	}
	if r.ThreadsOverride != nil && *r.ThreadsOverride < 1 {
		return fmt.Errorf("threads_override must be at least 1, got %d", *r.ThreadsOverride)
	}
	if r.TimeoutSecondsOverride != nil && *r.TimeoutSecondsOverride < 0 {
		return fmt.Errorf("timeout_seconds_override must not be negative, got %d", *r.TimeoutSecondsOverride)
	}
	for i, step := range r.StepsOverride {
		if strings.TrimSpace(step) == "" {
			return fmt.Errorf("steps_override[%d] is empty", i)
		}
	}
	return nil
}

// MaxListLimit is the largest page the List Runs endpoint returns.
const MaxListLimit = 100

// ListRunsOptions narrows and pages ListRuns.
// See https://docs.getdbt.com/dbt-cloud/api-v2#/operations/List%20Runs.
type ListRunsOptions struct {
	// Limit is the page size, 1 to 100; zero leaves dbt's default (100).
	Limit int
	// Offset skips that many runs, for paging.
	Offset int
	// OrderBy is a field name, "-" for descending; empty means "-id",
	// newest first.
	OrderBy string
	// Status keeps only runs in that status; zero keeps all.
	Status RunStatus
}

func (o *ListRunsOptions) query(jobID int64) (url.Values, error) {
	q := url.Values{}
	if jobID > 0 {
		q.Set("job_definition_id", strconv.FormatInt(jobID, 10))
	}
	q.Set("include_related", `["trigger"]`)
	order := "-id"
	if o != nil && o.OrderBy != "" {
		order = o.OrderBy
	}
	q.Set("order_by", order)
	if o == nil {
		return q, nil
	}
	if o.Limit < 0 || o.Limit > MaxListLimit {
		return nil, fmt.Errorf("limit must be between 1 and %d, got %d", MaxListLimit, o.Limit)
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Offset < 0 {
		return nil, fmt.Errorf("offset must not be negative, got %d", o.Offset)
	}
	if o.Offset > 0 {
		q.Set("offset", strconv.Itoa(o.Offset))
	}
	if o.Status != 0 {
		q.Set("status", strconv.Itoa(int(o.Status)))
	}
	return q, nil
}

func (c *Client) accountPath(format string, args ...any) string {
	return fmt.Sprintf("/api/v2/accounts/%d/", c.accountID) + fmt.Sprintf(format, args...)
}

// TriggerRun starts a run of job jobID and returns it, normally queued.
//
// The request is retried only when dbt Cloud certainly did not act on it (a
// 429, a 503, or a failed connection). When a reply is lost after the request
// may have arrived, the error wraps ErrTriggerOutcomeUnknown: look for the
// run with ListRuns before triggering again.
// See https://docs.getdbt.com/dbt-cloud/api-v2#/operations/Trigger%20Job%20Run.
func (c *Client) TriggerRun(ctx context.Context, jobID int64, req *TriggerRunRequest) (*Run, error) {
	if jobID <= 0 {
		return nil, fmt.Errorf("trigger dbt Cloud job: job id must be positive, got %d", jobID)
	}
	if err := req.validate(); err != nil {
		return nil, fmt.Errorf("trigger dbt Cloud job %d: %w", jobID, err)
	}
	run := new(Run)
	if err := c.do(ctx, "POST", c.accountPath("jobs/%d/run/", jobID), nil, req, run, oneShot); err != nil {
		return nil, fmt.Errorf("trigger dbt Cloud job %d: %w", jobID, err)
	}
	return run, nil
}

// GetRun returns run runID with its trigger.
// See https://docs.getdbt.com/dbt-cloud/api-v2#/operations/Retrieve%20Run.
func (c *Client) GetRun(ctx context.Context, runID int64) (*Run, error) {
	if runID <= 0 {
		return nil, fmt.Errorf("get dbt Cloud run: run id must be positive, got %d", runID)
	}
	q := url.Values{"include_related": {`["trigger"]`}}
	run := new(Run)
	if err := c.do(ctx, "GET", c.accountPath("runs/%d/", runID), q, nil, run, idempotent); err != nil {
		return nil, fmt.Errorf("get dbt Cloud run %d: %w", runID, err)
	}
	return run, nil
}

// ListRuns returns one page of the runs of job jobID, newest first unless
// opts says otherwise; jobID 0 lists the runs of every job in the account.
// opts may be nil.
// See https://docs.getdbt.com/dbt-cloud/api-v2#/operations/List%20Runs.
func (c *Client) ListRuns(ctx context.Context, jobID int64, opts *ListRunsOptions) ([]*Run, error) {
	if jobID < 0 {
		return nil, fmt.Errorf("list dbt Cloud runs: job id must not be negative, got %d", jobID)
	}
	q, err := opts.query(jobID)
	if err != nil {
		return nil, fmt.Errorf("list dbt Cloud runs of job %d: %w", jobID, err)
	}
	var runs []*Run
	if err := c.do(ctx, "GET", c.accountPath("runs/"), q, nil, &runs, idempotent); err != nil {
		return nil, fmt.Errorf("list dbt Cloud runs of job %d: %w", jobID, err)
	}
	return runs, nil
}

// CancelRun asks dbt Cloud to cancel run runID and returns the run. A queued,
// starting or running run comes back with status 30 (Cancelled); dbt answers
// 200 for a run that already finished too, leaving its status unchanged, so
// check the returned Status rather than assuming the cancel took effect.
// Cancelling is idempotent, so it is retried like a read.
// See https://docs.getdbt.com/dbt-cloud/api-v2#/operations/Cancel%20Run.
func (c *Client) CancelRun(ctx context.Context, runID int64) (*Run, error) {
	if runID <= 0 {
		return nil, fmt.Errorf("cancel dbt Cloud run: run id must be positive, got %d", runID)
	}
	run := new(Run)
	if err := c.do(ctx, "POST", c.accountPath("runs/%d/cancel/", runID), nil, nil, run, idempotent); err != nil {
		return nil, fmt.Errorf("cancel dbt Cloud run %d: %w", runID, err)
	}
	return run, nil
}
