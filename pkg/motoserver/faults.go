package motoserver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Fault is what a FaultProxy does to one DynamoDB call.
type Fault string

// The faults DynamoDB shows a client. The first three are refusals: the
// call is not applied, and a retry is safe. The last two are the hard
// ones: the call is applied, but the caller cannot know, so its retry
// meets its own write (a conditional write then fails its condition).
const (
	// Pass forwards the call untouched.
	Pass Fault = ""
	// Throttled answers 400 ThrottlingException without forwarding.
	Throttled Fault = "throttled"
	// ThroughputExceeded answers 400 ProvisionedThroughputExceededException
	// without forwarding.
	ThroughputExceeded Fault = "throughput_exceeded"
	// InternalError answers 500 InternalServerError without forwarding.
	InternalError Fault = "internal_error"
	// InternalErrorApplied forwards the call, then answers 500
	// InternalServerError instead of the reply: DynamoDB says a 500 means
	// the operation may have succeeded.
	InternalErrorApplied Fault = "internal_error_applied"
	// LostReply forwards the call and withholds the reply until the
	// caller gives up (its attempt times out) or MaxHold passes, when the
	// reply is sent, too late.
	LostReply Fault = "lost_reply"
)

// AllFaults are every fault but Pass.
var AllFaults = []Fault{Throttled, ThroughputExceeded, InternalError, InternalErrorApplied, LostReply}

// FaultProxy stands in front of a Server and injects DynamoDB's failures
// into DynamoDB calls, with the error bodies DynamoDB sends. Calls of other
// services pass through.
type FaultProxy struct {
	// URL is the endpoint to give the SDK instead of the Server's.
	URL string
	// MaxHold bounds how long a LostReply is withheld from a caller that
	// never gives up. Set it before the first call.
	MaxHold time.Duration

	decide   func(op string) Fault
	upstream string
	client   *http.Client
	srv      *httptest.Server

	mu       sync.Mutex
	counts   map[Fault]int
	byOp     map[string]int  // faulted calls by operation
	forwards []time.Duration // how long the server took, queue included
}

// StartFaults starts a FaultProxy in front of s. decide is asked, for each
// DynamoDB call, what to do with it; op is the operation's name, e.g.
// "PutItem". It is called from many goroutines.
func (s *Server) StartFaults(decide func(op string) Fault) *FaultProxy {
	p := &FaultProxy{
		MaxHold: time.Minute, decide: decide, upstream: s.URL,
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
		counts: map[Fault]int{}, byOp: map[string]int{},
	}
	p.srv = httptest.NewUnstartedServer(p)
	p.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	p.srv.Start()
	p.URL = p.srv.URL
	return p
}

// Close stops the proxy, ending any reply it still withholds.
func (p *FaultProxy) Close() {
	p.srv.CloseClientConnections()
	p.srv.Close()
	p.client.CloseIdleConnections()
}

// AWSConfig returns an SDK configuration that sends every service through
// the proxy, as Server.AWSConfig does to the server.
func (p *FaultProxy) AWSConfig(ctx context.Context) (aws.Config, error) {
	return awsConfig(ctx, p.URL)
}

// RandomFaults returns a decide function for StartFaults that faults about
// rate of the calls, each with one of faults (AllFaults when none are
// given), drawn from a generator seeded with seed.
func RandomFaults(rate float64, seed uint64, faults ...Fault) func(op string) Fault {
	if len(faults) == 0 {
		faults = AllFaults
	}
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(seed, 0xfa17))
	return func(string) Fault {
		mu.Lock()
		defer mu.Unlock()
		if rng.Float64() >= rate {
			return Pass
		}
		return faults[rng.IntN(len(faults))]
	}
}

// Counts returns how many DynamoDB calls met each fault, Pass included.
func (p *FaultProxy) Counts() map[Fault]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[Fault]int, len(p.counts))
	for f, n := range p.counts {
		out[f] = n
	}
	return out
}

// Summary describes the calls seen, e.g. for a test log.
func (p *FaultProxy) Summary() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	total := 0
	var faults []string
	for f, n := range p.counts {
		total += n
		if f != Pass {
			faults = append(faults, fmt.Sprintf("%s=%d", f, n))
		}
	}
	var ops []string
	for op, n := range p.byOp {
		ops = append(ops, fmt.Sprintf("%s=%d", op, n))
	}
	sort.Strings(faults)
	sort.Strings(ops)
	faulted := total - p.counts[Pass]
	took := slices.Clone(p.forwards)
	slices.Sort(took)
	pct := func(q float64) time.Duration {
		if len(took) == 0 {
			return 0
		}
		return took[min(int(float64(len(took))*q), len(took)-1)].Round(time.Millisecond)
	}
	return fmt.Sprintf("%d DynamoDB calls, %d faulted (%.1f%%): %s; faulted by operation: %s; server time of forwarded calls p50=%s p99=%s max=%s",
		total, faulted, 100*float64(faulted)/float64(max(total, 1)), strings.Join(faults, " "), strings.Join(ops, " "),
		pct(0.5), pct(0.99), pct(1))
}

func (p *FaultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op := dynamoOperation(r)
	fault := Pass
	if op != "" {
		fault = p.decide(op)
		p.mu.Lock()
		p.counts[fault]++
		if fault != Pass {
			p.byOp[op]++
		}
		p.mu.Unlock()
	}
	switch fault {
	case Throttled:
		writeDynamoError(w, http.StatusBadRequest, "ThrottlingException", "Rate of requests exceeds the allowed throughput.",
			throttlingReason(r, op, "KeyRangeThroughputExceeded"))
		return
	case ThroughputExceeded:
		writeDynamoError(w, http.StatusBadRequest, "ProvisionedThroughputExceededException",
			"The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API.",
			throttlingReason(r, op, "ProvisionedThroughputExceeded"))
		return
	case InternalError:
		writeDynamoError(w, http.StatusInternalServerError, "InternalServerError", "Internal server error", nil)
		return
	}

	// The call goes on to the emulator whatever the caller does meanwhile,
	// as a request that reached DynamoDB does.
	start := time.Now()
	status, header, body, err := p.forward(context.WithoutCancel(r.Context()), r)
	if op != "" {
		p.mu.Lock()
		p.forwards = append(p.forwards, time.Since(start))
		p.mu.Unlock()
	}
	if err != nil {
		http.Error(w, "fault proxy: "+err.Error(), http.StatusBadGateway)
		return
	}
	switch fault {
	case InternalErrorApplied:
		writeDynamoError(w, http.StatusInternalServerError, "InternalServerError", "Internal server error", nil)
		return
	case LostReply:
		select {
		case <-r.Context().Done():
			// The caller gave up; the reply is lost. Close the connection
			// so the client cannot mistake anything for it.
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					_ = conn.Close()
				}
			}
			return
		case <-time.After(p.MaxHold):
		}
	}
	for k, vs := range header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// forward sends r to the server and reads the whole reply.
func (p *FaultProxy) forward(ctx context.Context, r *http.Request) (int, http.Header, []byte, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return 0, nil, nil, err
	}
	out, err := http.NewRequestWithContext(ctx, r.Method, p.upstream+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	out.Header = r.Header.Clone()
	out.Host = r.Host
	resp, err := p.client.Do(out)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, nil, err
	}
	h := resp.Header.Clone()
	h.Del("Content-Length")
	return resp.StatusCode, h, b, nil
}

// writeDynamoError answers the way DynamoDB does (JSON 1.0 protocol): the
// error's shape id in __type, the throttling reasons if any, a request id,
// and the CRC32 of the body, which the SDK checks.
func writeDynamoError(w http.ResponseWriter, status int, code, message string, reasons []throttlingReasonJSON) {
	body, _ := json.Marshal(struct {
		Type    string                 `json:"__type"`
		Message string                 `json:"message"`
		Reasons []throttlingReasonJSON `json:"ThrottlingReasons,omitempty"`
	}{"com.amazonaws.dynamodb.v20120810#" + code, message, reasons})
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Header().Set("X-Amzn-Requestid", "FAULTPROXY"+strconv.FormatInt(time.Now().UnixNano(), 36))
	w.Header().Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE(body)), 10))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

type throttlingReasonJSON struct {
	Reason   string `json:"reason"`
	Resource string `json:"resource"`
}

// throttlingReason names the table of the call and whether it reads or
// writes, as DynamoDB's ThrottlingReasons do, e.g.
// TableWriteKeyRangeThroughputExceeded.
func throttlingReason(r *http.Request, op, limit string) []throttlingReasonJSON {
	var in struct{ TableName string }
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	_ = json.Unmarshal(body, &in)
	kind := "Write"
	switch op {
	case "GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems":
		kind = "Read"
	}
	return []throttlingReasonJSON{{Reason: "Table" + kind + limit, Resource: "arn:aws:dynamodb:us-east-1:123456789012:table/" + in.TableName}}
}
