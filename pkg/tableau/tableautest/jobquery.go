package tableautest

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Query Jobs (GET /api/{v}/sites/{site}/jobs), incremental refreshes and
// refreshes the bridge did not queue.
//
// Query Jobs lists background jobs as <backgroundJob id status createdAt
// startedAt endedAt priority jobType title subtitle/> (the official Python
// client's test asset job_get.xml). It is for site and server
// administrators. Its filter fields are Tableau's documented ones (the REST
// API's "Filtering and Sorting" page; Tableau's MCP server lists the same):
// jobType (eq, in), status (eq), progress and priority (eq, gt, gte, lt,
// lte), title and subtitle (eq, has), notes (has), and createdAt, startedAt
// and completedAt (eq, gt, gte, lt, lte). There is no filter by item: a
// refresh job's title is its item's name here (as the Jobs page shows the
// item), and Query Job names the item. args (has) is documented too, but
// not what it holds, so the simulator refuses it as unknown rather than
// invent its contents.
//
// A connected app's session may call Query Job from REST API 3.25 and Query
// Jobs from 3.27 (Tableau's release notes; its MCP server's list-jobs tool);
// before that Tableau refuses them with 401002, as it does a JWT without the
// scope a method needs.

const (
	jwtQueryJobVersion  = "3.25"
	jwtQueryJobsVersion = "3.27"
	// incrementalVersion is the first REST API version whose refresh request
	// takes <extractRefresh incremental="true"/>.
	incrementalVersion = "3.25"
)

// jwtSince refuses a connected app's session on an endpoint that takes JWTs
// only from version min, as Tableau does: with 401002.
func jwtSince(c *call, min string) error {
	if !c.sess.jwt() {
		return nil
	}
	v, _ := parseVersion(c.version)
	m, _ := parseVersion(min)
	if v.less(m) {
		return errInvalidCredentials()
	}
	return nil
}

// refreshKind reads a refresh request's body: {} (or an empty tsRequest)
// for a full refresh; from 3.25 an extractRefresh element whose incremental
// attribute asks for an incremental one. Earlier versions know no such
// element and refuse it.
func refreshKind(c *call, body map[string]any) (bool, error) {
	er, present := body["extractRefresh"]
	if !present {
		return false, nil
	}
	v, _ := parseVersion(c.version)
	if min, _ := parseVersion(incrementalVersion); v.less(min) {
		return false, errBadRequest(fmt.Sprintf("The extractRefresh element is not supported in API version %s; incremental refreshes need %s or later.", c.version, incrementalVersion))
	}
	m, ok := er.(map[string]any)
	if !ok {
		return false, errBadRequest("extractRefresh must be an element.")
	}
	inc, _, err := boolField(m, "incremental")
	if err != nil {
		return false, errBadRequest(err.Error())
	}
	return inc, nil
}

// QueueRefresh queues a refresh of the item as Tableau itself would (a
// schedule, or someone's Refresh Now), not through the API: the bridge's
// later refresh of the item is then answered 409093 while it is queued or
// running. It returns the job's LUID; the job runs on the server's job
// timings, or waits for StartJob and FinishJob when they are negative.
func (s *Server) QueueRefresh(itemLUID string) (string, error) {
	s.mu.Lock()
	owner := s.owner
	it := s.items[itemLUID]
	s.mu.Unlock()
	if it == nil {
		return "", fmt.Errorf("tableautest: no item %s", itemLUID)
	}
	n, err := s.queueRefresh(&session{user: owner}, it.kind, itemLUID, false)
	if err != nil {
		return "", fmt.Errorf("tableautest: queue a refresh of %s: %w", itemLUID, err)
	}
	for _, a := range n.attrs {
		if a.key == "id" {
			return a.val.(string), nil
		}
	}
	return "", fmt.Errorf("tableautest: queued job of %s has no id", itemLUID)
}

// StartJob starts a queued job now, as the backgrounder picking it up does.
func (s *Server) StartJob(jobID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.jobs[jobID]
	if j == nil {
		return fmt.Errorf("tableautest: no job %s", jobID)
	}
	if j.state != jobQueued {
		return fmt.Errorf("tableautest: job %s is %s, not queued", jobID, j.state)
	}
	if j.timer != nil {
		j.timer.Stop()
	}
	s.startLocked(j)
	if j.running >= 0 {
		j.timer = time.AfterFunc(j.running, func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.closed || j.state != jobRunning {
				return
			}
			s.finishLocked(j, j.planCode, j.planNotes)
		})
	}
	return nil
}

// status is the job's status as Query Jobs reports it.
func (j *job) status() string {
	switch j.state {
	case jobQueued:
		return "Pending"
	case jobRunning:
		return "InProgress"
	}
	switch j.code {
	case FinishSucceeded:
		return "Success"
	case FinishCancelled:
		return "Cancelled"
	}
	return "Failed"
}

func (j *job) jobType() string {
	if j.incremental {
		return "increment_extracts"
	}
	return "refresh_extracts"
}

// backgroundNode renders the job as Query Jobs lists it.
func (j *job) backgroundNode(now time.Time) *node {
	n := el("backgroundJob", "id", j.id, "status", j.status(), "createdAt", stamp(j.created))
	n.set("startedAt", stamp(j.started))
	n.set("endedAt", stamp(j.finished))
	n.attrs = append(n.attrs, attr{"priority", "50"}, attr{"jobType", j.jobType()}, attr{"title", j.item.name})
	n.set("progress", strconv.Itoa(j.progress(now)))
	return n
}

type jobField struct {
	ops   string
	value func(j *job, now time.Time) string
	kind  byte // 's' string, 'n' number, 't' time
}

var jobFields = map[string]jobField{
	"jobType":     {"eq in", func(j *job, _ time.Time) string { return j.jobType() }, 's'},
	"status":      {"eq", func(j *job, _ time.Time) string { return j.status() }, 's'},
	"progress":    {"eq gt gte lt lte", func(j *job, now time.Time) string { return strconv.Itoa(j.progress(now)) }, 'n'},
	"priority":    {"eq gt gte lt lte", func(*job, time.Time) string { return "50" }, 'n'},
	"title":       {"eq has", func(j *job, _ time.Time) string { return j.item.name }, 's'},
	"subtitle":    {"eq has", func(*job, time.Time) string { return "" }, 's'},
	"notes":       {"has", func(j *job, _ time.Time) string { return j.notes }, 's'},
	"createdAt":   {"eq gt gte lt lte", func(j *job, _ time.Time) string { return stamp(j.created) }, 't'},
	"startedAt":   {"eq gt gte lt lte", func(j *job, _ time.Time) string { return stamp(j.started) }, 't'},
	"completedAt": {"eq gt gte lt lte", func(j *job, _ time.Time) string { return stamp(j.finished) }, 't'},
}

// parseJobFilter reads a Query Jobs filter with the same syntax rules as
// parseFilter (",", "&" and "in:[...]").
func parseJobFilter(raw string) ([]filterExpr, error) {
	return parseFilterWith(raw, func(field string) (string, byte, bool) {
		def, ok := jobFields[field]
		return def.ops, def.kind, ok
	})
}

func matchJob(f filterExpr, j *job, now time.Time) bool {
	def := jobFields[f.field]
	got := def.value(j, now)
	switch def.kind {
	case 't':
		if got == "" {
			return false // a time the job does not have yet matches nothing
		}
		have, _ := time.Parse(time.RFC3339, got)
		want, _ := time.Parse(time.RFC3339, f.values[0])
		return compare(f.op, have.Compare(want))
	case 'n':
		have, _ := strconv.Atoi(got)
		want, _ := strconv.Atoi(f.values[0])
		c := 0
		if have < want {
			c = -1
		} else if have > want {
			c = 1
		}
		return compare(f.op, c)
	}
	for _, v := range f.values {
		if got == v || (f.op == "has" && strings.Contains(got, v)) {
			return true
		}
	}
	return false
}

func compare(op string, c int) bool {
	switch op {
	case "eq":
		return c == 0
	case "gt":
		return c > 0
	case "gte":
		return c >= 0
	case "lt":
		return c < 0
	case "lte":
		return c <= 0
	}
	return false
}

// listJobs is Query Jobs.
func (s *Server) listJobs(c *call, _ []string) error {
	if err := jwtSince(c, jwtQueryJobsVersion); err != nil {
		return err
	}
	if !c.sess.user.isAdmin() {
		return errForbidden("Only site and server administrators may query jobs.")
	}
	q := c.r.URL.Query()
	pageSize, pageNumber, err := pageParams(q)
	if err != nil {
		return err
	}
	filters, err := parseJobFilter(q.Get("filter"))
	if err != nil {
		return err
	}
	now := time.Now()
	s.mu.Lock()
	var matched []*job
	for _, j := range s.jobOrder {
		ok := true
		for _, f := range filters {
			if !matchJob(f, j, now) {
				ok = false
				break
			}
		}
		if ok {
			matched = append(matched, j)
		}
	}
	// Newest first, as the site's Jobs page lists them.
	sort.SliceStable(matched, func(a, b int) bool { return matched[a].created.After(matched[b].created) })
	total := len(matched)
	from := min((pageNumber-1)*pageSize, total)
	to := min(from+pageSize, total)
	nodes := make([]*node, 0, to-from)
	for _, j := range matched[from:to] {
		nodes = append(nodes, j.backgroundNode(now))
	}
	s.mu.Unlock()
	return c.reply(http.StatusOK,
		el("pagination",
			"pageNumber", strconv.Itoa(pageNumber),
			"pageSize", strconv.Itoa(pageSize),
			"totalAvailable", strconv.Itoa(total)),
		listEl("backgroundJobs", nodes...),
	)
}
