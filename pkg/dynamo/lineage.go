package dynamo

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/remote"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
)

var (
	_ state.LineageIndex = (*Table)(nil)
	_ state.LineageIndex = lineageSpace{}
	_ state.SiteLineage  = (*Table)(nil)
)

// The lineage index is one item per table and generation, its content a
// string set of JSON objects, so that pages of one build that reach the same
// table merge with ADD, idempotently. Lookups read the generation the build
// item names: a build writes the next one and publishes it whole. Items of
// old generations are not deleted: they expire (TTL), as a build's items
// would if builds stopped for that long.
const (
	lineageBuildPK  = "LINEAGE#BUILD"
	lineageBuildSK  = "STATE"
	lineagePrefix   = "LINEAGE#"
	lineageTableSK  = "TABLE"
	lineageTTL      = 14 * 24 * time.Hour
	attrContent     = "content"
	attrCurrent     = "current"
	attrCompletedAt = "completed_at"
	attrBuilding    = "building"
	attrStartedAt   = "started_at"
	attrCursor      = "cursor"
	attrTables      = "tables"
	attrPartial     = "partial"
	attrWarnings    = "warnings"

	// batchGetMax is DynamoDB's limit of keys per BatchGetItem.
	batchGetMax = 100
	// lineageWriters bounds the concurrent writes of one AddLineage.
	lineageWriters = 16
	// lineageReaders bounds the concurrent BatchGetItem calls of one
	// LookupLineage: a run that changed thousands of tables would otherwise
	// open one connection per 100 keys at once, and attempts queued behind
	// each other run past the client's per-attempt timeout.
	lineageReaders = 16
)

// lineageSpace is the lineage index of one Tableau site: the default
// site's keys are as they always were; another site's build item and
// tables are under keys of their own, so that each site's index is built
// and published on its own:
//
//	pk LINEAGE#BUILD               sk STATE   the default site's build
//	pk LINEAGE#<gen>#<table>       sk TABLE   its tables
//	pk LINEAGE#BUILD#SITE#<site>   sk STATE   another site's (content URL in lower case)
//	pk LINEAGE#SITE#<site>#<gen>#<table>      its tables
type lineageSpace struct {
	*Table
	buildPK, prefix string
}

// SiteLineage returns the lineage index of the site with the given content
// URL ("" for the default site, which is the Table's own).
func (t *Table) SiteLineage(site string) state.LineageIndex {
	if site == "" {
		return t
	}
	site = strings.ToLower(site)
	return lineageSpace{Table: t, buildPK: lineageBuildPK + "#SITE#" + site, prefix: lineagePrefix + "SITE#" + site + "#"}
}

func (t *Table) defaultLineage() lineageSpace {
	return lineageSpace{Table: t, buildPK: lineageBuildPK, prefix: lineagePrefix}
}

// LookupLineage implements state.LineageIndex for the default site.
func (t *Table) LookupLineage(ctx context.Context, tables []string) (map[string][]state.LineageContent, error) {
	return t.defaultLineage().LookupLineage(ctx, tables)
}

// LineageBuild implements state.LineageIndex for the default site.
func (t *Table) LineageBuild(ctx context.Context) (state.LineageBuild, error) {
	return t.defaultLineage().LineageBuild(ctx)
}

// SaveLineageBuild implements state.LineageIndex for the default site.
func (t *Table) SaveLineageBuild(ctx context.Context, b state.LineageBuild) error {
	return t.defaultLineage().SaveLineageBuild(ctx, b)
}

// AddLineage implements state.LineageIndex for the default site.
func (t *Table) AddLineage(ctx context.Context, gen int64, tables map[string][]state.LineageContent) error {
	return t.defaultLineage().AddLineage(ctx, gen, tables)
}

// PublishLineage implements state.LineageIndex for the default site.
func (t *Table) PublishLineage(ctx context.Context, gen int64, b state.LineageBuild) error {
	return t.defaultLineage().PublishLineage(ctx, gen, b)
}

func (t lineageSpace) lineageKey(gen int64, table string) map[string]types.AttributeValue {
	return key(t.prefix+strconv.FormatInt(gen, 10)+"#"+table, lineageTableSK)
}

// LookupLineage implements state.LineageIndex: one read of the build item,
// then BatchGetItem in chunks of 100, lineageReaders at a time.
func (t lineageSpace) LookupLineage(ctx context.Context, tables []string) (map[string][]state.LineageContent, error) {
	b, err := t.LineageBuild(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string][]state.LineageContent{}
	if b.Current == 0 || len(tables) == 0 {
		return out, nil
	}
	seen := map[string]bool{}
	var keys []map[string]types.AttributeValue
	for _, tb := range tables {
		if !seen[tb] {
			seen[tb] = true
			keys = append(keys, t.lineageKey(b.Current, tb))
		}
	}
	prefix := t.prefix + strconv.FormatInt(b.Current, 10) + "#"
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		errs  = make([]error, (len(keys)+batchGetMax-1)/batchGetMax)
		slots = make(chan struct{}, lineageReaders)
	)
	for i := 0; i < len(keys); i += batchGetMax {
		chunk := keys[i:min(i+batchGetMax, len(keys))]
		wg.Add(1)
		slots <- struct{}{}
		go func(n int) {
			defer wg.Done()
			defer func() { <-slots }()
			items, err := t.batchGet(ctx, chunk)
			if err != nil {
				errs[n] = err
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, it := range items {
				table := getS(it, attrPK)[len(prefix):]
				cs, err := decodeContent(it)
				if err != nil {
					errs[n] = fmt.Errorf("lineage index item %s: %w", table, err)
					return
				}
				out[table] = cs
			}
		}(i / batchGetMax)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// batchGet reads keys, asking again for the ones DynamoDB left unprocessed
// (it may, under throttling) while ctx allows.
func (t *Table) batchGet(ctx context.Context, keys []map[string]types.AttributeValue) ([]map[string]types.AttributeValue, error) {
	var items []map[string]types.AttributeValue
	rt := remote.Retrier{
		Policy:    remote.Policy{MaxAttempts: 8, BaseDelay: 20 * time.Millisecond, MaxDelay: time.Second},
		Retryable: func(err error) bool { return err == errUnprocessed },
	}
	pending := keys
	err := rt.Do(ctx, func(ctx context.Context) error {
		out, err := t.api.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{
			RequestItems: map[string]types.KeysAndAttributes{t.name: {Keys: pending}},
		})
		if err != nil {
			return fmt.Errorf("read the lineage index: %w", err)
		}
		items = append(items, out.Responses[t.name]...)
		pending = out.UnprocessedKeys[t.name].Keys
		if len(pending) > 0 {
			return errUnprocessed
		}
		return nil
	})
	return items, err
}

var errUnprocessed = fmt.Errorf("read the lineage index: DynamoDB left keys unprocessed")

func decodeContent(it map[string]types.AttributeValue) ([]state.LineageContent, error) {
	set, _ := it[attrContent].(*types.AttributeValueMemberSS)
	if set == nil {
		return nil, nil
	}
	out := make([]state.LineageContent, 0, len(set.Value))
	for _, raw := range set.Value {
		var c state.LineageContent
		if err := json.Unmarshal([]byte(raw), &c); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	state.SortContent(out)
	return out, nil
}

// AddLineage implements state.LineageIndex: one UpdateItem per table, which
// adds to the table's set, lineageWriters at a time.
func (t lineageSpace) AddLineage(ctx context.Context, gen int64, tables map[string][]state.LineageContent) error {
	expires := n(t.now().Add(lineageTTL).Unix())
	work := make(chan string)
	errs := make(chan error, lineageWriters)
	var wg sync.WaitGroup
	for range min(lineageWriters, len(tables)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for table := range work {
				if err := t.addTable(ctx, gen, table, tables[table], expires); err != nil {
					errs <- err
					for range work { // let the sender finish
					}
					return
				}
			}
		}()
	}
	for table := range tables {
		work <- table
	}
	close(work)
	wg.Wait()
	close(errs)
	return <-errs
}

func (t lineageSpace) addTable(ctx context.Context, gen int64, table string, cs []state.LineageContent, expires types.AttributeValue) error {
	if len(cs) == 0 {
		return nil
	}
	enc := make([]string, 0, len(cs))
	seen := map[string]bool{}
	for _, c := range cs {
		b, err := json.Marshal(c)
		if err != nil {
			return err
		}
		if !seen[string(b)] {
			seen[string(b)] = true
			enc = append(enc, string(b))
		}
	}
	_, err := t.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(t.name),
		Key:                       t.lineageKey(gen, table),
		UpdateExpression:          aws.String("ADD #c :c SET #exp = :exp"),
		ExpressionAttributeNames:  map[string]string{"#c": attrContent, "#exp": attrExpiresAt},
		ExpressionAttributeValues: map[string]types.AttributeValue{":c": &types.AttributeValueMemberSS{Value: enc}, ":exp": expires},
	})
	if err != nil {
		return fmt.Errorf("write the lineage index (table %s): %w", table, err)
	}
	return nil
}

// LineageBuild implements state.LineageIndex.
func (t lineageSpace) LineageBuild(ctx context.Context) (state.LineageBuild, error) {
	out, err := t.api.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(t.name), Key: key(t.buildPK, lineageBuildSK), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return state.LineageBuild{}, fmt.Errorf("read the lineage build: %w", err)
	}
	it := out.Item
	if it == nil {
		return state.LineageBuild{}, nil
	}
	b := state.LineageBuild{
		Current: getN(it, attrCurrent), CompletedAt: getTime(it, attrCompletedAt),
		Building: getN(it, attrBuilding), StartedAt: getTime(it, attrStartedAt),
		Cursor: getS(it, attrCursor), Tables: int(getN(it, attrTables)),
	}
	if p, ok := it[attrPartial].(*types.AttributeValueMemberBOOL); ok {
		b.Partial = p.Value
	}
	if w, ok := it[attrWarnings].(*types.AttributeValueMemberL); ok {
		for _, v := range w.Value {
			if s, ok := v.(*types.AttributeValueMemberS); ok {
				b.Warnings = append(b.Warnings, s.Value)
			}
		}
	}
	return b, nil
}

// SaveLineageBuild implements state.LineageIndex.
func (t lineageSpace) SaveLineageBuild(ctx context.Context, b state.LineageBuild) error {
	return t.putBuild(ctx, b)
}

// PublishLineage implements state.LineageIndex.
func (t lineageSpace) PublishLineage(ctx context.Context, gen int64, b state.LineageBuild) error {
	b.Current, b.Building, b.CompletedAt, b.Cursor = gen, 0, t.now(), ""
	return t.putBuild(ctx, b)
}

func (t lineageSpace) putBuild(ctx context.Context, b state.LineageBuild) error {
	item := key(t.buildPK, lineageBuildSK)
	item[attrCurrent] = n(b.Current)
	item[attrBuilding] = n(b.Building)
	item[attrTables] = n(int64(b.Tables))
	item[attrPartial] = &types.AttributeValueMemberBOOL{Value: b.Partial}
	if !b.CompletedAt.IsZero() {
		item[attrCompletedAt] = ts(b.CompletedAt)
	}
	if !b.StartedAt.IsZero() {
		item[attrStartedAt] = ts(b.StartedAt)
	}
	if b.Cursor != "" {
		item[attrCursor] = s(b.Cursor)
	}
	if len(b.Warnings) > 0 {
		ws := make([]types.AttributeValue, len(b.Warnings))
		for i, w := range b.Warnings {
			ws[i] = s(w)
		}
		item[attrWarnings] = &types.AttributeValueMemberL{Value: ws}
	}
	if _, err := t.api.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(t.name), Item: item}); err != nil {
		return fmt.Errorf("record the lineage build: %w", err)
	}
	return nil
}
