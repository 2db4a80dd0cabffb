package dynamo

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
)

var (
	_ state.TableauJobs = (*Table)(nil)
	_ state.Outbox      = (*Table)(nil)
)

// Open jobs and notifications each live in one partition: there are few at a
// time and the follow-up lists them all. Closed and sent items stay, marked,
// until their TTL, so that a late duplicate cannot reopen or resend them.
const (
	jobsPK       = "TABLEAU#JOBS"
	jobSKPrefix  = "JOB#"
	outboxPK     = "NOTIFY"
	jobOpen      = "OPEN"
	jobClosed    = "CLOSED"
	jobRetention = 7 * 24 * time.Hour
	// Notifications are remembered for longer than any failure is reported
	// again (a Tableau webhook retry, a late follow-up).
	outboxRetention = 30 * 24 * time.Hour

	attrRunTarget    = "target"
	attrTargetName   = "target_name"
	attrItemKind     = "item_kind"
	attrItemID       = "item_id"
	attrQueuedAt     = "queued_at"
	attrRefreshState = "refresh_state"
	attrNotes        = "notes"
	attrFinishedAt   = "finished_at"
	attrPayload      = "payload"
	attrAttempts     = "attempts"
	attrNotBefore    = "not_before" // epoch milliseconds
	attrCreatedAt2   = "created_at"
	attrLastError    = "last_error"
)

func ts(t time.Time) types.AttributeValue { return s(t.UTC().Format(time.RFC3339Nano)) }

func getTime(item map[string]types.AttributeValue, name string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, getS(item, name))
	return t
}

// OpenJob implements state.TableauJobs.
func (t *Table) OpenJob(ctx context.Context, j state.TableauJob) error {
	item := key(jobsPK, jobSKPrefix+j.JobID)
	item[attrPhase] = s(jobOpen)
	item[attrRunID] = s(j.Run.RunID)
	item[attrRunTarget] = s(j.Run.Target)
	item[attrDBTJob] = s(j.DBTJobID)
	item[attrTargetName] = s(j.TargetName)
	item[attrItemKind] = s(j.ItemKind)
	item[attrItemID] = s(j.ItemID)
	item[attrQueuedAt] = ts(j.QueuedAt)
	item[attrExpiresAt] = n(t.now().Add(jobRetention).Unix())
	_, err := t.api.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(t.name), Item: item,
		ConditionExpression:      aws.String("attribute_not_exists(#pk)"),
		ExpressionAttributeNames: map[string]string{"#pk": attrPK},
	})
	if _, dup := conditionFailed(err); dup {
		return nil
	}
	if err != nil {
		return fmt.Errorf("record Tableau job %s: %w", j.JobID, err)
	}
	return nil
}

func decodeJob(it map[string]types.AttributeValue) state.TableauJob {
	return state.TableauJob{
		JobID:      strings.TrimPrefix(getS(it, attrSK), jobSKPrefix),
		Run:        state.Key{RunID: getS(it, attrRunID), Target: getS(it, attrRunTarget)},
		DBTJobID:   getS(it, attrDBTJob),
		TargetName: getS(it, attrTargetName),
		ItemKind:   getS(it, attrItemKind),
		ItemID:     getS(it, attrItemID),
		QueuedAt:   getTime(it, attrQueuedAt),
	}
}

// OpenJobs implements state.TableauJobs.
func (t *Table) OpenJobs(ctx context.Context) ([]state.TableauJob, error) {
	items, err := t.query(ctx, jobsPK, "#phase = :open", map[string]string{"#phase": attrPhase},
		map[string]types.AttributeValue{":open": s(jobOpen)})
	if err != nil {
		return nil, fmt.Errorf("list open Tableau jobs: %w", err)
	}
	jobs := make([]state.TableauJob, 0, len(items))
	for _, it := range items {
		jobs = append(jobs, decodeJob(it))
	}
	sort.Slice(jobs, func(a, b int) bool { return jobs[a].QueuedAt.Before(jobs[b].QueuedAt) })
	return jobs, nil
}

// LatestJob implements state.TableauJobs.
func (t *Table) LatestJob(ctx context.Context, itemID string) (*state.TableauJob, string, error) {
	items, err := t.query(ctx, jobsPK, "#item = :item", map[string]string{"#item": attrItemID},
		map[string]types.AttributeValue{":item": s(itemID)})
	if err != nil {
		return nil, "", fmt.Errorf("find Tableau jobs of item %s: %w", itemID, err)
	}
	var latest map[string]types.AttributeValue
	for _, it := range items {
		if latest == nil || getTime(it, attrQueuedAt).After(getTime(latest, attrQueuedAt)) {
			latest = it
		}
	}
	if latest == nil {
		return nil, "", nil
	}
	j := decodeJob(latest)
	return &j, getS(latest, attrRefreshState), nil
}

// CloseJob implements state.TableauJobs: a conditional update closes the job
// (only one caller wins), then the end is written on the run's target.
func (t *Table) CloseJob(ctx context.Context, j state.TableauJob, st, notes string) (bool, error) {
	now := t.now()
	_, err := t.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(t.name),
		Key:                       key(jobsPK, jobSKPrefix+j.JobID),
		UpdateExpression:          aws.String("SET #phase = :closed, #state = :state, #fin = :fin"),
		ConditionExpression:       aws.String("#phase = :open"),
		ExpressionAttributeNames:  map[string]string{"#phase": attrPhase, "#state": attrRefreshState, "#fin": attrFinishedAt},
		ExpressionAttributeValues: map[string]types.AttributeValue{":closed": s(jobClosed), ":open": s(jobOpen), ":state": s(st), ":fin": ts(now)},
	})
	if _, lost := conditionFailed(err); lost {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("close Tableau job %s: %w", j.JobID, err)
	}
	_, err = t.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(t.name),
		Key:                       idemKey(j.Run),
		UpdateExpression:          aws.String("SET #state = :state, #notes = :notes, #fin = :fin"),
		ConditionExpression:       aws.String("attribute_exists(#pk)"),
		ExpressionAttributeNames:  map[string]string{"#state": attrRefreshState, "#notes": attrNotes, "#fin": attrFinishedAt, "#pk": attrPK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":state": s(st), ":notes": s(notes), ":fin": ts(now)},
	})
	if _, gone := conditionFailed(err); gone {
		return true, nil // the run's record expired; the job's end is still known
	}
	if err != nil {
		return true, fmt.Errorf("record the end of Tableau job %s on %s: %w", j.JobID, j.Run, err)
	}
	return true, nil
}

// RunSummary implements state.TableauJobs.
func (t *Table) RunSummary(ctx context.Context, runID string) ([]state.TargetSummary, error) {
	items, err := t.query(ctx, runPrefix+runID, "", nil, nil)
	if err != nil {
		return nil, fmt.Errorf("summarise run %s: %w", runID, err)
	}
	var out []state.TargetSummary
	for _, it := range items {
		target, ok := strings.CutPrefix(getS(it, attrSK), targetPrefix)
		if !ok {
			continue
		}
		out = append(out, state.TargetSummary{
			Record:       decodeRecord(state.Key{RunID: runID, Target: target}, it),
			RefreshState: getS(it, attrRefreshState),
			Notes:        getS(it, attrNotes),
			FinishedAt:   getTime(it, attrFinishedAt),
		})
	}
	return out, nil
}

// Enqueue implements state.Outbox.
func (t *Table) Enqueue(ctx context.Context, nt state.Notification) (bool, error) {
	now := t.now()
	item := key(outboxPK, nt.Key)
	item[attrStatus] = s(state.NotifyPending)
	item[attrPayload] = &types.AttributeValueMemberB{Value: nt.Payload}
	item[attrAttempts] = n(0)
	item[attrNotBefore] = n(0)
	item[attrCreatedAt2] = ts(now)
	item[attrExpiresAt] = n(now.Add(outboxRetention).Unix())
	_, err := t.api.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(t.name), Item: item,
		ConditionExpression:      aws.String("attribute_not_exists(#pk)"),
		ExpressionAttributeNames: map[string]string{"#pk": attrPK},
	})
	if _, dup := conditionFailed(err); dup {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("queue notification %s: %w", nt.Key, err)
	}
	return true, nil
}

// Claim implements state.Outbox.
func (t *Table) Claim(ctx context.Context, k string, holdUntil time.Time) (int, bool, error) {
	out, err := t.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		ReturnValues:             types.ReturnValueUpdatedNew,
		TableName:                aws.String(t.name),
		Key:                      key(outboxPK, k),
		UpdateExpression:         aws.String("SET #nb = :hold ADD #att :one"),
		ConditionExpression:      aws.String("#status = :pending AND #nb <= :nowms"),
		ExpressionAttributeNames: map[string]string{"#nb": attrNotBefore, "#att": attrAttempts, "#status": attrStatus},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":hold": n(holdUntil.UnixMilli()), ":one": n(1), ":pending": s(state.NotifyPending), ":nowms": n(t.now().UnixMilli()),
		},
	})
	if _, held := conditionFailed(err); held {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("claim notification %s: %w", k, err)
	}
	return int(getN(out.Attributes, attrAttempts)), true, nil
}

// Delivered implements state.Outbox.
func (t *Table) Delivered(ctx context.Context, k string) error {
	return t.setOutbox(ctx, k, "SET #status = :st", map[string]string{"#status": attrStatus},
		map[string]types.AttributeValue{":st": s(state.NotifySent)})
}

// Failed implements state.Outbox.
func (t *Table) Failed(ctx context.Context, k, reason string, retryAt time.Time, giveUp bool) error {
	st := state.NotifyPending
	if giveUp {
		st = state.NotifyGaveUp
	}
	return t.setOutbox(ctx, k, "SET #status = :st, #err = :err, #nb = :nb",
		map[string]string{"#status": attrStatus, "#err": attrLastError, "#nb": attrNotBefore}, map[string]types.AttributeValue{
			":st": s(st), ":err": s(reason), ":nb": n(retryAt.UnixMilli()),
		})
}

func (t *Table) setOutbox(ctx context.Context, k, update string, names map[string]string, values map[string]types.AttributeValue) error {
	names["#pk"] = attrPK
	_, err := t.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(t.name),
		Key:                       key(outboxPK, k),
		UpdateExpression:          aws.String(update),
		ConditionExpression:       aws.String("attribute_exists(#pk)"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	})
	if _, gone := conditionFailed(err); gone {
		return nil
	}
	if err != nil {
		return fmt.Errorf("update notification %s: %w", k, err)
	}
	return nil
}

// Pending implements state.Outbox.
func (t *Table) Pending(ctx context.Context, now time.Time) ([]state.Notification, error) {
	items, err := t.query(ctx, outboxPK, "#status = :pending AND #nb <= :nowms",
		map[string]string{"#status": attrStatus, "#nb": attrNotBefore},
		map[string]types.AttributeValue{":pending": s(state.NotifyPending), ":nowms": n(now.UnixMilli())})
	if err != nil {
		return nil, fmt.Errorf("list pending notifications: %w", err)
	}
	out := make([]state.Notification, 0, len(items))
	for _, it := range items {
		var payload []byte
		if b, ok := it[attrPayload].(*types.AttributeValueMemberB); ok {
			payload = b.Value
		}
		out = append(out, state.Notification{
			Key: getS(it, attrSK), Status: getS(it, attrStatus), Payload: payload,
			Attempts: int(getN(it, attrAttempts)), NotBefore: time.UnixMilli(getN(it, attrNotBefore)),
			CreatedAt: getTime(it, attrCreatedAt2), LastError: getS(it, attrLastError),
		})
	}
	sort.Slice(out, func(a, b int) bool { return out[a].CreatedAt.Before(out[b].CreatedAt) })
	return out, nil
}

// query reads a whole partition, optionally filtered.
func (t *Table) query(ctx context.Context, pk, filter string, names map[string]string, values map[string]types.AttributeValue) ([]map[string]types.AttributeValue, error) {
	allNames := map[string]string{"#pk": attrPK}
	for k, v := range names {
		allNames[k] = v
	}
	allValues := map[string]types.AttributeValue{":pk": s(pk)}
	for k, v := range values {
		allValues[k] = v
	}
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(t.name),
		KeyConditionExpression:    aws.String("#pk = :pk"),
		ExpressionAttributeNames:  allNames,
		ExpressionAttributeValues: allValues,
		ConsistentRead:            aws.Bool(true),
	}
	if filter != "" {
		in.FilterExpression = aws.String(filter)
	}
	var items []map[string]types.AttributeValue
	for {
		out, err := t.api.Query(ctx, in)
		if err != nil {
			return nil, err
		}
		items = append(items, out.Items...)
		if len(out.LastEvaluatedKey) == 0 {
			return items, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}
