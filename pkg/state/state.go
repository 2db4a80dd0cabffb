// Package state defines the records the bridge keeps between invocations and
// the stores that hold them: a DynamoDB single table in production (package
// dynamo) and memory for local runs and tests.
//
// Refreshes are made idempotent per (dbt run, target) the way Powertools for
// AWS Lambda does it: a claim is a conditional write that marks the pair
// INPROGRESS until the claiming invocation's deadline, then COMPLETED once
// Tableau has accepted the refresh; a failure deletes the claim so that a
// retry may run. Records expire after a retention period that must exceed the
// age past which webhook events are ignored as replays.
package state

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Status is the state of an idempotency record.
type Status string

// Record statuses.
const (
	StatusInProgress Status = "INPROGRESS"
	StatusCompleted  Status = "COMPLETED"
)

// Outcome is what happened: to a target of a dbt run, to a dbt run the
// scheduler followed, or to a Tableau refresh job. One set of values for
// the replies, the logs and the records; the values are part of the
// replies' contract.
type Outcome string

// A target of a dbt run, in the webhook's reply and the run's record.
const (
	OutcomeRefreshed     Outcome = "refreshed"      // Tableau accepted the refresh; the job id is set
	OutcomeAlreadyQueued Outcome = "already_queued" // Tableau had a refresh of the item queued already
	OutcomeDuplicate     Outcome = "duplicate"      // an earlier delivery of this run refreshed it
	OutcomeInProgress    Outcome = "in_progress"    // another delivery is refreshing it right now
	OutcomeFailed        Outcome = "failed"         // also a dbt run that failed, and a refresh job that did
	// OutcomeDeferred: not queued within the invocation's time (Tableau's
	// capacity for the site was taken); recorded, unclaimed, for the
	// five-minute follow-up to queue (see Deferrals).
	OutcomeDeferred Outcome = "deferred"
)

// A dbt run the scheduler followed (with OutcomeRefreshed and OutcomeFailed).
const (
	OutcomeRefreshIncomplete Outcome = "refresh_incomplete" // the run succeeded; some targets are to be retried
	OutcomeRunning           Outcome = "running"            // still in flight; a later invocation follows it
	OutcomeCancelled         Outcome = "cancelled"          // also a refresh job that was cancelled
	OutcomeStuck             Outcome = "stuck"              // queued past the limit; also a refresh job past its limit
	OutcomeAlreadyHandled    Outcome = "already_handled"    // this tick already ran the job, or another invocation is triggering it
	OutcomeError             Outcome = "error"              // dbt Cloud could not be asked
)

// OutcomeSucceeded is a Tableau refresh job that finished well; one that
// did not is OutcomeFailed, OutcomeCancelled or OutcomeStuck.
const OutcomeSucceeded Outcome = "succeeded"

// A Tableau webhook event, in the Tableau route's reply.
const (
	OutcomeIgnored  Outcome = "ignored"  // not a refresh end
	OutcomeOurs     Outcome = "ours"     // the end of a refresh we queued
	OutcomeExternal Outcome = "external" // a refresh someone else started
)

// Key names what a claim is about: one (dbt run, target) pair, or one
// webhook delivery.
type Key struct {
	RunID  string
	Target string
	// Delivery, when set, names a webhook delivery instead (see
	// DeliveryKey); RunID and Target are then empty.
	Delivery string
}

// DeliveryKey is the key of a webhook delivery, e.g. "tableau:<hash of the
// body>", so that a sender's identical duplicates are handled once. Such
// keys are kept apart from the runs' in every store.
func DeliveryKey(id string) Key { return Key{Delivery: id} }

func (k Key) String() string {
	if k.Delivery != "" {
		return "delivery " + k.Delivery
	}
	return "run " + k.RunID + " target " + k.Target
}

// Record is what the store holds for a key.
type Record struct {
	Key
	Status Status
	// Owner is the random token of the claim that wrote the record, so that an
	// invocation whose claim expired and was taken over cannot complete or
	// release its successor's claim.
	Owner string
	// DBTJobID is the dbt job whose run this is (for summaries).
	DBTJobID string
	// Source and Why say how the target was found ("map" or "lineage")
	// and why it was refreshed.
	Source, Why string
	// Outcome and JobID are set once COMPLETED: OutcomeRefreshed with the
	// Tableau job id, or OutcomeAlreadyQueued.
	Outcome Outcome
	JobID   string
	// InProgressUntil is when an INPROGRESS claim lapses (the claimer's
	// deadline); ExpiresAt is when the record stops counting at all.
	InProgressUntil time.Time
	ExpiresAt       time.Time
	UpdatedAt       time.Time
}

// Live reports whether the record still blocks a new claim at now.
func (r *Record) Live(now time.Time) bool {
	if !now.Before(r.ExpiresAt) {
		return false
	}
	return r.Status == StatusCompleted || now.Before(r.InProgressUntil)
}

// Claim is a request to take a key.
type Claim struct {
	Key
	Owner    string
	DBTJobID string
	// Source and Why are recorded with the claim (see Record).
	Source, Why string
	// HoldUntil is when the claim lapses if the claimer neither completes nor
	// releases it (it crashed or timed out).
	HoldUntil time.Time
	// Retention is how long the record blocks repeats once written.
	Retention time.Duration
}

// NewOwner returns a random token naming one claim's holder.
func NewOwner() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail on supported platforms
	return hex.EncodeToString(b)
}

// ErrNotHeld is returned (wrapped) by Complete when the caller's claim lapsed
// and another invocation took the key over.
var ErrNotHeld = errors.New("claim no longer held")

// ClaimedError is returned by Begin when a live record already holds the key:
// the refresh was done (Status COMPLETED) or is being done (INPROGRESS).
type ClaimedError struct {
	Existing Record
}

func (e *ClaimedError) Error() string {
	return fmt.Sprintf("%s is already %s", e.Existing.Key, e.Existing.Status)
}

// Idempotency guards each (dbt run, target) refresh so that it is done once.
type Idempotency interface {
	// Begin claims a key. It returns *ClaimedError when a live record holds
	// it, and takes over records that expired or whose claim lapsed.
	Begin(ctx context.Context, c Claim) error
	// Complete marks a claim done with its outcome. It fails if owner no
	// longer holds the claim. Repeating a completion owner already made,
	// with the same outcome and job, succeeds and changes nothing: that is
	// what the retry of a completion whose reply was lost looks like.
	Complete(ctx context.Context, k Key, owner string, outcome Outcome, jobID string) error
	// Release deletes a claim so that a retry can run. Releasing a claim that
	// owner no longer holds does nothing.
	Release(ctx context.Context, k Key, owner string) error
	// Get returns the record for a key, or nil when there is none.
	Get(ctx context.Context, k Key) (*Record, error)
}
