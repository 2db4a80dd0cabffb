package tableau

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Project identifies the project an item lives in.
type Project struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Owner identifies the user who owns an item.
type Owner struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

// Workbook is a published workbook.
//
// See https://help.tableau.com/current/api/rest_api/en-us/REST/rest_api_ref_workbooks_and_views.htm#query_workbook.
type Workbook struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	ContentURL string    `json:"contentUrl"`
	WebpageURL string    `json:"webpageUrl"`
	Project    Project   `json:"project"`
	Owner      Owner     `json:"owner"`
	CreatedAt  Timestamp `json:"createdAt"`
	UpdatedAt  Timestamp `json:"updatedAt"`
}

// Datasource is a published data source.
//
// See https://help.tableau.com/current/api/rest_api/en-us/REST/rest_api_ref_data_sources.htm#query_data_source.
type Datasource struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	ContentURL  string    `json:"contentUrl"`
	WebpageURL  string    `json:"webpageUrl"`
	Type        string    `json:"type"`
	HasExtracts bool      `json:"-"`
	Project     Project   `json:"project"`
	Owner       Owner     `json:"owner"`
	CreatedAt   Timestamp `json:"createdAt"`
	UpdatedAt   Timestamp `json:"updatedAt"`
}

// UnmarshalJSON reads hasExtracts whether it comes as a boolean or a string.
func (d *Datasource) UnmarshalJSON(b []byte) error {
	type plain Datasource
	var w struct {
		plain
		HasExtracts flexBool `json:"hasExtracts"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*d = Datasource(w.plain)
	d.HasExtracts = w.HasExtracts.B
	return nil
}

// Workbook returns the workbook with the given LUID. A missing workbook is an
// *Error matching ErrNotFound.
//
// See https://help.tableau.com/current/api/rest_api/en-us/REST/rest_api_ref_workbooks_and_views.htm#query_workbook.
func (c *Client) Workbook(ctx context.Context, id string) (*Workbook, error) {
	if err := checkID("workbook", id); err != nil {
		return nil, err
	}
	var reply struct {
		Workbook *Workbook `json:"workbook"`
	}
	r := &request{method: http.MethodGet, sitePath: "workbooks/" + url.PathEscape(id), auth: true, out: &reply, scope: ScopeContentRead}
	if err := c.send(ctx, r); err != nil {
		return nil, fmt.Errorf("get workbook %s: %w", id, err)
	}
	if reply.Workbook == nil {
		return nil, fmt.Errorf("get workbook %s: reply has no workbook: %w", id, ErrBadReply)
	}
	return reply.Workbook, nil
}

// Datasource returns the data source with the given LUID. A missing data
// source is an *Error matching ErrNotFound.
//
// See https://help.tableau.com/current/api/rest_api/en-us/REST/rest_api_ref_data_sources.htm#query_data_source.
func (c *Client) Datasource(ctx context.Context, id string) (*Datasource, error) {
	if err := checkID("data source", id); err != nil {
		return nil, err
	}
	var reply struct {
		Datasource *Datasource `json:"datasource"`
	}
	r := &request{method: http.MethodGet, sitePath: "datasources/" + url.PathEscape(id), auth: true, out: &reply, scope: ScopeContentRead}
	if err := c.send(ctx, r); err != nil {
		return nil, fmt.Errorf("get data source %s: %w", id, err)
	}
	if reply.Datasource == nil {
		return nil, fmt.Errorf("get data source %s: reply has no datasource: %w", id, ErrBadReply)
	}
	return reply.Datasource, nil
}

// FindWorkbook returns the workbook called name, in the project called
// project if that is not empty. Names match exactly (case and all). No match
// is a *NotFoundError; matches in several projects, with no project given, is
// an *AmbiguousError naming them.
//
// See https://help.tableau.com/current/api/rest_api/en-us/REST/rest_api_ref_workbooks_and_views.htm#query_workbooks_for_site.
func (c *Client) FindWorkbook(ctx context.Context, name, project string) (*Workbook, error) {
	return findOne[*Workbook](ctx, c, "workbooks", "workbook", name, project)
}

// FindDatasource returns the published data source called name, in the
// project called project if that is not empty, with the same matching rules
// and errors as FindWorkbook.
//
// See https://help.tableau.com/current/api/rest_api/en-us/REST/rest_api_ref_data_sources.htm#query_data_sources.
func (c *Client) FindDatasource(ctx context.Context, name, project string) (*Datasource, error) {
	return findOne[*Datasource](ctx, c, "datasources", "datasource", name, project)
}

// item is content that FindWorkbook and FindDatasource search for.
type item interface {
	*Workbook | *Datasource
	ref() (name string, project Project, id string)
}

func (w *Workbook) ref() (string, Project, string)   { return w.Name, w.Project, w.ID }
func (d *Datasource) ref() (string, Project, string) { return d.Name, d.Project, d.ID }

// findOne lists collection (filtered server-side where the name allows) and
// matches the name exactly here, since the server's filter cannot be trusted
// with every name.
func findOne[T item](ctx context.Context, c *Client, collection, kind, name, project string) (T, error) {
	what := kind
	if kind == "datasource" {
		what = "data source"
	}
	if name == "" {
		return nil, fmt.Errorf("find %s: name is empty", what)
	}
	var matches []T
	var projects []Project
	var ids []string
	err := c.list(ctx, collection, nameFilter(name, project), func(page json.RawMessage) (int, error) {
		var items map[string][]T
		if err := decodeList(page, &items); err != nil {
			return 0, err
		}
		for _, it := range items[kind] {
			if it == nil { // a null entry in a malformed reply
				continue
			}
			n, p, id := it.ref()
			if n == name && (project == "" || p.Name == project) {
				matches, projects, ids = append(matches, it), append(projects, p), append(ids, id)
			}
		}
		return len(items[kind]), nil
	})
	if err != nil {
		return nil, fmt.Errorf("find %s %q: %w", what, name, err)
	}
	if err := pickOne(kind, name, project, projects, ids); err != nil {
		return nil, err
	}
	return matches[0], nil
}

func pickOne(kind, name, project string, projects []Project, ids []string) error {
	switch len(projects) {
	case 0:
		return &NotFoundError{Kind: kind, Name: name, Project: project}
	case 1:
		return nil
	}
	return &AmbiguousError{Kind: kind, Name: name, Project: project, Matches: projects, IDs: ids}
}

// filterUnsafe are characters a filter value cannot carry: the server splits
// filters on "," and the query on "&" even when percent-encoded, and ":"
// separates field, operator and value. "[", "]" and "\" have meanings of
// their own in filter expressions.
// See https://help.tableau.com/current/api/rest_api/en-us/REST/rest_api_concepts_filtering_and_sorting.htm.
const filterUnsafe = ",&:[]\\"

func filterSafe(v string) bool { return !strings.ContainsAny(v, filterUnsafe) }

// nameFilter narrows the listing on the server where the values allow it.
// A name the filter cannot carry is matched on this side instead, after
// listing the project (when its name is safe) or the whole site. The caller
// compares names exactly either way, so the filter only saves traffic.
func nameFilter(name, project string) string {
	var parts []string
	if filterSafe(name) {
		parts = append(parts, "name:eq:"+name)
	}
	if project != "" && filterSafe(project) {
		parts = append(parts, "projectName:eq:"+project)
	}
	return strings.Join(parts, ",")
}

// list walks every page of a site collection (e.g. "workbooks"), passing the
// inner object of each page (e.g. the value of "workbooks") to each, which
// returns how many items the page held.
//
// See https://help.tableau.com/current/api/rest_api/en-us/REST/rest_api_concepts_paging.htm.
func (c *Client) list(ctx context.Context, collection, filter string, each func(json.RawMessage) (int, error)) error {
	seen := 0
	for page := 1; ; page++ {
		q := "pageSize=" + strconv.Itoa(c.pageSize) + "&pageNumber=" + strconv.Itoa(page)
		if filter != "" {
			q += "&filter=" + queryEscape(filter)
		}
		var reply map[string]json.RawMessage
		r := &request{method: http.MethodGet, sitePath: collection, query: q, auth: true, out: &reply, scope: listScope(collection)}
		if err := c.send(ctx, r); err != nil {
			return err
		}
		var p pagination
		if raw, ok := reply["pagination"]; ok {
			if err := json.Unmarshal(raw, &p); err != nil {
				return fmt.Errorf("decode pagination: %w", err)
			}
		}
		n, err := each(reply[collection])
		if err != nil {
			return fmt.Errorf("decode %s page %d: %w", collection, page, err)
		}
		seen += n
		// Stop on an empty page too, so a server whose totalAvailable is
		// missing or wrong cannot keep us paging forever.
		if n == 0 || !p.TotalAvailable.Set || seen >= p.TotalAvailable.N {
			return nil
		}
	}
}

// listScope is the connected-app scope a listing needs.
func listScope(collection string) string {
	if collection == "webhooks" {
		return ScopeWebhooksRead
	}
	return ScopeContentRead
}

// decodeList decodes the inner list object, which is absent or {} when the
// listing is empty.
func decodeList(raw json.RawMessage, v any) error {
	if len(raw) == 0 || string(raw) == "null" || string(raw) == `""` {
		return nil
	}
	return json.Unmarshal(raw, v)
}

// queryEscape percent-encodes a query value with %20 for spaces: "+" is
// ambiguous to servers that do not decode it as a space.
func queryEscape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

func checkID(kind, id string) error {
	if strings.TrimSpace(id) == "" {
		return fmt.Errorf("%s id is empty", kind)
	}
	if strings.ContainsAny(id, "/?#") {
		return fmt.Errorf("%s id %q is not a LUID", kind, id)
	}
	return nil
}

// RefreshResult is the outcome of starting a refresh.
type RefreshResult struct {
	// Job is the refresh job Tableau queued; nil when AlreadyQueued.
	Job *Job
	// AlreadyQueued reports that Tableau declined because a refresh of the
	// item was already queued or running (409093). Tableau does not say
	// which job that is: FindRefreshJob looks for it.
	AlreadyQueued bool
	// Incremental reports that Tableau was asked for an incremental
	// refresh. Downgraded reports that one was asked for but the server's
	// REST API predates them (IncrementalRefreshVersion), so the refresh
	// asked for was full.
	Incremental, Downgraded bool
}

// IncrementalRefreshVersion is the first REST API version whose "Update
// Workbook Now" and "Update Data Source Now" take an incremental refresh
// (Tableau Cloud February 2025, Tableau Server 2025.1).
const IncrementalRefreshVersion = "3.25"

// RefreshOption sets how RefreshWorkbook and RefreshDatasource refresh.
type RefreshOption func(*refreshOptions)

type refreshOptions struct{ incremental bool }

// Incremental asks for an incremental refresh of the extract (only the rows
// newer than the extract's incremental column, as the extract defines it)
// rather than a full one. A server older than IncrementalRefreshVersion
// refreshes in full: the Client logs a warning and sets
// RefreshResult.Downgraded.
func Incremental(on bool) RefreshOption { return func(o *refreshOptions) { o.incremental = on } }

// RefreshWorkbook starts an extract refresh of the workbook ("Update Workbook
// Now"). A refresh already queued is a success with AlreadyQueued set; a
// workbook without an extract is an error matching ErrNoExtract.
//
// The request is repeated only when Tableau certainly did not act on it
// (429, 503, a connection that was never made), so a retry cannot queue a
// second refresh.
//
// See https://help.tableau.com/current/api/rest_api/en-us/REST/rest_api_ref_workbooks_and_views.htm#update_workbook_now.
func (c *Client) RefreshWorkbook(ctx context.Context, id string, opts ...RefreshOption) (*RefreshResult, error) {
	if err := checkID("workbook", id); err != nil {
		return nil, err
	}
	res, err := c.refresh(ctx, "workbooks/"+url.PathEscape(id)+"/refresh", opts)
	if err != nil {
		return nil, fmt.Errorf("refresh workbook %s: %w", id, err)
	}
	return res, nil
}

// RefreshDatasource starts an extract refresh of the published data source
// ("Update Data Source Now"), with the same outcomes as RefreshWorkbook.
// Data sources embedded in a workbook are refreshed through the workbook.
//
// See https://help.tableau.com/current/api/rest_api/en-us/REST/rest_api_ref_data_sources.htm#update_data_source_now.
func (c *Client) RefreshDatasource(ctx context.Context, id string, opts ...RefreshOption) (*RefreshResult, error) {
	if err := checkID("data source", id); err != nil {
		return nil, err
	}
	res, err := c.refresh(ctx, "datasources/"+url.PathEscape(id)+"/refresh", opts)
	if err != nil {
		return nil, fmt.Errorf("refresh data source %s: %w", id, err)
	}
	return res, nil
}

// refreshBody is the request of an incremental refresh, from REST API 3.25
// (`<extractRefresh incremental="true"/>` in XML, as the official Python
// client sends it). A full refresh sends {} on every version.
type refreshBody struct {
	ExtractRefresh struct {
		Incremental bool `json:"incremental"`
	} `json:"extractRefresh"`
}

func (c *Client) refresh(ctx context.Context, sitePath string, opts []RefreshOption) (*RefreshResult, error) {
	var o refreshOptions
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	res := &RefreshResult{}
	var body any = struct{}{}
	if o.incremental {
		v, err := c.apiVersion(ctx)
		if err != nil {
			return nil, err
		}
		if versionLess(v, IncrementalRefreshVersion) {
			// A full refresh still brings the extract up to date; it only
			// takes longer.
			res.Downgraded = true
			c.logger.WarnContext(ctx, "tableau incremental refresh asked for, but the server's REST API predates it ("+IncrementalRefreshVersion+"): refreshing in full",
				"path", sitePath, "version", v)
		} else {
			var b refreshBody
			b.ExtractRefresh.Incremental = true
			body, res.Incremental = b, true
		}
	}
	var reply struct {
		Job *jobWire `json:"job"`
	}
	r := &request{
		method:   http.MethodPost,
		sitePath: sitePath,
		body:     body,
		auth:     true,
		mode:     retryUnacted,
		out:      &reply,
		scope:    ScopeTasksRun,
	}
	err := c.send(ctx, r)
	var te *Error
	if errors.As(err, &te) && te.StatusCode == http.StatusConflict && te.Code == CodeAlreadyQueued {
		c.logger.InfoContext(ctx, "tableau refresh already queued", "path", te.Path)
		res.AlreadyQueued = true
		return res, nil
	}
	if err != nil {
		return nil, err
	}
	if reply.Job == nil {
		return nil, fmt.Errorf("reply has no job: %w", ErrBadReply)
	}
	res.Job = reply.Job.job()
	return res, nil
}
