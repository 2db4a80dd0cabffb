package tableau_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/remote"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau/tableautest"
)

// These tests run the client against the tableautest simulator, which is
// written from the API reference independently of this package, to check
// behaviour over many calls: shared sessions, paging, 409s, jobs, faults.

const (
	simPAT    = "refresh-bot"
	simSecret = "sim-secret-7d1f"
	simSite   = "mysite"
)

// fastRetries keeps waits tiny so that tests take no noticeable time.
var fastRetries = remote.Policy{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond}

// fastWait polls jobs quickly.
var fastWait = &tableau.WaitOptions{Interval: 2 * time.Millisecond, MaxInterval: 10 * time.Millisecond}

func newSim(t *testing.T, opts ...tableautest.Option) *tableautest.Server {
	t.Helper()
	srv := tableautest.NewServer(append([]tableautest.Option{tableautest.WithSite(simSite)}, opts...)...)
	t.Cleanup(srv.Close)
	srv.AddPAT(simPAT, simSecret)
	return srv
}

// wire records, on the client side, every request and the status it got.
// Counting here rather than with the simulator's Requests is exact the moment
// a call returns: the simulator records a request only after writing its reply.
type wire struct {
	mu   sync.Mutex
	base http.RoundTripper
	seen []seenRequest
}

type seenRequest struct {
	method, path string
	status       int // 0 when no reply came
}

func newWire() *wire {
	return &wire{base: http.DefaultTransport.(*http.Transport).Clone()}
}

func (w *wire) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := w.base.RoundTrip(r)
	rec := seenRequest{method: r.Method, path: r.URL.Path}
	if err == nil {
		rec.status = resp.StatusCode
	}
	w.mu.Lock()
	w.seen = append(w.seen, rec)
	w.mu.Unlock()
	return resp, err
}

func (w *wire) client() *http.Client { return &http.Client{Transport: w} }

// count reports requests with the method on a path ending in suffix.
func (w *wire) count(method, suffix string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, r := range w.seen {
		if r.method == method && strings.HasSuffix(r.path, suffix) {
			n++
		}
	}
	return n
}

// statuses reports replies with the given status.
func (w *wire) statuses(code int) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, r := range w.seen {
		if r.status == code {
			n++
		}
	}
	return n
}

func (w *wire) requests() []seenRequest {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]seenRequest(nil), w.seen...)
}

func (w *wire) reset() {
	w.mu.Lock()
	w.seen = nil
	w.mu.Unlock()
}

func newSimClient(t *testing.T, srv *tableautest.Server, opts ...tableau.Option) *tableau.Client {
	t.Helper()
	base := []tableau.Option{tableau.WithSite(simSite), tableau.WithPAT(simPAT, simSecret), tableau.WithRetryPolicy(fastRetries)}
	c, err := tableau.NewClient(srv.URL(), append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestSimRefreshByName(t *testing.T) {
	srv := newSim(t)
	id := srv.AddWorkbook("Sales & Margin, 2024", "Finance")
	srv.AddWorkbook("Sales & Margin, 2024", "Sandbox")
	w := newWire()
	c := newSimClient(t, srv, tableau.WithHTTPClient(w.client()))
	ctx := ctxT(t)

	wb, err := c.FindWorkbook(ctx, "Sales & Margin, 2024", "Finance")
	if err != nil {
		t.Fatal(err)
	}
	if wb.ID != id || wb.Project.Name != "Finance" {
		t.Fatalf("found %+v, want %s", wb, id)
	}
	res, err := c.RefreshWorkbook(ctx, wb.ID)
	if err != nil || res.AlreadyQueued || res.Job == nil {
		t.Fatalf("RefreshWorkbook = %+v, %v", res, err)
	}
	job, err := c.WaitForJob(ctx, res.Job.ID, fastWait)
	if err != nil {
		t.Fatal(err)
	}
	if !job.Succeeded() || job.Workbook == nil || job.Workbook.ID != id || job.CompletedAt.IsZero() {
		t.Errorf("job = %+v", job)
	}
	if n := srv.RefreshCount(id); n != 1 {
		t.Errorf("refresh jobs = %d, want 1", n)
	}
	if n := w.count("POST", "/auth/signin"); n != 1 {
		t.Errorf("sign-ins = %d, want 1", n)
	}
}

// TestSimVersionNegotiation: without WithAPIVersion the client asks
// /api/2.4/serverinfo and then speaks the version the server reports.
func TestSimVersionNegotiation(t *testing.T) {
	srv := newSim(t, tableautest.WithAPIVersion("3.21"))
	id := srv.AddDatasource("Orders", "Finance")
	w := newWire()
	c := newSimClient(t, srv, tableau.WithHTTPClient(w.client()))
	ctx := ctxT(t)
	if _, err := c.Datasource(ctx, id); err != nil {
		t.Fatal(err)
	}
	info, err := c.ServerInfo(ctx)
	if err != nil || info.RestAPIVersion != "3.21" || info.ProductVersion == "" {
		t.Fatalf("ServerInfo = %+v, %v", info, err)
	}
	reqs := w.requests()
	if len(reqs) != 3 || reqs[0].path != "/api/2.4/serverinfo" {
		t.Fatalf("requests = %+v, want serverinfo at 2.4, sign-in, get", reqs)
	}
	for _, r := range reqs[1:] {
		if !strings.HasPrefix(r.path, "/api/3.21/") {
			t.Errorf("request %s %s not on the negotiated version", r.method, r.path)
		}
	}
}

func TestSimRefreshOutcomes(t *testing.T) {
	srv := newSim(t, tableautest.WithJobTimings(-1, -1)) // jobs stay queued until finished by hand
	wb := srv.AddWorkbook("Sales", "Finance")
	ds := srv.AddDatasource("Orders", "Finance")
	live := srv.AddWorkbook("Live dashboard", "Finance", tableautest.NoExtract())
	c := newSimClient(t, srv)
	ctx := ctxT(t)

	tests := []struct {
		name       string
		refresh    func() (*tableau.RefreshResult, error)
		wantQueued bool
		wantJob    bool
		wantIs     error
	}{
		{name: "workbook queued", refresh: func() (*tableau.RefreshResult, error) { return c.RefreshWorkbook(ctx, wb) }, wantJob: true},
		{name: "workbook again: already queued", refresh: func() (*tableau.RefreshResult, error) { return c.RefreshWorkbook(ctx, wb) }, wantQueued: true},
		{name: "datasource queued", refresh: func() (*tableau.RefreshResult, error) { return c.RefreshDatasource(ctx, ds) }, wantJob: true},
		{name: "datasource again: already queued", refresh: func() (*tableau.RefreshResult, error) { return c.RefreshDatasource(ctx, ds) }, wantQueued: true},
		{name: "no extract", refresh: func() (*tableau.RefreshResult, error) { return c.RefreshWorkbook(ctx, live) }, wantIs: tableau.ErrNoExtract},
		{name: "unknown workbook", refresh: func() (*tableau.RefreshResult, error) {
			return c.RefreshWorkbook(ctx, "00000000-0000-4000-8000-000000000000")
		}, wantIs: tableau.ErrNotFound},
		{name: "datasource id as workbook", refresh: func() (*tableau.RefreshResult, error) { return c.RefreshWorkbook(ctx, ds) }, wantIs: tableau.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := tt.refresh()
			if tt.wantIs != nil {
				if !errors.Is(err, tt.wantIs) {
					t.Fatalf("error = %v, want %v", err, tt.wantIs)
				}
				if tableau.Retryable(err) {
					t.Errorf("%v should not be retryable", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.AlreadyQueued != tt.wantQueued || (res.Job != nil) != tt.wantJob {
				t.Errorf("result = %+v", res)
			}
		})
	}
	if srv.RefreshCount(wb) != 1 || srv.RefreshCount(ds) != 1 || srv.RefreshCount(live) != 0 {
		t.Errorf("refresh jobs: wb=%d ds=%d live=%d, want 1 1 0", srv.RefreshCount(wb), srv.RefreshCount(ds), srv.RefreshCount(live))
	}
}

func TestSimJobs(t *testing.T) {
	srv := newSim(t, tableautest.WithJobTimings(-1, -1))
	wb := srv.AddWorkbook("Sales", "Finance")
	ds := srv.AddDatasource("Orders", "Finance")
	c := newSimClient(t, srv)
	ctx := ctxT(t)

	t.Run("running job has no finish code", func(t *testing.T) {
		res, err := c.RefreshWorkbook(ctx, wb)
		if err != nil {
			t.Fatal(err)
		}
		j, err := c.Job(ctx, res.Job.ID)
		if err != nil || j.Finished() || j.FinishCode != nil {
			t.Fatalf("job = %+v, %v", j, err)
		}
		if err := srv.FinishJob(res.Job.ID, tableautest.FinishFailed, "Login failed for user REFRESH."); err != nil {
			t.Fatal(err)
		}
		j, err = c.WaitForJob(ctx, res.Job.ID, fastWait)
		var je *tableau.JobError
		if !errors.As(err, &je) || !errors.Is(err, tableau.ErrJobFailed) || !strings.Contains(err.Error(), "Login failed") {
			t.Fatalf("WaitForJob error = %v", err)
		}
		if j.Notes != "Login failed for user REFRESH." || *j.FinishCode != tableau.FinishFailed {
			t.Errorf("job = %+v", j)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		res, err := c.RefreshDatasource(ctx, ds)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.CancelJob(ctx, res.Job.ID); err != nil {
			t.Fatal(err)
		}
		j, err := c.WaitForJob(ctx, res.Job.ID, fastWait)
		if !errors.Is(err, tableau.ErrJobCancelled) || j.Datasource == nil || j.Datasource.ID != ds {
			t.Fatalf("WaitForJob = %+v, %v", j, err)
		}
		if err := c.CancelJob(ctx, res.Job.ID); !errors.Is(err, tableau.ErrConflict) {
			t.Errorf("cancelling a finished job: error = %v, want a conflict", err)
		}
	})
	t.Run("unknown job", func(t *testing.T) {
		if _, err := c.Job(ctx, "00000000-0000-4000-8000-000000000000"); !errors.Is(err, tableau.ErrNotFound) {
			t.Errorf("error = %v", err)
		}
	})
	t.Run("failure reported by a job that runs on its own", func(t *testing.T) {
		srv.SetJobTimings(time.Millisecond, time.Millisecond)
		srv.FailNextRefresh(wb, "Extract too large")
		res, err := c.RefreshWorkbook(ctx, wb)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.WaitForJob(ctx, res.Job.ID, fastWait)
		if !errors.Is(err, tableau.ErrJobFailed) || !strings.Contains(err.Error(), "Extract too large") {
			t.Fatalf("error = %v", err)
		}
	})
	t.Run("deadline while waiting", func(t *testing.T) {
		srv.SetJobTimings(-1, -1)
		res, err := c.RefreshDatasource(ctx, ds)
		if err != nil {
			t.Fatal(err)
		}
		short, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
		defer cancel()
		j, err := c.WaitForJob(short, res.Job.ID, fastWait)
		if !errors.Is(err, context.DeadlineExceeded) || j == nil || j.Finished() {
			t.Fatalf("WaitForJob = %+v, %v", j, err)
		}
	})
}

// TestSimFindNames looks up awkward names, which the filter cannot carry, and
// names shared by several projects, against the simulator's filter parser.
func TestSimFindNames(t *testing.T) {
	srv := newSim(t)
	ids := map[string]string{}
	add := func(name, project string) {
		ids[name+"|"+project] = srv.AddWorkbook(name, project)
	}
	for _, n := range []string{
		"Sales", "Company, Inc", "P&L", "Time: 10:30", "Sales / Region", `The "Big" one`, "Résumé – Ünïcode 売上",
		"Sales Report 2024", "A,B&C:D", "50% + more?",
	} {
		add(n, "Finance")
	}
	add("Sales", "Marketing")
	add("Company, Inc", "R&D, Europe")
	add("Only here", "R&D, Europe")
	// Filler so that the site spans several pages of 3.
	for i := range 7 {
		add(fmt.Sprintf("Filler %d", i), "Misc")
	}
	w := newWire()
	c := newSimClient(t, srv, tableau.WithPageSize(3), tableau.WithHTTPClient(w.client()))
	ctx := ctxT(t)

	tests := []struct {
		name, project string
		wantKey       string
		wantIs        error
		wantText      []string
	}{
		{name: "Sales", project: "Finance", wantKey: "Sales|Finance"},
		{name: "Sales", project: "Marketing", wantKey: "Sales|Marketing"},
		{name: "Sales", wantIs: tableau.ErrAmbiguous, wantText: []string{`"Finance"`, `"Marketing"`}},
		{name: "sales", wantIs: tableau.ErrNotFound, wantText: []string{`"sales"`}},
		{name: "Company, Inc", project: "Finance", wantKey: "Company, Inc|Finance"},
		{name: "Company, Inc", project: "R&D, Europe", wantKey: "Company, Inc|R&D, Europe"},
		{name: "Company, Inc", wantIs: tableau.ErrAmbiguous, wantText: []string{`"R&D, Europe"`}},
		{name: "Only here", project: "R&D, Europe", wantKey: "Only here|R&D, Europe"},
		{name: "Only here", wantKey: "Only here|R&D, Europe"},
		{name: "P&L", wantKey: "P&L|Finance"},
		{name: "Time: 10:30", wantKey: "Time: 10:30|Finance"},
		{name: "Sales / Region", wantKey: "Sales / Region|Finance"},
		{name: `The "Big" one`, wantKey: `The "Big" one|Finance`},
		{name: "Résumé – Ünïcode 売上", project: "Finance", wantKey: "Résumé – Ünïcode 売上|Finance"},
		{name: "Sales Report 2024", wantKey: "Sales Report 2024|Finance"},
		{name: "A,B&C:D", wantKey: "A,B&C:D|Finance"},
		{name: "50% + more?", wantKey: "50% + more?|Finance"},
		{name: "Sales", project: "HR", wantIs: tableau.ErrNotFound, wantText: []string{`"Sales"`, `"HR"`}},
		{name: "Nope", wantIs: tableau.ErrNotFound, wantText: []string{"workbook", `"Nope"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name+"|"+tt.project, func(t *testing.T) {
			wb, err := c.FindWorkbook(ctx, tt.name, tt.project)
			if tt.wantIs != nil {
				if !errors.Is(err, tt.wantIs) || !containsAll(err.Error(), tt.wantText) {
					t.Fatalf("error = %v, want %v naming %q", err, tt.wantIs, tt.wantText)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if wb.ID != ids[tt.wantKey] {
				t.Errorf("found %s (%s in %s), want %s", wb.ID, wb.Name, wb.Project.Name, tt.wantKey)
			}
		})
	}
	// Every lookup got past the server's filter parser: no 400s.
	if n := w.statuses(http.StatusBadRequest); n != 0 {
		t.Errorf("%d requests got 400", n)
	}
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

func TestSimFindDatasourcePaging(t *testing.T) {
	srv := newSim(t)
	var want string
	for i := range 10 {
		id := srv.AddDatasource("Orders, EU", fmt.Sprintf("Project %d", i))
		if i == 7 {
			want = id
		}
	}
	w := newWire()
	c := newSimClient(t, srv, tableau.WithPageSize(2), tableau.WithHTTPClient(w.client()))
	ctx := ctxT(t)
	ds, err := c.FindDatasource(ctx, "Orders, EU", "Project 7")
	if err != nil || ds.ID != want || !ds.HasExtracts {
		t.Fatalf("FindDatasource = %+v, %v", ds, err)
	}
	// The comma rules out a name filter; the project filter narrows to one page.
	if n := w.count("GET", "/datasources"); n != 1 {
		t.Errorf("list requests = %d, want 1", n)
	}
	w.reset()
	_, err = c.FindDatasource(ctx, "Orders, EU", "")
	var ae *tableau.AmbiguousError
	if !errors.As(err, &ae) || len(ae.Matches) != 10 {
		t.Fatalf("error = %v, want ambiguous among 10", err)
	}
	if n := w.count("GET", "/datasources"); n != 5 {
		t.Errorf("list requests = %d, want 5 pages of 2", n)
	}
}

// runConcurrently calls each client once at the same time and returns the
// errors.
func runConcurrently(clients []*tableau.Client, call func(*tableau.Client) error) []error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	start := make(chan struct{})
	for _, c := range clients {
		wg.Go(func() {
			<-start
			if err := call(c); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// TestSimSharedPATWithStore: 20 separate Clients, standing for 20 Lambda
// instances, share one PAT and one SessionStore. Called all at once, before
// and after their session ends, every call succeeds and the PAT is signed in
// with once per session, so no instance ends another's session.
func TestSimSharedPATWithStore(t *testing.T) {
	const n = 20
	srv := newSim(t)
	id := srv.AddWorkbook("Sales", "Finance")
	store := tableau.NewMemorySessionStore()
	w := newWire()
	clients := make([]*tableau.Client, n)
	for i := range clients {
		clients[i] = newSimClient(t, srv, tableau.WithSessionStore(store), tableau.WithHTTPClient(w.client()))
	}
	ctx := ctxT(t)
	get := func(c *tableau.Client) error { _, err := c.Workbook(ctx, id); return err }

	if errs := runConcurrently(clients, get); len(errs) > 0 {
		t.Fatalf("%d of %d calls failed, first: %v", len(errs), n, errs[0])
	}
	if got := w.count("POST", "/auth/signin"); got != 1 {
		t.Errorf("sign-ins = %d, want 1", got)
	}
	if got := w.statuses(http.StatusUnauthorized); got != 0 {
		t.Errorf("401 replies = %d, want 0: instances logged each other out", got)
	}

	// The session ends (timeout, or an admin): each instance meets one 401,
	// and one of them signs in for all.
	srv.ExpireSessions()
	w.reset()
	if errs := runConcurrently(clients, get); len(errs) > 0 {
		t.Fatalf("after expiry %d of %d calls failed, first: %v", len(errs), n, errs[0])
	}
	if got := w.count("POST", "/auth/signin"); got != 1 {
		t.Errorf("sign-ins after expiry = %d, want 1", got)
	}
	if got := w.statuses(http.StatusUnauthorized); got != n {
		t.Errorf("401 replies after expiry = %d, want one per instance (%d)", got, n)
	}

	// Warm instances keep going with no sign-in at all.
	w.reset()
	for range 3 {
		if errs := runConcurrently(clients, get); len(errs) > 0 {
			t.Fatalf("warm calls failed: %v", errs[0])
		}
	}
	if got, got401 := w.count("POST", "/auth/signin"), w.statuses(http.StatusUnauthorized); got != 0 || got401 != 0 {
		t.Errorf("warm instances: sign-ins = %d, 401s = %d; want 0 and 0", got, got401)
	}
}

// TestSimSharedPATWithoutStore is the contrast: the same instances without a
// shared store sign in for themselves, and every sign-in ends another
// instance's session, so they keep logging each other out.
func TestSimSharedPATWithoutStore(t *testing.T) {
	const n = 20
	srv := newSim(t)
	id := srv.AddWorkbook("Sales", "Finance")
	ctx := ctxT(t)
	get := func(c *tableau.Client) error { _, err := c.Workbook(ctx, id); return err }
	instances := func(w *wire, opts ...tableau.Option) []*tableau.Client {
		clients := make([]*tableau.Client, n)
		for i := range clients {
			clients[i] = newSimClient(t, srv, append(opts, tableau.WithHTTPClient(w.client()))...)
		}
		return clients
	}

	// All at once: every instance signs in, ending the session of the one
	// before; some are logged out between their sign-in and their call.
	w := newWire()
	runConcurrently(instances(w), get) // some calls may fail; the counts tell the story
	if got := w.count("POST", "/auth/signin"); got < n {
		t.Errorf("sign-ins = %d, want at least one per instance (%d)", got, n)
	}

	// Taking turns, as Lambda invocations do, makes it plain: on its second
	// call every instance finds its session ended by another's sign-in.
	w = newWire()
	clients := instances(w)
	for round := range 2 {
		for i, c := range clients {
			if err := get(c); err != nil {
				t.Fatalf("round %d, instance %d: %v", round, i, err)
			}
		}
	}
	if got, got401 := w.count("POST", "/auth/signin"), w.statuses(http.StatusUnauthorized); got != 2*n || got401 != n {
		t.Errorf("without a store: sign-ins = %d, 401s = %d; want %d and %d", got, got401, 2*n, n)
	}

	// The same turns with a shared store: one sign-in, no 401.
	w = newWire()
	clients = instances(w, tableau.WithSessionStore(tableau.NewMemorySessionStore()))
	for range 2 {
		for _, c := range clients {
			if err := get(c); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got, got401 := w.count("POST", "/auth/signin"), w.statuses(http.StatusUnauthorized); got != 1 || got401 != 0 {
		t.Errorf("with a store: sign-ins = %d, 401s = %d; want 1 and 0", got, got401)
	}
}

// TestSimConnectedAppInstances: connected-app sessions do not end each other,
// so instances need no store.
func TestSimConnectedAppInstances(t *testing.T) {
	srv := newSim(t)
	srv.AddUser("bot@example.com", tableautest.RoleCreator)
	srv.AddConnectedApp("client-1", "secret-id-1", "secret-value-1")
	id := srv.AddWorkbook("Sales", "Finance")
	app := tableau.ConnectedApp{ClientID: "client-1", SecretID: "secret-id-1", SecretValue: "secret-value-1", Username: "bot@example.com"}
	w := newWire()
	clients := make([]*tableau.Client, 10)
	for i := range clients {
		c, err := tableau.NewClient(srv.URL(), tableau.WithSite(simSite), tableau.WithConnectedApp(app),
			tableau.WithRetryPolicy(fastRetries), tableau.WithHTTPClient(w.client()))
		if err != nil {
			t.Fatal(err)
		}
		clients[i] = c
	}
	ctx := ctxT(t)
	for range 2 {
		for _, c := range clients {
			if _, err := c.Workbook(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got, got401 := w.count("POST", "/auth/signin"), w.statuses(http.StatusUnauthorized); got != len(clients) || got401 != 0 {
		t.Errorf("sign-ins = %d, 401s = %d; want %d and 0", got, got401, len(clients))
	}
	res, err := clients[0].RefreshWorkbook(ctx, id)
	if err != nil || res.Job == nil {
		t.Fatalf("refresh with connected app: %+v, %v", res, err)
	}
}

func TestSimBadCredentials(t *testing.T) {
	srv := newSim(t)
	w := newWire()
	c, err := tableau.NewClient(srv.URL(), tableau.WithSite(simSite), tableau.WithPAT(simPAT, "wrong"),
		tableau.WithRetryPolicy(fastRetries), tableau.WithHTTPClient(w.client()))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.FindWorkbook(ctxT(t), "Sales", "")
	if !errors.Is(err, tableau.ErrBadCredentials) || tableau.Retryable(err) {
		t.Fatalf("error = %v, want non-retryable ErrBadCredentials", err)
	}
	if n := w.count("POST", "/auth/signin"); n != 1 {
		t.Errorf("sign-in attempts = %d, want 1", n)
	}
}

func TestSimFaults(t *testing.T) {
	tests := []struct {
		name          string
		fault         tableautest.Fault
		refresh       bool // else GET workbook
		wantErrIs     error
		wantTransport bool
		wantRetry     bool
		wantAttempts  int
		wantJobs      int
	}{
		{name: "GET 503 twice then ok", fault: tableautest.Fault{Method: "GET", Path: "/workbooks/", Status: 503, Times: 2}, wantAttempts: 3},
		{name: "GET 500 once then ok", fault: tableautest.Fault{Method: "GET", Path: "/workbooks/", Status: 500, Times: 1}, wantAttempts: 2},
		// Go's transport may itself repeat a GET whose reused connection closed
		// without a reply, so the attempts this client makes vary: not checked.
		{name: "GET dropped once then ok", fault: tableautest.Fault{Method: "GET", Path: "/workbooks/", Drop: true, Times: 1}},
		{name: "GET 503 for good", fault: tableautest.Fault{Method: "GET", Path: "/workbooks/", Status: 503}, wantErrIs: tableau.ErrServer, wantRetry: true, wantAttempts: 3},
		{name: "refresh 503 then queued", refresh: true, fault: tableautest.Fault{Method: "POST", Path: "/refresh", Status: 503, Times: 1}, wantAttempts: 2, wantJobs: 1},
		{name: "refresh 429 with long Retry-After: give up now", refresh: true, fault: tableautest.Fault{Method: "POST", Path: "/refresh", Status: 429, RetryAfter: time.Minute, Times: 1}, wantErrIs: tableau.ErrRateLimited, wantRetry: true, wantAttempts: 1},
		{name: "refresh 500: not repeated", refresh: true, fault: tableautest.Fault{Method: "POST", Path: "/refresh", Status: 500, Times: 1}, wantErrIs: tableau.ErrServer, wantRetry: true, wantAttempts: 1},
		{name: "refresh 502: not repeated", refresh: true, fault: tableautest.Fault{Method: "POST", Path: "/refresh", Status: 502, Times: 1}, wantErrIs: tableau.ErrServer, wantRetry: true, wantAttempts: 1},
		{name: "refresh dropped: not repeated", refresh: true, fault: tableautest.Fault{Method: "POST", Path: "/refresh", Drop: true, Times: 1}, wantTransport: true, wantRetry: true, wantAttempts: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newSim(t)
			id := srv.AddWorkbook("Sales", "Finance")
			w := newWire()
			c := newSimClient(t, srv, tableau.WithAPIVersion("3.23"), tableau.WithHTTPClient(w.client()))
			ctx := ctxT(t)
			if err := c.SignIn(ctx); err != nil {
				t.Fatal(err)
			}
			srv.Inject(tt.fault)
			var err error
			suffix := "/workbooks/" + id
			if tt.refresh {
				_, err = c.RefreshWorkbook(ctx, id)
				suffix += "/refresh"
			} else {
				_, err = c.Workbook(ctx, id)
			}
			switch {
			case tt.wantErrIs == nil && !tt.wantTransport && err != nil:
				t.Fatalf("error = %v", err)
			case tt.wantErrIs != nil && !errors.Is(err, tt.wantErrIs):
				t.Fatalf("error = %v, want %v", err, tt.wantErrIs)
			case tt.wantTransport:
				var tr *remote.TransportError
				if !errors.As(err, &tr) {
					t.Fatalf("error = %v, want a *remote.TransportError", err)
				}
			}
			if err != nil && tableau.Retryable(err) != tt.wantRetry {
				t.Errorf("Retryable(%v) = %v, want %v", err, tableau.Retryable(err), tt.wantRetry)
			}
			method := "GET"
			if tt.refresh {
				method = "POST"
			}
			if got := w.count(method, suffix); tt.wantAttempts > 0 && got != tt.wantAttempts {
				t.Errorf("attempts = %d, want %d", got, tt.wantAttempts)
			}
			if tt.refresh && srv.RefreshCount(id) != tt.wantJobs {
				t.Errorf("refresh jobs = %d, want %d", srv.RefreshCount(id), tt.wantJobs)
			}
		})
	}
}

// TestSimSessionEndsMidway: a session ended between calls (a second sign-in
// elsewhere, an expiry) is replaced transparently, once.
func TestSimSessionEndsMidway(t *testing.T) {
	srv := newSim(t)
	id := srv.AddWorkbook("Sales", "Finance")
	c := newSimClient(t, srv)
	other := newSimClient(t, srv) // a second instance on the same PAT, no store
	ctx := ctxT(t)
	if _, err := c.Workbook(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := other.SignIn(ctx); err != nil { // ends c's session
		t.Fatal(err)
	}
	if _, err := c.RefreshWorkbook(ctx, id); err != nil {
		t.Fatalf("refresh after the session was ended elsewhere: %v", err)
	}
	if srv.RefreshCount(id) != 1 {
		t.Errorf("refresh jobs = %d, want 1", srv.RefreshCount(id))
	}
	srv.ExpireSessions()
	if _, err := c.FindWorkbook(ctx, "Sales", "Finance"); err != nil {
		t.Fatalf("find after expiry: %v", err)
	}
	if err := c.SignOut(ctx); err != nil {
		t.Fatal(err)
	}
	if got := srv.ActiveSessions(); got != 0 {
		t.Errorf("active sessions after SignOut = %d", got)
	}
}

func TestSimWebhooks(t *testing.T) {
	var (
		mu        sync.Mutex
		delivered []string
	)
	receiver := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		delivered = append(delivered, r.URL.Path)
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
		fmt.Fprint(w, "received")
	}))
	t.Cleanup(receiver.Close)
	srv := newSim(t, tableautest.WithWebhookClient(receiver.Client()))
	c := newSimClient(t, srv)
	ctx := ctxT(t)

	created, err := c.CreateWebhook(ctx, tableau.NewWebhook("refresh-failed", tableau.EventWorkbookRefreshFailed, receiver.URL+"/hooks/failed"))
	if err != nil {
		t.Fatal(err)
	}
	if created.ID == "" || created.EventName() != tableau.EventWorkbookRefreshFailed || created.URL() != receiver.URL+"/hooks/failed" {
		t.Fatalf("created = %+v", created)
	}
	list, err := c.ListWebhooks(ctx)
	if err != nil || len(list) != 1 || list[0].ID != created.ID {
		t.Fatalf("ListWebhooks = %+v, %v", list, err)
	}
	got, err := c.Webhook(ctx, created.ID)
	if err != nil || got.Name != "refresh-failed" || got.IsEnabled == nil || !*got.IsEnabled {
		t.Fatalf("Webhook = %+v, %v", got, err)
	}
	res, err := c.TestWebhook(ctx, created.ID)
	if err != nil || res.Status != 200 || res.Body != "received" {
		t.Fatalf("TestWebhook = %+v, %v", res, err)
	}
	// Update from what was read back, as a caller would.
	off := false
	got.Name, got.IsEnabled, got.Event = "refresh-succeeded", &off, tableau.EventWorkbookRefreshSucceeded
	updated, err := c.UpdateWebhook(ctx, created.ID, got)
	if err != nil {
		t.Fatal(err)
	}
	if updated.Name != "refresh-succeeded" || updated.EventName() != tableau.EventWorkbookRefreshSucceeded || updated.IsEnabled == nil || *updated.IsEnabled {
		t.Errorf("updated = %+v", updated)
	}
	if err := c.DeleteWebhook(ctx, created.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Webhook(ctx, created.ID); !errors.Is(err, tableau.ErrNotFound) {
		t.Errorf("Webhook after delete: error = %v", err)
	}
	if list, err := c.ListWebhooks(ctx); err != nil || len(list) != 0 {
		t.Errorf("ListWebhooks after delete = %+v, %v", list, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(delivered) == 0 || delivered[0] != "/hooks/failed" {
		t.Errorf("deliveries = %v, want the test delivery", delivered)
	}
}

// rotating is a CredentialsProvider whose answer a test changes, as an
// operator changes the secret.
type rotating struct {
	mu    sync.Mutex
	cr    tableau.Credentials
	asked int
}

func (r *rotating) Credentials(context.Context) (tableau.Credentials, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.asked++
	return r.cr, nil
}

func (r *rotating) set(cr tableau.Credentials) {
	r.mu.Lock()
	r.cr = cr
	r.mu.Unlock()
}

// A rotated secret takes effect in the same Client: one sign-in with the new
// credentials, none while they stay the same, whether a PAT or a connected
// app.
func TestSimCredentialsProviderRotation(t *testing.T) {
	srv := newSim(t)
	srv.AddPAT("second-pat", "second-secret")
	srv.AddConnectedApp("app-id", "kid", "app-secret-value")
	id := srv.AddWorkbook("Rotated", "Finance")
	p := &rotating{cr: tableau.Credentials{PATName: simPAT, PATSecret: simSecret}}
	c, err := tableau.NewClient(srv.URL(), tableau.WithSite(simSite), tableau.WithCredentialsProvider(p), tableau.WithRetryPolicy(fastRetries))
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	steps := []struct {
		name        string
		cr          *tableau.Credentials // nil: unchanged
		wantSignIns int                  // in all, after the step's two calls
	}{
		{"first PAT", nil, 1},
		{"the same answer again", nil, 1},
		{"rotated to another PAT", &tableau.Credentials{PATName: "second-pat", PATSecret: "second-secret"}, 2},
		{"rotated to a connected app", &tableau.Credentials{ConnectedApp: &tableau.ConnectedApp{ClientID: "app-id", SecretID: "kid", SecretValue: "app-secret-value", Username: "pat-" + simPAT}}, 3},
		{"the app's answer again, as a new value", &tableau.Credentials{ConnectedApp: &tableau.ConnectedApp{ClientID: "app-id", SecretID: "kid", SecretValue: "app-secret-value", Username: "pat-" + simPAT}}, 3},
	}
	for _, st := range steps {
		if st.cr != nil {
			p.set(*st.cr)
		}
		for range 2 {
			if _, err := c.Workbook(ctx, id); err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
		}
		if n := srv.Count(http.MethodPost, "/auth/signin"); n != st.wantSignIns {
			t.Errorf("%s: %d sign-ins in all, want %d", st.name, n, st.wantSignIns)
		}
	}
	if key := c.SessionKey(); !strings.Contains(key, "connected-app=app-id") {
		t.Errorf("session key %q does not follow the rotated credentials", key)
	}
	p.set(tableau.Credentials{PATName: "no-secret"})
	if _, err := c.Workbook(ctx, id); err == nil || !strings.Contains(err.Error(), "name and secret are both required") {
		t.Errorf("incomplete credentials from the provider: %v", err)
	}
}
