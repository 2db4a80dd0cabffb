package dynamo

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
)

var _ state.TargetStatuses = (*Table)(nil)

// The targets' statuses, each its last state.HistoryLength runs, live in
// statusBuckets items, each target in the bucket its key hashes to, so that
// the status page reads every target with a few queries, however many runs
// the run records hold and however many targets there are:
//
//	pk STATUS           sk BUCKET#<n>   targets (gzip'd JSON: by target key, its kind,
//	                                    name, project, LUID, URL, runs newest first,
//	                                    last success, the bridge's data quality
//	                                    warning, when it was written), expires_at
//
// A bucket rather than an item per target: a view then reads 64 items, not
// one per target (moto_server, which the benchmark runs against, spends its
// time per item and attribute: 500 targets took it 200-600 ms as items of
// their own), for the same bytes (DynamoDB's read units count bytes; gzip
// divides them by four or more). The price is on writes, which rewrite the
// bucket: gzip'd, a target with ten runs takes 200 to 500 bytes, so 500
// targets make buckets of 2 to 4 KB, and as many write units where an item
// of its own would take 1. The buckets share one partition, read with one
// query (a page per megabyte: one up to some 3,000 targets); splitting them
// over partitions read at once made the emulator's slow tail worse (more
// requests at a time) and would only pay off past tens of thousands of
// targets.
//
// They are written when a refresh job ends (the follow-up, Tableau's
// webhook) or will not be queued (already queued, failed): a read and a
// write conditional on the bucket being as read, never on the path of a
// refresh that is queued, which stays at two requests per target. A target
// not written for statusRetention drops out. To read a bucket by hand:
//
//	aws dynamodb get-item ... | jq -r .Item.targets.B | base64 -d | gunzip | jq
const (
	statusPK        = "STATUS"
	bucketPrefix    = "BUCKET#"
	statusBuckets   = 64
	statusRetention = 90 * 24 * time.Hour
	// statusAttempts bounds the read-and-write rounds of one update
	// against concurrent writers of the same bucket.
	statusAttempts = 32
	// maxBucket keeps a bucket under DynamoDB's 400 KB item limit, with
	// room to spare: some 40,000 targets over the 64 buckets.
	maxBucket = 350 << 10

	attrDBTRunURL     = "dbt_run_url"
	attrDBTFinishedAt = "dbt_finished_at"
	attrTargets       = "targets" // a bucket's statuses: gzip'd JSON
)

func bucketKey(target string) map[string]types.AttributeValue {
	h := fnv.New32a()
	_, _ = h.Write([]byte(target)) // hash writes do not fail
	return key(statusPK, fmt.Sprintf("%s%02d", bucketPrefix, h.Sum32()%statusBuckets))
}

// RecordRun implements state.TargetStatuses with update.
func (t *Table) RecordRun(ctx context.Context, target state.StatusTarget, r state.TargetRun) error {
	err := t.updateStatus(ctx, target.Key, true, func(st *state.TargetStatus) bool { st.MergeRun(target, r); return true })
	if err != nil {
		return fmt.Errorf("record run %s on the status of %s: %w", r.RunID, target.Key, err)
	}
	return nil
}

// SetWarning implements state.TargetStatuses with update.
func (t *Table) SetWarning(ctx context.Context, target string, w state.QualityWarning) error {
	err := t.updateStatus(ctx, target, false, func(st *state.TargetStatus) bool {
		if st.Warning == w {
			return false // as it is: no write (a success with no warning to clear)
		}
		st.Warning = w
		return true
	})
	if err != nil {
		return fmt.Errorf("record the quality warning of %s: %w", target, err)
	}
	return nil
}

// updateStatus applies change to a target's status in its bucket: a
// consistent read, the change, and a write conditional on the bucket being
// as read (its attribute compared whole: every write changes it, since it
// carries the time of the write), repeated when another writer came in
// between. A status that does not exist is made only when create is set;
// nothing is written when change reports no change.
// Targets gone past statusRetention leave the bucket as it is written.
func (t *Table) updateStatus(ctx context.Context, target string, create bool, change func(*state.TargetStatus) bool) error {
	k := bucketKey(target)
	for attempt := range statusAttempts {
		out, err := t.api.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(t.name), Key: k, ConsistentRead: aws.Bool(true)})
		if err != nil {
			return err
		}
		old, _ := out.Item[attrTargets].(*types.AttributeValueMemberB)
		now := t.now()
		var d statusDecoder
		bucket := d.bucket(out.Item, now)
		w, ok := bucket[target]
		if !ok && !create {
			return nil
		}
		st := w.status(target)
		if !change(&st) {
			return nil
		}
		st.UpdatedAt = now
		bucket[target] = toWireStatus(st)
		blob, err := gzipJSON(wireBucket{Targets: bucket})
		if err != nil {
			return err
		}
		if len(blob) > maxBucket {
			return fmt.Errorf("status bucket %s is %d KB, near DynamoDB's item limit: raise statusBuckets", getS(k, attrSK), len(blob)>>10)
		}
		item := map[string]types.AttributeValue{
			attrPK: k[attrPK], attrSK: k[attrSK], attrTargets: &types.AttributeValueMemberB{Value: blob},
			attrExpiresAt: n(now.Add(statusRetention).Unix()),
		}
		in := &dynamodb.PutItemInput{TableName: aws.String(t.name), Item: item, ExpressionAttributeNames: map[string]string{"#t": attrTargets}}
		if old == nil {
			in.ConditionExpression = aws.String("attribute_not_exists(#t)")
		} else {
			in.ConditionExpression = aws.String("#t = :old")
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

// TargetStatuses implements state.TargetStatuses: one query, with
// eventually consistent reads (enough for a page a person looks at, and
// half the cost).
func (t *Table) TargetStatuses(ctx context.Context) ([]state.TargetStatus, error) {
	items, err := t.queryPartition(ctx, statusPK)
	if err != nil {
		return nil, fmt.Errorf("read target statuses: %w", err)
	}
	now := t.now()
	var d statusDecoder
	var out []state.TargetStatus
	for _, it := range items {
		for key, w := range d.bucket(it, now) {
			out = append(out, w.status(key))
		}
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
	return t.queryPages(ctx, in, 0)
}

// wireBucket is what a bucket's attribute holds, as JSON before gzip.
type wireBucket struct {
	Targets map[string]wireStatus `json:"targets"`
}

func gzipJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	// The fastest level: the JSON is repetitive and compresses about as
	// well.
	z, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err := json.NewEncoder(z).Encode(v); err != nil {
		return nil, err
	}
	if err := z.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// statusDecoder decodes buckets, reusing its gzip reader, which holds tens
// of kilobytes of state.
type statusDecoder struct{ z *gzip.Reader }

// bucket returns the statuses in a bucket item (none for a nil item), less
// those not written since statusRetention before now. A bucket that does
// not decode (written by a later version, say) reads as empty rather than
// failing the whole page.
func (d *statusDecoder) bucket(item map[string]types.AttributeValue, now time.Time) map[string]wireStatus {
	out := map[string]wireStatus{}
	b, _ := item[attrTargets].(*types.AttributeValueMemberB)
	if b == nil {
		return out
	}
	var err error
	if d.z == nil {
		d.z, err = gzip.NewReader(bytes.NewReader(b.Value))
	} else {
		err = d.z.Reset(bytes.NewReader(b.Value))
	}
	var w wireBucket
	if err != nil || json.NewDecoder(d.z).Decode(&w) != nil {
		return out
	}
	for k, st := range w.Targets {
		if now.Sub(fromWireTime(st.UpdatedAt)) <= statusRetention {
			out[k] = st
		}
	}
	return out
}

// wireStatus is one target's status in a bucket.
type wireStatus struct {
	Kind    string    `json:"kind,omitempty"`
	Name    string    `json:"name,omitempty"`
	Project string    `json:"project,omitempty"`
	ItemID  string    `json:"item_id,omitempty"`
	URL     string    `json:"url,omitempty"`
	Site    string    `json:"site,omitempty"` // "" for the default site
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

func toWireStatus(st state.TargetStatus) wireStatus {
	w := wireStatus{
		Kind: st.Kind, Name: st.Name, Project: st.Project, ItemID: st.ItemID, URL: st.URL, Site: st.Site, Runs: make([]wireRun, 0, len(st.Runs)),
		WarningID: st.Warning.ID, WarningReason: string(st.Warning.Reason), WarningRun: st.Warning.RunID, UpdatedAt: wireTime(st.UpdatedAt),
	}
	for _, r := range st.Runs {
		w.Runs = append(w.Runs, toWire(r))
	}
	if st.LastSuccess != nil {
		last := toWire(*st.LastSuccess)
		w.Last = &last
	}
	return w
}

func (w wireStatus) status(key string) state.TargetStatus {
	st := state.TargetStatus{
		StatusTarget: state.StatusTarget{Key: key, Kind: w.Kind, Name: w.Name, Project: w.Project, ItemID: w.ItemID, URL: w.URL, Site: w.Site},
		Warning:      state.QualityWarning{ID: w.WarningID, Reason: state.Outcome(w.WarningReason), RunID: w.WarningRun},
		UpdatedAt:    fromWireTime(w.UpdatedAt),
	}
	for _, r := range w.Runs {
		st.Runs = append(st.Runs, r.run())
	}
	if w.Last != nil {
		last := w.Last.run()
		st.LastSuccess = &last
	}
	return st
}
