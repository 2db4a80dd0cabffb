package statetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
)

// TestTargetStatuses runs the TargetStatuses contract.
func TestTargetStatuses(t *testing.T, newStore func(t *testing.T, clock func() time.Time) state.TargetStatuses) {
	ctx := context.Background()
	c := NewClock()
	s := newStore(t, c.Now)
	if got, err := s.TargetStatuses(ctx); err != nil || len(got) != 0 {
		t.Fatalf("TargetStatuses of an empty store = %+v, %v", got, err)
	}
	sales := state.StatusTarget{Key: `workbook:name:"Finance"/"Sales"`, Kind: "workbook", Name: "Sales", Project: "Finance"}
	run := func(i int, result state.Outcome) state.TargetRun {
		at := c.Now().Add(time.Duration(i) * time.Hour)
		r := state.TargetRun{
			RunID: fmt.Sprint(70000 + i), DBTJobID: "123", DBTRunURL: fmt.Sprintf("https://cloud.getdbt.com/deploy/1/projects/2/runs/%d", 70000+i),
			DBTFinishedAt: at.Add(-time.Minute), At: at, Result: result,
		}
		if result != state.OutcomeAlreadyQueued {
			r.JobID, r.QueuedAt, r.FinishedAt = fmt.Sprint("job-", i), at, at.Add(3*time.Minute)
		}
		if result == state.OutcomeFailed {
			r.Notes = "Database login failed"
		}
		return r
	}
	// Twelve runs, recorded out of order, the first a success.
	order := []int{2, 0, 1, 5, 4, 3, 11, 10, 6, 7, 8, 9}
	for _, i := range order {
		result := state.OutcomeFailed
		switch {
		case i == 0:
			result = state.OutcomeSucceeded
		case i == 9:
			result = state.OutcomeAlreadyQueued
		}
		if err := s.RecordRun(ctx, sales, run(i, result)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.TargetStatuses(ctx)
	if err != nil || len(got) != 1 {
		t.Fatalf("TargetStatuses = %+v, %v", got, err)
	}
	st := got[0]
	if st.StatusTarget != sales || len(st.Runs) != state.HistoryLength {
		t.Fatalf("status = %+v, want %d runs of %+v", st, state.HistoryLength, sales)
	}
	for i, r := range st.Runs {
		want := run(11-i, r.Result)
		if r.RunID != want.RunID || !r.At.Equal(want.At) || r.DBTRunURL != want.DBTRunURL || !r.DBTFinishedAt.Equal(want.DBTFinishedAt) {
			t.Errorf("run %d = %+v, want run %s at %s", i, r, want.RunID, want.At)
		}
	}
	if r := st.Runs[2]; r.Result != state.OutcomeAlreadyQueued || r.JobID != "" || !r.QueuedAt.IsZero() {
		t.Errorf("already queued run = %+v", r)
	}
	if r := st.Runs[0]; r.Result != state.OutcomeFailed || r.Notes != "Database login failed" || r.JobID != "job-11" || !r.FinishedAt.Equal(run(11, "").At.Add(3*time.Minute)) {
		t.Errorf("newest run = %+v", r)
	}
	// The success fell out of the ten, but is remembered.
	if st.LastSuccess == nil || st.LastSuccess.RunID != "70000" || st.LastSuccess.Result != state.OutcomeSucceeded {
		t.Errorf("LastSuccess = %+v, want run 70000", st.LastSuccess)
	}

	// The same run again replaces its entry; an older success does not
	// replace a newer one; empty fields keep what is known.
	if err := s.RecordRun(ctx, state.StatusTarget{Key: sales.Key, ItemID: "wb-luid", URL: "https://tableau/#/site/x/workbooks/1"}, run(11, state.OutcomeSucceeded)); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordRun(ctx, sales, run(1, state.OutcomeSucceeded)); err != nil {
		t.Fatal(err)
	}
	got, _ = s.TargetStatuses(ctx)
	st = got[0]
	if st.Runs[0].RunID != "70011" || st.Runs[0].Result != state.OutcomeSucceeded || len(st.Runs) != state.HistoryLength {
		t.Errorf("runs after a replaced run = %+v", st.Runs)
	}
	if st.LastSuccess == nil || st.LastSuccess.RunID != "70011" {
		t.Errorf("LastSuccess = %+v, want the newer 70011", st.LastSuccess)
	}
	if st.Name != "Sales" || st.Project != "Finance" || st.ItemID != "wb-luid" || st.URL == "" {
		t.Errorf("target after a partial update = %+v", st.StatusTarget)
	}

	// Warnings: set, read back, cleared; none for an unknown target.
	w := state.QualityWarning{ID: "dqw-1", Reason: state.OutcomeFailed, RunID: "70011"}
	if err := s.SetWarning(ctx, sales.Key, w); err != nil {
		t.Fatal(err)
	}
	if err := s.SetWarning(ctx, "datasource:id:unknown", w); err != nil {
		t.Fatal(err)
	}
	got, _ = s.TargetStatuses(ctx)
	if len(got) != 1 || got[0].Warning != w {
		t.Fatalf("after SetWarning = %+v", got)
	}
	// Recording a run keeps the warning.
	if err := s.RecordRun(ctx, sales, run(12, state.OutcomeFailed)); err != nil {
		t.Fatal(err)
	}
	if err := s.SetWarning(ctx, sales.Key, state.QualityWarning{}); err != nil {
		t.Fatal(err)
	}
	got, _ = s.TargetStatuses(ctx)
	if got[0].Warning != (state.QualityWarning{}) || got[0].Runs[0].RunID != "70012" {
		t.Fatalf("after clearing the warning = %+v", got[0])
	}

	// Concurrent writers of one target lose nothing.
	orders := state.StatusTarget{Key: "datasource:name:\"\"/\"Orders\"", Kind: "datasource", Name: "Orders"}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.RecordRun(ctx, orders, run(i, state.OutcomeSucceeded)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got, _ = s.TargetStatuses(ctx)
	if len(got) != 2 || got[0].Key != orders.Key || len(got[0].Runs) != 8 {
		t.Fatalf("after concurrent writes = %+v", got)
	}

	// A target on another site keeps its site.
	emea := state.StatusTarget{Key: `site:"emea"/workbook:name:"Finance"/"Sales"`, Kind: "workbook", Name: "Sales", Project: "Finance", Site: "emea"}
	if err := s.RecordRun(ctx, emea, run(1, state.OutcomeSucceeded)); err != nil {
		t.Fatal(err)
	}
	got, _ = s.TargetStatuses(ctx)
	sites := map[string]string{}
	for _, st := range got {
		sites[st.Key] = st.Site
	}
	if len(got) != 3 || sites[emea.Key] != "emea" || sites[sales.Key] != "" || sites[orders.Key] != "" {
		t.Fatalf("sites of the statuses = %v, want emea's kept and the others' none", sites)
	}
}

// TestJobRunDetails checks that a job keeps the dbt run's page and finish
// it was completed with, for the status page's running rows.
func TestJobRunDetails(t *testing.T, newStore func(t *testing.T, clock func() time.Time) Store) {
	ctx := context.Background()
	c := NewClock()
	s := newStore(t, c.Now)
	k := state.Key{RunID: "66001", Target: "datasource:id:ds-1"}
	if err := s.Begin(ctx, state.Claim{Key: k, Owner: "o", DBTJobID: "123", HoldUntil: c.Now().Add(time.Minute), Retention: time.Hour}); err != nil {
		t.Fatal(err)
	}
	j := state.TableauJob{
		JobID: "job-1", Run: k, DBTJobID: "123", TargetName: "datasource ds-1", ItemKind: "datasource", ItemID: "ds-1", QueuedAt: c.Now(),
		DBTRunURL: "https://cloud.getdbt.com/deploy/1/projects/2/runs/66001", DBTFinishedAt: c.Now().Add(-30 * time.Second),
	}
	if err := s.CompleteJob(ctx, "o", j); err != nil {
		t.Fatal(err)
	}
	open, err := s.OpenJobs(ctx)
	if err != nil || len(open) != 1 || open[0].DBTRunURL != j.DBTRunURL || !open[0].DBTFinishedAt.Equal(j.DBTFinishedAt) {
		t.Fatalf("OpenJobs = %+v, %v; want the dbt run's URL and finish", open, err)
	}
}
