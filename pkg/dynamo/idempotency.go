package dynamo

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
)

var _ state.Idempotency = (*Table)(nil)

const (
	runPrefix    = "RUN#"
	targetPrefix = "TARGET#"
	// A webhook delivery already handled (Tableau's duplicates).
	deliveryPrefix = "DELIVERY#"
	deliverySK     = "DELIVERY"

	attrStatus          = "status"
	attrOwner           = "owner"
	attrDBTJob          = "dbt_job_id"
	attrSource          = "source"
	attrWhy             = "why"
	attrOutcome         = "outcome"
	attrJobID           = "tableau_job_id"
	attrInProgressUntil = "in_progress_until" // epoch milliseconds
)

func idemKey(k state.Key) map[string]types.AttributeValue {
	if k.Delivery != "" {
		return key(deliveryPrefix+k.Delivery, deliverySK)
	}
	return key(runPrefix+k.RunID, targetPrefix+k.Target)
}

// Begin implements state.Idempotency with one conditional PutItem: it succeeds
// when no live record holds the key. TTL deletion can lag by up to two days,
// so expiry is part of the condition rather than left to DynamoDB.
func (t *Table) Begin(ctx context.Context, c state.Claim) error {
	now := t.now()
	item := idemKey(c.Key)
	item[attrStatus] = s(string(state.StatusInProgress))
	item[attrOwner] = s(c.Owner)
	item[attrDBTJob] = s(c.DBTJobID)
	if c.Source != "" {
		item[attrSource] = s(c.Source)
	}
	if c.Why != "" {
		item[attrWhy] = s(c.Why)
	}
	item[attrInProgressUntil] = n(c.HoldUntil.UnixMilli())
	item[attrExpiresAt] = n(now.Add(c.Retention).Unix())
	item[attrUpdatedAt] = s(now.UTC().Format(time.RFC3339Nano))
	token := writeToken()
	item[attrWriteToken] = s(token)
	_, err := t.api.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(t.name),
		Item:      item,
		ConditionExpression: aws.String("attribute_not_exists(#pk) OR #exp <= :now OR " +
			"(#status = :inprogress AND #ipu <= :nowms)"),
		ExpressionAttributeNames: map[string]string{
			"#pk": attrPK, "#exp": attrExpiresAt, "#status": attrStatus, "#ipu": attrInProgressUntil,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":now": n(now.Unix()), ":nowms": n(now.UnixMilli()), ":inprogress": s(string(state.StatusInProgress)),
		},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if old, ok := conditionFailed(err); ok {
		if ownWrite(old, token) {
			return nil // claimed by an attempt whose reply was lost
		}
		existing := state.Record{Key: c.Key, Status: state.StatusInProgress}
		if old != nil {
			existing = decodeRecord(c.Key, old)
		}
		return &state.ClaimedError{Existing: existing}
	}
	if err != nil {
		return fmt.Errorf("claim %s: %w", c.Key, err)
	}
	return nil
}

// Complete implements state.Idempotency.
func (t *Table) Complete(ctx context.Context, k state.Key, owner string, outcome state.Outcome, jobID string) error {
	return t.runComplete(ctx, k, owner, outcome, jobID, t.completeInput(k, owner, outcome, jobID))
}

// runComplete runs a completion of owner's claim. A completion is retried
// twice over — by the SDK after a lost reply, and by the refresher until
// it is recorded — so a completed record that owner already gave this
// outcome and job counts as done: the owner is random per claim, and no
// one else can complete a claim it held.
func (t *Table) runComplete(ctx context.Context, k state.Key, owner string, outcome state.Outcome, jobID string, in *dynamodb.UpdateItemInput) error {
	_, err := t.api.UpdateItem(ctx, in)
	if old, ok := conditionFailed(err); ok {
		if r := decodeRecord(k, old); old != nil && r.Owner == owner && r.Status == state.StatusCompleted &&
			r.Outcome == outcome && r.JobID == jobID {
			return nil
		}
		return fmt.Errorf("complete %s: %w by this invocation", k, state.ErrNotHeld)
	}
	if err != nil {
		return fmt.Errorf("complete %s: %w", k, err)
	}
	return nil
}

// completeInput is the update that completes a claim the owner still holds.
func (t *Table) completeInput(k state.Key, owner string, outcome state.Outcome, jobID string) *dynamodb.UpdateItemInput {
	return &dynamodb.UpdateItemInput{
		TableName:           aws.String(t.name),
		Key:                 idemKey(k),
		UpdateExpression:    aws.String("SET #status = :completed, #outcome = :outcome, #job = :job, #upd = :upd"),
		ConditionExpression: aws.String("#owner = :owner AND #status = :inprogress"),
		ExpressionAttributeNames: map[string]string{
			"#status": attrStatus, "#outcome": attrOutcome, "#job": attrJobID, "#upd": attrUpdatedAt, "#owner": attrOwner,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":completed": s(string(state.StatusCompleted)), ":outcome": s(string(outcome)), ":job": s(jobID),
			":upd": s(t.now().UTC().Format(time.RFC3339Nano)), ":owner": s(owner),
			":inprogress": s(string(state.StatusInProgress)),
		},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
}

// Release implements state.Idempotency.
func (t *Table) Release(ctx context.Context, k state.Key, owner string) error {
	_, err := t.api.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 aws.String(t.name),
		Key:                       idemKey(k),
		ConditionExpression:       aws.String("#owner = :owner AND #status = :inprogress"),
		ExpressionAttributeNames:  map[string]string{"#owner": attrOwner, "#status": attrStatus},
		ExpressionAttributeValues: map[string]types.AttributeValue{":owner": s(owner), ":inprogress": s(string(state.StatusInProgress))},
	})
	if _, ok := conditionFailed(err); ok {
		return nil
	}
	if err != nil {
		return fmt.Errorf("release %s: %w", k, err)
	}
	return nil
}

// Get implements state.Idempotency.
func (t *Table) Get(ctx context.Context, k state.Key) (*state.Record, error) {
	out, err := t.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(t.name), Key: idemKey(k), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", k, err)
	}
	if out.Item == nil {
		return nil, nil
	}
	r := decodeRecord(k, out.Item)
	return &r, nil
}

func decodeRecord(k state.Key, item map[string]types.AttributeValue) state.Record {
	upd, _ := time.Parse(time.RFC3339Nano, getS(item, attrUpdatedAt))
	return state.Record{
		Key:             k,
		Status:          state.Status(getS(item, attrStatus)),
		Owner:           getS(item, attrOwner),
		DBTJobID:        getS(item, attrDBTJob),
		Source:          getS(item, attrSource),
		Why:             getS(item, attrWhy),
		Outcome:         state.Outcome(getS(item, attrOutcome)),
		JobID:           getS(item, attrJobID),
		InProgressUntil: time.UnixMilli(getN(item, attrInProgressUntil)),
		ExpiresAt:       time.Unix(getN(item, attrExpiresAt), 0),
		UpdatedAt:       upd,
	}
}
