package statetest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
)

// Store is what the follow-up needs: refresh claims, open Tableau jobs and
// the notification outbox, in one table.
type Store interface {
	state.Idempotency
	state.TableauJobs
	state.Outbox
}

// TestTableauJobs runs the TableauJobs contract.
func TestTableauJobs(t *testing.T, newStore func(t *testing.T, clock func() time.Time) Store) {
	ctx := context.Background()
	c := NewClock()
	s := newStore(t, c.Now)
	run := "88001"
	site := map[string]string{}
	mk := func(target, job, item string, age time.Duration) state.TableauJob {
		k := state.Key{RunID: run, Target: target}
		if err := s.Begin(ctx, state.Claim{Key: k, Owner: "o", DBTJobID: "123", HoldUntil: c.Now().Add(time.Minute), Retention: time.Hour}); err != nil {
			t.Fatal(err)
		}
		j := state.TableauJob{JobID: job, Run: k, DBTJobID: "123", TargetName: target, ItemKind: "workbook", ItemID: item, QueuedAt: c.Now().Add(-age), Site: site[target]}
		if err := s.CompleteJob(ctx, "o", j); err != nil {
			t.Fatal(err)
		}
		if r, err := s.Get(ctx, k); err != nil || r.Status != state.StatusCompleted || r.JobID != job || r.Outcome != state.OutcomeRefreshed {
			t.Fatalf("record after CompleteJob = %+v, %v", r, err)
		}
		return j
	}
	// B is on another site than the default: its jobs are followed there.
	site[`site:"emea"/workbook:name:/B`] = "emea"
	a := mk("workbook:name:/A", "job-a", "item-a", time.Minute)
	b := mk(`site:"emea"/workbook:name:/B`, "job-b", "item-b", 2*time.Minute)
	// A second completion (a stale or duplicate invocation) cannot reopen it.
	if err := s.CompleteJob(ctx, "p", a); !errors.Is(err, state.ErrNotHeld) {
		t.Fatalf("second CompleteJob = %v, want ErrNotHeld", err)
	}
	// The owner repeating its own (a retry after a lost reply) succeeds.
	if err := s.CompleteJob(ctx, "o", a); err != nil {
		t.Fatalf("the owner's repeated CompleteJob = %v", err)
	}
	open, err := s.OpenJobs(ctx)
	if err != nil || len(open) != 2 || open[0].JobID != "job-b" || open[1].Run != a.Run || open[1].ItemID != "item-a" ||
		open[1].TargetName != a.TargetName || open[1].DBTJobID != "123" || !open[1].QueuedAt.Equal(a.QueuedAt) ||
		open[0].Site != "emea" || open[1].Site != "" {
		t.Fatalf("OpenJobs = %+v, %v", open, err)
	}
	if latest, _, err := s.LatestJob(ctx, "item-b"); err != nil || latest == nil || latest.Site != "emea" {
		t.Fatalf("LatestJob(item of b) = %+v, %v: want its site", latest, err)
	}

	// Two sources report job a's end at once: one closes it.
	var closed atomic.Int32
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := s.CloseJob(ctx, a, state.OutcomeFailed, "Database login failed")
			if err != nil {
				t.Error(err)
			}
			if ok {
				closed.Add(1)
			}
		}()
	}
	wg.Wait()
	if closed.Load() != 1 {
		t.Fatalf("CloseJob closed %d times, want 1", closed.Load())
	}
	if ok, err := s.CloseJob(ctx, b, state.OutcomeSucceeded, ""); err != nil || !ok {
		t.Fatalf("CloseJob(b) = %v, %v", ok, err)
	}
	// Nor does the owner's repeat reopen a closed job.
	if err := s.CompleteJob(ctx, "o", b); err != nil {
		t.Fatalf("the owner's CompleteJob after close = %v", err)
	}
	if open, err := s.OpenJobs(ctx); err != nil || len(open) != 0 {
		t.Fatalf("OpenJobs after closing = %+v, %v", open, err)
	}
	latest, end, err := s.LatestJob(ctx, "item-a")
	if err != nil || latest == nil || latest.JobID != "job-a" || end != state.OutcomeFailed || latest.Run != a.Run {
		t.Fatalf("LatestJob(item of a) = %+v, %q, %v", latest, end, err)
	}
	a2 := mk("workbook:name:/A2", "job-a2", "item-a", -time.Second)
	if latest, end, err := s.LatestJob(ctx, "item-a"); err != nil || latest == nil || latest.JobID != "job-a2" || end != "" {
		t.Fatalf("LatestJob after a newer job = %+v, %q, %v", latest, end, err)
	}
	if latest, _, err := s.LatestJob(ctx, "no-such-item"); err != nil || latest != nil {
		t.Fatalf("LatestJob(unknown) = %+v, %v", latest, err)
	}
	if ok, err := s.CloseJob(ctx, a2, state.OutcomeSucceeded, ""); err != nil || !ok {
		t.Fatalf("CloseJob(a2) = %v, %v", ok, err)
	}
	sum, err := s.RunSummary(ctx, run)
	if err != nil || len(sum) != 3 {
		t.Fatalf("RunSummary = %+v, %v", sum, err)
	}
	// In target order: B's key names its site first.
	if sum[1].Target != a.Run.Target || sum[1].RefreshState != state.OutcomeFailed || sum[1].Notes != "Database login failed" || sum[1].JobID != "job-a" {
		t.Errorf("summary of A = %+v", sum[1])
	}
	if sum[0].RefreshState != state.OutcomeSucceeded || sum[0].FinishedAt.IsZero() || sum[0].Target != b.Run.Target {
		t.Errorf("summary of B = %+v", sum[0])
	}
	testRides(t, s, c)
}

// testRides: targets that ride on a refresh Tableau already had (409093),
// and the one more refresh that may follow it.
func testRides(t *testing.T, s Store, c *Clock) {
	t.Helper()
	ctx := context.Background()
	finished := c.Now().Add(-time.Minute)
	ride := func(run, target, job string) state.TableauJob {
		t.Helper()
		k := state.Key{RunID: run, Target: target}
		if err := s.Begin(ctx, state.Claim{Key: k, Owner: "o", DBTJobID: "123", HoldUntil: c.Now().Add(time.Minute), Retention: time.Hour}); err != nil {
			t.Fatal(err)
		}
		j := state.TableauJob{JobID: job, Run: k, DBTJobID: "123", TargetName: target, ItemKind: "datasource", ItemID: "item-" + target,
			QueuedAt: c.Now(), Outcome: state.OutcomeAlreadyQueued, Requeue: true, Incremental: true, DBTFinishedAt: finished}
		if err := s.CompleteJob(ctx, "o", j); err != nil {
			t.Fatal(err)
		}
		// The owner's retry after a lost reply changes nothing.
		if err := s.CompleteJob(ctx, "o", j); err != nil {
			t.Fatalf("the owner's repeated CompleteJob = %v", err)
		}
		if r, err := s.Get(ctx, k); err != nil || r.Outcome != state.OutcomeAlreadyQueued || r.JobID != job || r.Status != state.StatusCompleted {
			t.Fatalf("record of a ride = %+v, %v", r, err)
		}
		return j
	}
	openJob := func(k state.Key) *state.TableauJob {
		t.Helper()
		open, err := s.OpenJobs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range open {
			if j.Run == k {
				return &j
			}
		}
		return nil
	}

	r := ride("88002", "datasource:name:/R", "job-r")
	r.Site = "" // the default site; the requeue below moves nothing
	if o := openJob(r.Run); o == nil || o.JobID != "job-r" || !o.Requeue || !o.Incremental || !o.DBTFinishedAt.Equal(finished) ||
		o.Outcome != state.OutcomeAlreadyQueued || o.ItemID != r.ItemID {
		t.Fatalf("open ride = %+v", o)
	}
	// Two sources see job-r end at once: one records the one more refresh.
	next := state.TableauJob{JobID: "job-r2", DBTJobID: "123", TargetName: r.TargetName, ItemKind: r.ItemKind, ItemID: r.ItemID,
		QueuedAt: c.Now().Add(time.Second), Incremental: true, DBTFinishedAt: finished, RodeOn: "job job-r (succeeded)", Requeue: true, Site: "apac"}
	var won atomic.Int32
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := s.RequeueJob(ctx, r, next)
			if err != nil {
				t.Error(err)
			}
			if ok {
				won.Add(1)
			}
		}()
	}
	wg.Wait()
	if won.Load() != 1 {
		t.Fatalf("RequeueJob recorded %d times, want 1", won.Load())
	}
	o := openJob(r.Run)
	if o == nil || o.JobID != "job-r2" || o.Requeue || o.Outcome != state.OutcomeAlreadyQueued || o.RodeOn != "job job-r (succeeded)" ||
		!o.Incremental || !o.QueuedAt.Equal(next.QueuedAt) || o.Site != "apac" {
		t.Fatalf("open after the requeue = %+v", o)
	}
	// One more is the most: neither the old job nor the new one requeues.
	for _, prev := range []state.TableauJob{r, *o} {
		if ok, err := s.RequeueJob(ctx, prev, state.TableauJob{JobID: "job-r3", QueuedAt: c.Now()}); err != nil || ok {
			t.Fatalf("RequeueJob after %s = %v, %v", prev.JobID, ok, err)
		}
	}
	if rec, err := s.Get(ctx, r.Run); err != nil || rec.JobID != "job-r2" || rec.Outcome != state.OutcomeAlreadyQueued {
		t.Fatalf("record after the requeue = %+v, %v", rec, err)
	}
	if ok, err := s.CloseJob(ctx, r, state.OutcomeSucceeded, ""); err != nil || ok {
		t.Fatalf("CloseJob of the replaced job = %v, %v", ok, err)
	}
	if ok, err := s.CloseJob(ctx, *o, state.OutcomeSucceeded, ""); err != nil || !ok {
		t.Fatalf("CloseJob(r2) = %v, %v", ok, err)
	}
	sum, err := s.RunSummary(ctx, "88002")
	if err != nil || len(sum) != 1 || sum[0].RodeOn != "job job-r (succeeded)" || sum[0].JobID != "job-r2" ||
		sum[0].RefreshState != state.OutcomeSucceeded || sum[0].Outcome != state.OutcomeAlreadyQueued {
		t.Fatalf("RunSummary of a ride = %+v, %v", sum, err)
	}

	// A ride whose job could not be found: no job id, one more refresh due.
	u := ride("88003", "datasource:name:/U", "")
	if o := openJob(u.Run); o == nil || o.JobID != "" || !o.Requeue {
		t.Fatalf("open ride without a job = %+v", o)
	}
	if ok, err := s.RequeueJob(ctx, u, state.TableauJob{JobID: "job-u2", ItemKind: u.ItemKind, ItemID: u.ItemID, QueuedAt: c.Now(),
		RodeOn: "a job that could not be found"}); err != nil || !ok {
		t.Fatalf("RequeueJob of a ride without a job = %v, %v", ok, err)
	}
	if o := openJob(u.Run); o == nil || o.JobID != "job-u2" || o.Requeue {
		t.Fatalf("open after that requeue = %+v", o)
	}

	// Two runs riding on one Tableau job are followed apart.
	a := ride("88004", "datasource:name:/S", "shared")
	b := ride("88005", "datasource:name:/S", "shared")
	if ok, err := s.CloseJob(ctx, a, state.OutcomeFailed, "login failed"); err != nil || !ok {
		t.Fatalf("CloseJob(a) = %v, %v", ok, err)
	}
	if o := openJob(b.Run); o == nil || o.JobID != "shared" {
		t.Fatalf("closing one run's ride closed the other's: %+v", o)
	}
}

// TestOutbox runs the Outbox contract.
func TestOutbox(t *testing.T, newStore func(t *testing.T, clock func() time.Time) Store) {
	ctx := context.Background()
	c := NewClock()
	s := newStore(t, c.Now)
	n := state.Notification{Key: "tableau-job:job-a", Payload: []byte(`{"kind":"tableau_refresh_failed"}`)}
	if fresh, err := s.Enqueue(ctx, n); err != nil || !fresh {
		t.Fatalf("Enqueue = %v, %v", fresh, err)
	}
	if fresh, err := s.Enqueue(ctx, n); err != nil || fresh {
		t.Fatalf("second Enqueue = %v, %v; want a duplicate", fresh, err)
	}
	pending, err := s.Pending(ctx, c.Now())
	if err != nil || len(pending) != 1 || string(pending[0].Payload) != string(n.Payload) {
		t.Fatalf("Pending = %+v, %v", pending, err)
	}
	if attempt, ok, err := s.Claim(ctx, n.Key, c.Now().Add(time.Minute)); err != nil || !ok || attempt != 1 {
		t.Fatalf("Claim = %d, %v, %v", attempt, ok, err)
	}
	if _, ok, err := s.Claim(ctx, n.Key, c.Now().Add(time.Minute)); err != nil || ok {
		t.Fatalf("second Claim = %v, %v; want refused while held", ok, err)
	}
	if p, _ := s.Pending(ctx, c.Now()); len(p) != 0 {
		t.Fatalf("a claimed notification is listed as due: %+v", p)
	}
	if err := s.Failed(ctx, n.Key, "slack: 503", c.Now().Add(5*time.Minute), false); err != nil {
		t.Fatal(err)
	}
	c.Advance(6 * time.Minute)
	pending, _ = s.Pending(ctx, c.Now())
	if len(pending) != 1 || pending[0].Attempts != 1 || pending[0].LastError != "slack: 503" {
		t.Fatalf("Pending after a failure = %+v", pending)
	}
	if attempt, ok, _ := s.Claim(ctx, n.Key, c.Now().Add(time.Minute)); !ok || attempt != 2 {
		t.Fatalf("retry claim = %d, %v", attempt, ok)
	}
	if err := s.Delivered(ctx, n.Key); err != nil {
		t.Fatal(err)
	}
	if p, _ := s.Pending(ctx, c.Now().Add(time.Hour)); len(p) != 0 {
		t.Fatalf("delivered notification still pending: %+v", p)
	}
	if fresh, _ := s.Enqueue(ctx, n); fresh {
		t.Error("a delivered notification was accepted again")
	}
	// Giving up takes it out of the queue for good.
	g := state.Notification{Key: "dbt-run:9", Payload: []byte("{}")}
	if _, err := s.Enqueue(ctx, g); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.Claim(ctx, g.Key, c.Now().Add(time.Minute)); err != nil || !ok {
		t.Fatalf("claim: %t, %v", ok, err)
	}
	if err := s.Failed(ctx, g.Key, "gone", c.Now(), true); err != nil {
		t.Fatal(err)
	}
	if p, _ := s.Pending(ctx, c.Now().Add(time.Hour)); len(p) != 0 {
		t.Fatalf("given-up notification still pending: %+v", p)
	}
}
