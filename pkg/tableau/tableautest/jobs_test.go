package tableautest

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// forever keeps jobs where they are until the test moves them.
var forever = WithJobTimings(-1, -1)

func TestRefresh(t *testing.T) {
	e := newEnv(t, forever)
	wb := e.srv.AddWorkbook("Sales", "Finance")
	ds := e.srv.AddDatasource("Orders", "Finance")
	live := e.srv.AddWorkbook("Live", "Finance", NoExtract())
	e.srv.AddPATWithRole("viewer", "viewer-secret", RoleViewer)
	admin := e.signIn()
	viewer := e.signInPAT("viewer", "viewer-secret")

	tests := []struct {
		name       string
		token      string
		path       string
		body       string
		wantStatus int
		wantCode   string
		wantKind   string
		wantItem   string
	}{
		{name: "workbook", token: admin, path: "workbooks/" + wb + "/refresh", body: "{}", wantStatus: 202, wantKind: "workbook", wantItem: wb},
		{name: "data source", token: admin, path: "datasources/" + ds + "/refresh", body: "{}", wantStatus: 202, wantKind: "datasource", wantItem: ds},
		{name: "again while queued", token: admin, path: "workbooks/" + wb + "/refresh", body: "{}", wantStatus: 409, wantCode: codeDuplicateJob},
		{name: "no extract", token: admin, path: "workbooks/" + live + "/refresh", body: "{}", wantStatus: 409, wantCode: codeExtractNotAllowed},
		{name: "unknown workbook", token: admin, path: "workbooks/" + newLUID() + "/refresh", body: "{}", wantStatus: 404, wantCode: codeWorkbookMissing},
		{name: "unknown data source", token: admin, path: "datasources/" + newLUID() + "/refresh", body: "{}", wantStatus: 404, wantCode: codeDatasourceMissing},
		{name: "viewer", token: viewer, path: "datasources/" + ds + "/refresh", body: "{}", wantStatus: 403, wantCode: codeForbidden},
		{name: "malformed body", token: admin, path: "datasources/" + ds + "/refresh", body: "{", wantStatus: 400, wantCode: codeBadRequest},
		{name: "wrong method", token: admin, path: "workbooks/" + wb + "/refresh", wantStatus: 405, wantCode: codeMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r reply
			if tt.wantCode == codeMethodNotAllowed {
				r = e.get(e.site(tt.path), tt.token)
			} else {
				r = e.post(e.site(tt.path), tt.token, tt.body)
			}
			if r.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d: %s", r.status, tt.wantStatus, r.body)
			}
			if tt.wantCode != "" {
				if r.code(t) != tt.wantCode {
					t.Errorf("code = %s, want %s", r.code(t), tt.wantCode)
				}
				return
			}
			j := dig(r.json(t), "job")
			if dig(j, "id") == nil || dig(j, "mode") != "Asynchronous" || dig(j, "type") != "RefreshExtract" || dig(j, "createdAt") == nil {
				t.Errorf("job = %v", j)
			}
			if dig(j, "extractRefreshJob", tt.wantKind, "id") != tt.wantItem {
				t.Errorf("job item = %v, want %s %s", dig(j, "extractRefreshJob"), tt.wantKind, tt.wantItem)
			}
		})
	}
	if n := e.srv.RefreshCount(wb); n != 1 {
		t.Errorf("RefreshCount(workbook) = %d, want 1 (the 409 does not count)", n)
	}
}

func TestJobLifecycle(t *testing.T) {
	e := newEnv(t, forever)
	wb := e.srv.AddWorkbook("Sales", "Finance")
	tok := e.signIn()
	id := e.refresh(tok, "workbook", wb)

	j := dig(e.get(e.site("jobs/"+id), tok).json(t), "job")
	if dig(j, "progress") != "0" || dig(j, "finishCode") != nil || dig(j, "completedAt") != nil {
		t.Errorf("queued job = %v, want progress \"0\" and no finishCode or completedAt", j)
	}
	if info, _ := e.srv.Job(id); info.FinishCode != -1 || info.State != "Queued" {
		t.Errorf("Job() = %+v", info)
	}

	if err := e.srv.FinishJob(id, FinishSucceeded, ""); err != nil {
		t.Fatal(err)
	}
	j = dig(e.get(e.site("jobs/"+id), tok).json(t), "job")
	if dig(j, "finishCode") != "0" || dig(j, "progress") != "100" || dig(j, "completedAt") == nil || dig(j, "startedAt") == nil {
		t.Errorf("finished job = %v", j)
	}
	if dig(j, "extractRefreshJob", "workbook", "name") != "Sales" {
		t.Errorf("job item = %v", dig(j, "extractRefreshJob"))
	}

	// With the job finished the item can be refreshed again.
	e.refresh(tok, "workbook", wb)
	if n := e.srv.RefreshCount(wb); n != 2 {
		t.Errorf("RefreshCount = %d, want 2", n)
	}
}

func TestJobsRunOnTheirOwn(t *testing.T) {
	e := newEnv(t, WithJobTimings(time.Millisecond, 5*time.Millisecond))
	ds := e.srv.AddDatasource("Orders", "Finance")
	tok := e.signIn()
	id := e.refresh(tok, "datasource", ds)

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	info, err := e.srv.WaitJob(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if info.FinishCode != FinishSucceeded || info.ItemType != "datasource" || info.ItemID != ds || info.StartedAt.IsZero() {
		t.Errorf("job = %+v", info)
	}
	j := dig(e.get(e.site("jobs/"+id), tok).json(t), "job")
	if dig(j, "finishCode") != "0" {
		t.Errorf("job = %v", j)
	}
}

func TestInjectedFailure(t *testing.T) {
	e := newEnv(t, WithJobTimings(0, 0))
	wb := e.srv.AddWorkbook("Sales", "Finance")
	tok := e.signIn()
	const notes = "java.lang.RuntimeException: Login failed for user 'etl'."
	e.srv.FailNextRefresh(wb, notes)

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	failed, err := e.srv.WaitJob(ctx, e.refresh(tok, "workbook", wb))
	if err != nil {
		t.Fatal(err)
	}
	if failed.FinishCode != FinishFailed || failed.Notes != notes {
		t.Errorf("job = %+v", failed)
	}
	j := dig(e.get(e.site("jobs/"+failed.ID), tok).json(t), "job")
	if dig(j, "finishCode") != "1" || dig(j, "extractRefreshJob", "notes") != notes {
		t.Errorf("failed job = %v", j)
	}

	// The failure was for one job only.
	next, err := e.srv.WaitJob(ctx, e.refresh(tok, "workbook", wb))
	if err != nil {
		t.Fatal(err)
	}
	if next.FinishCode != FinishSucceeded {
		t.Errorf("next job = %+v", next)
	}
	if got := len(e.srv.Jobs()); got != 2 {
		t.Errorf("Jobs() has %d jobs, want 2", got)
	}
}

func TestFinishJobErrors(t *testing.T) {
	e := newEnv(t, forever)
	wb := e.srv.AddWorkbook("Sales", "Finance")
	id := e.refresh(e.signIn(), "workbook", wb)
	if err := e.srv.FinishJob(id, 7, ""); err == nil {
		t.Error("finish code 7 accepted")
	}
	if err := e.srv.FinishJob(newLUID(), 0, ""); err == nil {
		t.Error("unknown job accepted")
	}
	if err := e.srv.FinishJob(id, FinishFailed, "boom"); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.FinishJob(id, FinishSucceeded, ""); err == nil {
		t.Error("finishing a finished job accepted")
	}
}

func TestCancelJob(t *testing.T) {
	e := newEnv(t, forever)
	wb := e.srv.AddWorkbook("Sales", "Finance")
	tok := e.signIn()
	id := e.refresh(tok, "workbook", wb)

	if r := e.put(e.site("jobs/"+id), tok, ""); r.status != http.StatusOK {
		t.Fatalf("cancel: %d %s", r.status, r.body)
	}
	j := dig(e.get(e.site("jobs/"+id), tok).json(t), "job")
	if dig(j, "finishCode") != "2" || dig(j, "completedAt") == nil {
		t.Errorf("cancelled job = %v", j)
	}

	tests := []struct {
		name       string
		method     string
		job        string
		wantStatus int
		wantCode   string
	}{
		{"cancel a finished job", "PUT", id, 409, codeJobFinished},
		{"cancel an unknown job", "PUT", newLUID(), 404, codeJobMissing},
		{"query an unknown job", "GET", newLUID(), 404, codeJobMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := send(t, request{method: tt.method, url: e.site("jobs/" + tt.job), token: tok})
			if r.status != tt.wantStatus || r.code(t) != tt.wantCode {
				t.Fatalf("got %d %s, want %d %s", r.status, r.body, tt.wantStatus, tt.wantCode)
			}
		})
	}
}
