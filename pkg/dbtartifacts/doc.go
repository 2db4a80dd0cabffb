// Package dbtartifacts reads the artifacts dbt writes for every command
// (run_results.json, manifest.json) and works out from them which warehouse
// relations a run changed, so that the bridge refreshes the Tableau content
// over those relations and nothing else.
//
// A dbt Cloud job runs several commands (dbt seed, dbt build, dbt docs
// generate...), one per step, and each step leaves its own run_results.json;
// the Admin API serves them per step. Read every step's results with
// ReadRunResults, one manifest with ReadManifest, and pass them to Changed:
//
//	rr, err := dbtartifacts.ReadRunResults(body) // for each step
//	m, err := dbtartifacts.ReadManifest(manifestBody)
//	cs, err := dbtartifacts.Changed(m, rr1, rr2)
//	for _, c := range cs.Changes {
//		log.Printf("%s changed: %s", c.Relation, c.Why())
//	}
//
// Manifests of large projects reach hundreds of megabytes. ReadManifest
// decodes them as a stream and keeps only the few fields lineage needs, so
// its memory stays in the tens of megabytes (see BenchmarkReadManifest).
//
// Both readers follow dbt's published JSON schemas
// (https://schemas.getdbt.com/dbt/run-results/v6.json and
// https://schemas.getdbt.com/dbt/manifest/v12.json) and refuse a file of
// another kind or an unknown version with an error that says what it is,
// rather than guess at its shape.
package dbtartifacts
