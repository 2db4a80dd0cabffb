package notify_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/smithy-go"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/motoserver"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/notify"
)

var (
	snsClient *sns.Client
	moto      *motoserver.Server
)

func TestMain(m *testing.M) {
	os.Exit(motoserver.Main(m, func(s *motoserver.Server) {
		cfg, err := s.AWSConfig(context.Background())
		if err != nil {
			panic(err)
		}
		snsClient = sns.NewFromConfig(cfg)
		moto = s
	}))
}

var topics atomic.Int64

// newTopic creates a fresh topic so that tests do not see each other's
// messages.
func newTopic(t *testing.T, fifo bool) string {
	t.Helper()
	in := &sns.CreateTopicInput{Name: aws.String(fmt.Sprintf("alerts-%d", topics.Add(1)))}
	if fifo {
		in.Name = aws.String(*in.Name + ".fifo")
		in.Attributes = map[string]string{"FifoTopic": "true"}
	}
	out, err := snsClient.CreateTopic(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	return *out.TopicArn
}

// sentTo is what moto recorded as published to topicARN.
func sentTo(t *testing.T, topicARN string) []motoserver.SNSMessage {
	t.Helper()
	msgs, err := moto.SNSMessages(context.Background(), topicARN)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

// attr digs the string value of a message attribute out of moto's record,
// whatever the exact shape it stores.
func attr(attrs map[string]any, name string) string {
	v, ok := attrs[name].(map[string]any)
	if !ok {
		return ""
	}
	for _, k := range []string{"Value", "StringValue"} {
		if s, ok := v[k].(string); ok {
			return s
		}
	}
	return ""
}

func TestSNSPublishesToMoto(t *testing.T) {
	long := failed()
	long.TableauItemName = "Umsätze nach Region — " + strings.Repeat("sehr lang ", 20)
	tests := []struct {
		name string
		fifo bool
		m    notify.Message
	}{
		{"failure", false, failed()},
		{"long non-ASCII subject", false, long},
		{"FIFO topic", true, failed()},
		{"kind only", false, notify.Message{Kind: notify.KindDBTRunStuck}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			arn := newTopic(t, tt.fifo)
			n, err := notify.NewSNS(snsClient, arn)
			if err != nil {
				t.Fatal(err)
			}
			if err := n.Notify(context.Background(), tt.m); err != nil {
				t.Fatalf("Notify: %v", err)
			}
			got := sentTo(t, arn)
			if len(got) != 1 {
				t.Fatalf("moto recorded %d messages, want 1", len(got))
			}
			if got[0].Message != tt.m.Text() {
				t.Errorf("message = %q, want Text() %q", got[0].Message, tt.m.Text())
			}
			if got[0].Subject != tt.m.Subject() || len(got[0].Subject) > 99 {
				t.Errorf("subject = %q, want Subject() %q (at most 99 bytes)", got[0].Subject, tt.m.Subject())
			}
			if k := attr(got[0].Attributes, "kind"); k != string(tt.m.Kind) {
				t.Errorf("kind attribute = %q, want %q (attributes %v)", k, tt.m.Kind, got[0].Attributes)
			}
			if tt.fifo && got[0].GroupID != "dbt-job-70" {
				t.Errorf("FIFO group = %q, want dbt-job-70", got[0].GroupID)
			}
		})
	}
}

func TestSNSMissingTopicOnMoto(t *testing.T) {
	arn := "arn:aws:sns:us-east-1:123456789012:no-such-topic"
	n, err := notify.NewSNS(snsClient, arn)
	if err != nil {
		t.Fatal(err)
	}
	err = n.Notify(context.Background(), failed())
	if err == nil {
		t.Fatal("Notify to a missing topic succeeded")
	}
	if !strings.Contains(err.Error(), arn) {
		t.Errorf("error does not name the topic: %v", err)
	}
	if notify.Retryable(err) {
		t.Errorf("Retryable(%v) = true for a missing topic", err)
	}
}

// fakeSNS records Publish calls and fails with err when set.
type fakeSNS struct {
	mu    sync.Mutex
	calls []*sns.PublishInput
	err   error
}

func (f *fakeSNS) Publish(_ context.Context, in *sns.PublishInput, _ ...func(*sns.Options)) (*sns.PublishOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, in)
	if f.err != nil {
		return nil, f.err
	}
	return &sns.PublishOutput{MessageId: aws.String("m-1")}, nil
}

func TestSNSFailures(t *testing.T) {
	const arn = "arn:aws:sns:eu-west-1:111122223333:alerts"
	tests := []struct {
		name      string
		err       error
		wantRetry bool
	}{
		{"throttled", &smithy.GenericAPIError{Code: "Throttling", Message: "Rate exceeded"}, true},
		{"server fault", &smithy.GenericAPIError{Code: "InternalError", Fault: smithy.FaultServer}, true},
		{"not authorized", &smithy.GenericAPIError{Code: "AuthorizationError", Message: "not authorized to perform SNS:Publish", Fault: smithy.FaultClient}, false},
		{"topic gone", &smithy.GenericAPIError{Code: "NotFound", Message: "Topic does not exist", Fault: smithy.FaultClient}, false},
		{"KMS key disabled", &smithy.GenericAPIError{Code: "KMSDisabled", Fault: smithy.FaultClient}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := &fakeSNS{err: tt.err}
			n, err := notify.NewSNS(fake, arn)
			if err != nil {
				t.Fatal(err)
			}
			err = n.Notify(context.Background(), failed())
			var ae smithy.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("Notify error = %v, want the SDK's APIError inside", err)
			}
			if !strings.Contains(err.Error(), arn) {
				t.Errorf("error does not name the topic: %v", err)
			}
			if got := notify.Retryable(err); got != tt.wantRetry {
				t.Errorf("Retryable = %v, want %v", got, tt.wantRetry)
			}
			if len(fake.calls) != 1 {
				t.Errorf("Publish called %d times, want 1 (the SDK client retries)", len(fake.calls))
			}
		})
	}
}

func TestSNSPublishInput(t *testing.T) {
	fake := &fakeSNS{}
	n, err := notify.NewSNS(fake, "arn:aws:sns:eu-west-1:111122223333:alerts")
	if err != nil {
		t.Fatal(err)
	}
	m := failed()
	if err := n.Notify(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	in := fake.calls[0]
	if aws.ToString(in.TopicArn) != "arn:aws:sns:eu-west-1:111122223333:alerts" ||
		aws.ToString(in.Subject) != m.Subject() || aws.ToString(in.Message) != m.Text() {
		t.Errorf("PublishInput = topic %q subject %q message %q", aws.ToString(in.TopicArn), aws.ToString(in.Subject), aws.ToString(in.Message))
	}
	want := map[string]string{"kind": "tableau_refresh_failed", "dbt_job_id": "70", "dbt_run_id": "9001", "tableau_item_id": "3f1c", "tableau_job_id": "8d6e"}
	if len(in.MessageAttributes) != len(want) {
		t.Errorf("attributes = %d, want %d", len(in.MessageAttributes), len(want))
	}
	for k, v := range want {
		a := in.MessageAttributes[k]
		if aws.ToString(a.DataType) != "String" || aws.ToString(a.StringValue) != v {
			t.Errorf("attribute %s = %s %q, want String %q", k, aws.ToString(a.DataType), aws.ToString(a.StringValue), v)
		}
	}
	if in.MessageGroupId != nil || in.MessageDeduplicationId != nil {
		t.Error("standard topic got FIFO fields")
	}
}

func TestNewSNSValidates(t *testing.T) {
	tests := []struct {
		name string
		api  notify.SNSAPI
		arn  string
	}{
		{"nil client", nil, "arn:aws:sns:eu-west-1:111122223333:alerts"},
		{"empty ARN", &fakeSNS{}, ""},
		{"not an ARN", &fakeSNS{}, "alerts"},
		{"other service", &fakeSNS{}, "arn:aws:sqs:eu-west-1:111122223333:alerts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := notify.NewSNS(tt.api, tt.arn); err == nil {
				t.Error("NewSNS accepted it")
			}
		})
	}
}
