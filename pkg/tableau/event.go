package tableau

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Event is a webhook delivery from Tableau to us.
// See https://help.tableau.com/current/developer/webhooks/en-us/.
type Event struct {
	Resource     string    // EXTRACTS, WORKBOOK, DATASOURCE, ...
	Type         string    // an Event* name, e.g. WorkbookRefreshFailed
	ResourceName string    // the workbook or data source name
	ResourceID   string    // its LUID
	SiteID       string    // the site's LUID
	CreatedAt    time.Time // zero when Tableau sent none
}

// ErrEmptyEvent is what ParseEvent returns for the empty body Tableau sends
// when someone tests the webhook. It is not an error worth a 4xx.
var ErrEmptyEvent = errors.New("tableau: empty webhook payload (a test delivery)")

// maxEventBytes caps a payload; real ones are a few hundred bytes.
const maxEventBytes = 64 << 10

// ParseEvent decodes a Tableau webhook payload. Current payloads use
// underscore keys (event_type, resource_luid); the 2019 preview used
// hyphenated ones (event-type, resource-id), which are accepted too.
func ParseEvent(body []byte) (*Event, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || bytes.Equal(body, []byte("{}")) {
		return nil, ErrEmptyEvent
	}
	if len(body) > maxEventBytes {
		return nil, fmt.Errorf("tableau webhook payload larger than %d bytes", maxEventBytes)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("tableau webhook payload is not a JSON object: %w", err)
	}
	get := func(keys ...string) (string, error) {
		for _, k := range keys {
			v, ok := raw[k]
			if !ok || string(v) == "null" {
				continue
			}
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return "", fmt.Errorf("tableau webhook payload: %q must be a string", k)
			}
			return s, nil
		}
		return "", nil
	}
	var ev Event
	var created string
	for _, f := range []struct {
		dst  *string
		keys []string
	}{
		{&ev.Resource, []string{"resource"}},
		{&ev.Type, []string{"event_type", "event-type"}},
		{&ev.ResourceName, []string{"resource_name", "resource-name"}},
		{&ev.ResourceID, []string{"resource_luid", "resource-id", "resource_id"}},
		{&ev.SiteID, []string{"site_luid", "site-id", "site_id"}},
		{&created, []string{"created_at", "created-at"}},
	} {
		v, err := get(f.keys...)
		if err != nil {
			return nil, err
		}
		*f.dst = v
	}
	if ev.Type == "" {
		return nil, errors.New("tableau webhook payload has no event_type")
	}
	if created != "" {
		t, err := time.Parse(time.RFC3339Nano, created)
		if err != nil {
			return nil, fmt.Errorf("tableau webhook payload: created_at %q is not an RFC 3339 time", created)
		}
		ev.CreatedAt = t
	}
	return &ev, nil
}

// RefreshOutcome says what a refresh event reports: "started",
// "succeeded", "failed", or "" for other events.
func (e *Event) RefreshOutcome() string {
	for _, kind := range []string{"WorkbookRefresh", "DatasourceRefresh"} {
		if rest, ok := strings.CutPrefix(e.Type, kind); ok {
			switch rest {
			case "Started", "Succeeded", "Failed":
				return strings.ToLower(rest)
			}
		}
	}
	return ""
}

// ItemKind is "workbook" or "datasource" for refresh events.
func (e *Event) ItemKind() string {
	switch {
	case strings.HasPrefix(e.Type, "Workbook"):
		return "workbook"
	case strings.HasPrefix(e.Type, "Datasource"):
		return "datasource"
	}
	return ""
}
