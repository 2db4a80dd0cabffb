package notify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sns/types"
)

// SNSAPI is the part of the SNS client the notifier uses; *sns.Client
// implements it, and tests substitute a fake.
type SNSAPI interface {
	Publish(ctx context.Context, params *sns.PublishInput, optFns ...func(*sns.Options)) (*sns.PublishOutput, error)
}

var _ SNSAPI = (*sns.Client)(nil)

// SNS publishes messages to an Amazon SNS topic, from which they can reach
// e-mail, SMS, chat (via AWS Chatbot) or a queue. The body is Message.Text
// and the subject Message.Subject; message attributes carry the kind and
// IDs so that subscriptions can filter, e.g. {"kind": ["dbt_run_failed"]}.
// Retries are left to the SDK client's retryer.
//
// See https://docs.aws.amazon.com/sns/latest/api/API_Publish.html.
type SNS struct {
	api      SNSAPI
	topicARN string
	fifo     bool
}

var _ Notifier = (*SNS)(nil)

// NewSNS returns a notifier that publishes to topicARN through api.
func NewSNS(api SNSAPI, topicARN string) (*SNS, error) {
	if api == nil {
		return nil, errors.New("notify: SNS client is nil")
	}
	a, err := arn.Parse(topicARN)
	if err != nil || a.Service != "sns" || a.Resource == "" {
		return nil, fmt.Errorf("notify: %q is not an SNS topic ARN", topicARN)
	}
	return &SNS{api: api, topicARN: topicARN, fifo: strings.HasSuffix(a.Resource, ".fifo")}, nil
}

// String names the notifier by its topic.
func (s *SNS) String() string { return "sns(" + s.topicARN + ")" }

// Notify publishes m once.
func (s *SNS) Notify(ctx context.Context, m Message) error {
	text := m.Text()
	in := &sns.PublishInput{
		TopicArn:          aws.String(s.topicARN),
		Subject:           aws.String(m.Subject()),
		Message:           aws.String(text),
		MessageAttributes: snsAttributes(m),
	}
	if s.fifo {
		// FIFO topics require a group, and a deduplication ID unless the topic
		// derives one from the content; the same notification sent twice
		// within five minutes is then delivered once.
		sum := sha256.Sum256([]byte(string(m.Kind) + "\x00" + text))
		in.MessageGroupId = aws.String(groupID(m))
		in.MessageDeduplicationId = aws.String(hex.EncodeToString(sum[:]))
	}
	if _, err := s.api.Publish(ctx, in); err != nil {
		return &snsError{topicARN: s.topicARN, err: err}
	}
	return nil
}

// groupID orders a FIFO topic's messages per dbt job, the unit a reader
// follows.
func groupID(m Message) string {
	id := asciiLine(m.DBTJobID, 100)
	if id == "" {
		return "notify"
	}
	return "dbt-job-" + strings.ReplaceAll(id, " ", "_")
}

// snsAttributes returns the filterable attributes, skipping empty values
// (SNS rejects an attribute without a value).
func snsAttributes(m Message) map[string]types.MessageAttributeValue {
	attrs := map[string]types.MessageAttributeValue{}
	add := func(name, value string) {
		if value = cleanLine(value, 256); value != "" {
			attrs[name] = types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(value)}
		}
	}
	kind := string(m.Kind)
	if kind == "" {
		kind = "unknown"
	}
	add("kind", kind)
	add("dbt_job_id", m.DBTJobID)
	add("dbt_run_id", m.DBTRunID)
	add("tableau_item_id", m.TableauItemID)
	add("tableau_job_id", m.TableauJobID)
	return attrs
}
