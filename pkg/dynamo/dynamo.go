// Package dynamo keeps the bridge's state in one DynamoDB table.
//
// The table has a string partition key "pk" and sort key "sk", and a TTL on
// the number attribute "expires_at". Items are told apart by typed key
// prefixes, so later kinds of record join the same table:
//
//	pk RUN#<dbt run id>              sk TARGET#<target key>   refresh idempotency, its Tableau
//	                                                          job and how it ended (indexed by
//	                                                          open-jobs and item-jobs)
//	pk TABLEAU#SESSION#<key>         sk SESSION | LOCK        shared Tableau session
//	pk SCHEDULER#RUNS                sk JOB#<dbt job id>      scheduler's dbt run in flight
//	pk NOTIFY                        sk <failure key>         notification outbox
//	pk DELIVERY#<sender>:<hash>      sk DELIVERY              a webhook delivery handled (duplicates)
//	pk LINEAGE#BUILD                 sk STATE                 where the lineage index build stands
//	pk LINEAGE#<generation>#<table>  sk TABLE                 the content that reads a table
//	pk DEFERRED#<shard>              sk RUN#<id>#TARGET#<key> a target to queue at the follow-up
//	pk STATUS                        sk BUCKET#<n>            the targets' last runs and data quality
//	                                                          warnings, for the status page (status.go)
package dynamo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/remote"
)

// API is the part of the DynamoDB client the stores use.
type API interface {
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
}

// Attribute names shared by every kind of item.
const (
	attrPK        = "pk"
	attrSK        = "sk"
	attrExpiresAt = "expires_at" // TTL, epoch seconds
	attrUpdatedAt = "updated_at"
)

// How a client from NewClient retries. The SDK's defaults suit no service
// in particular: three attempts, the second after up to 2 s, the third up
// to 4 s later — most of the 8 s the webhook has to answer dbt. DynamoDB
// answers in milliseconds and asks for short, jittered waits (the SDK's
// next retry behaviour, AWS_NEW_RETRIES_2026, gives it four attempts and
// a 25 ms base as well).
const (
	// AttemptTimeout bounds each attempt of a call. The SDK sets no such
	// bound of its own: an attempt whose reply never comes waits until the
	// caller's context ends, which for a claim is the whole time dbt
	// allows the reply. An attempt unanswered this long is retried instead
	// — possibly after it was applied, which is why every conditional
	// write here recognises its own earlier attempt (attrWriteToken).
	AttemptTimeout = 2 * time.Second
	// MaxAttempts is the number of attempts of a call, the first included.
	MaxAttempts = 4
	// Waits between attempts: full jitter up to base·2^(n-1), capped;
	// throttling waits longer so the partition can recover. There is no
	// client-side retry quota (the SDK's token bucket): it counts a retry
	// that ends in ConditionalCheckFailed — for these stores a normal
	// answer, and the expected one when the attempt before was applied —
	// as a failed retry and never refunds it, nor rewards a call that
	// ends so. Under throttling the bucket drains and every fault then
	// fails at once (TestRetriesOutlastConditionalFailures).
	retryBase         = 25 * time.Millisecond
	retryThrottleBase = 100 * time.Millisecond
	retryMaxWait      = time.Second
)

// NewClient returns a DynamoDB client for cfg that retries as above, each
// attempt bounded by AttemptTimeout; optFns apply after that.
func NewClient(cfg aws.Config, optFns ...func(*dynamodb.Options)) *dynamodb.Client {
	tune := func(o *dynamodb.Options) {
		// The SDK has resolved o.HTTPClient by now; a client the caller
		// built itself is left as it is.
		if c, ok := o.HTTPClient.(*awshttp.BuildableClient); ok {
			o.HTTPClient = c.WithTimeout(AttemptTimeout)
		}
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = MaxAttempts
			so.Backoff = retryWaits{throttle: retry.IsErrorThrottles(so.Throttles)}
			so.RateLimiter = ratelimit.None
		})
	}
	return dynamodb.NewFromConfig(cfg, append([]func(*dynamodb.Options){tune}, optFns...)...)
}

// retryWaits is the SDK's BackoffDelayer for NewClient's clients.
type retryWaits struct{ throttle retry.IsErrorThrottle }

func (w retryWaits) BackoffDelay(attempt int, err error) (time.Duration, error) {
	base := retryBase
	if w.throttle.IsErrorThrottle(err) == aws.TrueTernary {
		base = retryThrottleBase
	}
	return remote.Full(base, retryMaxWait, attempt), nil
}

// Table is the state table.
type Table struct {
	api  API
	name string
	now  func() time.Time
}

// Option configures a Table.
type Option func(*Table)

// WithClock sets the clock the table's records are timed by: expiries,
// claims' deadlines and leases (default the wall clock).
func WithClock(now func() time.Time) Option { return func(t *Table) { t.now = now } }

// New returns the table called name.
func New(api API, name string, opts ...Option) (*Table, error) {
	if api == nil || name == "" {
		return nil, errors.New("dynamo: a client and a table name are required")
	}
	t := &Table{api: api, name: name, now: time.Now}
	for _, opt := range opts {
		opt(t)
	}
	return t, nil
}

// CreateTable creates a table with the layout the stores expect and its TTL,
// for tests and local runs; template.yaml declares the same for AWS.
func CreateTable(ctx context.Context, c *dynamodb.Client, name string) error {
	_, err := c.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName: aws.String(name),
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(attrPK), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(attrSK), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(attrOpenJob), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(attrJobItem), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(attrQueuedAt), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(attrPK), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(attrSK), KeyType: types.KeyTypeRange},
		},
		BillingMode: types.BillingModePayPerRequest,
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{
			jobIndex(IndexOpenJobs, attrOpenJob),
			jobIndex(IndexItemJobs, attrJobItem),
		},
	})
	if err != nil {
		return fmt.Errorf("create table %s: %w", name, err)
	}
	_, err = c.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName:               aws.String(name),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String(attrExpiresAt), Enabled: aws.Bool(true)},
	})
	if err != nil {
		return fmt.Errorf("enable TTL on %s: %w", name, err)
	}
	return nil
}

// jobIndex is a sparse index of target records with a Tableau job, keyed by
// attr and sorted by the time the job was queued.
func jobIndex(name, attr string) types.GlobalSecondaryIndex {
	return types.GlobalSecondaryIndex{
		IndexName: aws.String(name),
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(attr), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(attrQueuedAt), KeyType: types.KeyTypeRange},
		},
		Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
	}
}

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func n(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: s(pk), attrSK: s(sk)}
}

func getS(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func getN(item map[string]types.AttributeValue, name string) int64 {
	if v, ok := item[name].(*types.AttributeValueMemberN); ok {
		i, _ := strconv.ParseInt(v.Value, 10, 64)
		return i
	}
	return 0
}

// conditionFailed returns the item DynamoDB reported with a failed condition
// (nil when it sent none) and whether err was such a failure.
func conditionFailed(err error) (map[string]types.AttributeValue, bool) {
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return ccf.Item, true
	}
	return nil, false
}

// Every conditional write but a claim's completion (which has the claim's
// owner to go by, see runComplete) stamps the item it writes with a random
// token of the call, in attrWriteToken. The SDK retries a call whose reply
// was lost (an attempt that timed out, a 500) with the same request, and
// when the lost attempt had been applied, the retry fails its condition
// against our own write. The item DynamoDB returns with the failure
// (ReturnValuesOnConditionCheckFailure ALL_OLD) then carries our token, and
// the call reports what the first attempt did. A later write by anyone
// replaces the token, so a repeated call, or a write that lost the race,
// is never taken for our own.
const attrWriteToken = "write_token"

// writeToken returns a new token for one conditional write.
func writeToken() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail on supported platforms
	return hex.EncodeToString(b)
}

// ownWrite reports whether old, the item a failed condition returned, is
// the one this call (token) wrote.
func ownWrite(old map[string]types.AttributeValue, token string) bool {
	return old != nil && getS(old, attrWriteToken) == token
}
