package dynamo

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sort"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/remote"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
)

var _ state.Deferrals = (*Table)(nil)

// Deferred targets live in a few partitions of their own, found by a Query
// of each. A run that defers hundreds of targets writes them at once, at the
// end of its time; one partition takes about 1,000 writes a second, so they
// are spread over deferredShards by a hash of the run and target. The items
// are written and deleted in batches (BatchWriteItem, 25 a call): they are
// plain records, not claims, and need no condition.
const (
	deferredPrefix = "DEFERRED#"
	deferredShards = 4
	// batchWriteMax is BatchWriteItem's limit of items per call.
	batchWriteMax = 25

	attrDeferredRun = "run"
	attrTarget      = "target"
	attrDeferredAt  = "deferred_at"
)

func deferredKey(k state.Key) map[string]types.AttributeValue {
	h := fnv.New32a()
	h.Write([]byte(k.RunID + "\x00" + k.Target))
	return key(fmt.Sprintf("%s%d", deferredPrefix, h.Sum32()%deferredShards), runPrefix+k.RunID+"#"+targetPrefix+k.Target)
}

// Defer implements state.Deferrals.
func (t *Table) Defer(ctx context.Context, ds []state.Deferred, retention time.Duration) error {
	expires := n(t.now().Add(retention).Unix())
	reqs := make([]types.WriteRequest, 0, len(ds))
	// BatchWriteItem refuses a batch that names a key twice: the last
	// record of a key is the one kept.
	last := make(map[state.Key]int, len(ds))
	for i, d := range ds {
		last[d.Key] = i
	}
	for i, d := range ds {
		if last[d.Key] != i {
			continue
		}
		item := deferredKey(d.Key)
		item[attrDeferredRun] = s(d.RunID)
		item[attrTarget] = s(d.Target)
		item[attrDBTJob] = s(d.DBTJobID)
		item[attrPayload] = &types.AttributeValueMemberB{Value: d.Payload}
		item[attrDeferredAt] = ts(d.DeferredAt)
		item[attrNotBefore] = n(d.NotBefore.UnixMilli())
		item[attrExpiresAt] = expires
		reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: item}})
	}
	if err := t.batchWrite(ctx, reqs); err != nil {
		return fmt.Errorf("record %d deferred targets: %w", len(ds), err)
	}
	return nil
}

// Undefer implements state.Deferrals.
func (t *Table) Undefer(ctx context.Context, keys []state.Key) error {
	reqs := make([]types.WriteRequest, 0, len(keys))
	seen := make(map[state.Key]bool, len(keys))
	for _, k := range keys {
		if seen[k] {
			continue
		}
		seen[k] = true
		reqs = append(reqs, types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: deferredKey(k)}})
	}
	if err := t.batchWrite(ctx, reqs); err != nil {
		return fmt.Errorf("forget %d deferred targets: %w", len(keys), err)
	}
	return nil
}

// DeferredTargets implements state.Deferrals: a consistent Query of each
// shard. Items past their expiry are left out, as TTL deletion lags.
func (t *Table) DeferredTargets(ctx context.Context) ([]state.Deferred, error) {
	now := t.now().Unix()
	var out []state.Deferred
	for shard := range deferredShards {
		items, err := t.query(ctx, fmt.Sprintf("%s%d", deferredPrefix, shard), "", nil, nil)
		if err != nil {
			return nil, fmt.Errorf("list deferred targets: %w", err)
		}
		for _, it := range items {
			if getN(it, attrExpiresAt) <= now {
				continue
			}
			var payload []byte
			if b, ok := it[attrPayload].(*types.AttributeValueMemberB); ok {
				payload = b.Value
			}
			var notBefore time.Time
			if ms := getN(it, attrNotBefore); ms > 0 {
				notBefore = time.UnixMilli(ms)
			}
			out = append(out, state.Deferred{
				Key:      state.Key{RunID: getS(it, attrDeferredRun), Target: getS(it, attrTarget)},
				DBTJobID: getS(it, attrDBTJob), Payload: payload,
				DeferredAt: getTime(it, attrDeferredAt), NotBefore: notBefore,
			})
		}
	}
	sort.Slice(out, func(a, b int) bool {
		if out[a].RunID != out[b].RunID {
			return out[a].RunID < out[b].RunID
		}
		return out[a].Target < out[b].Target
	})
	return out, nil
}

// batchWrite writes reqs in calls of batchWriteMax, concurrently, each
// asking again for the items DynamoDB left unprocessed (it may, under
// throttling) while ctx allows.
func (t *Table) batchWrite(ctx context.Context, reqs []types.WriteRequest) error {
	var wg sync.WaitGroup
	errs := make([]error, (len(reqs)+batchWriteMax-1)/batchWriteMax)
	for i := 0; i < len(reqs); i += batchWriteMax {
		wg.Add(1)
		go func(n int, pending []types.WriteRequest) {
			defer wg.Done()
			rt := remote.Retrier{
				Policy:    remote.Policy{MaxAttempts: 8, BaseDelay: 20 * time.Millisecond, MaxDelay: time.Second},
				Retryable: func(err error) bool { return errors.Is(err, errWritesUnprocessed) },
			}
			errs[n] = rt.Do(ctx, func(ctx context.Context) error {
				out, err := t.api.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{
					RequestItems: map[string][]types.WriteRequest{t.name: pending},
				})
				if err != nil {
					return err
				}
				if pending = out.UnprocessedItems[t.name]; len(pending) > 0 {
					return errWritesUnprocessed
				}
				return nil
			})
		}(i/batchWriteMax, reqs[i:min(i+batchWriteMax, len(reqs))])
	}
	wg.Wait()
	return errors.Join(errs...)
}

var errWritesUnprocessed = errors.New("DynamoDB left writes unprocessed")
