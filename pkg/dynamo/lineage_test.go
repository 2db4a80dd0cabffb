package dynamo_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dynamo"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
)

// peakBatchGets is the emulator's client, counting BatchGetItem calls in
// flight; each is held a moment so that concurrent ones overlap.
type peakBatchGets struct {
	*dynamodb.Client
	inFlight, peak, calls atomic.Int64
}

func (p *peakBatchGets) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	p.calls.Add(1)
	n := p.inFlight.Add(1)
	defer p.inFlight.Add(-1)
	for {
		if old := p.peak.Load(); n <= old || p.peak.CompareAndSwap(old, n) {
			break
		}
	}
	time.Sleep(5 * time.Millisecond)
	return p.Client.BatchGetItem(ctx, in, opts...)
}

// TestLookupLineageBoundsConcurrentReads: a run that changed thousands of
// tables reads the index in chunks of 100 keys, never more than 16 calls at
// once, and finds every table.
func TestLookupLineageBoundsConcurrentReads(t *testing.T) {
	ctx := context.Background()
	name := fmt.Sprintf("state-%d", tables.Add(1))
	if err := dynamo.CreateTable(ctx, db, name); err != nil {
		t.Fatal(err)
	}
	api := &peakBatchGets{Client: db}
	tbl, err := dynamo.New(api, name)
	if err != nil {
		t.Fatal(err)
	}
	const n = 5000
	index := map[string][]state.LineageContent{}
	var tables []string
	for i := range n {
		tb := fmt.Sprintf("analytics.marts.t%04d", i)
		tables = append(tables, tb)
		if i%10 == 0 {
			index[tb] = []state.LineageContent{{Kind: "datasource", LUID: fmt.Sprint("ds-", i), Name: fmt.Sprint("DS ", i), Extract: true}}
		}
	}
	if err := tbl.AddLineage(ctx, 1, index); err != nil {
		t.Fatal(err)
	}
	if err := tbl.PublishLineage(ctx, 1, state.LineageBuild{Building: 1}); err != nil {
		t.Fatal(err)
	}
	got, err := tbl.LookupLineage(ctx, tables)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(index) {
		t.Errorf("found %d tables, want %d", len(got), len(index))
	}
	if calls, peak := api.calls.Load(), api.peak.Load(); calls < n/100 || peak > 16 || peak < 2 {
		t.Errorf("%d BatchGetItem calls, at most %d at once; want at least %d, 2 to 16 at once", calls, peak, n/100)
	}
}
