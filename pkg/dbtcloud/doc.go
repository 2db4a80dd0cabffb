// Package dbtcloud holds what the bridge knows about dbt Cloud: the payloads
// and signatures of its job webhooks, run statuses, and a client for the
// Admin API v2: runs, their steps and the artifacts each step leaves.
package dbtcloud
