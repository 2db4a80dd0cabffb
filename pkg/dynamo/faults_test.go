package dynamo_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dynamo"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/motoserver"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state/statetest"
)

func TestNewClientBoundsEachAttempt(t *testing.T) {
	cfg, err := moto.AWSConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	hc, ok := dynamo.NewClient(cfg).Options().HTTPClient.(*awshttp.BuildableClient)
	if !ok {
		t.Fatalf("HTTP client is %T, want the SDK's buildable client", dynamo.NewClient(cfg).Options().HTTPClient)
	}
	if got := hc.GetTimeout(); got != dynamo.AttemptTimeout {
		t.Errorf("attempt timeout = %s, want %s", got, dynamo.AttemptTimeout)
	}
	if got := dynamo.NewClient(cfg).Options().Retryer.MaxAttempts(); got != dynamo.MaxAttempts {
		t.Errorf("attempts = %d, want %d", got, dynamo.MaxAttempts)
	}
}

// armedFaults faults the next call of one operation, once.
type armedFaults struct {
	mu    sync.Mutex
	op    string
	fault motoserver.Fault
}

func (a *armedFaults) arm(op string, f motoserver.Fault) {
	a.mu.Lock()
	a.op, a.fault = op, f
	a.mu.Unlock()
}

func (a *armedFaults) decide(op string) motoserver.Fault {
	a.mu.Lock()
	defer a.mu.Unlock()
	if op != a.op {
		return motoserver.Pass
	}
	f := a.fault
	a.op, a.fault = "", motoserver.Pass
	return f
}

// TestRetryOfAppliedWrite: a conditional write whose first attempt was
// applied but whose reply was lost (timed out, or answered 500) is retried
// by the SDK, and the retry fails its condition against our own write.
// Each store call must still report what the write did — the same as with
// no fault — and a write that really lost still loses.
func TestRetryOfAppliedWrite(t *testing.T) {
	ctx := context.Background()
	clock := statetest.NewClock()
	faults := &armedFaults{}
	proxy := moto.StartFaults(faults.decide)
	defer proxy.Close()
	cfg, err := proxy.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The production client, with a shorter attempt timeout so that a
	// withheld reply costs the test less.
	client := dynamo.NewClient(cfg, func(o *dynamodb.Options) {
		o.HTTPClient = o.HTTPClient.(*awshttp.BuildableClient).WithTimeout(500 * time.Millisecond)
	})
	name := fmt.Sprintf("state-%d", tables.Add(1))
	if err := dynamo.CreateTable(ctx, db, name); err != nil {
		t.Fatal(err)
	}
	tbl, err := dynamo.New(client, name, dynamo.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}

	var seq int
	type fixture struct {
		key   state.Key
		job   state.TableauJob
		jobID string
	}
	newFixture := func() fixture {
		seq++
		k := state.Key{RunID: fmt.Sprint(770000 + seq), Target: "workbook:name:/Sales"}
		return fixture{key: k, jobID: fmt.Sprint("job-", seq),
			job: state.TableauJob{JobID: fmt.Sprint("job-", seq), Run: k, DBTJobID: "123", TargetName: "Sales", ItemKind: "workbook", ItemID: "item", QueuedAt: clock.Now()}}
	}
	claim := func(f fixture, owner string) error {
		return tbl.Begin(ctx, state.Claim{Key: f.key, Owner: owner, DBTJobID: "123", HoldUntil: clock.Now().Add(time.Minute), Retention: time.Hour})
	}
	describe := func(v any, err error) string {
		var ce *state.ClaimedError
		var le *state.LeaseHeldError
		switch {
		case errors.As(err, &ce):
			return "claimed: " + string(ce.Existing.Status)
		case errors.As(err, &le):
			return "lease held: " + le.Existing.Phase
		case errors.Is(err, state.ErrNotHeld):
			return "not held"
		case err != nil:
			return "error: " + err.Error()
		}
		return fmt.Sprint(v)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	tests := []struct {
		name  string
		op    string // the DynamoDB operation that is faulted
		setup func(f fixture)
		call  func(f fixture) string
		want  string
	}{
		{"Begin", "PutItem", nil,
			func(f fixture) string { return describe("claimed", claim(f, "a")) }, "claimed"},
		{"Begin against another's claim", "PutItem", func(f fixture) { must(claim(f, "a")) },
			func(f fixture) string { return describe("claimed", claim(f, "b")) }, "claimed: INPROGRESS"},
		{"Complete", "UpdateItem", func(f fixture) { must(claim(f, "a")) },
			func(f fixture) string {
				return describe("completed", tbl.Complete(ctx, f.key, "a", state.OutcomeAlreadyQueued, ""))
			}, "completed"},
		{"Complete of a claim another holds", "UpdateItem", func(f fixture) { must(claim(f, "a")) },
			func(f fixture) string {
				return describe("completed", tbl.Complete(ctx, f.key, "b", state.OutcomeRefreshed, "j"))
			}, "not held"},
		{"CompleteJob", "UpdateItem", func(f fixture) { must(claim(f, "a")) },
			func(f fixture) string { return describe("completed", tbl.CompleteJob(ctx, "a", f.job)) }, "completed"},
		{"CloseJob", "UpdateItem", func(f fixture) { must(claim(f, "a")); must(tbl.CompleteJob(ctx, "a", f.job)) },
			func(f fixture) string { return describe(tbl.CloseJob(ctx, f.job, state.OutcomeFailed, "login failed")) }, "true"},
		{"CloseJob of a closed job", "UpdateItem", func(f fixture) {
			must(claim(f, "a"))
			must(tbl.CompleteJob(ctx, "a", f.job))
			_, err := tbl.CloseJob(ctx, f.job, state.OutcomeSucceeded, "")
			must(err)
		}, func(f fixture) string { return describe(tbl.CloseJob(ctx, f.job, state.OutcomeFailed, "")) }, "false"},
		{"Enqueue", "PutItem", nil,
			func(f fixture) string {
				return describe(tbl.Enqueue(ctx, state.Notification{Key: f.jobID, Payload: []byte("{}")}))
			}, "true"},
		{"Enqueue of a queued notification", "PutItem", func(f fixture) {
			_, err := tbl.Enqueue(ctx, state.Notification{Key: f.jobID, Payload: []byte("{}")})
			must(err)
		}, func(f fixture) string {
			return describe(tbl.Enqueue(ctx, state.Notification{Key: f.jobID, Payload: []byte("{}")}))
		}, "false"},
		{"Claim", "UpdateItem", func(f fixture) {
			_, err := tbl.Enqueue(ctx, state.Notification{Key: f.jobID, Payload: []byte("{}")})
			must(err)
		}, func(f fixture) string {
			attempt, ok, err := tbl.Claim(ctx, f.jobID, clock.Now().Add(time.Minute))
			return describe(fmt.Sprint(attempt, ok), err)
		}, "1 true"},
		{"BeginTrigger", "PutItem", nil,
			func(f fixture) string {
				return describe("leased", tbl.Runs().BeginTrigger(ctx, f.jobID, "a", "2026-11-23T12:00:00Z", clock.Now().Add(time.Minute)))
			}, "leased"},
		{"Started", "UpdateItem", func(f fixture) {
			must(tbl.Runs().BeginTrigger(ctx, f.jobID, "a", "2026-11-23T12:00:00Z", clock.Now().Add(time.Minute)))
		}, func(f fixture) string {
			return describe("started", tbl.Runs().Started(ctx, f.jobID, "a", 4242, clock.Now()))
		}, "started"},
		{"Settle", "UpdateItem", func(f fixture) {
			must(tbl.Runs().BeginTrigger(ctx, f.jobID, "a", "2026-11-23T12:00:00Z", clock.Now().Add(time.Minute)))
			must(tbl.Runs().Started(ctx, f.jobID, "a", 4242, clock.Now()))
		}, func(f fixture) string { return describe(tbl.Runs().Settle(ctx, f.jobID, 4242, "failed")) }, "true"},
	}
	for _, fault := range []motoserver.Fault{motoserver.Pass, motoserver.InternalErrorApplied, motoserver.LostReply} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s/fault=%s", tt.name, fault), func(t *testing.T) {
				f := newFixture()
				if tt.setup != nil {
					tt.setup(f)
				}
				before := proxy.Counts()[fault]
				faults.arm(tt.op, fault)
				got := tt.call(f)
				faults.arm("", motoserver.Pass)
				if got != tt.want {
					t.Errorf("got %q, want %q", got, tt.want)
				}
				if fault != motoserver.Pass && proxy.Counts()[fault] != before+1 {
					t.Errorf("the %s fault was not applied to %s: %s", fault, tt.op, proxy.Summary())
				}
			})
		}
	}
	t.Log(proxy.Summary())
}

// TestRetriesOutlastConditionalFailures: under steady throttling, writes
// that end in ConditionalCheckFailed — as a duplicate delivery's claims do
// — are still retried. With the SDK's default retry quota they drained it
// (here about 110 of the 960 claims failed at once, "retry quota
// exceeded").
func TestRetriesOutlastConditionalFailures(t *testing.T) {
	ctx := context.Background()
	proxy := moto.StartFaults(motoserver.RandomFaults(0.2, 7, motoserver.Throttled, motoserver.InternalError))
	defer proxy.Close()
	cfg, err := proxy.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	clock := statetest.NewClock()
	client := dynamo.NewClient(cfg)
	name := fmt.Sprintf("state-%d", tables.Add(1))
	if err := dynamo.CreateTable(ctx, db, name); err != nil {
		t.Fatal(err)
	}
	direct, err := dynamo.New(db, name, dynamo.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	faulty, err := dynamo.New(client, name, dynamo.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	const workers, calls = 16, 60
	var mu sync.Mutex
	var quota, failed int
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range calls {
				c := state.Claim{Key: state.Key{RunID: fmt.Sprint(w, "-", i), Target: "t"}, Owner: "first", HoldUntil: clock.Now().Add(time.Minute), Retention: time.Hour}
				if err := direct.Begin(ctx, c); err != nil {
					t.Error(err)
					return
				}
				c.Owner = "duplicate"
				err := faulty.Begin(ctx, c)
				var ce *state.ClaimedError
				var qe ratelimit.QuotaExceededError
				mu.Lock()
				switch {
				case errors.As(err, &qe):
					quota++
				case err != nil && !errors.As(err, &ce):
					failed++ // four faults in a row: about 1 in 600
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Logf("%d claims refused, %d of them failed for lack of retry quota, %d after %d attempts; %s",
		workers*calls, quota, failed, dynamo.MaxAttempts, proxy.Summary())
	if quota > 0 {
		t.Errorf("%d of %d calls failed for lack of retry quota", quota, workers*calls)
	}
}
