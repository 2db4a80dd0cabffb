// Package tableautest is an in-process imitation of the Tableau Server and
// Tableau Cloud REST API, for tests and for the local demo.
//
// It is written from the public API reference, independently of the client in
// package tableau, so that the client is tested against the documented
// behaviour rather than against its own assumptions. It imitates the parts of
// the API the bridge uses and the traps that catch clients in production:
//
//   - sign-in with a personal access token (PAT) or a connected-app JWT, where a
//     new PAT sign-in ends the PAT's previous session (401002 for its holder);
//   - sessions that expire, and X-Tableau-Auth checks on every site call;
//   - workbook and data source lookup with Tableau's filter syntax, including
//     the rule that "," and "&" separate filter expressions even when
//     percent-encoded, and paging with string-typed pagination numbers;
//   - extract refreshes that answer 409093 while a job for the item is queued or
//     running, and 409090 for items without an extract;
//   - jobs that move from queued to running to finished over time the test
//     controls, with failures and cancellations;
//   - webhooks, delivered to real HTTP receivers with retries and optional
//     duplicates;
//   - XML replies unless the request asks for JSON, and injected faults
//     (429 with Retry-After, 5xx, dropped connections, latency);
//   - Tableau Cloud's limit of concurrent requests that start long-running
//     jobs per site, answered 429 with Retry-After (WithConcurrencyLimit);
//   - data quality warnings on data sources (see dqw.go);
//   - the Metadata API (GraphQL at /api/metadata/graphql) over a lineage model
//     of databases, tables, published and embedded data sources, workbooks
//     and custom SQL, with its node limit, partial results and error codes
//     (see metadata.go and lineage.go);
//   - Query Jobs with Tableau's documented filters, for administrators only,
//     refreshes Tableau queues itself (QueueRefresh) that a later 409093
//     refers to, and incremental refreshes from REST API 3.25 (jobquery.go);
//   - connected-app scopes: a JWT session is refused, with Tableau's 401002,
//     whatever its scp does not cover (scopes.go);
//   - several sites on one server (AddSite), each with its own PATs,
//     connected apps, content, jobs, webhooks and limits, a session working
//     on its own site alone (sites.go); a second Server stands for a second
//     Tableau Server or Cloud pod.
//
// Tableau's JSON renders XML attributes as strings, so numbers such as
// pagination counts, job progress, finishCode and a webhook test's status are
// quoted; clients should accept both forms.
//
// Error codes: 400000, 401000, 401001, 401002, 404001, 404003, 409093, 400065,
// 400113 and 429000 were confirmed in public material (see errors.go); 400006,
// 400007, 403000, 403004, 404006, 404011, 405000, 409000 and 409090 follow the
// best available reading of the REST API reference. Unknown jobs and webhooks
// answer 404003.
//
// Reference: https://help.tableau.com/current/api/rest_api/en-us/REST/rest_api.htm
package tableautest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxBody caps request bodies; the API never needs more than a few kilobytes.
const maxBody = 1 << 20

// Server is a running simulator. All methods are safe for concurrent use.
type Server struct {
	ts     *httptest.Server
	ctx    context.Context // ended by Close; stops deliveries and sleeps
	cancel context.CancelFunc
	wg     sync.WaitGroup // webhook deliveries in flight
	hooks  *http.Client

	mu           sync.Mutex
	closed       bool
	cfg          config
	version      apiVersion
	site         site
	owner        *user // default owner of content; a site administrator
	users        map[string]*user
	usersByName  map[string]*user
	pats         map[string]*pat
	patSessions  map[string]string // PAT name -> its one live token
	apps         map[string]*connectedApp
	usedJTI      map[string]bool
	sessions     map[string]*session
	projects     map[string]*project
	items        map[string]*item
	itemOrder    []*item
	jobs         map[string]*job
	jobOrder     []*job
	failNext     map[string]string
	refreshCount map[string]int
	webhooks     map[string]*webhook
	hookOrder    []*webhook
	deliveries   []Delivery
	faults       []*Fault
	latency      time.Duration
	meta         metaState // the Metadata API's content and settings
	// parent is the server a site added with AddSite belongs to (nil for
	// the server itself); sites are the sites added to this one.
	parent   *Server
	sites    []*Server
	limits   siteLimits
	dqws     map[string]*dqw // data quality warnings by id (dqw.go)
	dqwOrder []*dqw
	// reqMu guards requests alone: a request is recorded as its reply
	// starts, which may be while a handler holds mu.
	reqMu    sync.Mutex
	requests []Request
}

type site struct {
	id         string
	contentURL string
}

type config struct {
	contentURL     string
	apiVersion     string
	productVersion string
	build          string
	sessionTTL     time.Duration
	queued         time.Duration
	running        time.Duration
	allowHTTP      bool
	duplicates     bool
	hookClient     *http.Client
	listenAddr     string
	// concurrency and concurrencyRetry: see WithConcurrencyLimit.
	concurrency      int
	concurrencyRetry time.Duration
}

// Option configures a Server at construction.
type Option func(*config)

// WithSite sets the content URL of the simulated site. The default, "", is the
// default site of Tableau Server.
func WithSite(contentURL string) Option {
	return func(c *config) { c.contentURL = contentURL }
}

// WithAPIVersion sets the REST API version the server reports in serverinfo and
// the highest version it serves; the default is "3.23".
func WithAPIVersion(v string) Option {
	return func(c *config) { c.apiVersion = v }
}

// WithProductVersion sets the product version and build reported by serverinfo.
func WithProductVersion(version, build string) Option {
	return func(c *config) { c.productVersion, c.build = version, build }
}

// WithSessionTTL sets how long a session lasts after sign-in; the default is
// 240 minutes, Tableau Server's default.
func WithSessionTTL(d time.Duration) Option {
	return func(c *config) { c.sessionTTL = d }
}

// WithJobTimings sets how long new refresh jobs stay queued and then running.
// The defaults are 20ms and 50ms. A negative duration keeps a job in that state
// until FinishJob or a cancel ends it.
func WithJobTimings(queued, running time.Duration) Option {
	return func(c *config) { c.queued, c.running = queued, running }
}

// AllowHTTPDestinations lets webhooks point at plain http:// URLs such as an
// httptest receiver. Real Tableau only accepts https with a valid certificate.
func AllowHTTPDestinations() Option {
	return func(c *config) { c.allowHTTP = true }
}

// DuplicateWebhookDeliveries sends every webhook event twice with identical
// payloads, as Tableau sometimes does.
func DuplicateWebhookDeliveries() Option {
	return func(c *config) { c.duplicates = true }
}

// WithWebhookClient sets the HTTP client used to deliver webhooks, for example
// the client of an httptest.NewTLSServer receiver so https destinations work.
func WithWebhookClient(c *http.Client) Option {
	return func(cfg *config) { cfg.hookClient = c }
}

// WithListenAddr makes the server listen on a fixed address such as
// "127.0.0.1:8085" instead of a random port, for the local demo.
func WithListenAddr(addr string) Option {
	return func(c *config) { c.listenAddr = addr }
}

// NewServer starts a simulator on a loopback address. It panics if an option is
// invalid or the address cannot be bound, like httptest.NewServer. Close it when
// done.
func NewServer(opts ...Option) *Server {
	cfg := config{
		apiVersion:     "3.23",
		productVersion: "2024.2.0",
		build:          "20242.24.0711.1636",
		sessionTTL:     240 * time.Minute,
		queued:         20 * time.Millisecond,
		running:        50 * time.Millisecond,
	}
	for _, o := range opts {
		o(&cfg)
	}
	v, err := parseVersion(cfg.apiVersion)
	if err != nil {
		panic(fmt.Sprintf("tableautest: WithAPIVersion(%q): %v", cfg.apiVersion, err))
	}
	if cfg.hookClient == nil {
		cfg.hookClient = &http.Client{Timeout: 10 * time.Second}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := newServer(ctx, cfg, v)
	s.cancel = cancel

	s.ts = httptest.NewUnstartedServer(http.HandlerFunc(s.route))
	if cfg.listenAddr != "" {
		l, err := net.Listen("tcp", cfg.listenAddr)
		if err != nil {
			cancel()
			panic(fmt.Sprintf("tableautest: listen on %s: %v", cfg.listenAddr, err))
		}
		s.ts.Listener.Close()
		s.ts.Listener = l
	}
	s.ts.Start()
	return s
}

// newServer makes the state of one site, not yet served.
func newServer(ctx context.Context, cfg config, v apiVersion) *Server {
	s := &Server{
		ctx:          ctx,
		hooks:        cfg.hookClient,
		cfg:          cfg,
		version:      v,
		site:         site{id: newLUID(), contentURL: cfg.contentURL},
		users:        map[string]*user{},
		usersByName:  map[string]*user{},
		pats:         map[string]*pat{},
		patSessions:  map[string]string{},
		apps:         map[string]*connectedApp{},
		usedJTI:      map[string]bool{},
		sessions:     map[string]*session{},
		projects:     map[string]*project{},
		items:        map[string]*item{},
		jobs:         map[string]*job{},
		failNext:     map[string]string{},
		refreshCount: map[string]int{},
		webhooks:     map[string]*webhook{},
		meta:         newMetaState(),
	}
	s.owner = s.addUserLocked("admin", "SiteAdministratorCreator")
	s.limits.set(cfg.concurrency, cfg.concurrencyRetry)
	return s
}

// URL is the server's base URL, e.g. "http://127.0.0.1:41234"; API paths start
// with /api/{version}/. A site added with AddSite answers on its server's.
func (s *Server) URL() string { return s.served().ts.URL }

// Client returns an HTTP client suited to the server.
func (s *Server) Client() *http.Client { return s.served().ts.Client() }

// served is the Server that listens for s: s itself, or the server a site
// was added to.
func (s *Server) served() *Server {
	if s.parent != nil {
		return s.parent
	}
	return s
}

// SiteID is the LUID of the simulated site, as returned by sign-in.
func (s *Server) SiteID() string { return s.site.id }

// APIVersion is the REST API version the server reports.
func (s *Server) APIVersion() string { return s.cfg.apiVersion }

// Close stops the server, its job timers and webhook deliveries in flight.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	for _, j := range s.jobs {
		if j.timer != nil {
			j.timer.Stop()
		}
	}
	sites := s.sites
	s.mu.Unlock()
	if s.parent == nil {
		// Ends the deliveries and sleeps of every site of the server.
		s.cancel()
	}
	for _, site := range sites {
		site.Close()
	}
	s.wg.Wait()
	if s.parent == nil {
		s.ts.Close()
	}
}

// ServeHTTP handles one API request. It is exported so the simulator can also be
// mounted in another server, but NewServer already serves it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxBody))
	rec := Request{
		Method:   r.Method,
		Path:     r.URL.Path,
		RawQuery: r.URL.RawQuery,
		Header:   r.Header.Clone(),
		Body:     body,
		Time:     time.Now(),
	}
	// A request counts against the site's limit from its arrival, latency
	// included, to its reply.
	leave, throttled, wait := s.limits.enter(r)
	defer leave()
	if throttled != nil {
		rec.Status = http.StatusTooManyRequests
		s.record(rec)
		s.writeThrottled(w, r, throttled, wait)
		return
	}
	s.mu.Lock()
	latency := s.latency
	s.mu.Unlock()
	if !s.sleep(r.Context(), latency) {
		s.record(rec)
		return
	}
	if f := s.takeFault(r); f != nil {
		if !s.sleep(r.Context(), f.Latency) {
			s.record(rec)
			return
		}
		if f.Drop {
			s.record(rec)
			dropConnection(w)
			return
		}
		if f.Status != 0 {
			rec.Status = f.Status
			s.record(rec)
			s.writeFault(w, r, f)
			return
		}
	}
	// The request is recorded as its status is set, before the reply goes
	// out, so a client that has its reply always finds its request counted.
	sw := &statusWriter{ResponseWriter: w, onStatus: func(code int) {
		rec.Status = code
		s.record(rec)
	}}
	c := &call{w: sw, r: r, body: body, json: wantsJSON(r), version: s.cfg.apiVersion}
	if err := s.dispatch(c); err != nil {
		c.fail(err)
	}
	sw.setStatus(http.StatusOK) // a handler that wrote nothing answered 200
}

// sleep waits for d, or reports false if the request or the server ends first.
func (s *Server) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.ctx.Done():
		return false
	}
}

// call carries one request through the handlers.
type call struct {
	w       http.ResponseWriter
	r       *http.Request
	body    []byte
	json    bool
	version string
	sess    *session
}

func (c *call) reply(status int, kids ...*node) error {
	body := render(c.json, c.version, kids...)
	if c.json {
		c.w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	} else {
		c.w.Header().Set("Content-Type", "application/xml;charset=UTF-8")
	}
	c.w.WriteHeader(status)
	_, _ = c.w.Write(body)
	return nil
}

func (c *call) noContent(status int) error {
	c.w.WriteHeader(status)
	return nil
}

func (c *call) fail(err error) {
	e, ok := err.(*apiError)
	if !ok {
		e = newError(http.StatusInternalServerError, defaultCode(http.StatusInternalServerError), err.Error())
	}
	_ = c.reply(e.status, errorNode(e))
}

// decode reads the request body; a body that cannot be parsed is a 400.
func (c *call) decode() (map[string]any, error) {
	m, err := decodeBody(c.body, c.r.Header.Get("Content-Type"))
	if err != nil {
		return nil, errBadRequest(err.Error())
	}
	return m, nil
}

type statusWriter struct {
	http.ResponseWriter
	status   int
	onStatus func(int)
}

func (w *statusWriter) setStatus(code int) {
	if w.status == 0 {
		w.status = code
		w.onStatus(code)
	}
}

func (w *statusWriter) WriteHeader(code int) {
	w.setStatus(code)
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.setStatus(http.StatusOK)
	return w.ResponseWriter.Write(b)
}

// route is one endpoint. Literal segments match case-insensitively, as on the
// real server ("serverInfo" and "serverinfo" both work); "*" captures a LUID.
type route struct {
	method string
	path   string
	min    string // lowest API version serving the endpoint
	site   bool   // under sites/{site-luid}/: needs a session for that site
	handle func(s *Server, c *call, params []string) error
}

var routes = []route{
	{"GET", "serverinfo", "2.4", false, (*Server).serverInfo},
	{"POST", "auth/signin", "2.0", false, (*Server).signIn},
	{"POST", "auth/signout", "2.0", false, (*Server).signOut},
	{"GET", "sites/*/workbooks", "2.0", true, (*Server).listWorkbooks},
	{"GET", "sites/*/workbooks/*", "2.0", true, (*Server).getWorkbook},
	{"POST", "sites/*/workbooks/*/refresh", "2.8", true, (*Server).refreshWorkbook},
	{"GET", "sites/*/datasources", "2.0", true, (*Server).listDatasources},
	{"GET", "sites/*/datasources/*", "2.0", true, (*Server).getDatasource},
	{"POST", "sites/*/datasources/*/refresh", "2.8", true, (*Server).refreshDatasource},
	{"GET", "sites/*/jobs", "2.6", true, (*Server).listJobs},
	{"GET", "sites/*/jobs/*", "2.0", true, (*Server).getJob},
	{"PUT", "sites/*/jobs/*", "3.1", true, (*Server).cancelJob},
	{"GET", "sites/*/webhooks", "3.6", true, (*Server).listWebhooks},
	{"POST", "sites/*/webhooks", "3.6", true, (*Server).createWebhook},
	{"GET", "sites/*/webhooks/*", "3.6", true, (*Server).getWebhook},
	{"PUT", "sites/*/webhooks/*", "3.8", true, (*Server).updateWebhook},
	{"DELETE", "sites/*/webhooks/*", "3.6", true, (*Server).deleteWebhook},
	{"GET", "sites/*/webhooks/*/test", "3.6", true, (*Server).testWebhook},
	{"POST", "sites/*/dataQualityWarnings/*/*", "3.5", true, (*Server).addDQW},
	{"GET", "sites/*/dataQualityWarnings/*/*", "3.5", true, (*Server).listDQWs},
	{"DELETE", "sites/*/dataQualityWarnings/*/*", "3.5", true, (*Server).deleteContentDQWs},
	{"GET", "sites/*/dataQualityWarnings/*", "3.5", true, (*Server).getDQW},
	{"PUT", "sites/*/dataQualityWarnings/*", "3.5", true, (*Server).updateDQW},
	{"DELETE", "sites/*/dataQualityWarnings/*", "3.5", true, (*Server).deleteDQW},
}

func (s *Server) dispatch(c *call) error {
	if strings.EqualFold(strings.TrimRight(c.r.URL.Path, "/"), metadataPath) {
		return s.serveMetadata(c)
	}
	rest, ok := strings.CutPrefix(c.r.URL.Path, "/api/")
	if !ok {
		return errUnknownResource(fmt.Sprintf("Unknown resource '%s' specified in URI.", c.r.URL.Path))
	}
	vs, tail, _ := strings.Cut(rest, "/")
	v, err := parseVersion(vs)
	if err != nil {
		return errUnknownResource(fmt.Sprintf("Unknown resource '%s' specified in URI.", c.r.URL.Path))
	}
	c.version = vs
	if s.version.less(v) {
		return newError(http.StatusNotFound, codeVersionUnavailable,
			fmt.Sprintf("API version %s is not available; this server supports up to %s.", vs, s.cfg.apiVersion))
	}
	segs := strings.Split(strings.Trim(tail, "/"), "/")
	rt, params, wrongMethod := matchRoute(c.r.Method, segs)
	if rt == nil {
		if wrongMethod {
			return newError(http.StatusMethodNotAllowed, codeMethodNotAllowed,
				fmt.Sprintf("Method %s is not allowed for '%s'.", c.r.Method, c.r.URL.Path))
		}
		return errUnknownResource(fmt.Sprintf("Unknown resource '%s' specified in URI.", c.r.URL.Path))
	}
	if min, _ := parseVersion(rt.min); v.less(min) {
		return newError(http.StatusNotFound, codeVersionUnavailable,
			fmt.Sprintf("This endpoint needs API version %s or later.", rt.min))
	}
	if rt.site {
		sess, err := s.authenticate(c.r)
		if err != nil {
			return err
		}
		if params[0] != sess.siteID {
			return newError(http.StatusForbidden, codeWrongSite,
				fmt.Sprintf("The session is not signed in to site '%s'.", params[0]))
		}
		c.sess = sess
		params = params[1:]
		if err := s.checkScope(c, rt); err != nil {
			return err
		}
	}
	return rt.handle(s, c, params)
}

func matchRoute(method string, segs []string) (rt *route, params []string, wrongMethod bool) {
	for i := range routes {
		pattern := strings.Split(routes[i].path, "/")
		if len(pattern) != len(segs) {
			continue
		}
		var ps []string
		matched := true
		for j, p := range pattern {
			switch {
			case p == "*" && segs[j] != "":
				ps = append(ps, segs[j])
			case strings.EqualFold(p, segs[j]):
			default:
				matched = false
			}
			if !matched {
				break
			}
		}
		if !matched {
			continue
		}
		if routes[i].method != method {
			wrongMethod = true
			continue
		}
		return &routes[i], ps, false
	}
	return nil, nil, wrongMethod
}

// apiVersion is a "major.minor" REST API version, compared numerically so that
// 3.10 is above 3.9.
type apiVersion struct{ major, minor int }

func parseVersion(s string) (apiVersion, error) {
	maj, min, ok := strings.Cut(s, ".")
	if !ok {
		return apiVersion{}, fmt.Errorf("%q is not an API version", s)
	}
	a, err1 := strconv.Atoi(maj)
	b, err2 := strconv.Atoi(min)
	if err1 != nil || err2 != nil || a < 0 || b < 0 {
		return apiVersion{}, fmt.Errorf("%q is not an API version", s)
	}
	return apiVersion{a, b}, nil
}

func (v apiVersion) less(o apiVersion) bool {
	return v.major < o.major || (v.major == o.major && v.minor < o.minor)
}

func (s *Server) serverInfo(c *call, _ []string) error {
	pv := textEl("productVersion", s.cfg.productVersion)
	pv.attrs = []attr{{"build", s.cfg.build}}
	return c.reply(http.StatusOK, el("serverInfo").add(pv, textEl("restApiVersion", s.cfg.apiVersion)))
}

// Request is one request the server received, recorded for assertions.
type Request struct {
	Method   string
	Path     string
	RawQuery string
	Header   http.Header
	Body     []byte
	// Status is the reply status, or 0 when the connection was dropped.
	Status int
	Time   time.Time
}

func (s *Server) record(r Request) {
	s.reqMu.Lock()
	s.requests = append(s.requests, r)
	s.reqMu.Unlock()
}

// Requests returns a copy of every request received since the start or the last
// ResetRequests, in the order their replies started.
func (s *Server) Requests() []Request {
	s.reqMu.Lock()
	defer s.reqMu.Unlock()
	out := make([]Request, len(s.requests))
	for i, r := range s.requests {
		r.Header = r.Header.Clone()
		r.Body = bytes.Clone(r.Body)
		out[i] = r
	}
	return out
}

// Count reports how many recorded requests used method ("" for any) on a path
// ending in pathSuffix, e.g. Count("POST", "/refresh").
func (s *Server) Count(method, pathSuffix string) int {
	s.reqMu.Lock()
	defer s.reqMu.Unlock()
	n := 0
	for _, r := range s.requests {
		if (method == "" || strings.EqualFold(method, r.Method)) && strings.HasSuffix(r.Path, pathSuffix) {
			n++
		}
	}
	return n
}

// ResetRequests forgets the recorded requests.
func (s *Server) ResetRequests() {
	s.reqMu.Lock()
	s.requests = nil
	s.reqMu.Unlock()
}

// newLUID makes a random version-4 UUID, the form of every Tableau LUID.
func newLUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("tableautest: crypto/rand failed: " + err.Error())
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// stamp formats times the way Tableau does: UTC, whole seconds.
func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05Z")
}
