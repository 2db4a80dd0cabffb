package motoserver

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
)

// TestFaultProxy: each fault reaches the SDK as DynamoDB's would — the
// error code, whether the SDK retries it and counts it as throttling — and
// the call is applied exactly when the fault says so.
func TestFaultProxy(t *testing.T) {
	ctx := context.Background()
	s, err := Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	cfg, err := s.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	direct := dynamodb.NewFromConfig(cfg)
	table := "faults"
	if _, err := direct.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(table),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	}); err != nil {
		t.Fatal(err)
	}

	// A withheld reply costs one attempt timeout; a reply is never that
	// slow otherwise, even on a loaded machine.
	const attemptTimeout = time.Second
	tests := []struct {
		fault        Fault
		wantCode     string // "" for a transport error
		wantThrottle bool
		wantApplied  bool
	}{
		{Pass, "", false, true},
		{Throttled, "ThrottlingException", true, false},
		{ThroughputExceeded, "ProvisionedThroughputExceededException", true, false},
		{InternalError, "InternalServerError", false, false},
		{InternalErrorApplied, "InternalServerError", false, true},
		{LostReply, "", false, true},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprint(tt.fault), func(t *testing.T) {
			// The fault hits the first call only.
			var calls atomic.Int32
			p := s.StartFaults(func(op string) Fault {
				if op == "PutItem" && calls.Add(1) == 1 {
					return tt.fault
				}
				return Pass
			})
			defer p.Close()
			pcfg, err := p.AWSConfig(ctx)
			if err != nil {
				t.Fatal(err)
			}
			once := dynamodb.NewFromConfig(pcfg, func(o *dynamodb.Options) {
				o.RetryMaxAttempts = 1
				o.HTTPClient = awshttp.NewBuildableClient().WithTimeout(attemptTimeout)
			})
			key := map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: fmt.Sprint("item-", i)}}
			_, err = once.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: key})

			var apiErr smithy.APIError
			switch {
			case tt.fault == Pass:
				if err != nil {
					t.Fatalf("PutItem = %v", err)
				}
			case tt.wantCode != "":
				if !errors.As(err, &apiErr) || apiErr.ErrorCode() != tt.wantCode {
					t.Fatalf("PutItem = %v, want error code %s", err, tt.wantCode)
				}
			case err == nil:
				t.Fatal("PutItem succeeded, want a timeout")
			}
			if tt.fault != Pass {
				if got := retry.IsErrorRetryables(retry.DefaultRetryables).IsErrorRetryable(err); got != aws.TrueTernary {
					t.Errorf("the SDK does not retry %v (%v)", err, got)
				}
				if got := retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err) == aws.TrueTernary; got != tt.wantThrottle {
					t.Errorf("the SDK counts %v as throttling: %v, want %v", err, got, tt.wantThrottle)
				}
			}
			got, err := direct.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: key, ConsistentRead: aws.Bool(true)})
			if err != nil {
				t.Fatal(err)
			}
			if applied := got.Item != nil; applied != tt.wantApplied {
				t.Errorf("item written: %v, want %v", applied, tt.wantApplied)
			}

			// The SDK's own retries get past one fault.
			retried := dynamodb.NewFromConfig(pcfg, func(o *dynamodb.Options) {
				o.HTTPClient = awshttp.NewBuildableClient().WithTimeout(attemptTimeout)
			})
			calls.Store(0)
			key["pk"] = &types.AttributeValueMemberS{Value: fmt.Sprint("retried-", i)}
			if _, err := retried.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: key}); err != nil {
				t.Errorf("PutItem with the SDK's retries = %v (%s)", err, p.Summary())
			}
			if n := p.Counts()[tt.fault]; tt.fault != Pass && n != 2 {
				t.Errorf("proxy counts %d calls with %q, want 2 (%s)", n, tt.fault, p.Summary())
			}
		})
	}
}

func TestRandomFaults(t *testing.T) {
	decide := RandomFaults(0.2, 42)
	counts := map[Fault]int{}
	const n = 10000
	for range n {
		counts[decide("PutItem")]++
	}
	if faulted := n - counts[Pass]; faulted < 1800 || faulted > 2200 {
		t.Errorf("%d of %d calls faulted, want about 20%%", faulted, n)
	}
	for _, f := range AllFaults {
		if counts[f] < 300 {
			t.Errorf("%s: %d calls, want about %d", f, counts[f], n/5/len(AllFaults))
		}
	}
	again := RandomFaults(0.2, 42)
	first := RandomFaults(0.2, 42)
	for range 100 {
		if a, b := again("GetItem"), first("GetItem"); a != b {
			t.Fatal("the same seed gave different faults")
		}
	}
}
