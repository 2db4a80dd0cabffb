package dynamo

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
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
//	pk STATUS#<shard>   sk TARGET#<target key>   target (gzip'd JSON: kind, name, project,
//	                                             LUID, URL, runs newest first, the last
//	                                             success, the bridge's data quality
//	                                             warning, when it was written), expires_at
//
// Everything is in the one attribute because reading 500 targets then
// moves 500 compact attributes instead of thousands of small ones (moto_server
// spends its time per attribute; DynamoDB counts bytes, and gzip divides
// them by about four). The items are spread over statusShards partitions,
// read concurrently. They are written when a refresh job ends (the
// follow-up, Tableau's webhook) or will not be queued (already queued,
// failed): a read and a write conditional on the item being as read;
// never on the path of a refresh that is queued, which stays at two
// requests per target. A target not refreshed for statusRetention drops
// off the page. To read one by hand:
//
//	aws dynamodb get-item ... | jq -r .Item.target.B | base64 -d | gunzip
const (
	statusPrefix    = "STATUS#"
	statusShards    = 4
	statusRetention = 90 * 24 * time.Hour
	// statusAttempts bounds the read-and-write rounds of one RecordRun
	// against concurrent writers of the same target.
	statusAttempts = 32

	attrDBTRunURL     = "dbt_run_url"
	attrDBTFinishedAt = "dbt_finished_at"
	attrTargetStatus  = "target" // the target, its runs and last success: gzip'd JSON
)

func statusKey(target string) map[string]types.AttributeValue {
	h := fnv.New32a()
	_, _ = h.Write([]byte(target)) // hash writes do not fail
	return key(statusPrefix+strconv.Itoa(int(h.Sum32()%statusShards)), targetPrefix+target)
}

// RecordRun implements state.TargetStatuses with update.
func (t *Table) RecordRun(ctx context.Context, target state.StatusTarget, r state.TargetRun) error {
	err := t.updateStatus(ctx, target.Key, true, func(st *state.TargetStatus) { st.MergeRun(target, r) })
	if err != nil {
		return fmt.Errorf("record run %s on the status of %s: %w", r.RunID, target.Key, err)
	}
	return nil
}

// SetWarning implements state.TargetStatuses with update.
func (t *Table) SetWarning(ctx context.Context, target string, w state.QualityWarning) error {
	err := t.updateStatus(ctx, target, false, func(st *state.TargetStatus) { st.Warning = w })
	if err != nil {
		return fmt.Errorf("record the quality warning of %s: %w", target, err)
	}
	return nil
}

// updateStatus applies change to a target's status: a consistent read, the
// change, and a write conditional on the item being as read (its one
// attribute compared whole: every write changes it, since it carries the
// time of the write), repeated when another writer came in between. A
// status that does not exist is made only when create is set.
func (t *Table) updateStatus(ctx context.Context, target string, create bool, change func(*state.TargetStatus)) error {
	k := statusKey(target)
	for attempt := range statusAttempts {
		out, err := t.api.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(t.name), Key: k, ConsistentRead: aws.Bool(true)})
		if err != nil {
			return err
		}
		st := state.TargetStatus{StatusTarget: state.StatusTarget{Key: target}}
		old, _ := out.Item[attrTargetStatus].(*types.AttributeValueMemberB)
		switch {
		case out.Item != nil:
			st = new(statusDecoder).decode(out.Item)
		case !create:
			return nil
		}
		change(&st)
		now := t.now()
		st.UpdatedAt = now
		item := encodeStatus(k, st)
		item[attrExpiresAt] = n(now.Add(statusRetention).Unix())
		in := &dynamodb.PutItemInput{TableName: aws.String(t.name), Item: item}
		in.ExpressionAttributeNames = map[string]string{"#st": attrTargetStatus}
		if old == nil {
			in.ConditionExpression = aws.String("attribute_not_exists(#st)")
		} else {
			in.ConditionExpression = aws.String("#st = :old")
			in.ExpressionAttributeValues = map[string]types.AttributeValue{":old": old}
		}
		_, err = t.api.PutItem(ctx, in)
		if _, lost := conditionFailed(err); !lost {
			return err
		}
		// Another writer won the round: read again after a short, random
		// wait so that the losers do not collide again.
		wait := time.Duration(rand.Int64N(int64(5*time.Millisecond) * int64(attempt+1)))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
	return fmt.Errorf("%d concurrent writers in a row won; try again", statusAttempts)
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
			items, err := t.queryStatuses(ctx, statusPrefix+strconv.Itoa(shard))
			var d statusDecoder
			decoded := make([]state.TargetStatus, 0, len(items))
			for _, it := range items {
				decoded = append(decoded, d.decode(it))
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			out = append(out, decoded...)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("read target statuses: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// queryStatuses reads a whole status partition with eventually consistent
// reads. Whole items: a projection would not lower the read units (they
// count the items read), and the other attributes are a few bytes.
func (t *Table) queryStatuses(ctx context.Context, pk string) ([]map[string]types.AttributeValue, error) {
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
	w := wireStatus{
		Kind: st.Kind, Name: st.Name, Project: st.Project, ItemID: st.ItemID, URL: st.URL, Runs: make([]wireRun, 0, len(st.Runs)),
		WarningID: st.Warning.ID, WarningReason: string(st.Warning.Reason), WarningRun: st.Warning.RunID, UpdatedAt: wireTime(st.UpdatedAt),
	}
	for _, r := range st.Runs {
		w.Runs = append(w.Runs, toWire(r))
	}
	if st.LastSuccess != nil {
		last := toWire(*st.LastSuccess)
		w.Last = &last
	}
	var buf bytes.Buffer
	// Writing strings to memory cannot fail. The fastest level: the JSON
	// is small and repetitive, and compresses about as well.
	z, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	_ = json.NewEncoder(z).Encode(w)
	_ = z.Close()
	item[attrTargetStatus] = &types.AttributeValueMemberB{Value: buf.Bytes()}
	return item
}

// statusDecoder decodes status items, reusing its gzip reader: one holds
// tens of kilobytes of state, and reading 500 statuses with a new one each
// would allocate some 20 MB.
type statusDecoder struct{ z *gzip.Reader }

// gunzipJSON decodes gzip-compressed JSON into v, reporting whether it
// could.
func (d *statusDecoder) gunzipJSON(b []byte, v any) bool {
	var err error
	if d.z == nil {
		d.z, err = gzip.NewReader(bytes.NewReader(b))
	} else {
		err = d.z.Reset(bytes.NewReader(b))
	}
	return err == nil && json.NewDecoder(d.z).Decode(v) == nil
}

// wireStatus is what a status item's "target" attribute holds, as JSON
// before gzip.
type wireStatus struct {
	Kind    string    `json:"kind,omitempty"`
	Name    string    `json:"name,omitempty"`
	Project string    `json:"project,omitempty"`
	ItemID  string    `json:"item_id,omitempty"`
	URL     string    `json:"url,omitempty"`
	Runs    []wireRun `json:"runs"`
	Last    *wireRun  `json:"last,omitempty"`
	// The data quality warning the bridge put on the content.
	WarningID     string `json:"warning_id,omitempty"`
	WarningReason string `json:"warning_reason,omitempty"`
	WarningRun    string `json:"warning_run,omitempty"`
	UpdatedAt     string `json:"updated_at,omitempty"`
}

type wireRun struct {
	RunID         string `json:"run,omitempty"`
	DBTJobID      string `json:"dbt_job,omitempty"`
	DBTRunURL     string `json:"dbt_url,omitempty"`
	DBTFinishedAt string `json:"dbt_finished,omitempty"`
	At            string `json:"at,omitempty"`
	JobID         string `json:"job,omitempty"`
	QueuedAt      string `json:"queued,omitempty"`
	FinishedAt    string `json:"finished,omitempty"`
	Result        string `json:"result,omitempty"`
	Notes         string `json:"notes,omitempty"`
}

func wireTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func fromWireTime(v string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, v)
	return t
}

func toWire(r state.TargetRun) wireRun {
	return wireRun{
		RunID: r.RunID, DBTJobID: r.DBTJobID, DBTRunURL: r.DBTRunURL, DBTFinishedAt: wireTime(r.DBTFinishedAt), At: wireTime(r.At),
		JobID: r.JobID, QueuedAt: wireTime(r.QueuedAt), FinishedAt: wireTime(r.FinishedAt), Result: string(r.Result), Notes: r.Notes,
	}
}

func (w wireRun) run() state.TargetRun {
	return state.TargetRun{
		RunID: w.RunID, DBTJobID: w.DBTJobID, DBTRunURL: w.DBTRunURL, DBTFinishedAt: fromWireTime(w.DBTFinishedAt), At: fromWireTime(w.At),
		JobID: w.JobID, QueuedAt: fromWireTime(w.QueuedAt), FinishedAt: fromWireTime(w.FinishedAt), Result: state.Outcome(w.Result), Notes: w.Notes,
	}
}

func (d *statusDecoder) decode(item map[string]types.AttributeValue) state.TargetStatus {
	st := state.TargetStatus{StatusTarget: state.StatusTarget{Key: strings.TrimPrefix(getS(item, attrSK), targetPrefix)}}
	b, _ := item[attrTargetStatus].(*types.AttributeValueMemberB)
	if b == nil {
		return st
	}
	// A status that does not decode (written by a later version, say) is
	// shown without its runs rather than failing the whole page.
	var w wireStatus
	if !d.gunzipJSON(b.Value, &w) {
		return st
	}
	st.Kind, st.Name, st.Project, st.ItemID, st.URL = w.Kind, w.Name, w.Project, w.ItemID, w.URL
	st.Warning = state.QualityWarning{ID: w.WarningID, Reason: state.Outcome(w.WarningReason), RunID: w.WarningRun}
	st.UpdatedAt = fromWireTime(w.UpdatedAt)
	for _, r := range w.Runs {
		st.Runs = append(st.Runs, r.run())
	}
	if w.Last != nil {
		last := w.Last.run()
		st.LastSuccess = &last
	}
	return st
}
