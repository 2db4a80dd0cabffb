package dynamo

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
)

var _ state.TargetStatuses = (*Table)(nil)

// A target's status is one item holding its last state.HistoryLength runs,
// so that the status page reads every target with a few queries, however
// many runs the run records hold:
//
//	pk STATUS#<shard>   sk TARGET#<target key>   kind, name, project, item_id, url,
//	                                             runs (newest first), last_success,
//	                                             warning_*, version
//
// The items are spread over statusShards partitions, read concurrently.
// They are written when a refresh job ends (the follow-up, Tableau's
// webhook) or will not be queued (already queued, failed), with a read and
// a conditional write on version; never on the path of a refresh that is
// queued, which stays at two requests per target. A target not refreshed
// for statusRetention drops off the page.
const (
	statusPrefix    = "STATUS#"
	statusShards    = 4
	statusRetention = 90 * 24 * time.Hour
	// statusAttempts bounds the read-and-write rounds of one RecordRun
	// against concurrent writers of the same target.
	statusAttempts = 32

	attrDBTRunURL      = "dbt_run_url"
	attrDBTFinishedAt  = "dbt_finished_at"
	attrKind           = "kind"
	attrName           = "name"
	attrProject        = "project"
	attrItemID         = "item_id"
	attrURL            = "url"
	attrRuns           = "runs"
	attrLastSuccess    = "last_success"
	attrWarningID      = "warning_id"
	attrWarningReason  = "warning_reason"
	attrWarningRun     = "warning_run"
	attrVersion        = "version"
	runAttrRun         = "run"
	runAttrDBTJob      = "dbt_job"
	runAttrDBTURL      = "dbt_url"
	runAttrDBTFinished = "dbt_finished"
	runAttrAt          = "at"
	runAttrJob         = "job"
	runAttrQueued      = "queued"
	runAttrFinished    = "finished"
	runAttrResult      = "result"
	runAttrNotes       = "notes"
)

func statusKey(target string) map[string]types.AttributeValue {
	h := fnv.New32a()
	_, _ = h.Write([]byte(target)) // hash writes do not fail
	return key(statusPrefix+strconv.Itoa(int(h.Sum32()%statusShards)), targetPrefix+target)
}

// RecordRun implements state.TargetStatuses: a consistent read, the merge,
// and a write conditional on the version read, repeated when another
// writer came in between.
func (t *Table) RecordRun(ctx context.Context, target state.StatusTarget, r state.TargetRun) error {
	k := statusKey(target.Key)
	for attempt := range statusAttempts {
		out, err := t.api.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(t.name), Key: k, ConsistentRead: aws.Bool(true)})
		if err != nil {
			return fmt.Errorf("read status of %s: %w", target.Key, err)
		}
		var st state.TargetStatus
		version := int64(0)
		if out.Item != nil {
			st, version = decodeStatus(out.Item), getN(out.Item, attrVersion)
		}
		st.MergeRun(target, r)
		item := encodeStatus(k, st)
		now := t.now()
		item[attrVersion] = n(version + 1)
		item[attrUpdatedAt] = ts(now)
		item[attrExpiresAt] = n(now.Add(statusRetention).Unix())
		in := &dynamodb.PutItemInput{TableName: aws.String(t.name), Item: item, ExpressionAttributeNames: map[string]string{}}
		if version == 0 {
			in.ConditionExpression = aws.String("attribute_not_exists(#pk)")
			in.ExpressionAttributeNames["#pk"] = attrPK
		} else {
			in.ConditionExpression = aws.String("#v = :v")
			in.ExpressionAttributeNames["#v"] = attrVersion
			in.ExpressionAttributeValues = map[string]types.AttributeValue{":v": n(version)}
		}
		_, err = t.api.PutItem(ctx, in)
		if _, lost := conditionFailed(err); !lost {
			if err != nil {
				return fmt.Errorf("record run %s on status of %s: %w", r.RunID, target.Key, err)
			}
			return nil
		}
		// Another writer won the round: read again after a short, random
		// wait so that the losers do not collide again.
		wait := time.Duration(rand.Int64N(int64(5*time.Millisecond) * int64(attempt+1)))
		select {
		case <-ctx.Done():
			return fmt.Errorf("record run %s on status of %s: %w", r.RunID, target.Key, ctx.Err())
		case <-time.After(wait):
		}
	}
	return fmt.Errorf("record run %s on status of %s: %d concurrent writers in a row won; try again", r.RunID, target.Key, statusAttempts)
}

// SetWarning implements state.TargetStatuses. The version goes up, so that
// a RecordRun that read the item before cannot write the old warning back.
func (t *Table) SetWarning(ctx context.Context, target string, w state.QualityWarning) error {
	in := &dynamodb.UpdateItemInput{
		TableName:                 aws.String(t.name),
		Key:                       statusKey(target),
		ConditionExpression:       aws.String("attribute_exists(#pk)"),
		ExpressionAttributeNames:  map[string]string{"#pk": attrPK, "#v": attrVersion, "#id": attrWarningID, "#reason": attrWarningReason, "#run": attrWarningRun},
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": n(1)},
	}
	if w.ID == "" {
		in.UpdateExpression = aws.String("REMOVE #id, #reason, #run ADD #v :one")
	} else {
		in.UpdateExpression = aws.String("SET #id = :id, #reason = :reason, #run = :run ADD #v :one")
		in.ExpressionAttributeValues[":id"] = s(w.ID)
		in.ExpressionAttributeValues[":reason"] = s(string(w.Reason))
		in.ExpressionAttributeValues[":run"] = s(w.RunID)
	}
	_, err := t.api.UpdateItem(ctx, in)
	if _, missing := conditionFailed(err); missing {
		return nil
	}
	if err != nil {
		return fmt.Errorf("record the quality warning of %s: %w", target, err)
	}
	return nil
}

// TargetStatuses implements state.TargetStatuses: one query per shard, run
// concurrently, each read whole. Eventually consistent reads are enough
// for a page a person looks at, and cost half.
func (t *Table) TargetStatuses(ctx context.Context) ([]state.TargetStatus, error) {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		out  []state.TargetStatus
		errs []error
	)
	for shard := range statusShards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			items, err := t.queryPartition(ctx, statusPrefix+strconv.Itoa(shard))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			for _, it := range items {
				out = append(out, decodeStatus(it))
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("read target statuses: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// queryPartition reads a whole partition with eventually consistent reads.
func (t *Table) queryPartition(ctx context.Context, pk string) ([]map[string]types.AttributeValue, error) {
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(t.name),
		KeyConditionExpression:    aws.String("#pk = :pk"),
		ExpressionAttributeNames:  map[string]string{"#pk": attrPK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": s(pk)},
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

func encodeStatus(k map[string]types.AttributeValue, st state.TargetStatus) map[string]types.AttributeValue {
	item := map[string]types.AttributeValue{attrPK: k[attrPK], attrSK: k[attrSK]}
	for name, v := range map[string]string{
		attrKind: st.Kind, attrName: st.Name, attrProject: st.Project, attrItemID: st.ItemID, attrURL: st.URL,
		attrWarningID: st.Warning.ID, attrWarningReason: string(st.Warning.Reason), attrWarningRun: st.Warning.RunID,
	} {
		if v != "" {
			item[name] = s(v)
		}
	}
	runs := make([]types.AttributeValue, 0, len(st.Runs))
	for _, r := range st.Runs {
		runs = append(runs, encodeTargetRun(r))
	}
	item[attrRuns] = &types.AttributeValueMemberL{Value: runs}
	if st.LastSuccess != nil {
		item[attrLastSuccess] = encodeTargetRun(*st.LastSuccess)
	}
	return item
}

func encodeTargetRun(r state.TargetRun) types.AttributeValue {
	m := map[string]types.AttributeValue{}
	for name, v := range map[string]string{
		runAttrRun: r.RunID, runAttrDBTJob: r.DBTJobID, runAttrDBTURL: r.DBTRunURL, runAttrJob: r.JobID,
		runAttrResult: string(r.Result), runAttrNotes: r.Notes,
	} {
		if v != "" {
			m[name] = s(v)
		}
	}
	for name, v := range map[string]time.Time{
		runAttrDBTFinished: r.DBTFinishedAt, runAttrAt: r.At, runAttrQueued: r.QueuedAt, runAttrFinished: r.FinishedAt,
	} {
		if !v.IsZero() {
			m[name] = ts(v)
		}
	}
	return &types.AttributeValueMemberM{Value: m}
}

func decodeStatus(item map[string]types.AttributeValue) state.TargetStatus {
	sk := getS(item, attrSK)
	st := state.TargetStatus{
		StatusTarget: state.StatusTarget{
			Key: sk[len(targetPrefix):], Kind: getS(item, attrKind), Name: getS(item, attrName), Project: getS(item, attrProject),
			ItemID: getS(item, attrItemID), URL: getS(item, attrURL),
		},
		Warning:   state.QualityWarning{ID: getS(item, attrWarningID), Reason: state.Outcome(getS(item, attrWarningReason)), RunID: getS(item, attrWarningRun)},
		UpdatedAt: getTime(item, attrUpdatedAt),
	}
	if l, ok := item[attrRuns].(*types.AttributeValueMemberL); ok {
		for _, v := range l.Value {
			if m, ok := v.(*types.AttributeValueMemberM); ok {
				st.Runs = append(st.Runs, decodeTargetRun(m.Value))
			}
		}
	}
	if m, ok := item[attrLastSuccess].(*types.AttributeValueMemberM); ok {
		r := decodeTargetRun(m.Value)
		st.LastSuccess = &r
	}
	return st
}

func decodeTargetRun(m map[string]types.AttributeValue) state.TargetRun {
	return state.TargetRun{
		RunID: getS(m, runAttrRun), DBTJobID: getS(m, runAttrDBTJob), DBTRunURL: getS(m, runAttrDBTURL),
		DBTFinishedAt: getTime(m, runAttrDBTFinished), At: getTime(m, runAttrAt), JobID: getS(m, runAttrJob),
		QueuedAt: getTime(m, runAttrQueued), FinishedAt: getTime(m, runAttrFinished),
		Result: state.Outcome(getS(m, runAttrResult)), Notes: getS(m, runAttrNotes),
	}
}
