package tableau

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
)

func TestCreateWebhook(t *testing.T) {
	env := setup(t)
	env.handleSignIn(t)
	env.mux.HandleFunc("POST "+sitePrefix+"/webhooks", func(w http.ResponseWriter, r *http.Request) {
		checkRequest(t, r, http.MethodPost, "tok-1")
		checkJSONBody(t, r, `{"webhook":{"name":"refresh-failed","event":"WorkbookRefreshFailed",
			"webhook-destination":{"webhook-destination-http":{"method":"POST","url":"https://hooks.example.com/tableau/abc"}}}}`)
		writeBytes(w, http.StatusCreated, "application/json", fixture(t, "webhook.json"))
	})
	wh, err := env.client.CreateWebhook(context.Background(),
		NewWebhook("refresh-failed", EventWorkbookRefreshFailed, "https://hooks.example.com/tableau/abc"))
	if err != nil {
		t.Fatal(err)
	}
	if wh.ID != "c4d5e6f7-a8b9-0123-4567-89abcdef0123" || wh.EventName() != EventWorkbookRefreshFailed ||
		wh.URL() != "https://hooks.example.com/tableau/abc" || wh.IsEnabled == nil || !*wh.IsEnabled ||
		wh.Owner == nil || wh.Owner.Name != "admin@example.com" || wh.CreatedAt == nil || wh.CreatedAt.Year() != 2024 {
		t.Errorf("webhook = %+v", wh)
	}
}

func TestCreateWebhookInvalid(t *testing.T) {
	tests := []struct {
		name string
		w    *Webhook
		want string
	}{
		{"nil", nil, "webhook is nil"},
		{"no name", NewWebhook("", EventWorkbookRefreshFailed, "https://h.example.com/x"), "name is required"},
		{"no event", NewWebhook("n", "", "https://h.example.com/x"), "event is required"},
		{"http destination", NewWebhook("n", EventWorkbookRefreshFailed, "http://h.example.com/x"), "requires an https URL"},
		{"no destination", &Webhook{Name: "n", Event: EventWorkbookRefreshFailed}, "requires an https URL"},
		{"garbage destination", NewWebhook("n", EventWorkbookRefreshFailed, "::"), "requires an https URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := setup(t)
			_, err := env.client.CreateWebhook(context.Background(), tt.w)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want containing %q", err, tt.want)
			}
			if env.signIns.Load() != 0 {
				t.Error("signed in for an invalid request")
			}
		})
	}
}

func TestCreateWebhookServerErrors(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		attempts int
		wantIs   error
	}{
		{"not a site admin", 403, 1, ErrForbidden},
		{"500 not repeated: the webhook may exist", 500, 1, ErrServer},
		{"503 repeated", 503, 3, ErrServer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := setup(t)
			env.handleSignIn(t)
			attempts := 0
			env.mux.HandleFunc("POST "+sitePrefix+"/webhooks", func(w http.ResponseWriter, r *http.Request) {
				attempts++
				writeJSON(w, tt.status, tableauError(tt.status, "", "x", ""))
			})
			_, err := env.client.CreateWebhook(context.Background(), NewWebhook("n", EventWorkbookRefreshFailed, "https://h.example.com/x"))
			if !errors.Is(err, tt.wantIs) || attempts != tt.attempts {
				t.Fatalf("error = %v after %d attempts, want %v after %d", err, attempts, tt.wantIs, tt.attempts)
			}
		})
	}
}

func TestListWebhooks(t *testing.T) {
	env := setup(t)
	env.handleSignIn(t)
	env.mux.HandleFunc("GET "+sitePrefix+"/webhooks", func(w http.ResponseWriter, r *http.Request) {
		checkRequest(t, r, http.MethodGet, "tok-1")
		writeBytes(w, 200, "application/json", fixture(t, "webhooks.json"))
	})
	list, err := env.client.ListWebhooks(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Fatalf("got %d webhooks", len(list))
	}
	if list[0].EventName() != EventWorkbookRefreshFailed || list[0].IsEnabled == nil || !*list[0].IsEnabled {
		t.Errorf("first = %+v", list[0])
	}
	// The older form names the event in webhook-source.
	if list[1].Event != "" || list[1].EventName() != EventDatasourceRefreshFailed || list[1].IsEnabled != nil || list[1].URL() != "https://hooks.example.com/b" {
		t.Errorf("second = %+v", list[1])
	}
}

func TestListWebhooksEmpty(t *testing.T) {
	env := setup(t)
	env.handleSignIn(t)
	env.mux.HandleFunc("GET "+sitePrefix+"/webhooks", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"pagination":{"pageNumber":"1","pageSize":"1000","totalAvailable":"0"},"webhooks":{}}`)
	})
	list, err := env.client.ListWebhooks(context.Background())
	if err != nil || len(list) != 0 {
		t.Fatalf("ListWebhooks = %v, %v", list, err)
	}
}

func TestGetTestDeleteWebhook(t *testing.T) {
	env := setup(t)
	env.handleSignIn(t)
	env.mux.HandleFunc("GET "+sitePrefix+"/webhooks/wh-1", func(w http.ResponseWriter, r *http.Request) {
		checkRequest(t, r, http.MethodGet, "tok-1")
		writeBytes(w, 200, "application/json", fixture(t, "webhook.json"))
	})
	env.mux.HandleFunc("GET "+sitePrefix+"/webhooks/wh-1/test", func(w http.ResponseWriter, r *http.Request) {
		checkRequest(t, r, http.MethodGet, "tok-1")
		writeBytes(w, 200, "application/json", fixture(t, "webhook_test.json"))
	})
	env.mux.HandleFunc("GET "+sitePrefix+"/webhooks/missing/test", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 400, tableauError(400, CodeWebhookTestNotFound, "Bad Request", "No webhook with that id"))
	})
	env.mux.HandleFunc("DELETE "+sitePrefix+"/webhooks/wh-1", func(w http.ResponseWriter, r *http.Request) {
		checkRequest(t, r, http.MethodDelete, "tok-1")
		w.WriteHeader(http.StatusNoContent)
	})
	env.mux.HandleFunc("DELETE "+sitePrefix+"/webhooks/missing", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 404, tableauError(404, "404000", "Not Found", ""))
	})
	ctx := context.Background()
	wh, err := env.client.Webhook(ctx, "wh-1")
	if err != nil || wh.Name != "refresh-failed" {
		t.Fatalf("Webhook = %+v, %v", wh, err)
	}
	res, err := env.client.TestWebhook(ctx, "wh-1")
	if err != nil || *res != (WebhookTestResult{ID: "wh-1", Status: 200, Body: "ok"}) {
		t.Fatalf("TestWebhook = %+v, %v", res, err)
	}
	if _, err := env.client.TestWebhook(ctx, "missing"); err == nil || !strings.Contains(err.Error(), "400113") {
		t.Errorf("TestWebhook(missing) error = %v", err)
	}
	if err := env.client.DeleteWebhook(ctx, "wh-1"); err != nil {
		t.Fatal(err)
	}
	if err := env.client.DeleteWebhook(ctx, "missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("DeleteWebhook(missing) error = %v", err)
	}
	for name, call := range map[string]func() error{
		"Webhook":       func() error { _, err := env.client.Webhook(ctx, ""); return err },
		"TestWebhook":   func() error { _, err := env.client.TestWebhook(ctx, ""); return err },
		"DeleteWebhook": func() error { return env.client.DeleteWebhook(ctx, "") },
		"UpdateWebhook": func() error { _, err := env.client.UpdateWebhook(ctx, "", &Webhook{}); return err },
	} {
		if err := call(); err == nil {
			t.Errorf("%s accepted an empty id", name)
		}
	}
}

func TestUpdateWebhook(t *testing.T) {
	env := setup(t)
	env.handleSignIn(t)
	env.mux.HandleFunc("PUT "+sitePrefix+"/webhooks/wh-1", func(w http.ResponseWriter, r *http.Request) {
		checkRequest(t, r, http.MethodPut, "tok-1")
		checkJSONBody(t, r, `{"webhook":{"name":"renamed","event":"WorkbookRefreshFailed","isEnabled":false,
			"webhook-destination":{"webhook-destination-http":{"method":"POST","url":"https://hooks.example.com/new"}}}}`)
		writeBytes(w, 200, "application/json", fixture(t, "webhook.json"))
	})
	// A webhook as read back, with server-owned fields, can be sent as an update.
	var current Webhook
	if err := json.Unmarshal(fixture(t, "webhook.json"), &struct {
		W *Webhook `json:"webhook"`
	}{&current}); err != nil {
		t.Fatal(err)
	}
	off := false
	current.Name = "renamed"
	current.IsEnabled = &off
	current.Destination.HTTP.URL = "https://hooks.example.com/new"
	if _, err := env.client.UpdateWebhook(context.Background(), "wh-1", &current); err != nil {
		t.Fatal(err)
	}
	if _, err := env.client.UpdateWebhook(context.Background(), "wh-1", NewWebhook("x", "", "http://insecure.example.com")); err == nil {
		t.Error("http destination accepted")
	}
}

func TestWebhooksNeedVersion(t *testing.T) {
	env := setup(t, WithAPIVersion("3.6"))
	ctx := context.Background()
	if _, err := env.client.UpdateWebhook(ctx, "wh-1", &Webhook{Name: "x"}); !errors.Is(err, ErrUnsupportedVersion) || !strings.Contains(err.Error(), "3.8") {
		t.Errorf("UpdateWebhook on 3.6: error = %v", err)
	}
	old := setup(t, WithAPIVersion("3.5"))
	checks := map[string]func() error{
		"CreateWebhook": func() error {
			_, err := old.client.CreateWebhook(ctx, NewWebhook("n", EventWorkbookRefreshFailed, "https://h.example.com"))
			return err
		},
		"ListWebhooks":  func() error { _, err := old.client.ListWebhooks(ctx); return err },
		"Webhook":       func() error { _, err := old.client.Webhook(ctx, "x"); return err },
		"TestWebhook":   func() error { _, err := old.client.TestWebhook(ctx, "x"); return err },
		"DeleteWebhook": func() error { return old.client.DeleteWebhook(ctx, "x") },
	}
	for name, call := range checks {
		if err := call(); !errors.Is(err, ErrUnsupportedVersion) {
			t.Errorf("%s on 3.5: error = %v", name, err)
		}
	}
	if old.signIns.Load() != 0 {
		t.Error("signed in although the version was too old")
	}
}

func TestVersionLess(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"3.6", "3.8", true}, {"3.8", "3.8", false}, {"3.10", "3.8", false}, {"2.9", "3.0", true}, {"4.0", "3.99", false},
	}
	for _, tt := range tests {
		if got := versionLess(tt.a, tt.b); got != tt.want {
			t.Errorf("versionLess(%s, %s) = %v", tt.a, tt.b, got)
		}
	}
}
