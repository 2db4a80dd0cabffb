package tableautest

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestWebhookCRUD(t *testing.T) {
	e := newEnv(t, AllowHTTPDestinations())
	tok := e.signIn()
	rc := newReceiver(t)

	created := e.post(e.site("webhooks"), tok, webhookBody("refresh-failed", "WorkbookRefreshFailed", rc.srv.URL+"/hook"))
	if created.status != http.StatusCreated {
		t.Fatalf("create: %d %s", created.status, created.body)
	}
	hook := dig(created.json(t), "webhook")
	id, _ := dig(hook, "id").(string)
	if id == "" || dig(hook, "name") != "refresh-failed" || dig(hook, "event") != "WorkbookRefreshFailed" ||
		dig(hook, "isEnabled") != true || dig(hook, "owner", "id") == nil ||
		dig(hook, "webhook-destination", "webhook-destination-http", "url") != rc.srv.URL+"/hook" {
		t.Errorf("created webhook = %v", hook)
	}
	if loc := created.header.Get("Location"); !strings.HasSuffix(loc, "/webhooks/"+id) {
		t.Errorf("Location = %q", loc)
	}

	// The older form names the event by its webhook-source element.
	old := e.post(e.site("webhooks"), tok, `{"webhook":{"name":"ds-ok",
		"webhook-source":{"webhook-source-event-datasource-refresh-succeeded":{}},
		"webhook-destination":{"webhook-destination-http":{"method":"POST","url":"`+rc.srv.URL+`"}}}}`)
	if old.status != http.StatusCreated || dig(old.json(t), "webhook", "event") != "DatasourceRefreshSucceeded" {
		t.Fatalf("create with webhook-source: %d %s", old.status, old.body)
	}

	list := e.get(e.site("webhooks"), tok).json(t)
	if got := names(t, list, "webhooks", "webhook"); len(got) != 2 || got[0] != "refresh-failed" || got[1] != "ds-ok" {
		t.Errorf("list = %q", got)
	}
	if got := e.get(e.site("webhooks/"+id), tok); got.status != http.StatusOK || dig(got.json(t), "webhook", "id") != id {
		t.Errorf("get: %d %s", got.status, got.body)
	}

	updated := e.put(e.site("webhooks/"+id), tok, `{"webhook":{"name":"renamed","isEnabled":"false"}}`)
	if updated.status != http.StatusOK {
		t.Fatalf("update: %d %s", updated.status, updated.body)
	}
	if h := dig(updated.json(t), "webhook"); dig(h, "name") != "renamed" || dig(h, "isEnabled") != false || dig(h, "event") != "WorkbookRefreshFailed" {
		t.Errorf("updated webhook = %v", h)
	}
	if infos := e.srv.Webhooks(); len(infos) != 2 || infos[0].Name != "renamed" || infos[0].Enabled {
		t.Errorf("Webhooks() = %+v", infos)
	}

	if r := send(t, request{method: "DELETE", url: e.site("webhooks/" + id), token: tok}); r.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	for _, method := range []string{"GET", "DELETE"} {
		r := send(t, request{method: method, url: e.site("webhooks/" + id), token: tok})
		if r.status != http.StatusNotFound || r.code(t) != codeWebhookMissing {
			t.Errorf("%s deleted webhook: %d %s", method, r.status, r.body)
		}
	}
	if got := names(t, e.get(e.site("webhooks"), tok).json(t), "webhooks", "webhook"); len(got) != 1 {
		t.Errorf("list after delete = %q", got)
	}
}

func TestWebhookValidation(t *testing.T) {
	valid := func(url string) string { return webhookBody("n", "WorkbookRefreshFailed", url) }
	tests := []struct {
		name       string
		opts       []Option
		version    string
		method     string
		role       string // sign in as a PAT with this role; default site administrator
		body       string
		wantStatus int
		wantCode   string
	}{
		{name: "https destination", body: valid("https://hooks.example.com/x"), wantStatus: 201},
		{name: "http destination", body: valid("http://127.0.0.1:9/x"), wantStatus: 400, wantCode: codeBadRequest},
		{name: "http destination allowed", opts: []Option{AllowHTTPDestinations()}, body: valid("http://127.0.0.1:9/x"), wantStatus: 201},
		{name: "unknown event", body: webhookBody("n", "WorkbookRefreshExploded", "https://h.example.com"), wantStatus: 400, wantCode: codeBadRequest},
		{name: "no event", body: `{"webhook":{"name":"n","webhook-destination":{"webhook-destination-http":{"url":"https://h.example.com"}}}}`, wantStatus: 400, wantCode: codeBadRequest},
		{name: "event and source disagree", body: `{"webhook":{"name":"n","event":"WorkbookRefreshFailed","webhook-source":{"webhook-source-event-workbook-created":{}},"webhook-destination":{"webhook-destination-http":{"url":"https://h.example.com"}}}}`, wantStatus: 400, wantCode: codeBadRequest},
		{name: "no name", body: webhookBody("", "WorkbookRefreshFailed", "https://h.example.com"), wantStatus: 400, wantCode: codeBadRequest},
		{name: "no destination", body: `{"webhook":{"name":"n","event":"WorkbookRefreshFailed"}}`, wantStatus: 400, wantCode: codeBadRequest},
		{name: "GET destination", body: strings.Replace(valid("https://h.example.com"), `"POST"`, `"GET"`, 1), wantStatus: 400, wantCode: codeBadRequest},
		{name: "not an administrator", role: RoleCreator, body: valid("https://h.example.com"), wantStatus: 403, wantCode: codeForbidden},
		{name: "API 3.5", version: "3.5", body: valid("https://h.example.com"), wantStatus: 404, wantCode: codeVersionUnavailable},
		{name: "update at 3.7", version: "3.7", method: "PUT", body: `{"webhook":{"name":"x"}}`, wantStatus: 404, wantCode: codeVersionUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.opts...)
			tok := e.signIn()
			if tt.role != "" {
				e.srv.AddPATWithRole("limited", "limited-secret", tt.role)
				tok = e.signInPAT("limited", "limited-secret")
			}
			if tt.version != "" {
				e.ver = tt.version
			}
			url, method := e.site("webhooks"), "POST"
			if tt.method == "PUT" {
				url, method = e.site("webhooks/"+newLUID()), "PUT"
			}
			r := send(t, request{method: method, url: url, token: tok, body: tt.body})
			if r.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d: %s", r.status, tt.wantStatus, r.body)
			}
			if tt.wantCode != "" && r.code(t) != tt.wantCode {
				t.Errorf("code = %s, want %s", r.code(t), tt.wantCode)
			}
		})
	}
}

func TestTestWebhook(t *testing.T) {
	e := newEnv(t, AllowHTTPDestinations())
	tok := e.signIn()
	rc := newReceiver(t)
	rc.reply = "pong"
	id := e.createWebhook(tok, "t", "WorkbookRefreshSucceeded", rc.srv.URL)

	r := e.get(e.site("webhooks/"+id+"/test"), tok)
	if r.status != http.StatusOK {
		t.Fatalf("test: %d %s", r.status, r.body)
	}
	res := dig(r.json(t), "webhookTestResult")
	if dig(res, "id") != id || dig(res, "status") != "200" || dig(res, "body") != "pong" {
		t.Errorf("webhookTestResult = %v", res)
	}
	got := rc.received()
	if len(got) != 1 || len(got[0].body) != 0 {
		t.Fatalf("receiver got %d requests (first body %q), want one empty payload", len(got), got)
	}

	rc.mu.Lock()
	rc.status, rc.reply = http.StatusServiceUnavailable, "down"
	rc.mu.Unlock()
	res = dig(e.get(e.site("webhooks/"+id+"/test"), tok).json(t), "webhookTestResult")
	if dig(res, "status") != "503" || dig(res, "body") != "down" {
		t.Errorf("webhookTestResult for a failing destination = %v", res)
	}

	unknown := e.get(e.site("webhooks/"+newLUID()+"/test"), tok)
	if unknown.status != http.StatusBadRequest || unknown.code(t) != codeWebhookTestUnknown {
		t.Errorf("test of an unknown webhook: %d %s", unknown.status, unknown.body)
	}
	if d := e.srv.Deliveries(); len(d) != 2 || !d[0].Test || d[0].Status != 200 {
		t.Errorf("Deliveries() = %+v", d)
	}
}

func TestRefreshEventsReachWebhooks(t *testing.T) {
	e := newEnv(t, AllowHTTPDestinations(), forever)
	tok := e.signIn()
	wb := e.srv.AddWorkbook("Sales", "Finance")
	ds := e.srv.AddDatasource("Orders", "Finance")
	failed, started, dsOK, disabled := newReceiver(t), newReceiver(t), newReceiver(t), newReceiver(t)
	e.createWebhook(tok, "failed", "WorkbookRefreshFailed", failed.srv.URL)
	e.createWebhook(tok, "started", "WorkbookRefreshStarted", started.srv.URL)
	e.createWebhook(tok, "ds", "DatasourceRefreshSucceeded", dsOK.srv.URL)
	off := e.createWebhook(tok, "off", "WorkbookRefreshFailed", disabled.srv.URL)
	if r := e.put(e.site("webhooks/"+off), tok, `{"webhook":{"isEnabled":false}}`); r.status != http.StatusOK {
		t.Fatalf("disable: %d %s", r.status, r.body)
	}

	wbJob := e.refresh(tok, "workbook", wb)
	if err := e.srv.FinishJob(wbJob, FinishFailed, "database unreachable"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "WorkbookRefreshFailed delivery", func() bool { return len(failed.received()) == 1 })
	eventually(t, "WorkbookRefreshStarted delivery", func() bool { return len(started.received()) == 1 })

	ev := failed.events(t)[0]
	want := map[string]string{
		"resource":      "EXTRACTS",
		"event_type":    "WorkbookRefreshFailed",
		"resource_name": "Sales",
		"site_luid":     e.srv.SiteID(),
		"resource_luid": wb,
	}
	for k, v := range want {
		if ev[k] != v {
			t.Errorf("payload %s = %v, want %s", k, ev[k], v)
		}
	}
	if ts, _ := ev["created_at"].(string); !isTimestamp(ts) {
		t.Errorf("created_at = %v", ev["created_at"])
	}
	if ct := failed.received()[0].header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	if got := started.events(t)[0]["event_type"]; got != "WorkbookRefreshStarted" {
		t.Errorf("started event = %v", got)
	}

	dsJob := e.refresh(tok, "datasource", ds)
	if err := e.srv.FinishJob(dsJob, FinishSucceeded, ""); err != nil {
		t.Fatal(err)
	}
	eventually(t, "DatasourceRefreshSucceeded delivery", func() bool { return len(dsOK.received()) == 1 })
	if ev := dsOK.events(t)[0]; ev["resource_luid"] != ds || ev["event_type"] != "DatasourceRefreshSucceeded" {
		t.Errorf("data source event = %v", ev)
	}

	// Events are decided when they fire, so the disabled webhook has had its
	// chance by now.
	if n := len(disabled.received()); n != 0 {
		t.Errorf("disabled webhook received %d events", n)
	}
	if n := len(failed.received()); n != 1 {
		t.Errorf("WorkbookRefreshFailed webhook received %d events after a data source refresh", n)
	}
}

func isTimestamp(s string) bool {
	_, err := time.Parse(time.RFC3339, s)
	return err == nil
}

func TestWebhookRetries(t *testing.T) {
	tests := []struct {
		name         string
		failures     int
		wantAttempts int
		wantLast     int
	}{
		{name: "recovers on the third try", failures: 2, wantAttempts: 3, wantLast: 200},
		{name: "gives up after three retries", failures: 100, wantAttempts: 4, wantLast: 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, AllowHTTPDestinations(), forever)
			tok := e.signIn()
			wb := e.srv.AddWorkbook("Sales", "Finance")
			rc := newReceiver(t)
			rc.failures = tt.failures
			hook := e.createWebhook(tok, "ok", "WorkbookRefreshSucceeded", rc.srv.URL)
			if err := e.srv.FinishJob(e.refresh(tok, "workbook", wb), FinishSucceeded, ""); err != nil {
				t.Fatal(err)
			}
			eventually(t, "the last attempt", func() bool {
				d := e.srv.Deliveries()
				return len(d) > 0 && (d[len(d)-1].Status == 200 || len(d) == 4)
			})
			// Close waits for deliveries in flight, so nothing can follow.
			e.srv.Close()
			d := e.srv.Deliveries()
			if len(d) != tt.wantAttempts {
				t.Fatalf("%d attempts, want %d: %+v", len(d), tt.wantAttempts, d)
			}
			last := d[len(d)-1]
			if last.Status != tt.wantLast || last.Attempt != tt.wantAttempts || last.WebhookID != hook {
				t.Errorf("last attempt = %+v", last)
			}
			bodies := rc.received()
			if !bytes.Equal(bodies[0].body, bodies[len(bodies)-1].body) {
				t.Error("retries changed the payload")
			}
		})
	}
}

func TestDuplicateDeliveries(t *testing.T) {
	e := newEnv(t, AllowHTTPDestinations(), DuplicateWebhookDeliveries(), WithJobTimings(0, 0))
	tok := e.signIn()
	wb := e.srv.AddWorkbook("Sales", "Finance")
	rc := newReceiver(t)
	e.createWebhook(tok, "ok", "WorkbookRefreshSucceeded", rc.srv.URL)

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if _, err := e.srv.WaitJob(ctx, e.refresh(tok, "workbook", wb)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "two deliveries", func() bool { return len(rc.received()) == 2 })
	got := rc.received()
	if !bytes.Equal(got[0].body, got[1].body) {
		t.Errorf("duplicates differ:\n%s\n%s", got[0].body, got[1].body)
	}
}
