package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/runtimeapi"
)

// The cold-start measurements run the bootstrap SAM deploys, as a separate
// process, under the Runtime API emulator: aws-lambda-go's real runtime loop,
// our real main and bridge.Start, the real SDK clients.

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
}

// startCold starts bin under a fresh emulator with event already queued, as
// Lambda does when an invocation causes a cold start, waits for the reply
// and kills the process. Process start is taken just before the fork, so
// init includes exec and the Go runtime's start-up.
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
	return cs
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
// two references: a hello-world aws-lambda-go bootstrap (testdata/hello) and
// the same hello world with the AWS SDK clients the webhook builds
// (testdata/sdkfloor). All three are built with the SAM flags for this
// machine's GOOS/GOARCH so that they run here, and started in turn b.N
// times under the Runtime API emulator with the GET event of getEvent
// queued:
//
//	init-ms            process start to the first GET .../invocation/next
//	first-response-ms  process start to the first invocation's response
//	init-ratio         webhook init / hello init: the cost of our init
//	                   (configuration, SDK clients), comparable across machines
//	sdk-floor-ratio    sdkfloor init / hello init: what linking and building
//	                   the SDK clients alone costs, the least init-ratio
//	                   can be while the webhook uses them
//	init-over-floor    webhook init / sdkfloor init: the cost of our own code
//
// Times are medians over the rounds, ratios medians of each round's ratio;
// ns/op is suppressed, since a round
// is three cold starts and three kills. Sizes are reported in MB (10^6
// bytes) for the host build and for the linux/arm64 build SAM deploys.
// Absolute times are this machine's, not Lambda's: compare the ratios.
//
//	go test -run '^$' -bench ColdStart -benchtime 60x ./functions/webhook/
func BenchmarkColdStart(b *testing.B) {
	if testing.Short() {
		b.Skip("builds four bootstraps with go build and starts two of them b.N times each; run without -short")
	}
	webhook := buildBootstrap(b, ".", runtime.GOOS, runtime.GOARCH)
	hello := buildBootstrap(b, "./testdata/hello", runtime.GOOS, runtime.GOARCH)
	floor := buildBootstrap(b, "./testdata/sdkfloor", runtime.GOOS, runtime.GOARCH)
	sizes := map[string]string{
		"webhook-" + runtime.GOARCH + "-MB":   webhook,
		"hello-" + runtime.GOARCH + "-MB":     hello,
		"webhook-arm64-MB":                    buildBootstrap(b, ".", "linux", "arm64"),
		"hello-arm64-MB":                      buildBootstrap(b, "./testdata/hello", "linux", "arm64"),
		"sdk-floor-" + runtime.GOARCH + "-MB": floor,
	}
	env := deploymentEnv(b.TempDir())
	event := getEvent(b)

	var webhookInit, webhookFirst, helloInit, helloFirst, floorInit []time.Duration
	// Each round starts the three in a different order, so that none of
	// them is always the one started right after a particular other.
	starts := []func(){
		func() {
			cs := startCold(b, webhook, env, event)
			if r := apiResponse(b, cs.res); r.StatusCode != http.StatusMethodNotAllowed {
				b.Fatalf("webhook answered %d %s, want 405", r.StatusCode, r.Body)
			}
			webhookInit, webhookFirst = append(webhookInit, cs.init), append(webhookFirst, cs.firstResponse)
		},
		func() {
			cs := startCold(b, hello, env, event)
			if r := apiResponse(b, cs.res); r.StatusCode != http.StatusOK {
				b.Fatalf("hello answered %d %s, want 200", r.StatusCode, r.Body)
			}
			helloInit, helloFirst = append(helloInit, cs.init), append(helloFirst, cs.firstResponse)
		},
		func() {
			cs := startCold(b, floor, env, event)
			if r := apiResponse(b, cs.res); r.StatusCode != http.StatusOK || r.Body != "3 clients" {
				b.Fatalf("sdkfloor answered %d %s, want 200 3 clients", r.StatusCode, r.Body)
			}
			floorInit = append(floorInit, cs.init)
		},
	}
	for round := 0; b.Loop(); round++ {
		for i := range starts {
			starts[(round+i)%len(starts)]()
		}
	}

	b.ReportMetric(0, "ns/op")
	b.ReportMetric(ms(median(webhookInit)), "webhook-init-ms")
	b.ReportMetric(ms(median(webhookFirst)), "webhook-first-response-ms")
	b.ReportMetric(ms(median(helloInit)), "hello-init-ms")
	b.ReportMetric(ms(median(helloFirst)), "hello-first-response-ms")
	b.ReportMetric(ms(median(floorInit)), "sdk-floor-init-ms")
	b.ReportMetric(medianRatio(webhookInit, helloInit), "init-ratio")
	b.ReportMetric(medianRatio(floorInit, helloInit), "sdk-floor-ratio")
	b.ReportMetric(medianRatio(webhookInit, floorInit), "init-over-floor")
	for unit, bin := range sizes {
		fi, err := os.Stat(bin)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(fi.Size())/1e6, unit)
	}
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

func median[T time.Duration | float64](xs []T) T {
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
