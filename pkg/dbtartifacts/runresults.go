package dbtartifacts

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// Status is a node's outcome in run_results.json. Models, seeds and
// snapshots report success, error, skipped or (microbatch models, schema v6)
// partial success; tests report pass, fail, warn, error or skipped.
type Status string

// Statuses of the published run_results schemas.
const (
	StatusSuccess        Status = "success"
	StatusPartialSuccess Status = "partial success"
	StatusError          Status = "error"
	StatusSkipped        Status = "skipped"
	StatusPass           Status = "pass"
	StatusFail           Status = "fail"
	StatusWarn           Status = "warn"
	StatusRuntimeError   Status = "runtime error"
)

// Built reports whether a node with this status wrote its relation: success,
// or partial success, where some batches of a microbatch model were written.
func (s Status) Built() bool { return s == StatusSuccess || s == StatusPartialSuccess }

// RunResultsVersions are the run_results.json schema versions ReadRunResults
// accepts: v5 (dbt 1.7 and 1.8) and v6 (dbt 1.9 and later).
var RunResultsVersions = []int{5, 6}

// RunResults is what lineage needs from one run_results.json: which nodes
// one dbt command ran and how each ended. dbt writes one per command, so a
// multi-step dbt Cloud job has one per step.
// See https://docs.getdbt.com/reference/artifacts/run-results-json.
type RunResults struct {
	// SchemaVersion is 5 or 6.
	SchemaVersion int
	// DBTVersion wrote the file, e.g. "1.9.1".
	DBTVersion string
	// InvocationID is dbt's id for the command; empty if dbt sent none.
	InvocationID string
	// GeneratedAt is when dbt wrote the file; zero if unreadable.
	GeneratedAt time.Time
	// Command is the dbt subcommand that wrote the file as dbt names it in
	// args.which ("build", "run", "seed", "snapshot", "compile",
	// "generate" for docs generate...); empty when the file has no args.
	Command string
	// FullRefresh reports that the command ran with --full-refresh, which
	// rebuilds incremental models from scratch.
	FullRefresh bool
	// Results lists the nodes the command executed, in file order. Nodes it
	// did not select, and ephemeral models, do not appear.
	Results []Result
}

// Result is one node's outcome.
type Result struct {
	// UniqueID is the node, e.g. "model.shop.orders".
	UniqueID string
	// Status is how it ended.
	Status Status
	// RelationName is the relation as dbt rendered it, quotes included,
	// e.g. "ANALYTICS"."MARTS"."ORDERS" or `project`.`dataset`.`orders`;
	// empty when dbt wrote null (tests, operations, some older adapters).
	RelationName string
}

// BuildsRelations reports whether the command that wrote r can have changed
// relations. compile, docs generate, test, show and the like report
// "success" for every model they compiled without writing any relation, so
// their results must not count. A file without args is taken at its word.
func (r *RunResults) BuildsRelations() bool {
	if r.Command == "" {
		return true
	}
	return buildingCommands[r.Command]
}

// buildingCommands are the dbt subcommands that write relations, by the name
// dbt gives them in args.which and on its command line.
var buildingCommands = map[string]bool{
	"build": true, "run": true, "seed": true, "snapshot": true, "retry": true, "clone": true,
}

// dbtSubcommands are the words that can follow "dbt" as its subcommand.
var dbtSubcommands = map[string]bool{
	"build": true, "clean": true, "clone": true, "compile": true, "debug": true, "deps": true, "docs": true,
	"init": true, "list": true, "ls": true, "parse": true, "retry": true, "run": true, "run-operation": true,
	"seed": true, "show": true, "snapshot": true, "source": true, "test": true,
}

// CommandBuildsRelations reports whether a dbt command line, as a dbt Cloud
// job step runs it ("dbt build --select tag:daily", "dbt --warn-error run"),
// can change relations and so leaves a run_results.json worth reading. It
// is false for other commands (deps, test, docs generate, source freshness)
// and for text that is not a dbt command.
func CommandBuildsRelations(command string) bool {
	fields := strings.Fields(command)
	if len(fields) == 0 || (fields[0] != "dbt" && fields[0] != "dbtf") {
		return false
	}
	for i := 1; i < len(fields); i++ {
		f := fields[i]
		if valueFlags[f] {
			i++ // "--log-level debug": debug is the flag's, not the subcommand
			continue
		}
		if dbtSubcommands[f] {
			return buildingCommands[f]
		}
	}
	return false
}

// valueFlags are dbt's global flags that take a value and may come before
// the subcommand.
var valueFlags = map[string]bool{
	"--log-level": true, "--log-level-file": true, "--log-format": true, "--log-format-file": true,
	"--log-path": true, "--target-path": true, "--profiles-dir": true, "--project-dir": true,
	"--profile": true, "--target": true, "-t": true, "--vars": true, "--threads": true,
	"--printer-width": true, "--record-timing-info": true, "-r": true,
}

// rawResult is one element of results[]; every other field (timing,
// compiled_code, adapter_response...) is skipped by the decoder.
type rawResult struct {
	UniqueID     string  `json:"unique_id"`
	Status       string  `json:"status"`
	RelationName *string `json:"relation_name"`
}

// rawArgs is the part of args lineage needs. args echoes the command line
// and its shape is not part of the schema, so its fields are read leniently:
// a surprise there must not make the results unreadable.
type rawArgs struct {
	Which       json.RawMessage `json:"which"`
	FullRefresh json.RawMessage `json:"full_refresh"`
}

// ReadRunResults decodes a run_results.json (schema v5 or v6) from r,
// reading one result at a time. A file of another kind or version is
// rejected with an error that says what it is.
func ReadRunResults(r io.Reader) (*RunResults, error) {
	const file = "run_results.json"
	w := newWalker(r, file)
	out := &RunResults{}
	meta, version, err := w.document(kindRunResults, RunResultsVersions, func(k string) (bool, error) {
		switch k {
		case "results":
			return true, readResults(w, file, out)
		case "args":
			var args rawArgs
			if err := w.decode(&args, "reading args"); err != nil {
				return true, err
			}
			_ = json.Unmarshal(args.Which, &out.Command)
			_ = json.Unmarshal(args.FullRefresh, &out.FullRefresh)
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		return nil, err
	}
	out.SchemaVersion = version
	out.DBTVersion, out.InvocationID = meta.DBTVersion, meta.InvocationID
	out.GeneratedAt, _ = time.Parse(time.RFC3339Nano, meta.GeneratedAt)
	return out, nil
}

// readResults reads the results array one result at a time.
func readResults(w *walker, file string, out *RunResults) error {
	if err := w.open('[', "reading results"); err != nil {
		return err
	}
	for i := 0; w.dec.More(); i++ {
		var raw rawResult
		if err := w.decode(&raw, fmt.Sprintf("reading results[%d]", i)); err != nil {
			return err
		}
		if raw.UniqueID == "" {
			return fmt.Errorf("dbtartifacts: %s: results[%d] has no unique_id", file, i)
		}
		res := Result{UniqueID: raw.UniqueID, Status: Status(raw.Status)}
		if raw.RelationName != nil {
			res.RelationName = *raw.RelationName
		}
		out.Results = append(out.Results, res)
	}
	return w.close("reading results")
}
