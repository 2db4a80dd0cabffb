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
//	pk STATUS                        sk BUCKET#<n>            the targets' last runs and data quality
//	                                                          warnings, for the status page (status.go)
package dynamo

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// API is the part of the DynamoDB client the stores use.
type API interface {
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
}

// Attribute names shared by every kind of item.
const (
	attrPK        = "pk"
	attrSK        = "sk"
	attrExpiresAt = "expires_at" // TTL, epoch seconds
	attrUpdatedAt = "updated_at"
)

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
