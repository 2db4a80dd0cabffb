package dynamo

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
)

// Scheduled runs share one partition: there are few (one per scheduled dbt
// job at most), and the follow-up check lists them all with one Query.
const (
	runsPK    = "SCHEDULER#RUNS"
	jobPrefix = "JOB#"

	attrPhase       = "phase"
	attrRunID       = "dbt_run_id"
	attrTriggeredAt = "triggered_at"
	attrTick        = "tick"
	// Records of runs never settled (the stack was stopped) disappear after
	// this; a live run is followed long before.
	runRetention = 7 * 24 * time.Hour
)

// Runs returns the table's scheduled-run records.
func (t *Table) Runs() Runs { return Runs{t} }

// Runs implements state.ScheduledRuns on the table.
type Runs struct{ t *Table }

var _ state.ScheduledRuns = Runs{}

// BeginTrigger implements state.ScheduledRuns.
func (r Runs) BeginTrigger(ctx context.Context, jobID, owner, tick string, leaseUntil time.Time) error {
	now := r.t.now()
	item := key(runsPK, jobPrefix+jobID)
	item[attrPhase] = s(state.PhaseTriggering)
	item[attrTick] = s(tick)
	item[attrOwner] = s(owner)
	item[attrLeaseUntil] = n(leaseUntil.UnixMilli())
	item[attrUpdatedAt] = s(now.UTC().Format(time.RFC3339Nano))
	item[attrExpiresAt] = n(now.Add(runRetention).Unix())
	token := writeToken()
	item[attrWriteToken] = s(token)
	_, err := r.t.api.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(r.t.name),
		Item:      item,
		ConditionExpression: aws.String("attribute_not_exists(#pk) OR (#phase = :triggering AND #lease <= :nowms) OR " +
			"(#phase = :settled AND #tick < :tick)"),
		ExpressionAttributeNames: map[string]string{"#pk": attrPK, "#phase": attrPhase, "#lease": attrLeaseUntil, "#tick": attrTick},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":triggering": s(state.PhaseTriggering), ":settled": s(state.PhaseSettled), ":nowms": n(now.UnixMilli()), ":tick": s(tick),
		},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if old, failed := conditionFailed(err); failed {
		if ownWrite(old, token) {
			return nil // taken by an attempt whose reply was lost
		}
		existing := state.ScheduledRun{JobID: jobID, Phase: state.PhaseTriggering}
		if old != nil {
			existing = decodeRun(old)
		}
		return &state.LeaseHeldError{Existing: existing}
	}
	if err != nil {
		return fmt.Errorf("take trigger lease for dbt job %s: %w", jobID, err)
	}
	return nil
}

// Started implements state.ScheduledRuns.
func (r Runs) Started(ctx context.Context, jobID, owner string, runID int64, at time.Time) error {
	token := writeToken()
	_, err := r.t.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           aws.String(r.t.name),
		Key:                 key(runsPK, jobPrefix+jobID),
		UpdateExpression:    aws.String("SET #phase = :running, #run = :run, #trig = :at, #upd = :upd, #token = :token REMOVE #owner, #lease"),
		ConditionExpression: aws.String("#phase = :triggering AND #owner = :owner"),
		ExpressionAttributeNames: map[string]string{
			"#phase": attrPhase, "#run": attrRunID, "#trig": attrTriggeredAt, "#upd": attrUpdatedAt,
			"#owner": attrOwner, "#lease": attrLeaseUntil, "#token": attrWriteToken,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":running": s(state.PhaseRunning), ":triggering": s(state.PhaseTriggering), ":run": n(runID),
			":at": s(at.UTC().Format(time.RFC3339Nano)), ":upd": s(r.t.now().UTC().Format(time.RFC3339Nano)), ":owner": s(owner),
			":token": s(token),
		},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if old, failed := conditionFailed(err); failed {
		if ownWrite(old, token) {
			return nil // recorded by an attempt whose reply was lost
		}
		return fmt.Errorf("record run %d of dbt job %s: trigger lease no longer held", runID, jobID)
	}
	if err != nil {
		return fmt.Errorf("record run %d of dbt job %s: %w", runID, jobID, err)
	}
	return nil
}

// Abandon implements state.ScheduledRuns.
func (r Runs) Abandon(ctx context.Context, jobID, owner string) error {
	_, err := r.t.api.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 aws.String(r.t.name),
		Key:                       key(runsPK, jobPrefix+jobID),
		ConditionExpression:       aws.String("#phase = :triggering AND #owner = :owner"),
		ExpressionAttributeNames:  map[string]string{"#phase": attrPhase, "#owner": attrOwner},
		ExpressionAttributeValues: map[string]types.AttributeValue{":triggering": s(state.PhaseTriggering), ":owner": s(owner)},
	})
	if _, failed := conditionFailed(err); failed {
		return nil
	}
	if err != nil {
		return fmt.Errorf("drop trigger lease for dbt job %s: %w", jobID, err)
	}
	return nil
}

// Get implements state.ScheduledRuns.
func (r Runs) Get(ctx context.Context, jobID string) (*state.ScheduledRun, error) {
	out, err := r.t.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(r.t.name), Key: key(runsPK, jobPrefix+jobID), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("read scheduled run of dbt job %s: %w", jobID, err)
	}
	if out.Item == nil {
		return nil, nil
	}
	run := decodeRun(out.Item)
	return &run, nil
}

// List implements state.ScheduledRuns.
func (r Runs) List(ctx context.Context) ([]state.ScheduledRun, error) {
	items, err := r.t.query(ctx, runsPK, "", nil, nil)
	if err != nil {
		return nil, fmt.Errorf("list scheduled runs: %w", err)
	}
	runs := make([]state.ScheduledRun, 0, len(items))
	for _, item := range items {
		runs = append(runs, decodeRun(item))
	}
	return runs, nil
}

// Settle implements state.ScheduledRuns.
func (r Runs) Settle(ctx context.Context, jobID string, runID int64, outcome state.Outcome) (bool, error) {
	token := writeToken()
	_, err := r.t.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           aws.String(r.t.name),
		Key:                 key(runsPK, jobPrefix+jobID),
		UpdateExpression:    aws.String("SET #phase = :settled, #outcome = :outcome, #upd = :upd, #token = :token"),
		ConditionExpression: aws.String("#phase = :running AND #run = :run"),
		ExpressionAttributeNames: map[string]string{
			"#phase": attrPhase, "#run": attrRunID, "#outcome": attrOutcome, "#upd": attrUpdatedAt, "#token": attrWriteToken,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":running": s(state.PhaseRunning), ":settled": s(state.PhaseSettled), ":run": n(runID),
			":outcome": s(string(outcome)), ":upd": s(r.t.now().UTC().Format(time.RFC3339Nano)), ":token": s(token),
		},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if old, failed := conditionFailed(err); failed {
		// Settled by an attempt of ours whose reply was lost: still ours
		// to report.
		return ownWrite(old, token), nil
	}
	if err != nil {
		return false, fmt.Errorf("settle run %d of dbt job %s: %w", runID, jobID, err)
	}
	return true, nil
}

func decodeRun(item map[string]types.AttributeValue) state.ScheduledRun {
	trig, _ := time.Parse(time.RFC3339Nano, getS(item, attrTriggeredAt))
	upd, _ := time.Parse(time.RFC3339Nano, getS(item, attrUpdatedAt))
	run := state.ScheduledRun{
		JobID:       strings.TrimPrefix(getS(item, attrSK), jobPrefix),
		Phase:       getS(item, attrPhase),
		Tick:        getS(item, attrTick),
		Outcome:     state.Outcome(getS(item, attrOutcome)),
		Owner:       getS(item, attrOwner),
		RunID:       getN(item, attrRunID),
		TriggeredAt: trig,
		UpdatedAt:   upd,
	}
	if ms := getN(item, attrLeaseUntil); ms != 0 {
		run.LeaseUntil = time.UnixMilli(ms)
	}
	return run
}
