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

// A queued Tableau job is written on its run's target record, in the same
// update that completes the claim, so that recording it costs no request of
// its own. Two sparse indexes find it again: "open-jobs" holds the records
// whose job is still open (the attribute is removed when the job ends), and
// "item-jobs" every record with a job, by Tableau item.
//
// Notifications live in one partition: there are few at a time and the
// follow-up lists them all. Sent ones stay, marked, until their TTL, so that
// a late duplicate cannot resend them.
const (
	// IndexOpenJobs and IndexItemJobs are the table's global secondary
	// indexes; template.yaml declares them too.
	IndexOpenJobs = "open-jobs"
	IndexItemJobs = "item-jobs"

	outboxPK = "NOTIFY"
	jobOpen  = "OPEN"
	// Notifications are remembered for longer than any failure is reported
	// again (a Tableau webhook retry, a late follow-up).
	outboxRetention = 30 * 24 * time.Hour

	attrOpenJob      = "open_job" // "OPEN" while the job is open; the open-jobs key
	attrJobItem      = "job_item" // the Tableau item LUID; the item-jobs key
	attrQueuedAt     = "queued_at"
	attrTargetName   = "target_name"
	attrItemKind     = "item_kind"
	attrRefreshState = "refresh_state"
	attrNotes        = "notes"
	attrFinishedAt   = "finished_at"
	attrPayload      = "payload"
	attrAttempts     = "attempts"
	attrNotBefore    = "not_before" // epoch milliseconds
	attrCreatedAt2   = "created_at"
	attrLastError    = "last_error"
	// A job the target rides on (409093), and the one more refresh it may
	// call for.
	attrRequeue     = "requeue"     // "DUE" while one more refresh is due once the job ends
	attrIncremental = "incremental" // "1": the target asked for an incremental refresh
	attrRodeOn      = "rode_on"
	requeueDue      = "DUE"
	// attrSite is the content URL of a job's site, absent for the default
	// site (so that records written before sites were known read right).
	attrSite = "site"
)

func ts(t time.Time) types.AttributeValue { return s(t.UTC().Format(time.RFC3339Nano)) }

func getTime(item map[string]types.AttributeValue, name string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, getS(item, name))
	return t
}

// CompleteJob implements state.TableauJobs: one conditional update completes
// the claim and opens the job.
func (t *Table) CompleteJob(ctx context.Context, owner string, j state.TableauJob) error {
	outcome := j.Outcome
	if outcome == "" {
		outcome = state.OutcomeRefreshed
	}
	in := t.completeInput(j.Run, owner, outcome, j.JobID)
	*in.UpdateExpression += ", " + jobSet(in, j)
	if j.Requeue {
		*in.UpdateExpression += ", #requeue = :requeue"
		in.ExpressionAttributeNames["#requeue"] = attrRequeue
		in.ExpressionAttributeValues[":requeue"] = s(requeueDue)
	}
	return t.runComplete(ctx, j.Run, owner, outcome, j.JobID, in)
}

// jobSet adds j's attributes to in and returns the SET clauses that write
// them.
func jobSet(in *dynamodb.UpdateItemInput, j state.TableauJob) string {
	names := map[string]string{"#open": attrOpenJob, "#jitem": attrJobItem, "#queued": attrQueuedAt, "#tname": attrTargetName, "#kind": attrItemKind}
	values := map[string]types.AttributeValue{
		":open": s(jobOpen), ":jitem": s(j.ItemID), ":queued": ts(j.QueuedAt), ":tname": s(j.TargetName), ":kind": s(j.ItemKind),
	}
	set := "#open = :open, #jitem = :jitem, #queued = :queued, #tname = :tname, #kind = :kind"
	if j.Incremental {
		names["#incr"], values[":incr"] = attrIncremental, s("1")
		set += ", #incr = :incr"
	}
	// The dbt run's page and finish: the status page shows them, and a ride
	// (RodeOn, Requeue) is judged against the finish.
	if j.DBTRunURL != "" {
		names["#dbturl"], values[":dbturl"] = attrDBTRunURL, s(j.DBTRunURL)
		set += ", #dbturl = :dbturl"
	}
	if !j.DBTFinishedAt.IsZero() {
		names["#dbtfin"], values[":dbtfin"] = attrDBTFinishedAt, ts(j.DBTFinishedAt)
		set += ", #dbtfin = :dbtfin"
	}
	if j.RodeOn != "" {
		names["#rode"], values[":rode"] = attrRodeOn, s(j.RodeOn)
		set += ", #rode = :rode"
	}
	if j.Site != "" {
		names["#site"], values[":site"] = attrSite, s(j.Site)
		set += ", #site = :site"
	}
	for k, v := range names {
		in.ExpressionAttributeNames[k] = v
	}
	for k, v := range values {
		in.ExpressionAttributeValues[k] = v
	}
	return set
}

// RequeueJob implements state.TableauJobs: one conditional update swaps the
// job on the target's record while prev is open there with one more
// refresh due.
func (t *Table) RequeueJob(ctx context.Context, prev, next state.TableauJob) (bool, error) {
	next.Run = prev.Run
	token := writeToken()
	in := &dynamodb.UpdateItemInput{
		TableName:           aws.String(t.name),
		Key:                 idemKey(prev.Run),
		ConditionExpression: aws.String("attribute_exists(#open) AND #job = :prev AND #requeue = :due"),
		ExpressionAttributeNames: map[string]string{
			"#job": attrJobID, "#requeue": attrRequeue, "#token": attrWriteToken, "#upd": attrUpdatedAt,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":prev": s(prev.JobID), ":due": s(requeueDue), ":next": s(next.JobID), ":token": s(token),
			":upd": s(t.now().UTC().Format(time.RFC3339Nano)),
		},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
	set := jobSet(in, next)
	in.UpdateExpression = aws.String("SET #job = :next, #token = :token, #upd = :upd, " + set + " REMOVE #requeue")
	_, err := t.api.UpdateItem(ctx, in)
	if old, lost := conditionFailed(err); lost {
		// Done by an attempt of ours whose reply was lost: still ours.
		return ownWrite(old, token), nil
	}
	if err != nil {
		return false, fmt.Errorf("requeue after Tableau job %s: %w", prev.JobID, err)
	}
	return true, nil
}

func decodeJob(it map[string]types.AttributeValue) state.TableauJob {
	return state.TableauJob{
		JobID:         getS(it, attrJobID),
		Run:           state.Key{RunID: strings.TrimPrefix(getS(it, attrPK), runPrefix), Target: strings.TrimPrefix(getS(it, attrSK), targetPrefix)},
		DBTJobID:      getS(it, attrDBTJob),
		TargetName:    getS(it, attrTargetName),
		ItemKind:      getS(it, attrItemKind),
		ItemID:        getS(it, attrJobItem),
		QueuedAt:      getTime(it, attrQueuedAt),
		Outcome:       state.Outcome(getS(it, attrOutcome)),
		Requeue:       getS(it, attrRequeue) == requeueDue,
		Incremental:   getS(it, attrIncremental) == "1",
		RodeOn:        getS(it, attrRodeOn),
		DBTRunURL:     getS(it, attrDBTRunURL),
		DBTFinishedAt: getTime(it, attrDBTFinishedAt),
		Site:          getS(it, attrSite),
	}
}

// OpenJobs implements state.TableauJobs. The index is eventually
// consistent: a job queued a moment ago may show up on the next look.
func (t *Table) OpenJobs(ctx context.Context) ([]state.TableauJob, error) {
	items, err := t.queryIndex(ctx, IndexOpenJobs, attrOpenJob, jobOpen, true, 0)
	if err != nil {
		return nil, fmt.Errorf("list open Tableau jobs: %w", err)
	}
	jobs := make([]state.TableauJob, 0, len(items))
	for _, it := range items {
		jobs = append(jobs, decodeJob(it))
	}
	return jobs, nil
}

// LatestJob implements state.TableauJobs.
func (t *Table) LatestJob(ctx context.Context, itemID string) (*state.TableauJob, state.Outcome, error) {
	items, err := t.queryIndex(ctx, IndexItemJobs, attrJobItem, itemID, false, 1)
	if err != nil {
		return nil, "", fmt.Errorf("find Tableau jobs of item %s: %w", itemID, err)
	}
	if len(items) == 0 {
		return nil, "", nil
	}
	j := decodeJob(items[0])
	return &j, state.Outcome(getS(items[0], attrRefreshState)), nil
}

// CloseJob implements state.TableauJobs: one conditional update ends the job
// on its target record (only one caller wins) and writes how it ended.
func (t *Table) CloseJob(ctx context.Context, j state.TableauJob, st state.Outcome, notes string) (bool, error) {
	token := writeToken()
	_, err := t.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           aws.String(t.name),
		Key:                 idemKey(j.Run),
		UpdateExpression:    aws.String("SET #state = :state, #notes = :notes, #fin = :fin, #token = :token REMOVE #open"),
		ConditionExpression: aws.String("attribute_exists(#open) AND #job = :job"),
		ExpressionAttributeNames: map[string]string{
			"#state": attrRefreshState, "#notes": attrNotes, "#fin": attrFinishedAt, "#open": attrOpenJob, "#job": attrJobID,
			"#token": attrWriteToken,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":state": s(string(st)), ":notes": s(notes), ":fin": ts(t.now()), ":job": s(j.JobID), ":token": s(token),
		},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if old, lost := conditionFailed(err); lost {
		// Closed by an attempt of ours whose reply was lost: still ours to
		// report.
		return ownWrite(old, token), nil
	}
	if err != nil {
		return false, fmt.Errorf("close Tableau job %s: %w", j.JobID, err)
	}
	return true, nil
}

// queryIndex reads a whole index partition in sort-key order (queued time),
// or its first limit items.
func (t *Table) queryIndex(ctx context.Context, index, keyAttr, value string, ascending bool, limit int32) ([]map[string]types.AttributeValue, error) {
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(t.name),
		IndexName:                 aws.String(index),
		KeyConditionExpression:    aws.String("#k = :v"),
		ExpressionAttributeNames:  map[string]string{"#k": keyAttr},
		ExpressionAttributeValues: map[string]types.AttributeValue{":v": s(value)},
		ScanIndexForward:          aws.Bool(ascending),
	}
	if limit > 0 {
		in.Limit = aws.Int32(limit)
	}
	return t.queryPages(ctx, in, int(limit))
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
			RefreshState: state.Outcome(getS(it, attrRefreshState)),
			Notes:        getS(it, attrNotes),
			FinishedAt:   getTime(it, attrFinishedAt),
			RodeOn:       getS(it, attrRodeOn),
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
	token := writeToken()
	item[attrWriteToken] = s(token)
	_, err := t.api.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(t.name), Item: item,
		ConditionExpression:                 aws.String("attribute_not_exists(#pk)"),
		ExpressionAttributeNames:            map[string]string{"#pk": attrPK},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if old, dup := conditionFailed(err); dup {
		// Queued by an attempt of ours whose reply was lost: new, and ours
		// to send.
		return ownWrite(old, token), nil
	}
	if err != nil {
		return false, fmt.Errorf("queue notification %s: %w", nt.Key, err)
	}
	return true, nil
}

// Claim implements state.Outbox.
func (t *Table) Claim(ctx context.Context, k string, holdUntil time.Time) (int, bool, error) {
	token := writeToken()
	out, err := t.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		ReturnValues:             types.ReturnValueUpdatedNew,
		TableName:                aws.String(t.name),
		Key:                      key(outboxPK, k),
		UpdateExpression:         aws.String("SET #nb = :hold, #token = :token ADD #att :one"),
		ConditionExpression:      aws.String("#status = :pending AND #nb <= :nowms"),
		ExpressionAttributeNames: map[string]string{"#nb": attrNotBefore, "#att": attrAttempts, "#status": attrStatus, "#token": attrWriteToken},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":hold": n(holdUntil.UnixMilli()), ":one": n(1), ":pending": s(state.NotifyPending), ":nowms": n(t.now().UnixMilli()),
			":token": s(token),
		},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if old, held := conditionFailed(err); held {
		if ownWrite(old, token) && getS(old, attrStatus) == state.NotifyPending {
			// Claimed by an attempt of ours whose reply was lost.
			return int(getN(old, attrAttempts)), true, nil
		}
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
			":st": s(string(st)), ":err": s(reason), ":nb": n(retryAt.UnixMilli()),
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
	return t.queryPages(ctx, in, 0)
}

// queryPages runs in page by page until DynamoDB has no more, or until it
// has returned at least limit items (0: no limit).
func (t *Table) queryPages(ctx context.Context, in *dynamodb.QueryInput, limit int) ([]map[string]types.AttributeValue, error) {
	var items []map[string]types.AttributeValue
	for {
		out, err := t.api.Query(ctx, in)
		if err != nil {
			return nil, err
		}
		items = append(items, out.Items...)
		if len(out.LastEvaluatedKey) == 0 || (limit > 0 && len(items) >= limit) {
			return items, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}
