package tableau

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Background job statuses in Query Jobs.
const (
	JobStatusPending    = "Pending"
	JobStatusInProgress = "InProgress"
	JobStatusSuccess    = "Success"
	JobStatusFailed     = "Failed"
	JobStatusCancelled  = "Cancelled"
)

// Job types of extract refreshes in Query Jobs.
const (
	JobTypeRefreshExtracts   = "refresh_extracts"
	JobTypeIncrementExtracts = "increment_extracts"
)

// QueryJobsJWTVersion is the first REST API version whose Query Jobs takes a
// connected app's session (with ScopeJobsRead).
const QueryJobsJWTVersion = "3.27"

// BackgroundJob is one job as Query Jobs lists it: its status and times,
// and a title (for an extract refresh, the item's name), but not the item
// itself, its notes or its finish code: Job has those.
//
// See https://help.tableau.com/current/api/rest_api/en-us/REST/rest_api_ref_jobs_tasks_and_schedules.htm#query_jobs.
type BackgroundJob struct {
	ID        string
	Status    string // JobStatus...
	JobType   string // e.g. JobTypeRefreshExtracts
	Title     string
	Subtitle  string
	Priority  int
	Progress  int
	CreatedAt Timestamp
	StartedAt Timestamp
	EndedAt   Timestamp
}

// Finished reports whether the job has ended, in any way.
func (b *BackgroundJob) Finished() bool {
	switch b.Status {
	case JobStatusSuccess, JobStatusFailed, JobStatusCancelled:
		return true
	}
	return false
}

type backgroundJobWire struct {
	ID        string    `json:"id"`
	Status    string    `json:"status"`
	JobType   string    `json:"jobType"`
	Title     flexText  `json:"title"`
	Subtitle  flexText  `json:"subtitle"`
	Priority  flexInt   `json:"priority"`
	Progress  flexInt   `json:"progress"`
	CreatedAt Timestamp `json:"createdAt"`
	StartedAt Timestamp `json:"startedAt"`
	EndedAt   Timestamp `json:"endedAt"`
}

// JobListOptions narrows Query Jobs with filters Tableau documents for it
// (jobType, status, title, createdAt). Zero fields filter nothing. Tableau
// has no filter by item: FindRefreshJob confirms the item with Query Job.
//
// See https://help.tableau.com/current/api/rest_api/en-us/REST/rest_api_concepts_filtering_and_sorting.htm.
type JobListOptions struct {
	JobTypes []string  // jobType:in:[...]
	Status   string    // status:eq:...
	Title    string    // title:eq:...; a title the filter cannot carry is matched here instead
	Since    time.Time // createdAt:gte:...
	// Max stops the listing after this many jobs (default 100).
	Max int
}

func (o JobListOptions) filter() string {
	var parts []string
	for _, t := range o.JobTypes {
		if !filterSafe(t) {
			return "" // not a job type: let the server's listing be whole
		}
	}
	switch len(o.JobTypes) {
	case 0:
	case 1:
		parts = append(parts, "jobType:eq:"+o.JobTypes[0])
	default:
		parts = append(parts, "jobType:in:["+strings.Join(o.JobTypes, ",")+"]")
	}
	if o.Status != "" && filterSafe(o.Status) {
		parts = append(parts, "status:eq:"+o.Status)
	}
	if o.Title != "" && filterSafe(o.Title) {
		parts = append(parts, "title:eq:"+o.Title)
	}
	if !o.Since.IsZero() {
		// The value's colons are the time's: Tableau splits field and
		// operator off the front, as its own examples show.
		parts = append(parts, "createdAt:gte:"+o.Since.UTC().Format(time.RFC3339))
	}
	return strings.Join(parts, ",")
}

// matches applies on this side what the filter could not carry.
func (o JobListOptions) matches(b *BackgroundJob) bool {
	return (o.Title == "" || b.Title == o.Title) && (o.Status == "" || b.Status == o.Status)
}

// ListJobs lists the site's background jobs (Query Jobs), newest first.
// Tableau lets only site and server administrators call it (others get an
// error matching ErrForbidden); a connected app needs REST API 3.27
// (QueryJobsJWTVersion) and ScopeJobsRead.
//
// See https://help.tableau.com/current/api/rest_api/en-us/REST/rest_api_ref_jobs_tasks_and_schedules.htm#query_jobs.
func (c *Client) ListJobs(ctx context.Context, opts JobListOptions) ([]BackgroundJob, error) {
	if cr, _ := c.auth(); cr != nil {
		if _, jwt := cr.(*jwtCredentials); jwt {
			if err := c.requireVersion(ctx, "Query Jobs with a connected app", QueryJobsJWTVersion); err != nil {
				return nil, fmt.Errorf("list jobs: %w", err)
			}
		}
	}
	limit := opts.Max
	if limit <= 0 {
		limit = 100
	}
	size := min(limit, c.pageSize)
	filter := opts.filter()
	var out []BackgroundJob
	seen := 0
	for page := 1; len(out) < limit; page++ {
		q := "pageSize=" + strconv.Itoa(size) + "&pageNumber=" + strconv.Itoa(page)
		if filter != "" {
			q += "&filter=" + queryEscape(filter)
		}
		var reply struct {
			Pagination     pagination      `json:"pagination"`
			BackgroundJobs json.RawMessage `json:"backgroundJobs"`
		}
		r := &request{method: http.MethodGet, sitePath: "jobs", query: q, auth: true, out: &reply, scope: ScopeJobsRead}
		if err := c.send(ctx, r); err != nil {
			return nil, fmt.Errorf("list jobs: %w", err)
		}
		var inner struct {
			BackgroundJob oneOrMany[backgroundJobWire] `json:"backgroundJob"`
		}
		if err := decodeList(reply.BackgroundJobs, &inner); err != nil {
			return nil, fmt.Errorf("list jobs: decode page %d: %w", page, err)
		}
		for _, w := range inner.BackgroundJob {
			b := BackgroundJob{
				ID: w.ID, Status: w.Status, JobType: w.JobType, Title: w.Title.Value, Subtitle: w.Subtitle.Value,
				Priority: w.Priority.N, Progress: w.Progress.N, CreatedAt: w.CreatedAt, StartedAt: w.StartedAt, EndedAt: w.EndedAt,
			}
			if b.ID != "" && opts.matches(&b) && len(out) < limit {
				out = append(out, b)
			}
		}
		n := len(inner.BackgroundJob)
		seen += n
		p := reply.Pagination
		if n == 0 || !p.TotalAvailable.Set || seen >= p.TotalAvailable.N {
			break
		}
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].CreatedAt.After(out[b].CreatedAt.Time) })
	return out, nil
}

// oneOrMany decodes a list that Tableau's JSON renders as a lone object when
// it holds one element.
type oneOrMany[T any] []T

func (o *oneOrMany[T]) UnmarshalJSON(b []byte) error {
	trimmed := strings.TrimSpace(string(b))
	switch {
	case trimmed == "" || trimmed == "null":
		return nil
	case trimmed[0] == '{':
		var one T
		if err := json.Unmarshal(b, &one); err != nil {
			return err
		}
		*o = []T{one}
		return nil
	}
	var many []T
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*o = many
	return nil
}

// RefreshJobQuery names the item whose refresh job FindRefreshJob looks for.
type RefreshJobQuery struct {
	Kind   string // "workbook" or "datasource"
	ItemID string
	// Name is the item's name: Query Jobs is narrowed to jobs of that title.
	// Empty lists every extract refresh in the window.
	Name string
	// CreatedSince bounds the jobs looked at to those created since.
	CreatedSince time.Time
	// EndedSince admits finished jobs that ended since (a job may end
	// between Tableau's 409093 and the look); zero admits unfinished
	// jobs only.
	EndedSince time.Time
}

// maxConfirm bounds the Query Job calls one FindRefreshJob makes.
const maxConfirm = 5

// FindRefreshJob finds the extract refresh Tableau has for an item: the job a
// refresh request answered with 409093 ("already queued") rides on, which
// Tableau does not name. Query Jobs cannot be filtered by item, so it lists
// the extract refreshes (full and incremental) created since
// q.CreatedSince with the item's name as their title, unfinished ones first
// and newest first, and reads each with Query Job, which names the item,
// until one is q's. It returns nil and no error when none is.
//
// It needs what ListJobs needs: a site administrator, and with a connected
// app REST API 3.27 and ScopeJobsRead.
func (c *Client) FindRefreshJob(ctx context.Context, q RefreshJobQuery) (*Job, error) {
	if err := checkID(q.Kind, q.ItemID); err != nil {
		return nil, err
	}
	list, err := c.ListJobs(ctx, JobListOptions{
		JobTypes: []string{JobTypeRefreshExtracts, JobTypeIncrementExtracts},
		Title:    q.Name,
		Since:    q.CreatedSince,
	})
	if err != nil {
		return nil, err
	}
	var cands []BackgroundJob
	for _, b := range list {
		if !b.Finished() || (!q.EndedSince.IsZero() && !b.EndedAt.IsZero() && !b.EndedAt.Before(q.EndedSince)) {
			cands = append(cands, b)
		}
	}
	// Unfinished first: a 409093 says one is queued or running.
	sort.SliceStable(cands, func(a, b int) bool { return !cands[a].Finished() && cands[b].Finished() })
	for i, b := range cands {
		if i == maxConfirm {
			break
		}
		j, err := c.Job(ctx, b.ID)
		if err != nil {
			return nil, fmt.Errorf("find the refresh job of %s %s: %w", q.Kind, q.ItemID, err)
		}
		ref := j.Workbook
		if q.Kind == "datasource" {
			ref = j.Datasource
		}
		if ref != nil && ref.ID == q.ItemID {
			return j, nil
		}
	}
	return nil, nil
}
