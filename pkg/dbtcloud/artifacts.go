package dbtcloud

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/remote"
)

// ErrArtifactNotAvailable: dbt Cloud answered 404 for a run's artifact. The
// run has not finished, dbt Cloud has not stored its artifacts yet, or the
// step wrote no such file. The error also matches ErrNotFound; Retryable
// reports it as worth trying again later.
var ErrArtifactNotAvailable = errors.New("dbt Cloud artifact not available yet")

// RunStep is one step of a run: cloning the repository, creating the
// profile, and one per dbt command ("Invoke dbt with `dbt build`").
// See https://docs.getdbt.com/dbt-cloud/api-v2#/operations/Retrieve%20Run.
type RunStep struct {
	ID    int64 `json:"id"`
	RunID int64 `json:"run_id"`
	// Index numbers the steps from 1, in the order they run; pass it to
	// GetArtifact to read the step's artifacts.
	Index int `json:"index"`
	// Name is dbt Cloud's label for the step.
	Name            string     `json:"name"`
	Status          RunStatus  `json:"status"`
	StatusHumanized string     `json:"status_humanized"`
	StartedAt       *Timestamp `json:"started_at"`
	FinishedAt      *Timestamp `json:"finished_at"`
	// RunStepCommand is sent by some replies; Command reads it when present.
	RunStepCommand *RunStepCommand `json:"run_step_command"`
}

// RunStepCommand is the dbt command of a step, when dbt Cloud sends it.
type RunStepCommand struct {
	DBTCommand string `json:"dbt_command"`
}

// Command returns the dbt command the step ran, such as
// "dbt build --select tag:daily", or "" for a step that runs no dbt command
// (cloning the repository, creating the profile).
func (s RunStep) Command() string {
	if s.RunStepCommand != nil && s.RunStepCommand.DBTCommand != "" {
		return s.RunStepCommand.DBTCommand
	}
	// dbt Cloud names the steps it runs dbt in "Invoke dbt with `dbt build`".
	_, rest, ok := strings.Cut(s.Name, "`")
	if !ok || !strings.HasPrefix(s.Name, "Invoke dbt") {
		return ""
	}
	cmd, _, ok := strings.Cut(rest, "`")
	if !ok {
		return ""
	}
	return strings.TrimSpace(cmd)
}

// GetRunSteps returns the steps of run runID that have started, in order.
// See https://docs.getdbt.com/dbt-cloud/api-v2#/operations/Retrieve%20Run.
func (c *Client) GetRunSteps(ctx context.Context, runID int64) ([]RunStep, error) {
	if runID <= 0 {
		return nil, fmt.Errorf("get dbt Cloud run steps: run id must be positive, got %d", runID)
	}
	q := url.Values{"include_related": {`["run_steps"]`}}
	var run struct {
		RunSteps []RunStep `json:"run_steps"`
	}
	if err := c.do(ctx, "GET", c.accountPath("runs/%d/", runID), q, nil, &run, idempotent); err != nil {
		return nil, fmt.Errorf("get dbt Cloud run %d steps: %w", runID, err)
	}
	return run.RunSteps, nil
}

// GetArtifact opens the artifact at path (such as "run_results.json" or
// "manifest.json") written by step step of run runID; step 0 means the last
// step, which in a job that generates docs is dbt docs generate. The caller
// reads the returned body as a stream and must close it: manifests reach
// hundreds of megabytes and are never held in memory here. Only ctx bounds
// the download, body included: the HTTP client's Timeout (30 s by default,
// see WithHTTPClient), meant for one API call, would cut a large manifest
// short, so give ctx a deadline.
//
// A 404 is returned as an error matching ErrArtifactNotAvailable (and
// ErrNotFound); other failures are retried as for any read.
// See https://docs.getdbt.com/dbt-cloud/api-v2#/operations/Retrieve%20Run%20Artifact.
func (c *Client) GetArtifact(ctx context.Context, runID int64, path string, step int) (io.ReadCloser, error) {
	what := fmt.Sprintf("get dbt Cloud run %d artifact %s", runID, path)
	if step > 0 {
		what += fmt.Sprintf(" (step %d)", step)
	}
	if runID <= 0 {
		return nil, fmt.Errorf("%s: run id must be positive, got %d", what, runID)
	}
	if step < 0 {
		return nil, fmt.Errorf("%s: step must not be negative", what)
	}
	if path == "" || strings.HasPrefix(path, "/") || strings.Contains(path, "..") || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("%s: path must be relative to the run's target directory, like run_results.json", what)
	}
	var q url.Values
	if step > 0 {
		q = url.Values{"step": {strconv.Itoa(step)}}
	}
	body, err := c.openStream(ctx, c.accountPath("runs/%d/artifacts/", runID)+path, q)
	if err != nil {
		var apiErr *Error
		if errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusNotFound {
			err = fmt.Errorf("%w: %w", ErrArtifactNotAvailable, err)
		}
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return body, nil
}

// openStream sends a GET, retrying like do until a 2xx reply arrives, and
// returns its body unread. It is do for replies too big to buffer; it shares
// do's error mapping (newError) and retry rules (transient).
func (c *Client) openStream(ctx context.Context, path string, query url.Values) (io.ReadCloser, error) {
	u := *c.baseURL
	u.Path = path
	u.RawQuery = query.Encode()
	rt := remote.Retrier{
		Policy:    c.retry,
		Retryable: transient,
		Sleep:     c.sleep,
		Jitter:    c.jitter,
		OnRetry: func(ctx context.Context, attempt int, wait time.Duration, err error) {
			c.logger.WarnContext(ctx, "dbt Cloud request failed; retrying",
				"method", "GET", "path", path, "attempt", attempt, "retry_in", wait.String(), "error", err)
		},
	}
	var body io.ReadCloser
	err := rt.Do(ctx, func(ctx context.Context) error {
		var err error
		body, err = c.sendStream(ctx, u.String(), path)
		return err
	})
	return body, err
}

// sendStream makes one GET and hands back the body of a 2xx reply. The
// client's per-attempt timeout would cut a long manifest download short:
// here the context alone bounds it.
func (c *Client) sendStream(ctx context.Context, target, path string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", target, nil)
	if err != nil {
		return nil, fmt.Errorf("build request GET %s: %w", path, err)
	}
	token, err := c.token(ctx)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Token "+token)
	// Artifacts are JSON files, but say so loosely: the endpoint also serves
	// other files a run leaves.
	req.Header.Set("Accept", "application/json, */*")
	req.Header.Set("User-Agent", userAgent)
	hc := *c.httpClient
	hc.Timeout = 0
	resp, err := remote.Do(&hc, req, service, path)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return &streamBody{ReadCloser: resp.Body, path: path}, nil
	}
	defer resp.Body.Close()
	raw, _, _ := remote.ReadBody(resp, maxErrorBodyBytes)
	return nil, c.newError(resp, raw, "GET", path, token)
}

// streamBody names the request in read errors, so that a connection lost
// halfway through a manifest reads as that and counts as transient.
type streamBody struct {
	io.ReadCloser
	path string
}

func (b *streamBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		err = &remote.TransportError{Service: service, Method: "GET", Path: b.path, Sent: true, Err: err}
	}
	return n, err
}
