package refresh

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/notify"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refreshmap"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/remote"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
)

// A run may map to more targets than Tableau takes in the time an
// invocation has (dbt waits 10 s for the webhook's reply). A target that
// got no place on its site before that time ran out, or that Tableau turned
// away (429) for longer than the time left, is deferred: recorded, without
// a claim, for the five-minute follow-up (QueueDeferred) to queue. Its
// outcome is OutcomeDeferred, which is settled: the reply is a 200, since
// nothing is lost. Whoever queues it — the follow-up, two follow-ups at
// once, or a redelivery of the run — claims it first, as every refresh is
// claimed, so it is queued once.

// DeferralLimit is how long a deferred target is retried before it is given
// up on, with an error log and a notification: as long as a dbt event is
// taken as new (WEBHOOK_MAX_EVENT_AGE's default).
const DeferralLimit = 24 * time.Hour

// WithDeferrals lets the refresher defer targets it cannot queue in its
// time, recording them in d for QueueDeferred. Without it such targets fail,
// retryably.
func WithDeferrals(d state.Deferrals) Option { return func(r *Refresher) { r.deferrals = d } }

// deferredPayload is a deferred target as recorded: what QueueDeferred needs
// to queue it without planning the run again.
type deferredPayload struct {
	Target refreshmap.Target `json:"target"`
	Source Source            `json:"source,omitempty"`
	Why    string            `json:"why,omitempty"`
	// Reason is why it was deferred last.
	Reason string `json:"reason"`
	// RunFinishedAt and RunURL are the run's: without the finish a refresh
	// the target later rides on (409093) could not be told from one that
	// read old data, and the status page shows both.
	RunFinishedAt time.Time `json:"run_finished_at,omitzero"`
	RunURL        string    `json:"run_url,omitempty"`
}

// noPlace is why a target that waited for a place on its site was deferred.
func (r *Refresher) noPlace() string {
	return fmt.Sprintf("not queued in this invocation's time: %d refreshes at a time on the Tableau site, and the others came first", r.concurrency)
}

// recordDeferred records the targets at idx, which got no place in time,
// and sets their outcomes: deferred, or failed (retryably) when they could
// not be recorded.
func (r *Refresher) recordDeferred(ctx context.Context, run Run, targets []Target, idx []int, out []Outcome) {
	if len(idx) == 0 {
		return
	}
	reason := r.noPlace()
	log := r.logger.With("dbt_run_id", run.RunID, "dbt_job_id", run.DBTJobID)
	if r.deferrals == nil {
		for _, i := range idx {
			t := targets[i]
			out[i] = Outcome{Target: t.Target, Name: t.String(), Source: t.Source, Why: t.Why, Site: t.Site, Result: state.OutcomeFailed, Error: reason, Retryable: true}
		}
		log.WarnContext(ctx, "targets not queued in time; a retry may queue them", "targets", len(idx))
		return
	}
	ds := make([]state.Deferred, len(idx))
	for n, i := range idx {
		ds[n] = r.deferred(run, targets[i], reason, time.Time{})
	}
	// ctx is near its end by now: the reserve is what is left of it.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), max(remaining(ctx), time.Second))
	defer cancel()
	err := r.deferrals.Defer(wctx, ds, r.retention)
	for _, i := range idx {
		t := targets[i]
		o := Outcome{Target: t.Target, Name: t.String(), Source: t.Source, Why: t.Why, Site: t.Site, Result: state.OutcomeDeferred, Error: reason + "; recorded for the follow-up"}
		if err != nil {
			o.Result, o.Error, o.Retryable = state.OutcomeFailed, reason+"; recording it for the follow-up failed: "+err.Error(), true
		}
		out[i] = o
	}
	if err != nil {
		log.ErrorContext(ctx, "could not record the targets not queued in time; a retry may queue them", "targets", len(idx), "error", err)
		return
	}
	log.InfoContext(ctx, "targets deferred to the follow-up", "targets", len(idx), "reason", reason)
}

// deferred is the record of t, deferred now for reason, due after notBefore.
func (r *Refresher) deferred(run Run, t Target, reason string, notBefore time.Time) state.Deferred {
	payload, _ := json.Marshal(deferredPayload{Target: t.Target, Source: t.Source, Why: t.Why, Reason: reason, RunFinishedAt: run.FinishedAt, RunURL: run.URL}) // plain values: cannot fail
	since := t.deferredAt
	if since.IsZero() {
		since = r.now()
	}
	return state.Deferred{
		Key: state.Key{RunID: run.RunID, Target: t.Key()}, DBTJobID: run.DBTJobID, Payload: payload,
		DeferredAt: since, NotBefore: notBefore,
	}
}

// later reports whether err is Tableau turning the refresh away for longer
// than the invocation has left to queue (qctx), and the wait it asked for:
// a 429 (its limits: requests at a time, or refreshes an hour), or a 503
// that says when to come back. Tableau did not act on either.
func (r *Refresher) later(qctx context.Context, err error) (time.Duration, bool) {
	var te *tableau.Error
	if r.deferrals == nil || !errors.As(err, &te) {
		return 0, false
	}
	switch {
	case te.StatusCode == http.StatusTooManyRequests:
	case te.StatusCode == http.StatusServiceUnavailable && te.RetryAfter > 0:
	default:
		return 0, false
	}
	return te.RetryAfter, qctx.Err() != nil || !remote.Fits(qctx, te.RetryAfter)
}

// deferOne defers a claimed target that Tableau turned away: the claim is
// released (nothing was queued) and the target recorded, due after the wait
// Tableau asked for. When it cannot be recorded it fails, retryably.
func (r *Refresher) deferOne(ctx context.Context, c *claim, t Target, wait time.Duration, cause error) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), max(remaining(ctx), time.Second))
	defer cancel()
	if rerr := r.store.Release(rctx, c.key, c.owner); rerr != nil {
		c.log.WarnContext(ctx, "release failed; the claim lapses at its deadline", "error", rerr)
	}
	reason := fmt.Sprintf("Tableau turned the refresh away for longer than this invocation has left: %v", cause)
	var notBefore time.Time
	if wait > 0 {
		notBefore = r.now().Add(wait)
	}
	if err := r.deferrals.Defer(rctx, []state.Deferred{r.deferred(c.run, t, reason, notBefore)}, r.retention); err != nil {
		c.log.ErrorContext(ctx, "could not record the target for the follow-up", "error", err)
		r.fail(ctx, c, cause)
		return
	}
	c.Result, c.Error, c.Retryable = state.OutcomeDeferred, reason+"; recorded for the follow-up", false
	c.log.WarnContext(ctx, "target deferred to the follow-up", "error", cause, "retry_in", wait.String())
}

// remaining is the time until ctx's deadline, zero without one.
func remaining(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return max(time.Until(d), 0)
	}
	return 0
}

// DeferredResult counts what one QueueDeferred did.
type DeferredResult struct {
	Found  int `json:"found"`  // deferred targets recorded
	Queued int `json:"queued"` // queued now (refreshed, or Tableau had one queued)
	// Done were queued meanwhile by another invocation (a redelivery of
	// the run, another follow-up).
	Done int `json:"done"`
	// Deferred are not due yet (Tableau asked to wait) or were deferred
	// again; Retry failed in a way a retry may fix, or are held by another
	// invocation: the next follow-up tries them again.
	Deferred int `json:"deferred"`
	Retry    int `json:"retry"`
	// Failed failed for a reason no retry fixes; GaveUp were deferred for
	// longer than DeferralLimit. Both are notified and forgotten.
	Failed int `json:"failed"`
	GaveUp int `json:"gave_up"`
}

// QueueDeferred queues the targets that earlier invocations deferred, each
// as Refresh does (claimed first), and forgets those that are settled. The
// five-minute follow-up calls it; ctx bounds the work, and what it cannot
// queue in that time is deferred again. holdUntil is when this
// invocation's claims lapse.
func (r *Refresher) QueueDeferred(ctx context.Context, holdUntil time.Time) (DeferredResult, error) {
	var res DeferredResult
	if r.deferrals == nil {
		return res, nil
	}
	ds, err := r.deferrals.DeferredTargets(ctx)
	if err != nil {
		return res, fmt.Errorf("queue deferred targets: %w", err)
	}
	res.Found = len(ds)
	now := r.now()
	type batch struct {
		run     Run
		targets []Target
	}
	var batches []*batch
	byRun := map[string]*batch{}
	var forget []state.Key
	for _, d := range ds {
		var p deferredPayload
		if err := json.Unmarshal(d.Payload, &p); err != nil || p.Target.Kind == "" {
			// Only this package writes them; one that does not decode was
			// written by a version that no longer exists.
			r.logger.ErrorContext(ctx, "deferred target unreadable; forgotten", "dbt_run_id", d.RunID, "target", d.Target, "error", err)
			res.Failed++
			forget = append(forget, d.Key)
			continue
		}
		switch {
		case now.Sub(d.DeferredAt) > DeferralLimit:
			r.giveUp(ctx, d, p)
			res.GaveUp++
			forget = append(forget, d.Key)
			continue
		case now.Before(d.NotBefore):
			res.Deferred++
			continue
		}
		b := byRun[d.RunID]
		if b == nil {
			b = &batch{run: Run{RunID: d.RunID, DBTJobID: d.DBTJobID, FinishedAt: p.RunFinishedAt, URL: p.RunURL}}
			byRun[d.RunID] = b
			batches = append(batches, b)
		}
		b.targets = append(b.targets, Target{Target: p.Target, Source: p.Source, Why: p.Why, deferredAt: d.DeferredAt})
	}

	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, b := range batches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs := r.Refresh(ctx, b.run, b.targets, holdUntil)
			mu.Lock()
			defer mu.Unlock()
			for _, o := range outs {
				k := state.Key{RunID: b.run.RunID, Target: o.Target.Key()}
				switch {
				case o.Result == state.OutcomeRefreshed || o.Result == state.OutcomeAlreadyQueued:
					res.Queued++
					forget = append(forget, k)
				case o.Result == state.OutcomeDuplicate:
					res.Done++
					forget = append(forget, k)
				case o.Result == state.OutcomeDeferred:
					res.Deferred++ // recorded again by Refresh
				case o.Retryable:
					res.Retry++
				default:
					res.Failed++ // fail raised it
					forget = append(forget, k)
				}
			}
		}()
	}
	wg.Wait()
	if len(forget) > 0 {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := r.deferrals.Undefer(fctx, forget); err != nil {
			// They stay recorded: the next follow-up finds them settled
			// (a duplicate) and forgets them then.
			return res, fmt.Errorf("queue deferred targets: %w", err)
		}
	}
	if res.Found > 0 {
		r.logger.InfoContext(ctx, "deferred targets looked at", "targets", res.Found, "deferred", res.Deferred,
			"unsettled", res.Retry, "failed", res.Failed+res.GaveUp)
	}
	return res, nil
}

// giveUp reports a target deferred for longer than DeferralLimit.
func (r *Refresher) giveUp(ctx context.Context, d state.Deferred, p deferredPayload) {
	reason := fmt.Sprintf("deferred since %s and not queued within %s; last: %s",
		d.DeferredAt.UTC().Format(time.RFC3339), DeferralLimit, p.Reason)
	r.logger.ErrorContext(ctx, "gave up on a deferred target", "dbt_run_id", d.RunID, "dbt_job_id", d.DBTJobID, "target", p.Target.String(), "reason", reason)
	if r.alerts == nil {
		return
	}
	m := notify.Message{
		Kind: notify.KindTableauRefreshNotQueued, DBTJobID: d.DBTJobID, DBTRunID: d.RunID,
		TableauItemKind: string(p.Target.Kind), TableauItemName: p.Target.String(), TableauItemID: p.Target.ID, Reason: reason, At: r.now(),
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := r.alerts.Raise(actx, "not-queued:"+d.RunID+":"+d.Target, m); err != nil {
		r.logger.WarnContext(ctx, "notification pending", "error", err)
	}
}
