package tableautest

import (
	"net/http"
	"sync"
	"testing"
)

// TestConcurrentClients runs many clients at once, as the project's tests do,
// so -race sees every shared path: sign-in, lookups, refreshes, job polling,
// webhooks and observation.
func TestConcurrentClients(t *testing.T) {
	// 3.25: a connected app may read jobs from there on.
	e := newEnv(t, AllowHTTPDestinations(), WithJobTimings(0, 0), WithAPIVersion("3.25"))
	rc := newReceiver(t)
	e.createWebhook(e.signIn(), "ok", "WorkbookRefreshSucceeded", rc.srv.URL)
	var books []string
	for _, name := range []string{"A", "B", "C", "D"} {
		books = append(books, e.srv.AddWorkbook(name, "Finance"))
	}

	const workers = 32
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok := e.signInJWT()
			if r := e.get(e.site("workbooks?filter=projectName:eq:Finance"), tok); r.status != http.StatusOK {
				t.Errorf("list: %d %s", r.status, r.body)
				return
			}
			r := e.post(e.site("workbooks/"+books[i%len(books)]+"/refresh"), tok, "{}")
			switch {
			case r.status == http.StatusAccepted:
				id := dig(r.json(t), "job", "id").(string)
				if g := e.get(e.site("jobs/"+id), tok); g.status != http.StatusOK {
					t.Errorf("job: %d %s", g.status, g.body)
				}
			case r.status == http.StatusConflict && r.code(t) == codeDuplicateJob:
			default:
				t.Errorf("refresh: %d %s", r.status, r.body)
			}
			_ = e.srv.Requests()
			_ = e.srv.Jobs()
			if r := e.post(e.api("auth/signout"), tok, ""); r.status != http.StatusNoContent {
				t.Errorf("sign out: %d %s", r.status, r.body)
			}
		}()
	}
	wg.Wait()

	total := 0
	for _, b := range books {
		total += e.srv.RefreshCount(b)
	}
	if total == 0 || total != len(e.srv.Jobs()) {
		t.Errorf("refresh counts add up to %d, jobs = %d", total, len(e.srv.Jobs()))
	}
}

// TestConcurrentPATSignIns checks the one-session-per-PAT rule under a race:
// however the sign-ins interleave, exactly one of the tokens still works.
func TestConcurrentPATSignIns(t *testing.T) {
	e := newEnv(t)
	const workers = 20
	tokens := make([]string, workers)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := e.post(e.api("auth/signin"), "", patBody(testPAT, testPATSecret, ""))
			if r.status != http.StatusOK {
				t.Errorf("sign in: %d %s", r.status, r.body)
				return
			}
			tokens[i] = dig(r.json(t), "credentials", "token").(string)
		}()
	}
	wg.Wait()
	live := 0
	for _, tok := range tokens {
		if e.get(e.site("workbooks"), tok).status == http.StatusOK {
			live++
		}
	}
	if live != 1 {
		t.Errorf("%d of %d tokens work, want exactly 1", live, workers)
	}
}
