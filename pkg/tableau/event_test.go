package tableau

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseEvent(t *testing.T) {
	tests := []struct {
		name, body string
		want       Event
		outcome    string
		kind       string
		wantErr    string
		empty      bool
	}{
		{
			name: "current keys",
			body: `{"resource":"EXTRACTS","event_type":"WorkbookRefreshFailed","resource_name":"Sales","site_luid":"s-1","resource_luid":"w-1","created_at":"2018-11-15T17:14:45Z"}`,
			want: Event{Resource: "EXTRACTS", Type: "WorkbookRefreshFailed", ResourceName: "Sales", SiteID: "s-1", ResourceID: "w-1",
				CreatedAt: time.Date(2018, 11, 15, 17, 14, 45, 0, time.UTC)},
			outcome: "failed", kind: "workbook",
		},
		{
			name:    "2019 preview hyphenated keys",
			body:    `{"resource":"DATASOURCE","event-type":"DatasourceRefreshSucceeded","resource-name":"Orders","site-id":"s-1","resource-id":"d-1"}`,
			want:    Event{Resource: "DATASOURCE", Type: "DatasourceRefreshSucceeded", ResourceName: "Orders", SiteID: "s-1", ResourceID: "d-1"},
			outcome: "succeeded", kind: "datasource",
		},
		{
			name: "other event", body: `{"resource":"WORKBOOK","event_type":"WorkbookCreated","resource_name":"X","resource_luid":"w"}`,
			want: Event{Resource: "WORKBOOK", Type: "WorkbookCreated", ResourceName: "X", ResourceID: "w"}, kind: "workbook",
		},
		{name: "unknown keys ignored", body: `{"event_type":"WorkbookRefreshStarted","extra":{"a":1}}`, want: Event{Type: "WorkbookRefreshStarted"}, outcome: "started", kind: "workbook"},
		{name: "test delivery", body: ``, empty: true},
		{name: "test delivery, whitespace", body: " \n", empty: true},
		{name: "test delivery, empty object", body: `{}`, empty: true},
		{name: "not json", body: `event_type=x`, wantErr: "not a JSON object"},
		{name: "array", body: `[1]`, wantErr: "not a JSON object"},
		{name: "no type", body: `{"resource":"EXTRACTS"}`, wantErr: "no event_type"},
		{name: "number type", body: `{"event_type":5}`, wantErr: `"event_type" must be a string`},
		{name: "bad time", body: `{"event_type":"WorkbookRefreshFailed","created_at":"yesterday"}`, wantErr: "not an RFC 3339 time"},
		{name: "too large", body: `{"event_type":"` + strings.Repeat("x", maxEventBytes) + `"}`, wantErr: "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := ParseEvent([]byte(tt.body))
			switch {
			case tt.empty:
				if !errors.Is(err, ErrEmptyEvent) {
					t.Fatalf("err = %v, want ErrEmptyEvent", err)
				}
				return
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			if *ev != tt.want {
				t.Errorf("event = %+v, want %+v", *ev, tt.want)
			}
			if ev.RefreshOutcome() != tt.outcome || ev.ItemKind() != tt.kind {
				t.Errorf("outcome %q kind %q, want %q %q", ev.RefreshOutcome(), ev.ItemKind(), tt.outcome, tt.kind)
			}
		})
	}
}
