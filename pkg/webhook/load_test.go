package webhook_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dbtcloud"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dynamo"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/localrun"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/motoserver"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refresh"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refreshmap"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau/tableautest"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/webhook"
)

// The load tests push many signed dbt deliveries through the whole stack —
// a real HTTP server in front of the Lambda handler, the real SDK against
// moto_server, the Tableau client against the simulator — and then check the
// one property that matters: every (run, target) was refreshed exactly once.
// Latencies are logged, never asserted.

// TestLoadDuplicatedDeliveries: every run of five dbt jobs is delivered
// twice, in random order, 32 deliveries in flight.
func TestLoadDuplicatedDeliveries(t *testing.T) {
	spec := loadSpec{name: "load-duplicates", runs: 500, copies: 2, inFlight: 32}
	if testing.Short() {
		spec.runs, spec.inFlight = 100, 16
	}
	runLoad(t, spec)
}

// TestLoadWithTableauFaults: the same, with a proxy in front of Tableau that
// turns away about 30% of calls (503, 429 with Retry-After, or a connection
// closed without a reply) before Tableau sees them; the sender retries like
// dbt Cloud.
func TestLoadWithTableauFaults(t *testing.T) {
	spec := loadSpec{name: "load-faults", runs: 500, copies: 2, inFlight: 32, faultRate: 0.3}
	if testing.Short() {
		spec.runs, spec.inFlight = 100, 16
	}
	runLoad(t, spec)
}

// TestLoadWithDynamoDBFaults: the same, with a proxy in front of the
// state table (motoserver.FaultProxy) that fails about 20% of DynamoDB
// calls: throttled (ThrottlingException, ProvisionedThroughputExceeded-
// Exception), 500 InternalServerError before or after applying the call,
// or applied with its reply withheld until the attempt times out. The last
// two are the hard case: the SDK retries a write that was applied, and the
// retry fails its own condition.
func TestLoadWithDynamoDBFaults(t *testing.T) {
	spec := loadSpec{name: "load-dynamodb-faults", runs: 500, copies: 2, inFlight: 32, dynamoFaultRate: 0.2}
	if testing.Short() {
		spec.runs, spec.inFlight = 100, 16
	}
	runLoad(t, spec)
}

type loadSpec struct {
	name            string  // report name
	runs            int     // distinct successful dbt runs
	copies          int     // deliveries of each run
	inFlight        int     // concurrent deliveries
	faultRate       float64 // share of Tableau calls turned away; 0 for no proxy
	dynamoFaultRate float64 // share of DynamoDB calls failed; 0 for no proxy
}

// loadJobs are the dbt jobs of the load tests, each mapped to 1-3 targets:
// workbooks and data sources, by name (with or without a project) and by
// LUID. Some items are reached by two jobs, once by name and once by LUID,
// which are distinct targets with their own idempotency records.
var loadJobs = []string{"101", "102", "103", "104", "105"}

// loadItems are added to the world's site after it is built; the map names
// them, so they are resolved when first refreshed.
var loadItems = []struct{ kind, name, project string }{
	{"workbook", "Inventory", "Ops"},
	{"datasource", "Shipments", "Ops"},
	{"workbook", "Marketing", "Growth"},
	{"datasource", "Leads", "Growth"},
}

// loadMap is the REFRESH_MAP; luid holds the LUIDs of the world's own items.
func loadMap(luid map[string]string) string {
	return `{"jobs":{` +
		`"101":[{"workbook":"Sales Overview","project":"Finance"},{"datasource_id":"` + luid["Customers"] + `"}],` +
		`"102":[{"datasource":"Orders"},{"workbook_id":"` + luid["Sales Overview/Sandbox"] + `"},{"workbook":"Inventory"}],` +
		`"103":[{"datasource":"Shipments","project":"Ops"}],` +
		`"104":[{"workbook":"Marketing"},{"datasource":"Leads","project":"Growth"},{"workbook_id":"` + luid["Sales Overview"] + `"}],` +
		`"105":[{"datasource_id":"` + luid["Orders"] + `"},{"datasource":"Customers","project":"Finance"}]}}`
}

// loadOption builds the REFRESH_MAP from the LUIDs an administrator would
// copy out of Tableau, here asked of the simulator through its REST API, and
// keeps them in luid. With faults, it points the deployment at a
// fault-injecting proxy in front of the simulator.
func loadOption(t *testing.T, faults *loadFaultProxy, luid map[string]string) option {
	return func(env map[string]string) {
		// Retry like a deployment does: with 30% of Tableau calls failing,
		// the test's fast two-attempt policy would make some delivery fail
		// six times running now and then.
		env[productionRetries] = "yes"
		// The one process stands for as many Lambda instances as there are
		// deliveries in flight, each with its own places on the site.
		env["TABLEAU_CONCURRENCY"] = "100"
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := tableau.NewClient(env["TABLEAU_SERVER_URL"], tableau.WithSite(env["TABLEAU_SITE"]), tableau.WithPAT(patName, patSecret))
		if err != nil {
			t.Fatal(err)
		}
		for _, wb := range []struct{ key, project string }{{"Sales Overview", "Finance"}, {"Sales Overview/Sandbox", "Sandbox"}} {
			found, err := c.FindWorkbook(ctx, "Sales Overview", wb.project)
			if err != nil {
				t.Fatalf("look up %s: %v", wb.key, err)
			}
			luid[wb.key] = found.ID
		}
		for _, name := range []string{"Orders", "Customers"} {
			found, err := c.FindDatasource(ctx, name, "")
			if err != nil {
				t.Fatalf("look up %s: %v", name, err)
			}
			luid[name] = found.ID
		}
		_ = c.SignOut(ctx)
		env["REFRESH_MAP"] = loadMap(luid)
		if faults != nil {
			faults.start(t, env["TABLEAU_SERVER_URL"])
			env["TABLEAU_SERVER_URL"] = faults.url()
		}
	}
}

// loadSeed is the seed of a test's randomness, from LOAD_SEED when set so
// that a failing order can be replayed.
func loadSeed(t *testing.T) uint64 {
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("LOAD_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("LOAD_SEED=%q: %v", v, err)
		}
		seed = s
	}
	t.Logf("seed %d (LOAD_SEED=%d repeats the delivery order and the sequence of faults; which calls get them still depends on timing)", seed, seed)
	return seed
}

func runLoad(t *testing.T, spec loadSpec) {
	seed := loadSeed(t)
	var proxy *loadFaultProxy
	if spec.faultRate > 0 {
		proxy = &loadFaultProxy{rate: spec.faultRate, rng: rand.New(rand.NewPCG(seed, 0x5eed))}
	}
	var dynamoFaults *motoserver.FaultProxy
	if spec.dynamoFaultRate > 0 {
		dynamoFaults = moto.StartFaults(motoserver.RandomFaults(spec.dynamoFaultRate, seed))
		t.Cleanup(dynamoFaults.Close)
		// Read when the world's AWS configuration is built: the function's
		// DynamoDB client goes through the proxy, Secrets Manager does not.
		t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamoFaults.URL)
	}
	luid := map[string]string{}
	w := newWorld(t, loadOption(t, proxy, luid))
	// Short jobs: most refreshes find no job of their item still queued and
	// are accepted; the rest are answered 409093, which settles them too.
	w.tab.SetJobTimings(time.Millisecond, 2*time.Millisecond)
	for _, it := range loadItems {
		if it.kind == "workbook" {
			w.ids[it.name] = w.tab.AddWorkbook(it.name, it.project)
		} else {
			w.ids[it.name] = w.tab.AddDatasource(it.name, it.project)
		}
	}
	w.ids["Sales Overview/Sandbox"] = luid["Sales Overview/Sandbox"]

	cfgMap := w.app.Config.Map
	router := webhook.NewRouter(map[string]webhook.HTTPHandler{webhook.DBTRoute: w.handler.Handle}, nil)
	srv := httptest.NewServer(&localrun.Server{Handler: router.Handle, Routes: router.Routes()})
	t.Cleanup(srv.Close)

	// Every run of every job, each delivered spec.copies times, shuffled.
	rng := rand.New(rand.NewPCG(seed, 0xde11))
	type run struct{ id, job string }
	runs := make([]run, spec.runs)
	var deliveries []run
	for i := range runs {
		runs[i] = run{id: strconv.Itoa(700001 + i), job: loadJobs[i%len(loadJobs)]}
		for range spec.copies {
			deliveries = append(deliveries, runs[i])
		}
	}
	rng.Shuffle(len(deliveries), func(i, j int) { deliveries[i], deliveries[j] = deliveries[j], deliveries[i] })

	d := &loadDriver{url: srv.URL + "/dbt/webhook", rng: rand.New(rand.NewPCG(seed, 0xd21e))}
	start := time.Now()
	d.run(spec.inFlight, len(deliveries), func(i int) []byte {
		return payload(deliveries[i].id, deliveries[i].job, "Success", 10, time.Now())
	})
	elapsed := time.Since(start)

	// Report before asserting, so a failing run still shows its figures.
	st := d.stats()
	throughput := float64(len(deliveries)) / elapsed.Seconds()
	t.Logf("LOAD: %s: %d deliveries of %d runs in %s, %d in flight: throughput=%.1f/s; latency of the HTTP attempts p50=%s p99=%s max=%s; %d attempts, final statuses %v, %d gave up",
		spec.name, len(deliveries), spec.runs, elapsed.Round(time.Millisecond), spec.inFlight, throughput,
		st.p50.Round(10*time.Microsecond), st.p99.Round(10*time.Microsecond), st.max.Round(time.Millisecond), st.attempts, st.final, st.gaveUp)
	if proxy != nil {
		t.Logf("LOAD: %s: fault proxy: %s", spec.name, proxy.summary())
	}
	if dynamoFaults != nil {
		t.Logf("LOAD: %s: DynamoDB fault proxy: %s", spec.name, dynamoFaults.Summary())
	}
	loadReport(t, fmt.Sprintf("%s deliveries=%d throughput=%.1f/s p50=%.1fms p99=%.1fms attempts=%d",
		spec.name, len(deliveries), throughput, loadMS(st.p50), loadMS(st.p99), st.attempts))

	// Every delivery ended in a 200 once dbt's retries were done, and none
	// was refused.
	for code, n := range st.final {
		if code != http.StatusOK {
			t.Errorf("%d deliveries ended with status %d", n, code)
		}
	}
	if st.gaveUp > 0 {
		t.Errorf("%d deliveries still failed after 5 retries", st.gaveUp)
		loadLogExcerpt(t, w.logs.String(), "claim failed", "in progress", "refresh failed", "webhook incomplete")
	}

	// Every (run, target) has a COMPLETED record; refreshed ones name the
	// Tableau job they queued.
	type pair struct {
		run    string
		target refreshmap.Target
	}
	var pairs []pair
	for _, r := range runs {
		for _, tg := range cfgMap.Targets(r.job) {
			pairs = append(pairs, pair{r.id, tg})
		}
	}
	// Read straight from the emulator, past any fault proxy.
	table, err := dynamo.New(db, w.app.Config.StateTable)
	if err != nil {
		t.Fatal(err)
	}
	records := make([]*state.Record, len(pairs))
	errs := make([]error, len(pairs))
	loadParallel(16, len(pairs), func(i int) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		records[i], errs[i] = table.Get(ctx, state.Key{RunID: pairs[i].run, Target: pairs[i].target.Key()})
	})
	jobOwner := map[string]pair{}
	var refreshed, alreadyQueued, bad int
	wantPerItem := map[string]int{}
	for i, p := range pairs {
		item := w.loadItemLUID(t, p.target)
		wantPerItem[item]++
		rec, err := records[i], errs[i]
		switch {
		case err != nil:
			t.Errorf("run %s %s: %v", p.run, p.target, err)
			bad++
			continue
		case rec == nil || rec.Status != state.StatusCompleted:
			if bad++; bad <= 10 {
				t.Errorf("run %s %s: %s, want COMPLETED", p.run, p.target, loadDescribeRecord(rec))
			}
			continue
		}
		switch rec.Outcome {
		case state.OutcomeRefreshed:
			refreshed++
			if prev, dup := jobOwner[rec.JobID]; dup {
				t.Errorf("Tableau job %s is recorded for run %s %s and for run %s %s", rec.JobID, prev.run, prev.target, p.run, p.target)
			}
			jobOwner[rec.JobID] = p
			if job, ok := w.tab.Job(rec.JobID); !ok || job.ItemID != item {
				t.Errorf("run %s %s: recorded Tableau job %s is %+v (found %v), want a job of item %s", p.run, p.target, rec.JobID, job, ok, item)
			}
		case state.OutcomeAlreadyQueued:
			alreadyQueued++
		default:
			t.Errorf("run %s %s: outcome %q", p.run, p.target, rec.Outcome)
		}
	}
	if bad > 10 {
		t.Errorf("... %d (run, target) pairs in all are not COMPLETED", bad)
	}
	if bad > 0 {
		loadLogExcerpt(t, w.logs.String(), "could not record", "claim failed", "state store", "release failed")
	}

	// Tableau saw exactly one refresh POST it acted on (202) or refused as
	// already queued (409093) per (run, target): none lost, none twice.
	posts := loadRefreshPosts(w.tab.Requests())
	t.Logf("LOAD: %s: %d (run, target) pairs over %d items: %d refreshed, %d already queued; Tableau refresh POSTs by status %v",
		spec.name, len(pairs), len(wantPerItem), refreshed, alreadyQueued, posts.byStatus)
	if got := posts.acted(); got != len(pairs) {
		t.Errorf("Tableau accepted or answered 409093 to %d refresh POSTs, want runs × targets = %d", got, len(pairs))
	}
	if posts.byStatus[http.StatusAccepted] != refreshed || posts.byStatus[http.StatusConflict] != alreadyQueued {
		t.Errorf("Tableau answered %d × 202 and %d × 409, but %d records say refreshed and %d already queued",
			posts.byStatus[http.StatusAccepted], posts.byStatus[http.StatusConflict], refreshed, alreadyQueued)
	}
	for code, n := range posts.byStatus {
		if code != http.StatusAccepted && code != http.StatusConflict {
			t.Errorf("Tableau answered %d refresh POSTs with %d", n, code)
		}
	}
	names := map[string]string{}
	for name, id := range w.ids {
		names[id] = name
	}
	for item, want := range wantPerItem {
		if got := posts.perItem[item]; got != want {
			t.Errorf("%s (%s): %d refresh POSTs accepted or 409093, want %d", names[item], item, got, want)
		}
		if got, acc := w.tab.RefreshCount(item), posts.acceptedPerItem[item]; got != acc {
			t.Errorf("%s (%s): simulator counts %d refresh jobs, its requests show %d accepted", names[item], item, got, acc)
		}
	}
}

// loadItemLUID is the Tableau item a target names.
func (w *world) loadItemLUID(t *testing.T, tg refreshmap.Target) string {
	if tg.ID != "" {
		return tg.ID
	}
	key := tg.Name
	if tg.Project == "Sandbox" {
		key += "/Sandbox"
	}
	id, ok := w.ids[key]
	if !ok {
		t.Fatalf("no LUID known for %s", tg)
	}
	return id
}

// loadPosts counts the refresh POSTs Tableau answered.
type loadPosts struct {
	byStatus        map[int]int
	perItem         map[string]int // 202 or 409 (409093: every item here has an extract)
	acceptedPerItem map[string]int
}

func (p loadPosts) acted() int {
	return p.byStatus[http.StatusAccepted] + p.byStatus[http.StatusConflict]
}

func loadRefreshPosts(reqs []tableautest.Request) loadPosts {
	p := loadPosts{byStatus: map[int]int{}, perItem: map[string]int{}, acceptedPerItem: map[string]int{}}
	for _, r := range reqs {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.Path, "/refresh") {
			continue
		}
		p.byStatus[r.Status]++
		segs := strings.Split(strings.TrimSuffix(r.Path, "/refresh"), "/")
		item := segs[len(segs)-1]
		switch r.Status {
		case http.StatusAccepted:
			p.acceptedPerItem[item]++
			p.perItem[item]++
		case http.StatusConflict:
			p.perItem[item]++
		}
	}
	return p
}

// loadDriver posts deliveries the way dbt Cloud does: a reply other than
// 2xx, a transport error or no reply within 10 seconds is retried, up to 5
// times, after a pause (0.5 s doubling to 8 s: about 15 s in all, compressed
// from dbt's own schedule but longer than the 8 s a delivery may hold its
// claims, so that a copy that met a claim in progress retries after it
// settled, as it would against dbt).
type loadDriver struct {
	url string
	rng *rand.Rand

	mu        sync.Mutex
	latencies []time.Duration
	final     map[int]int
	attempts  int
	gaveUp    int
}

const loadRetries = 5

func (d *loadDriver) run(inFlight, n int, body func(i int) []byte) {
	d.final = map[int]int{}
	client := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConns: inFlight, MaxIdleConnsPerHost: inFlight},
	}
	defer client.CloseIdleConnections()
	loadParallel(inFlight, n, func(i int) {
		b := body(i)
		sig := dbtcloud.SignatureHeader(b, webhookSecret)
		status := 0
		for attempt := 0; attempt <= loadRetries; attempt++ {
			if attempt > 0 {
				d.mu.Lock()
				pause := time.Duration(500<<(attempt-1))*time.Millisecond + time.Duration(d.rng.IntN(50))*time.Millisecond
				d.mu.Unlock()
				time.Sleep(pause)
			}
			var took time.Duration
			status, took = loadPost(client, d.url, sig, b)
			d.mu.Lock()
			d.attempts++
			d.latencies = append(d.latencies, took)
			d.mu.Unlock()
			if status >= 200 && status < 300 {
				break
			}
		}
		d.mu.Lock()
		d.final[status]++
		if status < 200 || status >= 300 {
			d.gaveUp++
		}
		d.mu.Unlock()
	})
}

// loadPost makes one delivery attempt; status 0 is a transport error.
func loadPost(client *http.Client, endpoint, sig string, body []byte) (int, time.Duration) {
	req, err := http.NewRequest(http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		panic(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", sig)
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, time.Since(start)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, time.Since(start)
}

type loadStats struct {
	p50, p99, max    time.Duration
	attempts, gaveUp int
	final            map[int]int
}

func (d *loadDriver) stats() loadStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	l := slices.Clone(d.latencies)
	slices.Sort(l)
	st := loadStats{attempts: d.attempts, gaveUp: d.gaveUp, final: d.final}
	if len(l) > 0 {
		st.p50, st.p99, st.max = loadPercentile(l, 0.50), loadPercentile(l, 0.99), l[len(l)-1]
	}
	return st
}

// loadPercentile is the percentile of sorted durations, nearest rank.
func loadPercentile(sorted []time.Duration, q float64) time.Duration {
	i := int(float64(len(sorted))*q+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func loadMS(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// loadReport appends line to the file LOAD_REPORT names, if any.
func loadReport(t *testing.T, line string) {
	path := os.Getenv("LOAD_REPORT")
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Errorf("LOAD_REPORT: %v", err)
		return
	}
	defer f.Close()
	if _, err := fmt.Fprintln(f, line); err != nil {
		t.Errorf("LOAD_REPORT: %v", err)
	}
}

// loadParallel calls f(0) … f(n-1) on at most workers goroutines.
func loadParallel(workers, n int, f func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				f(i)
			}
		}()
	}
	wg.Wait()
}

// loadFaultProxy stands in front of Tableau and turns away a share of the
// calls, chosen by a seeded generator: a 503, a 429 with Retry-After, or a
// connection closed without a reply. It decides before forwarding anything,
// so a call it turns away never reached Tableau — the case a client may
// safely retry; everything else is passed through untouched.
type loadFaultProxy struct {
	rate float64
	rng  *rand.Rand

	srv *httptest.Server
	rp  *httputil.ReverseProxy

	mu     sync.Mutex
	counts map[string]int
}

func (p *loadFaultProxy) start(t *testing.T, target string) {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p.counts = map[string]int{}
	p.rp = httputil.NewSingleHostReverseProxy(u)
	p.rp.ErrorLog = nil
	p.srv = httptest.NewServer(p)
	t.Cleanup(p.srv.Close)
}

func (p *loadFaultProxy) url() string { return p.srv.URL }

func (p *loadFaultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	fault := ""
	if p.rng.Float64() < p.rate {
		fault = []string{"503", "429", "drop"}[p.rng.IntN(3)]
	}
	if fault == "" {
		p.counts["forwarded"]++
	} else {
		p.counts[fault]++
	}
	p.mu.Unlock()
	switch fault {
	case "503":
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, `{"error":{"summary":"Service Unavailable","detail":"Injected by the test proxy","code":"503000"}}`)
	case "429":
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = io.WriteString(w, `{"error":{"summary":"Too Many Requests","detail":"Injected by the test proxy","code":"429000"}}`)
	case "drop":
		hj, ok := w.(http.Hijacker)
		if !ok {
			panic(http.ErrAbortHandler)
		}
		conn, _, err := hj.Hijack()
		if err != nil {
			panic(http.ErrAbortHandler)
		}
		_ = conn.Close()
	default:
		p.rp.ServeHTTP(w, r)
	}
}

func (p *loadFaultProxy) summary() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	keys := make([]string, 0, len(p.counts))
	total := 0
	for k, n := range p.counts {
		keys = append(keys, k)
		total += n
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, p.counts[k]))
	}
	faulted := total - p.counts["forwarded"]
	return fmt.Sprintf("%d calls, %d turned away (%.1f%%): %s", total, faulted, 100*float64(faulted)/float64(max(total, 1)), strings.Join(parts, " "))
}

func loadDescribeRecord(r *state.Record) string {
	if r == nil {
		return "no record"
	}
	return fmt.Sprintf("record %s owner %s outcome %q job %q in progress until %s", r.Status, r.Owner, r.Outcome, r.JobID, r.InProgressUntil.Format(time.RFC3339Nano))
}

// loadLogExcerpt logs the first log lines holding any of the phrases.
func loadLogExcerpt(t *testing.T, logs string, phrases ...string) {
	n := 0
	for _, line := range strings.Split(logs, "\n") {
		for _, p := range phrases {
			if strings.Contains(line, p) {
				if n++; n <= 20 {
					t.Logf("log: %s", line)
				}
				break
			}
		}
	}
	t.Logf("%d log lines mention %q", n, phrases)
}

// TestSlowCompletionIsNotRepeated guards against a bug the load tests found
// against moto_server: the refresher gave the write that marks a claim
// COMPLETED a fixed two seconds (refresh.go, after Tableau accepted
// the refresh), and when that write is slower — DynamoDB throttled, a
// transaction conflict, or moto_server, whose TransactWriteItems copies the
// whole table and so slows down as the table grows — the record stays
// INPROGRESS: redeliveries are answered in_progress (503) until the claim
// lapses at the first invocation's deadline, and the next one queues the
// refresh a second time. It once did; this keeps it fixed.
func TestSlowCompletionIsNotRepeated(t *testing.T) {
	tab := tableautest.NewServer(tableautest.WithJobTimings(time.Millisecond, time.Millisecond))
	t.Cleanup(tab.Close)
	tab.AddPAT(patName, patSecret)
	orders := tab.AddDatasource("Orders", "Finance")
	tc, err := tableau.NewClient(tab.URL(), tableau.WithPAT(patName, patSecret))
	if err != nil {
		t.Fatal(err)
	}
	store := &loadSlowCompletions{Memory: state.NewMemory(), delay: 2500 * time.Millisecond}
	r := refresh.New(store, tc, refresh.WithJobs(store))
	run := refresh.Run{RunID: "9901", DBTJobID: "123"}
	targets := refresh.MapTargets([]refreshmap.Target{{Kind: refreshmap.Datasource, ID: orders}}, "123")
	ctx := context.Background()

	hold := time.Now().Add(3 * time.Second) // the first invocation's deadline
	first := r.Refresh(ctx, run, targets, hold)
	again := r.Refresh(ctx, run, targets, time.Now().Add(3*time.Second))
	time.Sleep(time.Until(hold) + 10*time.Millisecond)
	later := r.Refresh(ctx, run, targets, time.Now().Add(3*time.Second))
	t.Logf("first delivery: %s; redelivery at once: %s; redelivery after the claim lapsed: %s", first[0].Result, again[0].Result, later[0].Result)
	if n := tab.RefreshCount(orders); n != 1 {
		t.Errorf("Tableau queued %d refreshes for one (run, target), want 1", n)
	}
}

// loadSlowCompletions is a state store whose completion writes take delay, as a
// throttled DynamoDB table's might.
type loadSlowCompletions struct {
	*state.Memory
	delay time.Duration
}

func (s *loadSlowCompletions) wait(ctx context.Context) error {
	select {
	case <-time.After(s.delay):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *loadSlowCompletions) Complete(ctx context.Context, k state.Key, owner string, outcome state.Outcome, jobID string) error {
	if err := s.wait(ctx); err != nil {
		return err
	}
	return s.Memory.Complete(ctx, k, owner, outcome, jobID)
}

func (s *loadSlowCompletions) CompleteJob(ctx context.Context, owner string, j state.TableauJob) error {
	if err := s.wait(ctx); err != nil {
		return err
	}
	return s.Memory.CompleteJob(ctx, owner, j)
}
