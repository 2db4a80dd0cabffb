package tableau

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"time"
)

// FinishCode is how a job ended.
//
// See https://help.tableau.com/current/api/rest_api/en-us/REST/rest_api_ref_jobs_tasks_and_schedules.htm#query_job.
type FinishCode int

// Finish codes. The REST API documents 0, 1 and 2; the official Python
// client also knows 3.
const (
	FinishSuccess   FinishCode = 0
	FinishFailed    FinishCode = 1
	FinishCancelled FinishCode = 2
	FinishCompleted FinishCode = 3
)

// String names the code: "success", "failed", "cancelled" or "completed".
func (f FinishCode) String() string {
	switch f {
	case FinishSuccess:
		return "success"
	case FinishFailed:
		return "failed"
	case FinishCancelled:
		return "cancelled"
	case FinishCompleted:
		return "completed"
	}
	return fmt.Sprintf("FinishCode(%d)", int(f))
}

// ItemRef names the workbook or data source a job works on.
type ItemRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Job is a background job, such as an extract refresh.
//
// See https://help.tableau.com/current/api/rest_api/en-us/REST/rest_api_ref_jobs_tasks_and_schedules.htm#query_job.
type Job struct {
	ID          string
	Mode        string // e.g. "Asynchronous"
	Type        string // e.g. "RefreshExtract"
	Progress    int    // percent
	CreatedAt   Timestamp
	StartedAt   Timestamp
	UpdatedAt   Timestamp
	CompletedAt Timestamp
	// FinishCode is nil while the job is queued or running.
	FinishCode *FinishCode
	// Notes is what Tableau said about the job (extractRefreshJob.notes),
	// e.g. why a refresh failed.
	Notes      string
	Workbook   *ItemRef // the workbook of a workbook refresh
	Datasource *ItemRef // the data source of a data source refresh
}

// Finished reports whether the job has ended, in any way.
func (j *Job) Finished() bool { return j.FinishCode != nil }

// Succeeded reports whether the job ended well (finish code 0 or 3).
func (j *Job) Succeeded() bool {
	return j.FinishCode != nil && (*j.FinishCode == FinishSuccess || *j.FinishCode == FinishCompleted)
}

// jobWire is a job as the REST API sends it.
type jobWire struct {
	ID                string    `json:"id"`
	Mode              string    `json:"mode"`
	Type              string    `json:"type"`
	Progress          flexInt   `json:"progress"`
	CreatedAt         Timestamp `json:"createdAt"`
	StartedAt         Timestamp `json:"startedAt"`
	UpdatedAt         Timestamp `json:"updatedAt"`
	CompletedAt       Timestamp `json:"completedAt"`
	FinishCode        flexInt   `json:"finishCode"`
	ExtractRefreshJob *struct {
		Notes      flexText `json:"notes"`
		Workbook   *ItemRef `json:"workbook"`
		Datasource *ItemRef `json:"datasource"`
	} `json:"extractRefreshJob"`
}

func (w *jobWire) job() *Job {
	j := &Job{
		ID: w.ID, Mode: w.Mode, Type: w.Type, Progress: w.Progress.N,
		CreatedAt: w.CreatedAt, StartedAt: w.StartedAt, UpdatedAt: w.UpdatedAt, CompletedAt: w.CompletedAt,
	}
	if w.FinishCode.Set {
		fc := FinishCode(w.FinishCode.N)
		j.FinishCode = &fc
	}
	if e := w.ExtractRefreshJob; e != nil {
		j.Notes, j.Workbook, j.Datasource = e.Notes.Value, e.Workbook, e.Datasource
	}
	return j
}

// Job returns the job with the given id.
//
// See https://help.tableau.com/current/api/rest_api/en-us/REST/rest_api_ref_jobs_tasks_and_schedules.htm#query_job.
func (c *Client) Job(ctx context.Context, id string) (*Job, error) {
	if err := checkID("job", id); err != nil {
		return nil, err
	}
	var reply struct {
		Job *jobWire `json:"job"`
	}
	r := &request{method: http.MethodGet, sitePath: "jobs/" + url.PathEscape(id), auth: true, out: &reply, scope: ScopeJobsRead}
	if err := c.send(ctx, r); err != nil {
		return nil, fmt.Errorf("get job %s: %w", id, err)
	}
	if reply.Job == nil {
		return nil, fmt.Errorf("get job %s: reply has no job: %w", id, ErrBadReply)
	}
	return reply.Job.job(), nil
}

// CancelJob asks Tableau to cancel a queued or running job.
//
// See https://help.tableau.com/current/api/rest_api/en-us/REST/rest_api_ref_jobs_tasks_and_schedules.htm#cancel_job.
func (c *Client) CancelJob(ctx context.Context, id string) error {
	if err := checkID("job", id); err != nil {
		return err
	}
	// Cancelling twice leaves the job cancelled, so retries are harmless.
	r := &request{method: http.MethodPut, sitePath: "jobs/" + url.PathEscape(id), auth: true, scope: ScopeJobsUpdate}
	if err := c.send(ctx, r); err != nil {
		return fmt.Errorf("cancel job %s: %w", id, err)
	}
	return nil
}

// WaitOptions sets how WaitForJob polls: the first wait is Interval, each
// next one Multiplier times longer, up to MaxInterval. Zero fields take the
// defaults of the official Python client: 0.5s, x1.4, 30s.
type WaitOptions struct {
	Interval    time.Duration
	Multiplier  float64
	MaxInterval time.Duration
}

func (o *WaitOptions) withDefaults() (WaitOptions, error) {
	w := WaitOptions{Interval: 500 * time.Millisecond, Multiplier: 1.4, MaxInterval: 30 * time.Second}
	if o == nil {
		return w, nil
	}
	if o.Interval < 0 || o.MaxInterval < 0 || o.Multiplier < 0 {
		return w, errors.New("wait options must not be negative")
	}
	if o.Multiplier != 0 && o.Multiplier < 1 {
		return w, fmt.Errorf("wait options: Multiplier %v would shrink the interval; want at least 1", o.Multiplier)
	}
	if o.Interval > 0 {
		w.Interval = o.Interval
	}
	if o.Multiplier > 0 {
		w.Multiplier = o.Multiplier
	}
	if o.MaxInterval > 0 {
		w.MaxInterval = o.MaxInterval
	}
	w.Interval = min(w.Interval, w.MaxInterval)
	return w, nil
}

// WaitForJob polls the job until it finishes or ctx ends; the caller sets the
// time limit with ctx's deadline. A job that finished well is returned with a
// nil error; one that failed or was cancelled is returned with a *JobError
// carrying Tableau's notes. When ctx ends first, the last job seen (possibly
// nil) is returned with ctx's error.
//
// See https://help.tableau.com/current/api/rest_api/en-us/REST/rest_api_ref_jobs_tasks_and_schedules.htm#query_job.
func (c *Client) WaitForJob(ctx context.Context, id string, opts *WaitOptions) (*Job, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	wait := o.Interval
	var last *Job
	for {
		j, err := c.Job(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return last, fmt.Errorf("wait for job %s: %w", id, ctx.Err())
			}
			return last, fmt.Errorf("wait for job: %w", err)
		}
		last = j
		if j.Finished() {
			if j.Succeeded() {
				return j, nil
			}
			return j, &JobError{Job: j}
		}
		if err := c.sleep(ctx, wait); err != nil {
			return last, fmt.Errorf("wait for job %s (progress %d%%): %w", id, last.Progress, err)
		}
		wait = min(time.Duration(math.Round(float64(wait)*o.Multiplier)), o.MaxInterval)
	}
}
