package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/demo"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/runtimeapi"
)

// The cold-start measurements run the bootstrap SAM deploys, as a separate
// process, under the Runtime API emulator: aws-lambda-go's real runtime loop,
// our real main and app.Start, the real SDK clients.

// deploymentEnv is the environment of a deployed webhook function
// (template.yaml), with dummy values: init builds the Secrets Manager and
// DynamoDB clients exactly as in AWS, and must not touch the network doing
// so. home is an empty directory, so no developer's ~/.aws files are read.
func deploymentEnv(home string) []string {
	return []string{
		"TABLEAU_SERVER_URL=https://tableau.example.com",
		"SECRET_ID=arn-or-name",
		"STATE_TABLE=t",
		`REFRESH_MAP={"jobs":{"1":[{"workbook":"W"}]}}`,
		"TABLEAU_SITE=analytics",
		"TABLEAU_API_VERSION=",
		"WEBHOOK_MAX_EVENT_AGE=24h",
		"IDEMPOTENCY_RETENTION=72h",
		"NOTIFY_TOPIC_ARN=arn:aws:sns:us-east-1:123456789012:dbt-tableau-refresh-NotificationTopic-1A2B3C",
		"NOTIFY_SUCCESS=false",
		"JOB_LIMIT=2h",
		"AWS_REGION=us-east-1",
		"AWS_DEFAULT_REGION=us-east-1", // Lambda sets both; boto3 reads only this one
		"AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE",
		"AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_LAMBDA_FUNCTION_NAME=WebhookFunction",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256",
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"HOME=" + home,
	}
}

// getEvent is an HTTP API event on the dbt route whose method is GET. The
// dbt handler answers it 405 before it reads the body, the secret or
// anything else, so the first invocation costs no I/O: it exercises
// aws-lambda-go's runtime loop, the decoding of the event, the routing and
// the handler's first check, and the encoding of the reply. API Gateway
// would not send it (the route key says POST and the route is POST only):
// it is built for the measurement, and needs no network and no secret.
func getEvent(tb testing.TB) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "get-event.json"))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// buildBootstrap builds pkg as the Makefile's build-WebhookFunction target
// does (CGO_ENABLED=0, -tags lambda.norpc -trimpath -ldflags "-s -w") for
// goos/goarch and returns the binary's path.
func buildBootstrap(tb testing.TB, pkg, goos, goarch string) string {
	tb.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		tb.Skipf("no go command to build the bootstrap: %v", err)
	}
	bin := filepath.Join(tb.TempDir(), "bootstrap")
	cmd := exec.Command(gobin, "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags", "-s -w", "-o", bin, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch)
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("go build %s for %s/%s: %v\n%s", pkg, goos, goarch, err, out)
	}
	return bin
}

// coldStart is one measured start of a bootstrap.
type coldStart struct {
	init          time.Duration // process start to the first GET .../invocation/next
	firstResponse time.Duration // process start to the first invocation's response
	res           runtimeapi.Result
	peakRSS       int64 // bytes, the most the process had resident by the response
}

// startCold starts bin under a fresh emulator with event already queued, as
// Lambda does when an invocation causes a cold start, waits for the reply
// and kills the process. Process start is taken just before the fork, so
// init includes exec and the Go runtime's start-up. The peak RSS is the
// process's whole life: start-up and one invocation.
func startCold(tb testing.TB, bin string, env []string, event []byte) coldStart {
	tb.Helper()
	return startColdWithin(tb, bin, env, event, 12*time.Second) // the webhook's Timeout in template.yaml
}

// startColdWithin is startCold for an invocation that may take up to
// timeout.
func startColdWithin(tb testing.TB, bin string, env []string, event []byte, timeout time.Duration) coldStart {
	tb.Helper()
	api := runtimeapi.New()
	defer api.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout+30*time.Second)
	defer cancel()
	type invoked struct {
		res runtimeapi.Result
		err error
	}
	reply := make(chan invoked, 1)
	go func() {
		res, err := api.Invoke(ctx, event, timeout)
		reply <- invoked{res, err}
	}()

	cmd := exec.Command(bin)
	cmd.Env = append(slices.Clone(env), "AWS_LAMBDA_RUNTIME_API="+api.Addr())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var waitErr error
	stopped := false
	stop := func() {
		if !stopped {
			_ = cmd.Process.Kill()
			waitErr, stopped = <-exited, true
		}
	}
	defer stop()
	fail := func(what string) {
		tb.Helper()
		stop() // out is complete once the process is reaped
		tb.Fatalf("%s: %s (exit: %v); output:\n%s", bin, what, waitErr, out.String())
	}

	var cs coldStart
	select {
	case at := <-api.FirstNext():
		cs.init = at.Sub(start)
	case waitErr = <-exited:
		stopped = true
		fail("exited before asking for an event")
	case <-ctx.Done():
		fail("did not ask for an event in time")
	}
	select {
	case r := <-reply:
		if r.err != nil {
			fail(r.err.Error())
		}
		cs.res, cs.firstResponse = r.res, r.res.At.Sub(start)
	case waitErr = <-exited:
		stopped = true
		fail("exited before answering the event")
	}
	cs.peakRSS = peakRSS(cmd.Process.Pid) // before the deferred kill
	return cs
}

// peakRSS is the most memory a running process has had resident so far, in
// bytes: VmHWM in /proc/<pid>/status, so Linux only (0 elsewhere). Not the
// ru_maxrss wait4 reports: Go starts children with vfork semantics, and
// Linux carries the high-water mark of the memory the child shared before
// exec, the test binary's, into the child's.
func peakRSS(pid int) int64 {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kB, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return kB * 1024
		}
	}
	return 0
}

// pythonBootstrap makes testdata/python/bootstrap.py, the Python alternative
// (requests, boto3 and one client), an executable whose first line names
// the interpreter, and says whether requests can be imported. The
// interpreter is the one python3 on PATH runs (its sys.executable), not
// python3 itself, which may be a version manager's shim (pyenv's is a shell
// script) whose own start-up would be counted as Python's.
func pythonBootstrap(tb testing.TB) (bin string, withRequests bool) {
	tb.Helper()
	python, err := exec.LookPath("python3")
	if err != nil {
		tb.Fatalf("the Python reference needs python3 with boto3: %v", err)
	}
	out, err := exec.Command(python, "-c", "import sys, boto3; print(sys.executable)").Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			err = fmt.Errorf("%w: %s", err, bytes.TrimSpace(exit.Stderr))
		}
		tb.Fatalf("the Python reference needs boto3 importable by %s: %v", python, err)
	}
	interpreter := strings.TrimSpace(string(out))
	withRequests = exec.Command(interpreter, "-c", "import requests").Run() == nil
	src, err := os.ReadFile(filepath.Join("testdata", "python", "bootstrap.py"))
	if err != nil {
		tb.Fatal(err)
	}
	bin = filepath.Join(tb.TempDir(), "bootstrap")
	if err := os.WriteFile(bin, append([]byte("#!"+interpreter+"\n"), src...), 0o755); err != nil {
		tb.Fatal(err)
	}
	return bin, withRequests
}

// apiResponse decodes the HTTP API response a function returned.
func apiResponse(tb testing.TB, res runtimeapi.Result) events.APIGatewayV2HTTPResponse {
	tb.Helper()
	if res.IsError {
		tb.Fatalf("invocation failed: %s: %s", res.ErrorType, res.Body)
	}
	var r events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(res.Body, &r); err != nil {
		tb.Fatalf("response %s: %v", res.Body, err)
	}
	return r
}

// TestBootstrapAnswersUnderRuntimeAPI checks that the deployed binary, with a
// real deployment's configuration, starts under the Lambda Runtime API,
// answers without calling AWS, and that a bad refresh map stops it at init
// with a message naming the entry.
func TestBootstrapAnswersUnderRuntimeAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the bootstrap with go build and runs it; run without -short")
	}
	bin := buildBootstrap(t, ".", runtime.GOOS, runtime.GOARCH)

	// Every AWS service endpoint points here, so any call the SDK makes
	// during init or the GET is counted instead of leaving the machine.
	var awsCalls atomic.Int32
	aws := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		awsCalls.Add(1)
		http.Error(w, "unexpected AWS call", http.StatusInternalServerError)
	}))
	defer aws.Close()
	env := append(deploymentEnv(t.TempDir()), "AWS_ENDPOINT_URL="+aws.URL)

	t.Run("GET answered 405 without calling AWS", func(t *testing.T) {
		cs := startCold(t, bin, env, getEvent(t))
		r := apiResponse(t, cs.res)
		if r.StatusCode != http.StatusMethodNotAllowed || !strings.Contains(r.Body, "method GET not allowed") {
			t.Errorf("response = %d %s, want 405 naming the method", r.StatusCode, r.Body)
		}
		if r.Headers["Content-Type"] != "application/json" {
			t.Errorf("Content-Type = %q, want application/json", r.Headers["Content-Type"])
		}
		if n := awsCalls.Load(); n != 0 {
			t.Errorf("init and the GET made %d AWS calls, want none", n)
		}
	})

	// main returns the configuration error before lambda.Start, so the
	// process exits 1 with the message on stderr; aws-lambda-go never
	// posts to /runtime/init/error. In AWS the init phase then fails with
	// Runtime.ExitError and the message is in the function's log.
	t.Run("invalid REFRESH_MAP exits 1 naming the entry", func(t *testing.T) {
		api := runtimeapi.New()
		defer api.Close()
		cmd := exec.Command(bin)
		cmd.Env = append(slices.Clone(env),
			`REFRESH_MAP={"jobs":{"1":[{"workbook":"W","datasource":"D"}]}}`,
			"AWS_LAMBDA_RUNTIME_API="+api.Addr())
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		var err error
		select {
		case err = <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Fatalf("still running after 30s; stderr:\n%s", stderr.String())
		}
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Errorf("exit = %v, want status 1", err)
		}
		var line string
		for sc := bufio.NewScanner(&stderr); sc.Scan(); {
			if strings.HasPrefix(sc.Text(), "webhook: ") {
				line = sc.Text()
			}
		}
		if !strings.Contains(line, "REFRESH_MAP") || !strings.Contains(line, `jobs["1"][0]`) || !strings.Contains(line, "exactly one of") {
			t.Errorf("stderr line %q, want webhook: ... REFRESH_MAP ... jobs[\"1\"][0]: give exactly one of ...", line)
		}
		select {
		case <-api.FirstNext():
			t.Error("the runtime asked for an event despite the bad map")
		case res := <-api.InitError():
			t.Errorf("unexpected init/error post: %s", res.Body)
		default:
		}
	})
}

// BenchmarkColdStart measures the cold start of the webhook bootstrap against
// three references: a hello-world aws-lambda-go bootstrap (testdata/hello),
// the same hello world with the AWS SDK clients the webhook builds
// (testdata/sdkfloor), and the Python alternative users deploy today, a
// function importing requests and boto3 and building one client
// (testdata/python). The Go ones are built with the SAM flags for this
// machine's GOOS/GOARCH so that they run here; all four are started in turn
// b.N times under the Runtime API emulator with the GET event of getEvent
// queued:
//
//	init-ms            process start to the first GET .../invocation/next
//	first-response-ms  process start to the first invocation's response
//	init-ratio         webhook init / hello init: the cost of our init
//	                   (configuration, SDK clients), comparable across
//	                   machines; goal at most 2
//	init-python-ratio  webhook init / Python init; goal at most 0.1
//	sdk-floor-ratio    sdkfloor init / hello init: what linking and building
//	                   the SDK clients alone costs, the least init-ratio
//	                   can be while the webhook uses them
//	init-over-floor    webhook init / sdkfloor init: the cost of our own code
//	peak-rss-MB        the process's peak resident memory, start-up and
//	                   the one invocation included
//
// Times, memory and ratios are medians over the rounds, ratios of each
// round's ratio; ns/op is suppressed, since a round is four cold starts and
// four kills. webhook-delivery-peak-rss-MB is the webhook's peak after a
// real first delivery instead of the GET (three targets: secret read,
// DynamoDB claims, Tableau sign-in and refreshes, an SNS message; against
// moto_server and the Tableau simulator), median of three cold starts.
// Sizes and memory are in MB (10^6 bytes); sizes for the host build and the
// linux/arm64 build SAM deploys. Absolute times are this machine's, not
// Lambda's: compare the ratios.
//
//	go test -run '^$' -bench ColdStart -benchtime 60x ./functions/webhook/
func BenchmarkColdStart(b *testing.B) {
	if testing.Short() {
		b.Skip("builds five bootstraps with go build and starts four of them b.N times each; run without -short")
	}
	webhook := buildBootstrap(b, ".", runtime.GOOS, runtime.GOARCH)
	hello := buildBootstrap(b, "./testdata/hello", runtime.GOOS, runtime.GOARCH)
	floor := buildBootstrap(b, "./testdata/sdkfloor", runtime.GOOS, runtime.GOARCH)
	python, withRequests := pythonBootstrap(b)
	sizes := map[string]string{
		"webhook-" + runtime.GOARCH + "-MB":   webhook,
		"hello-" + runtime.GOARCH + "-MB":     hello,
		"webhook-arm64-MB":                    buildBootstrap(b, ".", "linux", "arm64"),
		"hello-arm64-MB":                      buildBootstrap(b, "./testdata/hello", "linux", "arm64"),
		"sdk-floor-" + runtime.GOARCH + "-MB": floor,
	}
	env := deploymentEnv(b.TempDir())
	pythonEnv := env
	if !withRequests {
		b.Log("requests cannot be imported: the Python reference imports boto3 alone")
		pythonEnv = append(slices.Clone(env), "PYREF_WITHOUT_REQUESTS=1")
	}
	event := getEvent(b)

	var webhookInit, webhookFirst, helloInit, helloFirst, floorInit, pythonInit, pythonFirst []time.Duration
	var webhookRSS, helloRSS, pythonRSS []int64
	// Each round starts the four in a different order, so that none of
	// them is always the one started right after a particular other.
	starts := []func(){
		func() {
			cs := startCold(b, webhook, env, event)
			if r := apiResponse(b, cs.res); r.StatusCode != http.StatusMethodNotAllowed {
				b.Fatalf("webhook answered %d %s, want 405", r.StatusCode, r.Body)
			}
			webhookInit, webhookFirst = append(webhookInit, cs.init), append(webhookFirst, cs.firstResponse)
			webhookRSS = append(webhookRSS, cs.peakRSS)
		},
		func() {
			cs := startCold(b, hello, env, event)
			if r := apiResponse(b, cs.res); r.StatusCode != http.StatusOK {
				b.Fatalf("hello answered %d %s, want 200", r.StatusCode, r.Body)
			}
			helloInit, helloFirst = append(helloInit, cs.init), append(helloFirst, cs.firstResponse)
			helloRSS = append(helloRSS, cs.peakRSS)
		},
		func() {
			cs := startCold(b, floor, env, event)
			if r := apiResponse(b, cs.res); r.StatusCode != http.StatusOK || r.Body != "3 clients" {
				b.Fatalf("sdkfloor answered %d %s, want 200 3 clients", r.StatusCode, r.Body)
			}
			floorInit = append(floorInit, cs.init)
		},
		func() {
			cs := startCold(b, python, pythonEnv, event)
			if r := apiResponse(b, cs.res); r.StatusCode != http.StatusOK || r.Body != "Hello from Python" {
				b.Fatalf("Python answered %d %s, want 200 Hello from Python", r.StatusCode, r.Body)
			}
			pythonInit, pythonFirst = append(pythonInit, cs.init), append(pythonFirst, cs.firstResponse)
			pythonRSS = append(pythonRSS, cs.peakRSS)
		},
	}
	for round := 0; b.Loop(); round++ {
		for i := range starts {
			starts[(round+i)%len(starts)]()
		}
	}
	deliveryRSS := deliveryPeakRSS(b, webhook, 3)

	b.ReportMetric(0, "ns/op")
	b.ReportMetric(ms(median(webhookInit)), "webhook-init-ms")
	b.ReportMetric(ms(median(webhookFirst)), "webhook-first-response-ms")
	b.ReportMetric(ms(median(helloInit)), "hello-init-ms")
	b.ReportMetric(ms(median(helloFirst)), "hello-first-response-ms")
	b.ReportMetric(ms(median(floorInit)), "sdk-floor-init-ms")
	b.ReportMetric(ms(median(pythonInit)), "python-init-ms")
	b.ReportMetric(ms(median(pythonFirst)), "python-first-response-ms")
	b.ReportMetric(medianRatio(webhookInit, helloInit), "init-ratio")
	b.ReportMetric(medianRatio(webhookInit, pythonInit), "init-python-ratio")
	b.ReportMetric(medianRatio(floorInit, helloInit), "sdk-floor-ratio")
	b.ReportMetric(medianRatio(webhookInit, floorInit), "init-over-floor")
	if !withRequests {
		b.ReportMetric(1, "python-without-requests")
	}
	for unit, rss := range map[string][]int64{
		"webhook-peak-rss-MB":          webhookRSS,
		"hello-peak-rss-MB":            helloRSS,
		"python-peak-rss-MB":           pythonRSS,
		"webhook-delivery-peak-rss-MB": deliveryRSS,
	} {
		if m := median(rss); m > 0 {
			b.ReportMetric(float64(m)/1e6, unit)
		}
	}
	for unit, bin := range sizes {
		fi, err := os.Stat(bin)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(fi.Size())/1e6, unit)
	}
}

// deliveryPeakRSS starts the webhook bootstrap n times, each a cold start
// for a first delivery of a new dbt run to a deliveryDeployment, and returns
// each process's peak RSS.
func deliveryPeakRSS(b *testing.B, webhook string, n int) []int64 {
	b.Helper()
	d := newDeliveryDeployment(b)
	var rss []int64
	for i := range n {
		cs := startCold(b, webhook, d.env, signedDelivery(b, demo.Event(int64(5000+i), time.Now()), d.secret))
		r := apiResponse(b, cs.res)
		// The simulator's jobs outlast the benchmark, so the second and
		// third deliveries find the first one's refreshes still queued.
		var body struct{ Targets []struct{ Result string } }
		queued := func(result string) bool { return result == "refreshed" || result == "already_queued" }
		if err := json.Unmarshal([]byte(r.Body), &body); err != nil || r.StatusCode != http.StatusOK ||
			len(body.Targets) != 3 || !queued(body.Targets[0].Result) || !queued(body.Targets[1].Result) {
			b.Fatalf("delivery %d: %d %s, want 200 with the first two of three targets refreshed or already queued", i+1, r.StatusCode, r.Body)
		}
		rss = append(rss, cs.peakRSS)
	}
	return rss
}

// medianRatio is the median over the rounds of a[i]/b[i]: the two starts
// of a round are moments apart, so the machine's slower and faster spells,
// which move both, cancel out of each ratio.
func medianRatio(a, b []time.Duration) float64 {
	rs := make([]float64, min(len(a), len(b)))
	for i := range rs {
		rs[i] = float64(a[i]) / float64(b[i])
	}
	return median(rs)
}

func median[T time.Duration | float64 | int64](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
