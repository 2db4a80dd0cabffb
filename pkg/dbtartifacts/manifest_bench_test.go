package dbtartifacts_test

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dbtartifacts"
)

// BenchmarkReadManifest decodes a generated manifest of 50,000 nodes (about
// 200 MB, shaped like a large dbt project's: long raw and compiled SQL,
// documented columns, tests, macros, docs, parent and child maps) and
// reports its decode time, throughput and the peak and retained heap. Run it
// alone, once:
//
//	go test -run '^$' -bench ReadManifest -benchtime 1x ./pkg/dbtartifacts/
func BenchmarkReadManifest(b *testing.B) {
	path := filepath.Join(b.TempDir(), "manifest.json")
	size, err := writeLargeManifest(path, 50_000)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	var m *dbtartifacts.Manifest
	var peak uint64
	runtime.GC()
	b.ResetTimer()
	for range b.N {
		stop := sampleHeap(&peak)
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		m, err = dbtartifacts.ReadManifest(f)
		f.Close()
		stop()
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if len(m.Nodes) < 20_000 {
		b.Fatalf("decoded %d nodes", len(m.Nodes))
	}
	b.ReportMetric(float64(size)/1e6, "file-MB")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
	b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "retained-heap-MB")
	runtime.KeepAlive(m)
}

// TestGeneratedManifest checks the benchmark's generator on a small
// project: the manifest it writes reads back whole.
func TestGeneratedManifest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "manifest.json")
	if _, err := writeLargeManifest(path, 500); err != nil {
		t.Fatal(err)
	}
	if dst := os.Getenv("KEEP_GENERATED_MANIFEST"); dst != "" {
		b, _ := os.ReadFile(path)
		_ = os.WriteFile(dst, b, 0o644)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := dbtartifacts.ReadManifest(f)
	if err != nil {
		t.Fatal(err)
	}
	// 220 models, 10 seeds, 10 snapshots and 20 sources; not the 260 tests
	// or the 2 disabled models.
	if len(m.Nodes) != 260 || len(m.ChildMap) == 0 {
		t.Errorf("%d nodes, %d parents with children", len(m.Nodes), len(m.ChildMap))
	}
}

// sampleHeap records the largest heap (live and not yet collected objects)
// seen until stop is called. runtime/metrics reads it without stopping the
// world, so sampling every 200µs barely slows the decoder.
func sampleHeap(peak *uint64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		t := time.NewTicker(200 * time.Microsecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			*peak = max(*peak, s[0].Value.Uint64())
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// writeLargeManifest writes a manifest v12 of nodes nodes to path and
// returns its size. The content is pseudo-random but the same on every run.
func writeLargeManifest(path string, nodes int) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	g := &manifestGen{w: bufio.NewWriterSize(f, 1<<20), rng: rand.New(rand.NewPCG(13, 42))}
	g.manifest(nodes)
	if err := g.w.Flush(); err != nil {
		return 0, err
	}
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), f.Close()
}

type manifestGen struct {
	w   *bufio.Writer
	rng *rand.Rand
	buf []byte
}

// genNode is what the generator remembers of a node to write the maps.
type genNode struct {
	id      string
	parents []string
}

var words = strings.Fields(`order customer payment invoice shipment product account session event revenue refund
	discount region store channel campaign subscription plan user device balance ledger inventory supplier return`)

func (g *manifestGen) word() string { return words[g.rng.IntN(len(words))] }

func (g *manifestGen) sentence(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(g.word())
	}
	return b.String()
}

// sql returns a plausible SELECT of about size bytes.
func (g *manifestGen) sql(size int, from string) string {
	var b strings.Builder
	b.WriteString("with source as (\n    select * from " + from + "\n),\n\nrenamed as (\n    select\n")
	for b.Len() < size {
		w1, w2 := g.word(), g.word()
		fmt.Fprintf(&b, "        cast(%s_%s as varchar) as %s_%s_%d,\n", w1, w2, w2, w1, g.rng.IntN(100))
	}
	b.WriteString("        _loaded_at\n    from source\n)\n\nselect * from renamed\n")
	return b.String()
}

func (g *manifestGen) str(s string) { g.buf = strconv.AppendQuote(g.buf[:0], s); g.w.Write(g.buf) }
func (g *manifestGen) raw(s string) { g.w.WriteString(s) }

func (g *manifestGen) strList(list []string) {
	g.raw("[")
	for i, s := range list {
		if i > 0 {
			g.raw(", ")
		}
		g.str(s)
	}
	g.raw("]")
}

func (g *manifestGen) manifest(n int) {
	models := n * 44 / 100
	seeds := n / 50
	snapshots := n / 50
	tests := n - models - seeds - snapshots
	var all []genNode
	var relations []string // ids a model can select from
	g.raw(`{"metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v12.json", "dbt_version": "1.10.11", ` +
		`"generated_at": "2026-03-02T06:00:41.102958Z", "invocation_id": "7d2c9d4e-5b1a-4f0e-9c59-2f1d3a6b8e01", ` +
		`"env": {}, "project_name": "big", "project_id": "0a1b2c3d", "user_id": null, "send_anonymous_usage_stats": false, ` +
		`"adapter_type": "snowflake", "quoting": {"database": false, "schema": false, "identifier": false, "column": null}},` + "\n")

	g.raw(`"nodes": {`)
	first := true
	sep := func() {
		if !first {
			g.raw(",\n")
		}
		first = false
	}
	// Sources, macros, docs and disabled models grow with the project: at
	// 50,000 nodes, 2,000 sources, 3,000 macros, 500 docs and 200 disabled.
	sources, macros, docs, disabled := n/25, n*6/100, n/100, n/250
	for i := range sources {
		relations = append(relations, fmt.Sprintf("source.big.raw_%d.table_%d", i/20, i))
	}
	for i := range seeds {
		id := fmt.Sprintf("seed.big.seed_%d", i)
		sep()
		g.str(id)
		g.raw(": ")
		g.node(id, "seed", "seeds", nil, 300)
		all = append(all, genNode{id: id})
		relations = append(relations, id)
	}
	for i := range snapshots {
		id := fmt.Sprintf("snapshot.big.snap_%d", i)
		parents := []string{relations[g.rng.IntN(sources)]}
		sep()
		g.str(id)
		g.raw(": ")
		g.node(id, "snapshot", "snapshots", parents, 1500)
		all = append(all, genNode{id: id, parents: parents})
		relations = append(relations, id)
	}
	mats := []string{"table", "table", "table", "table", "table", "table", "view", "view", "view", "incremental", "ephemeral"}
	var modelIDs []string
	for i := range models {
		id := fmt.Sprintf("model.big.%s_%s_%d", g.word(), g.word(), i)
		var parents []string
		for range 1 + g.rng.IntN(3) {
			// Mostly recent nodes, so that chains form, as in layered projects.
			j := len(relations) - 1 - g.rng.IntN(min(len(relations), 400))
			parents = append(parents, relations[j])
		}
		sep()
		g.str(id)
		g.raw(": ")
		g.node(id, mats[g.rng.IntN(len(mats))], fmt.Sprintf("mart_%d", i%40), parents, 600)
		all = append(all, genNode{id: id, parents: parents})
		relations = append(relations, id)
		modelIDs = append(modelIDs, id)
	}
	for i := range tests {
		model := modelIDs[g.rng.IntN(len(modelIDs))]
		id := fmt.Sprintf("test.big.not_null_%s_%d.%08x", model[len("model.big."):], i, g.rng.Uint32())
		sep()
		g.test(id, model)
		all = append(all, genNode{id: id, parents: []string{model}})
	}
	g.raw("},\n")

	g.raw(`"sources": {`)
	for i := range sources {
		if i > 0 {
			g.raw(",\n")
		}
		g.source(relations[i], i)
	}
	g.raw("},\n")

	g.raw(`"macros": {`)
	for i := range macros {
		if i > 0 {
			g.raw(",\n")
		}
		id := fmt.Sprintf("macro.big.macro_%d", i)
		g.str(id)
		g.raw(`: {"name": `)
		g.str(fmt.Sprintf("macro_%d", i))
		g.raw(`, "resource_type": "macro", "package_name": "big", "path": "macros/m.sql", "original_file_path": "macros/m.sql", "unique_id": `)
		g.str(id)
		g.raw(`, "macro_sql": `)
		g.str("{% macro m(x) %}\n" + g.sql(800, "{{ x }}") + "{% endmacro %}")
		g.raw(`, "depends_on": {"macros": []}, "description": "", "meta": {}, "docs": {"show": true, "node_color": null}, "patch_path": null, "arguments": [], "created_at": 1772431200.0, "supported_languages": null}`)
	}
	g.raw("},\n")

	g.raw(`"docs": {`)
	for i := range docs {
		if i > 0 {
			g.raw(",\n")
		}
		id := fmt.Sprintf("doc.big.doc_%d", i)
		g.str(id)
		g.raw(`: {"name": "doc", "resource_type": "doc", "package_name": "big", "path": "docs.md", "original_file_path": "models/docs.md", "unique_id": `)
		g.str(id)
		g.raw(`, "block_contents": `)
		g.str(g.sentence(150))
		g.raw("}")
	}
	g.raw("},\n")
	g.raw(`"exposures": {}, "metrics": {}, "groups": {}, "selectors": {}, "disabled": {`)
	for i := range disabled {
		if i > 0 {
			g.raw(",\n")
		}
		id := fmt.Sprintf("model.big.disabled_%d", i)
		g.str(id)
		g.raw(": [")
		g.node(id, "table", "old", nil, 2000)
		g.raw("]")
	}
	g.raw("},\n")

	children := map[string][]string{}
	g.raw(`"parent_map": {`)
	for i, n := range all {
		if i > 0 {
			g.raw(",\n")
		}
		g.str(n.id)
		g.raw(": ")
		g.strList(n.parents)
		for _, p := range n.parents {
			children[p] = append(children[p], n.id)
		}
	}
	g.raw("},\n")
	g.raw(`"child_map": {`)
	ids := slices.Clone(relations[:sources])
	for _, n := range all {
		ids = append(ids, n.id)
	}
	for i, id := range ids {
		if i > 0 {
			g.raw(",\n")
		}
		g.str(id)
		g.raw(": ")
		g.strList(children[id])
	}
	g.raw("},\n")
	g.raw(`"group_map": {}, "saved_queries": {}, "semantic_models": {}, "unit_tests": {}}` + "\n")
}

// node writes the object of a model, seed or snapshot whose SQL is about
// sqlSize bytes.
func (g *manifestGen) node(id, materialized, schema string, parents []string, sqlSize int) {
	typ, rest, _ := strings.Cut(id, ".")
	_, name, _ := strings.Cut(rest, ".")
	from := "raw.events"
	if len(parents) > 0 {
		from = parents[0]
	}
	rawSQL := g.sql(sqlSize/2, "{{ ref('"+from+"') }}")
	compiled := g.sql(sqlSize, "analytics."+schema+"."+name)
	g.raw(`{"database": "analytics", "schema": `)
	g.str(schema)
	g.raw(`, "name": `)
	g.str(name)
	g.raw(`, "resource_type": `)
	g.str(typ)
	g.raw(`, "package_name": "big", "path": `)
	g.str(schema + "/" + name + ".sql")
	g.raw(`, "original_file_path": `)
	g.str("models/" + schema + "/" + name + ".sql")
	g.raw(`, "unique_id": `)
	g.str(id)
	g.raw(`, "fqn": ["big", `)
	g.str(schema)
	g.raw(", ")
	g.str(name)
	g.raw(`], "alias": `)
	g.str(name)
	g.raw(fmt.Sprintf(`, "checksum": {"name": "sha256", "checksum": "%016x%016x%016x%016x"}`, g.rng.Uint64(), g.rng.Uint64(), g.rng.Uint64(), g.rng.Uint64()))
	g.raw(`, "config": {"enabled": true, "alias": null, "schema": `)
	g.str(schema)
	g.raw(`, "database": null, "tags": ["nightly"], "meta": {"owner": "data-team"}, "group": null, "materialized": `)
	g.str(materialized)
	g.raw(`, "incremental_strategy": null, "batch_size": null, "lookback": 1, "begin": null, "persist_docs": {}, "post-hook": [], "pre-hook": [], ` +
		`"quoting": {}, "column_types": {}, "full_refresh": null, "unique_key": null, "on_schema_change": "ignore", "on_configuration_change": "apply", ` +
		`"grants": {"select": ["reporter"]}, "packages": [], "docs": {"show": true, "node_color": null}, "contract": {"enforced": false, "alias_types": true}, ` +
		`"event_time": null, "concurrent_batches": null`)
	if typ == "model" {
		g.raw(`, "access": "protected"`)
	}
	g.raw(`}, "tags": ["nightly"], "description": `)
	g.str(g.sentence(40))
	g.raw(`, "columns": {`)
	for c := range 8 {
		if c > 0 {
			g.raw(", ")
		}
		col := fmt.Sprintf("%s_%s_%d", g.word(), g.word(), c)
		g.str(col)
		g.raw(`: {"name": `)
		g.str(col)
		g.raw(`, "description": `)
		g.str(g.sentence(12))
		g.raw(`, "meta": {}, "data_type": "varchar", "constraints": [], "quote": null, "tags": [], "granularity": null, "doc_blocks": []}`)
	}
	g.raw(`}, "meta": {"owner": "data-team"}, "group": null, "docs": {"show": true, "node_color": null}, "patch_path": "big://models/schema.yml", "build_path": null, ` +
		`"unrendered_config": {"materialized": `)
	g.str(materialized)
	g.raw(`}, "created_at": 1772431200.5, "config_call_dict": {}, "unrendered_config_call_dict": {}, "relation_name": `)
	if materialized == "ephemeral" {
		g.raw("null")
	} else {
		g.str("analytics." + schema + "." + name)
	}
	g.raw(`, "raw_code": `)
	if typ == "seed" {
		// Seeds are CSV files: no SQL, no compilation.
		g.raw(`"", "doc_blocks": [], "root_path": "/tmp/jobs/1/target", "depends_on": {"macros": []}}`)
		return
	}
	g.str(rawSQL)
	g.raw(`, "doc_blocks": [], "language": "sql", "refs": [], "sources": [], "metrics": [], "depends_on": {"macros": ["macro.big.macro_1"], "nodes": `)
	g.strList(parents)
	g.raw(`}, "compiled_path": null, "compiled": true, "compiled_code": `)
	g.str(compiled)
	g.raw(`, "extra_ctes_injected": true, "extra_ctes": [], "contract": {"enforced": false, "alias_types": true, "checksum": null}`)
	if typ == "model" {
		g.raw(`, "access": "protected", "constraints": [], "version": null, "latest_version": null, "deprecation_date": null, "primary_key": [], "time_spine": null`)
	}
	g.raw("}")
}

func (g *manifestGen) test(id, model string) {
	name := id[len("test.big."):]
	g.str(id)
	g.raw(`: {"database": "analytics", "schema": "dbt_test__audit", "name": `)
	g.str(name)
	g.raw(`, "resource_type": "test", "package_name": "big", "path": `)
	g.str(name + ".sql")
	g.raw(`, "original_file_path": "models/schema.yml", "unique_id": `)
	g.str(id)
	g.raw(`, "fqn": ["big", `)
	g.str(name)
	g.raw(`], "alias": `)
	g.str(name)
	g.raw(`, "checksum": {"name": "none", "checksum": ""}, "config": {"enabled": true, "alias": null, "schema": "dbt_test__audit", "database": null, "tags": [], ` +
		`"meta": {}, "group": null, "materialized": "test", "severity": "ERROR", "store_failures": null, "store_failures_as": null, "where": null, "limit": null, ` +
		`"fail_calc": "count(*)", "warn_if": "!= 0", "error_if": "!= 0"}, "tags": [], "description": "", "columns": {}, "meta": {}, "group": null, ` +
		`"docs": {"show": true, "node_color": null}, "patch_path": null, "build_path": null, "unrendered_config": {}, "created_at": 1772431200.5, ` +
		`"config_call_dict": {}, "unrendered_config_call_dict": {}, "relation_name": null, "raw_code": "{{ test_not_null(**_dbt_generic_test_kwargs) }}", ` +
		`"doc_blocks": [], "language": "sql", "refs": [], "sources": [], "metrics": [], "depends_on": {"macros": ["macro.dbt.test_not_null"], "nodes": `)
	g.strList([]string{model})
	g.raw(`}, "compiled_path": null, "compiled": true, "compiled_code": `)
	g.str("select id from " + model + " where id is null\n" + g.sentence(30))
	g.raw(`, "extra_ctes_injected": true, "extra_ctes": [], "contract": {"enforced": false, "alias_types": true, "checksum": null}, "column_name": "id", ` +
		`"file_key_name": "models.x", "attached_node": `)
	g.str(model)
	g.raw(`, "test_metadata": {"name": "not_null", "kwargs": {"column_name": "id", "model": "{{ get_where_subquery(ref('x')) }}"}, "namespace": null}}`)
}

func (g *manifestGen) source(id string, i int) {
	g.str(id)
	g.raw(fmt.Sprintf(`: {"database": "raw", "schema": "raw_%d", "name": "table_%d", "resource_type": "source", "package_name": "big", `+
		`"path": "models/sources.yml", "original_file_path": "models/sources.yml", "unique_id": `, i/20, i))
	g.str(id)
	g.raw(fmt.Sprintf(`, "fqn": ["big", "raw_%d", "table_%d"], "source_name": "raw_%d", "source_description": "", "loader": "fivetran", "identifier": "table_%d", `+
		`"quoting": {"database": null, "schema": null, "identifier": null, "column": null}, "loaded_at_field": null, "loaded_at_query": null, `+
		`"freshness": {"warn_after": {"count": null, "period": null}, "error_after": {"count": null, "period": null}, "filter": null}, "external": null, "description": `, i/20, i, i/20, i))
	g.str(g.sentence(30))
	g.raw(fmt.Sprintf(`, "columns": {}, "meta": {}, "source_meta": {}, "tags": [], "config": {"enabled": true, "event_time": null, "meta": {}, "tags": []}, `+
		`"patch_path": null, "unrendered_config": {}, "relation_name": "raw.raw_%d.table_%d", "created_at": 1772431200.5, "unrendered_database": null, `+
		`"unrendered_schema": null, "doc_blocks": []}`, i/20, i))
}
