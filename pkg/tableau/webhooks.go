package tableau

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/remote"
)

// Webhook trigger events (the value of Webhook.Event).
//
// See https://help.tableau.com/current/developer/webhooks/en-us/docs/webhooks-events-payload.html.
const (
	EventDatasourceRefreshStarted   = "DatasourceRefreshStarted"
	EventDatasourceRefreshSucceeded = "DatasourceRefreshSucceeded"
	EventDatasourceRefreshFailed    = "DatasourceRefreshFailed"
	EventDatasourceCreated          = "DatasourceCreated"
	EventDatasourceUpdated          = "DatasourceUpdated"
	EventDatasourceDeleted          = "DatasourceDeleted"
	EventWorkbookRefreshStarted     = "WorkbookRefreshStarted"
	EventWorkbookRefreshSucceeded   = "WorkbookRefreshSucceeded"
	EventWorkbookRefreshFailed      = "WorkbookRefreshFailed"
	EventWorkbookCreated            = "WorkbookCreated"
	EventWorkbookUpdated            = "WorkbookUpdated"
	EventWorkbookDeleted            = "WorkbookDeleted"
	EventViewDeleted                = "ViewDeleted"
	EventUserDeleted                = "UserDeleted"
	EventAdminPromoted              = "AdminPromoted"
	EventAdminDemoted               = "AdminDemoted"
	EventLabelCreated               = "LabelCreated"
	EventLabelUpdated               = "LabelUpdated"
	EventLabelDeleted               = "LabelDeleted"
	EventSiteCreated                = "SiteCreated"
	EventSiteUpdated                = "SiteUpdated"
	EventSiteDeleted                = "SiteDeleted"
)

// sourceEvents maps the older webhook-source element names to event names,
// so webhooks created the old way still report their Event.
var sourceEvents = map[string]string{
	"webhook-source-event-datasource-refresh-started":   EventDatasourceRefreshStarted,
	"webhook-source-event-datasource-refresh-succeeded": EventDatasourceRefreshSucceeded,
	"webhook-source-event-datasource-refresh-failed":    EventDatasourceRefreshFailed,
	"webhook-source-event-datasource-created":           EventDatasourceCreated,
	"webhook-source-event-datasource-updated":           EventDatasourceUpdated,
	"webhook-source-event-datasource-deleted":           EventDatasourceDeleted,
	"webhook-source-event-workbook-refresh-started":     EventWorkbookRefreshStarted,
	"webhook-source-event-workbook-refresh-succeeded":   EventWorkbookRefreshSucceeded,
	"webhook-source-event-workbook-refresh-failed":      EventWorkbookRefreshFailed,
	"webhook-source-event-workbook-created":             EventWorkbookCreated,
	"webhook-source-event-workbook-updated":             EventWorkbookUpdated,
	"webhook-source-event-workbook-deleted":             EventWorkbookDeleted,
	"webhook-source-event-view-deleted":                 EventViewDeleted,
	"webhook-source-event-user-deleted":                 EventUserDeleted,
	"webhook-event-user-promoted-admin":                 EventAdminPromoted,
	"webhook-event-user-demoted-admin":                  EventAdminDemoted,
	"webhook-source-event-label-created":                EventLabelCreated,
	"webhook-source-event-label-updated":                EventLabelUpdated,
	"webhook-source-event-label-LabelDeleted":           EventLabelDeleted,
	"webhook-source-event-site-created":                 EventSiteCreated,
	"webhook-source-event-site-updated":                 EventSiteUpdated,
	"webhook-source-event-site-deleted":                 EventSiteDeleted,
}

// Webhook is a Tableau webhook: when Event happens on the site, Tableau POSTs
// a JSON payload to Destination.HTTP.URL. Its JSON form is the REST API's.
//
// See https://help.tableau.com/current/api/rest_api/en-us/REST/rest_api_ref_notifications.htm#create_webhook.
type Webhook struct {
	ID    string `json:"id,omitempty"`
	Name  string `json:"name,omitempty"`
	Event string `json:"event,omitempty"`
	// IsEnabled is nil when not given; Tableau enables new webhooks by default
	// and may disable one whose destination keeps failing.
	IsEnabled          *bool               `json:"isEnabled,omitempty"`
	StatusChangeReason string              `json:"statusChangeReason,omitempty"`
	Source             map[string]struct{} `json:"webhook-source,omitempty"` // older way of naming the event
	Destination        *WebhookDestination `json:"webhook-destination,omitempty"`
	Owner              *Owner              `json:"owner,omitempty"`
	CreatedAt          *Timestamp          `json:"createdAt,omitempty"`
	UpdatedAt          *Timestamp          `json:"updatedAt,omitempty"`
}

// WebhookDestination is where Tableau delivers a webhook.
type WebhookDestination struct {
	HTTP WebhookDestinationHTTP `json:"webhook-destination-http"`
}

// WebhookDestinationHTTP is an HTTPS destination. Method is always POST.
type WebhookDestinationHTTP struct {
	Method string `json:"method"`
	URL    string `json:"url"`
}

// NewWebhook returns a webhook definition for CreateWebhook.
func NewWebhook(name, event, destinationURL string) *Webhook {
	return &Webhook{
		Name:        name,
		Event:       event,
		Destination: &WebhookDestination{HTTP: WebhookDestinationHTTP{Method: http.MethodPost, URL: destinationURL}},
	}
}

// URL returns the destination URL, or "" when there is none.
func (w *Webhook) URL() string {
	if w.Destination == nil {
		return ""
	}
	return w.Destination.HTTP.URL
}

// EventName returns Event, or the event named by the older webhook-source
// element when Event is empty.
func (w *Webhook) EventName() string {
	if w.Event != "" {
		return w.Event
	}
	// A webhook has one event; should a reply name several, answer the same
	// one every time rather than whichever the map yields first.
	keys := slices.Sorted(maps.Keys(w.Source))
	for _, k := range keys {
		if e, ok := sourceEvents[k]; ok {
			return e
		}
	}
	if len(keys) > 0 {
		return keys[0]
	}
	return ""
}

// UnmarshalJSON reads isEnabled whether it comes as a boolean or a string,
// and tolerates an empty createdAt.
func (w *Webhook) UnmarshalJSON(b []byte) error {
	type plain Webhook
	var wire struct {
		plain
		IsEnabled flexBool `json:"isEnabled"`
	}
	if err := json.Unmarshal(b, &wire); err != nil {
		return err
	}
	*w = Webhook(wire.plain)
	w.IsEnabled = nil
	if wire.IsEnabled.Set {
		v := wire.IsEnabled.B
		w.IsEnabled = &v
	}
	return nil
}

func (w *Webhook) validate(forCreate bool) error {
	if w == nil {
		return errors.New("webhook is nil")
	}
	if forCreate && strings.TrimSpace(w.Name) == "" {
		return errors.New("webhook name is required")
	}
	if forCreate && w.EventName() == "" {
		return errors.New("webhook event is required")
	}
	if w.Destination != nil || forCreate {
		u, err := url.Parse(w.URL())
		// Loopback http is let through for simulators and local receivers;
		// a real Tableau refuses it on its own.
		localHTTP := err == nil && u.Scheme == "http" && remote.IsLoopback(u.Hostname())
		if err != nil || (u.Scheme != "https" && !localHTTP) || u.Host == "" {
			// Tableau refuses anything else; saying so here is clearer. Only
			// the scheme and host are named: the path may carry a secret token.
			where := "(unparsable)"
			if err == nil {
				where = u.Scheme + "://" + u.Host
			}
			return fmt.Errorf("webhook destination %s: Tableau requires an https URL", where)
		}
	}
	return nil
}

// writable strips the fields the server owns, so a Webhook read from
// ListWebhooks can be sent back to UpdateWebhook.
func (w *Webhook) writable() *Webhook {
	cp := &Webhook{Name: w.Name, Event: w.Event, IsEnabled: w.IsEnabled}
	if w.Event == "" {
		// Only when no event is named: a stale webhook-source next to a changed
		// event would contradict it, and Tableau rejects the pair.
		cp.Source = w.Source
	}
	if w.Destination != nil {
		d := *w.Destination
		if d.HTTP.Method == "" {
			d.HTTP.Method = http.MethodPost
		}
		cp.Destination = &d
	}
	return cp
}

// webhookMinVersion is the first REST API version with webhooks.
const webhookMinVersion = "3.6"

// CreateWebhook creates a webhook on the site and returns it as stored. It
// needs a site administrator. Build w with NewWebhook.
//
// See https://help.tableau.com/current/api/rest_api/en-us/REST/rest_api_ref_notifications.htm#create_webhook.
func (c *Client) CreateWebhook(ctx context.Context, w *Webhook) (*Webhook, error) {
	if err := w.validate(true); err != nil {
		return nil, fmt.Errorf("create webhook: %w", err)
	}
	if err := c.requireVersion(ctx, "webhooks", webhookMinVersion); err != nil {
		return nil, err
	}
	var reply struct {
		Webhook *Webhook `json:"webhook"`
	}
	r := &request{method: http.MethodPost, sitePath: "webhooks", auth: true, mode: retryUnacted, scope: ScopeWebhooksCreate,
		body: struct {
			Webhook *Webhook `json:"webhook"`
		}{w.writable()}, out: &reply}
	if err := c.send(ctx, r); err != nil {
		return nil, fmt.Errorf("create webhook %q: %w", w.Name, err)
	}
	if reply.Webhook == nil {
		return nil, fmt.Errorf("create webhook %q: reply has no webhook: %w", w.Name, ErrBadReply)
	}
	return reply.Webhook, nil
}

// ListWebhooks returns every webhook of the site.
//
// See https://help.tableau.com/current/api/rest_api/en-us/REST/rest_api_ref_notifications.htm#list_webhooks_for_site.
func (c *Client) ListWebhooks(ctx context.Context) ([]*Webhook, error) {
	if err := c.requireVersion(ctx, "webhooks", webhookMinVersion); err != nil {
		return nil, err
	}
	var all []*Webhook
	err := c.list(ctx, "webhooks", "", func(page json.RawMessage) (int, error) {
		var items struct {
			Webhook []*Webhook `json:"webhook"`
		}
		if err := decodeList(page, &items); err != nil {
			return 0, err
		}
		for _, w := range items.Webhook {
			if w != nil { // a null entry in a malformed reply
				all = append(all, w)
			}
		}
		return len(items.Webhook), nil
	})
	if err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	return all, nil
}

// Webhook returns the webhook with the given id.
//
// See https://help.tableau.com/current/api/rest_api/en-us/REST/rest_api_ref_notifications.htm#get_webhook.
func (c *Client) Webhook(ctx context.Context, id string) (*Webhook, error) {
	if err := checkID("webhook", id); err != nil {
		return nil, err
	}
	if err := c.requireVersion(ctx, "webhooks", webhookMinVersion); err != nil {
		return nil, err
	}
	var reply struct {
		Webhook *Webhook `json:"webhook"`
	}
	r := &request{method: http.MethodGet, sitePath: "webhooks/" + url.PathEscape(id), auth: true, out: &reply, scope: ScopeWebhooksRead}
	if err := c.send(ctx, r); err != nil {
		return nil, fmt.Errorf("get webhook %s: %w", id, err)
	}
	if reply.Webhook == nil {
		return nil, fmt.Errorf("get webhook %s: reply has no webhook: %w", id, ErrBadReply)
	}
	return reply.Webhook, nil
}

// WebhookTestResult is what the destination answered to Tableau's test
// delivery.
type WebhookTestResult struct {
	ID     string // the webhook's id
	Status int    // HTTP status the destination replied with
	Body   string // the destination's reply body
}

// TestWebhook makes Tableau send an empty payload to the webhook's
// destination and reports what the destination answered.
//
// See https://help.tableau.com/current/api/rest_api/en-us/REST/rest_api_ref_notifications.htm#test_webhook.
func (c *Client) TestWebhook(ctx context.Context, id string) (*WebhookTestResult, error) {
	if err := checkID("webhook", id); err != nil {
		return nil, err
	}
	if err := c.requireVersion(ctx, "webhooks", webhookMinVersion); err != nil {
		return nil, err
	}
	var reply struct {
		Result *struct {
			ID     string   `json:"id"`
			Status flexInt  `json:"status"`
			Body   flexText `json:"body"`
		} `json:"webhookTestResult"`
	}
	r := &request{method: http.MethodGet, sitePath: "webhooks/" + url.PathEscape(id) + "/test", auth: true, out: &reply, scope: ScopeWebhooksRead}
	if err := c.send(ctx, r); err != nil {
		return nil, fmt.Errorf("test webhook %s: %w", id, err)
	}
	if reply.Result == nil {
		return nil, fmt.Errorf("test webhook %s: reply has no webhookTestResult: %w", id, ErrBadReply)
	}
	return &WebhookTestResult{ID: reply.Result.ID, Status: reply.Result.Status.N, Body: reply.Result.Body.Value}, nil
}

// UpdateWebhook changes the webhook with the given id to w (name, event,
// destination, enabled) and returns it as stored. Needs REST API 3.8.
//
// See https://help.tableau.com/current/api/rest_api/en-us/REST/rest_api_ref_notifications.htm#update_webhook.
func (c *Client) UpdateWebhook(ctx context.Context, id string, w *Webhook) (*Webhook, error) {
	if err := checkID("webhook", id); err != nil {
		return nil, err
	}
	if err := w.validate(false); err != nil {
		return nil, fmt.Errorf("update webhook %s: %w", id, err)
	}
	if err := c.requireVersion(ctx, "webhook update", "3.8"); err != nil {
		return nil, err
	}
	var reply struct {
		Webhook *Webhook `json:"webhook"`
	}
	r := &request{method: http.MethodPut, sitePath: "webhooks/" + url.PathEscape(id), auth: true, scope: ScopeWebhooksUpdate,
		body: struct {
			Webhook *Webhook `json:"webhook"`
		}{w.writable()}, out: &reply}
	if err := c.send(ctx, r); err != nil {
		return nil, fmt.Errorf("update webhook %s: %w", id, err)
	}
	if reply.Webhook == nil {
		return nil, fmt.Errorf("update webhook %s: reply has no webhook: %w", id, ErrBadReply)
	}
	return reply.Webhook, nil
}

// DeleteWebhook deletes the webhook with the given id.
//
// See https://help.tableau.com/current/api/rest_api/en-us/REST/rest_api_ref_notifications.htm#delete_webhook.
func (c *Client) DeleteWebhook(ctx context.Context, id string) error {
	if err := checkID("webhook", id); err != nil {
		return err
	}
	if err := c.requireVersion(ctx, "webhooks", webhookMinVersion); err != nil {
		return err
	}
	r := &request{method: http.MethodDelete, sitePath: "webhooks/" + url.PathEscape(id), auth: true, scope: ScopeWebhooksDelete}
	if err := c.send(ctx, r); err != nil {
		return fmt.Errorf("delete webhook %s: %w", id, err)
	}
	return nil
}
