package tableau_test

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau/tableautest"
)

// TestSimFindRefreshJob: the job a 409093 refers to is found by its title
// and confirmed by its item, unfinished ones first; a finished job counts
// only when it ended within EndedSince.
func TestSimFindRefreshJob(t *testing.T) {
	srv := newSim(t, tableautest.WithAPIVersion("3.25"), tableautest.WithJobTimings(-1, -1))
	c := newSimClient(t, srv)
	ctx := ctxT(t)
	orders := srv.AddDatasource("Orders", "Finance")
	sandbox := srv.AddDatasource("Orders", "Sandbox") // same name, another item
	sales := srv.AddWorkbook("Orders", "Finance")     // same name, another kind
	idle := srv.AddDatasource("Idle", "Finance")
	since := time.Now().Add(-time.Hour)

	old, _ := srv.QueueRefresh(orders)
	if err := srv.FinishJob(old, tableautest.FinishSucceeded, ""); err != nil {
		t.Fatal(err)
	}
	mustQueue := func(id string) string {
		j, err := srv.QueueRefresh(id)
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	sandboxJob := mustQueue(sandbox)
	salesJob := mustQueue(sales)
	current := mustQueue(orders)
	if err := srv.StartJob(current); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		q    tableau.RefreshJobQuery
		want string
	}{
		{"the item's running job", tableau.RefreshJobQuery{Kind: "datasource", ItemID: orders, Name: "Orders", CreatedSince: since}, current},
		{"the namesake in another project", tableau.RefreshJobQuery{Kind: "datasource", ItemID: sandbox, Name: "Orders", CreatedSince: since}, sandboxJob},
		{"a workbook of that name", tableau.RefreshJobQuery{Kind: "workbook", ItemID: sales, Name: "Orders", CreatedSince: since}, salesJob},
		{"without the name", tableau.RefreshJobQuery{Kind: "datasource", ItemID: orders, CreatedSince: since}, current},
		{"none for the item", tableau.RefreshJobQuery{Kind: "datasource", ItemID: idle, Name: "Idle", CreatedSince: since}, ""},
		{"created before the window", tableau.RefreshJobQuery{Kind: "datasource", ItemID: orders, Name: "Orders", CreatedSince: time.Now().Add(time.Hour)}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, err := c.FindRefreshJob(ctx, tt.q)
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if j != nil {
				got = j.ID
			}
			if got != tt.want {
				t.Fatalf("found %q, want %q", got, tt.want)
			}
		})
	}

	// Once the running job has ended, it counts only if it ended lately.
	if err := srv.FinishJob(current, tableautest.FinishSucceeded, ""); err != nil {
		t.Fatal(err)
	}
	q := tableau.RefreshJobQuery{Kind: "datasource", ItemID: orders, Name: "Orders", CreatedSince: since}
	if j, err := c.FindRefreshJob(ctx, q); err != nil || j != nil {
		t.Errorf("finished jobs without EndedSince: %+v, %v", j, err)
	}
	q.EndedSince = time.Now().Add(-time.Minute)
	if j, err := c.FindRefreshJob(ctx, q); err != nil || j == nil || j.ID != current || !j.Finished() {
		t.Errorf("with EndedSince: %+v, %v", j, err)
	}
}

// TestSimListJobs: the filters Tableau documents, and the statuses it
// reports; only administrators may list.
func TestSimListJobs(t *testing.T) {
	srv := newSim(t, tableautest.WithAPIVersion("3.25"), tableautest.WithJobTimings(-1, -1))
	c := newSimClient(t, srv)
	ctx := ctxT(t)
	wb := srv.AddWorkbook("Sales, Q3 & Q4", "Finance") // a title no filter can carry
	ds := srv.AddDatasource("Orders", "Finance")
	pending, _ := srv.QueueRefresh(ds)
	running, _ := srv.QueueRefresh(wb)
	if err := srv.StartJob(running); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts tableau.JobListOptions
		want []string
	}{
		{"all", tableau.JobListOptions{}, []string{running, pending}},
		{"pending", tableau.JobListOptions{Status: tableau.JobStatusPending}, []string{pending}},
		{"a title the filter cannot carry", tableau.JobListOptions{Title: "Sales, Q3 & Q4"}, []string{running}},
		{"refreshes since an hour ago", tableau.JobListOptions{JobTypes: []string{tableau.JobTypeRefreshExtracts, tableau.JobTypeIncrementExtracts}, Since: time.Now().Add(-time.Hour)}, []string{running, pending}},
		{"incremental ones", tableau.JobListOptions{JobTypes: []string{tableau.JobTypeIncrementExtracts}}, nil},
		{"at most one", tableau.JobListOptions{Max: 1}, []string{running}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jobs, err := c.ListJobs(ctx, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, j := range jobs {
				got = append(got, j.ID)
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("jobs %v, want %v", got, tt.want)
			}
		})
	}
	jobs, _ := c.ListJobs(ctx, tableau.JobListOptions{Status: tableau.JobStatusInProgress})
	if len(jobs) != 1 || jobs[0].Title != "Sales, Q3 & Q4" || jobs[0].StartedAt.IsZero() || jobs[0].Finished() || jobs[0].JobType != tableau.JobTypeRefreshExtracts {
		t.Errorf("running job = %+v", jobs)
	}

	srv.AddPATWithRole("creator", "creator-secret", tableautest.RoleCreator)
	creator, err := tableau.NewClient(srv.URL(), tableau.WithSite(simSite), tableau.WithPAT("creator", "creator-secret"), tableau.WithRetryPolicy(fastRetries))
	if err != nil {
		t.Fatal(err)
	}
	_, err = creator.ListJobs(ctx, tableau.JobListOptions{})
	if !errors.Is(err, tableau.ErrForbidden) || tableau.Retryable(err) {
		t.Errorf("non-administrator: %v", err)
	}
}

// TestSimIncrementalRefresh: from REST API 3.25 the refresh request asks for
// an incremental refresh; before, the refresh is full, with a warning.
func TestSimIncrementalRefresh(t *testing.T) {
	tests := []struct {
		version                 string
		incremental, downgraded bool
	}{
		{"3.23", false, true},
		{"3.24", false, true},
		{"3.25", true, false},
		{"3.28", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.version, func(t *testing.T) {
			srv := newSim(t, tableautest.WithAPIVersion(tt.version), tableautest.WithJobTimings(-1, -1))
			var logs bytes.Buffer
			c := newSimClient(t, srv, tableau.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
			ctx := ctxT(t)
			ds := srv.AddDatasource("Orders", "Finance")
			wb := srv.AddWorkbook("Sales", "Finance")
			res, err := c.RefreshDatasource(ctx, ds, tableau.Incremental(true))
			if err != nil || res.Incremental != tt.incremental || res.Downgraded != tt.downgraded || res.Job == nil {
				t.Fatalf("incremental refresh: %+v, %v", res, err)
			}
			if info, _ := srv.Job(res.Job.ID); info.Incremental != tt.incremental {
				t.Errorf("Tableau's job: incremental %t", info.Incremental)
			}
			if warned := strings.Contains(logs.String(), `"level":"WARN"`) && strings.Contains(logs.String(), "refreshing in full"); warned != tt.downgraded {
				t.Errorf("warning logged: %t, want %t: %s", warned, tt.downgraded, logs.String())
			}
			full, err := c.RefreshWorkbook(ctx, wb)
			if err != nil || full.Incremental || full.Downgraded {
				t.Fatalf("full refresh: %+v, %v", full, err)
			}
			if info, _ := srv.Job(full.Job.ID); info.Incremental {
				t.Error("a full refresh ran incrementally")
			}
			again, err := c.RefreshDatasource(ctx, ds, tableau.Incremental(true))
			if err != nil || !again.AlreadyQueued {
				t.Errorf("second incremental refresh while the first is queued: %+v, %v", again, err)
			}
		})
	}
}

// TestSimConnectedAppScopes: a connected app's session is refused, with
// Tableau's 401002, whatever its JWT's scopes do not cover: the client
// signs in once more, then says which scope is missing, as an error no
// retry fixes.
func TestSimConnectedAppScopes(t *testing.T) {
	tests := []struct {
		name    string
		version string
		scopes  []string // nil: DefaultScopes
		call    func(c *tableau.Client, ds string) error
		missing string // "" when the call succeeds
	}{
		{"defaults refresh", "3.27", nil, func(c *tableau.Client, ds string) error {
			_, err := c.RefreshDatasource(ctxT(t), ds)
			return err
		}, ""},
		{"defaults find", "3.27", nil, func(c *tableau.Client, _ string) error {
			_, err := c.FindDatasource(ctxT(t), "Orders", "Finance")
			return err
		}, ""},
		{"defaults follow jobs", "3.27", nil, func(c *tableau.Client, ds string) error {
			res, err := c.RefreshDatasource(ctxT(t), ds)
			if err != nil {
				return err
			}
			_, err = c.Job(ctxT(t), res.Job.ID)
			return err
		}, ""},
		{"defaults find a ride's job", "3.27", nil, func(c *tableau.Client, ds string) error {
			_, err := c.FindRefreshJob(ctxT(t), tableau.RefreshJobQuery{Kind: "datasource", ItemID: ds, Name: "Orders", CreatedSince: time.Now().Add(-time.Hour)})
			return err
		}, ""},
		{"defaults read lineage", "3.27", nil, func(c *tableau.Client, _ string) error {
			_, err := c.LookupTables(ctxT(t), []string{"ORDERS"})
			return err
		}, ""},
		{"without tasks:run", "3.27", []string{tableau.ScopeContentRead, tableau.ScopeJobsRead}, func(c *tableau.Client, ds string) error {
			_, err := c.RefreshDatasource(ctxT(t), ds)
			return err
		}, tableau.ScopeTasksRun},
		{"without content:read", "3.27", []string{tableau.ScopeTasksRun}, func(c *tableau.Client, _ string) error {
			_, err := c.FindDatasource(ctxT(t), "Orders", "Finance")
			return err
		}, tableau.ScopeContentRead},
		{"without jobs:read", "3.27", []string{tableau.ScopeContentRead, tableau.ScopeTasksRun}, func(c *tableau.Client, ds string) error {
			res, err := c.RefreshDatasource(ctxT(t), ds)
			if err != nil {
				return err
			}
			_, err = c.Job(ctxT(t), res.Job.ID)
			return err
		}, tableau.ScopeJobsRead},
		{"the defaults do not manage webhooks", "3.27", nil, func(c *tableau.Client, _ string) error {
			_, err := c.ListWebhooks(ctxT(t))
			return err
		}, tableau.ScopeWebhooksRead},
		{"the defaults put no quality warnings", "3.27", nil, func(c *tableau.Client, ds string) error {
			_, err := c.AddDataQualityWarning(ctxT(t), "datasource", ds, &tableau.DataQualityWarning{Type: "WARNING", Message: "m", IsActive: true})
			return err
		}, tableau.ScopeQualityWarningsCreate},
		{"quality warnings with their scopes", "3.27", append(tableau.DefaultScopes(), tableau.QualityWarningScopes()...), func(c *tableau.Client, ds string) error {
			w, err := c.AddDataQualityWarning(ctxT(t), "datasource", ds, &tableau.DataQualityWarning{Type: "WARNING", Message: "m", IsActive: true})
			if err != nil {
				return err
			}
			return c.DeleteDataQualityWarning(ctxT(t), w.ID)
		}, ""},
		{"Query Job takes a JWT from 3.25 only", "3.24", nil, func(c *tableau.Client, ds string) error {
			res, err := c.RefreshDatasource(ctxT(t), ds)
			if err != nil {
				return err
			}
			_, err = c.Job(ctxT(t), res.Job.ID)
			return err
		}, tableau.ScopeJobsRead},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newSim(t, tableautest.WithAPIVersion(tt.version), tableautest.WithJobTimings(-1, -1))
			srv.AddUser("bot@example.com", tableautest.RoleSiteAdministratorCreator)
			srv.AddConnectedApp("client-1", "secret-id-1", "secret-value-1")
			ds := srv.AddDatasource("Orders", "Finance")
			w := newWire()
			c, err := tableau.NewClient(srv.URL(), tableau.WithSite(simSite), tableau.WithRetryPolicy(fastRetries), tableau.WithHTTPClient(w.client()),
				tableau.WithConnectedApp(tableau.ConnectedApp{ClientID: "client-1", SecretID: "secret-id-1", SecretValue: "secret-value-1",
					Username: "bot@example.com", Scopes: tt.scopes}))
			if err != nil {
				t.Fatal(err)
			}
			err = tt.call(c, ds)
			if tt.missing == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var se *tableau.ScopeError
			if !errors.As(err, &se) || se.Need != tt.missing || !errors.Is(err, tableau.ErrScope) || tableau.Retryable(err) {
				t.Fatalf("err = %v; want a ScopeError needing %s, not retryable", err, tt.missing)
			}
			if !strings.Contains(err.Error(), "lacks "+tt.missing) || !strings.Contains(err.Error(), "401002") {
				t.Errorf("message %q", err)
			}
			// One sign-in more, to tell an ended session from a missing
			// scope; no loop.
			if n, n401 := w.count(http.MethodPost, "/auth/signin"), w.statuses(http.StatusUnauthorized); n != 2 || n401 != 2 {
				t.Errorf("%d sign-ins and %d 401s, want 2 and 2", n, n401)
			}
		})
	}
}

// TestSimListJobsConnectedAppVersion: Query Jobs takes a connected app's
// session from REST API 3.27; before, the client says so without asking.
func TestSimListJobsConnectedAppVersion(t *testing.T) {
	srv := newSim(t, tableautest.WithAPIVersion("3.26"))
	srv.AddUser("bot@example.com", tableautest.RoleSiteAdministratorCreator)
	srv.AddConnectedApp("client-1", "secret-id-1", "secret-value-1")
	c, err := tableau.NewClient(srv.URL(), tableau.WithSite(simSite), tableau.WithRetryPolicy(fastRetries),
		tableau.WithConnectedApp(tableau.ConnectedApp{ClientID: "client-1", SecretID: "secret-id-1", SecretValue: "secret-value-1", Username: "bot@example.com"}))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ListJobs(ctxT(t), tableau.JobListOptions{})
	if !errors.Is(err, tableau.ErrUnsupportedVersion) || !strings.Contains(err.Error(), "3.27") {
		t.Fatalf("err = %v", err)
	}
	if n := srv.Count(http.MethodGet, "/jobs"); n != 0 {
		t.Errorf("%d Query Jobs requests", n)
	}
}
