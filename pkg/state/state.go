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

// Outcomes of a completed refresh claim.
const (
	OutcomeRefreshed     = "refreshed"
	OutcomeAlreadyQueued = "already_queued"
)

// Key names one (dbt run, target) pair.
type Key struct {
	RunID  string
	Target string
}

func (k Key) String() string { return "run " + k.RunID + " target " + k.Target }

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
	// Outcome and JobID are set once COMPLETED: OutcomeRefreshed with the
	// Tableau job id, or OutcomeAlreadyQueued.
	Outcome string
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
	Complete(ctx context.Context, k Key, owner, outcome, jobID string) error
	// Release deletes a claim so that a retry can run. Releasing a claim that
	// owner no longer holds does nothing.
	Release(ctx context.Context, k Key, owner string) error
	// Get returns the record for a key, or nil when there is none.
	Get(ctx context.Context, k Key) (*Record, error)
}
