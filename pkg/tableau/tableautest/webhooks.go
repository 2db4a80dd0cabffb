package tableautest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// webhookRetries is how many times a delivery is retried after a non-2xx reply
// or a network error, as Tableau documents ("three times with diminishing
// frequency"). The first retry waits webhookBackoff, each later one twice as
// long; the waits are short so tests stay fast.
const (
	webhookRetries = 3
	webhookBackoff = 20 * time.Millisecond
	maxHookReply   = 64 << 10
)

// webhookEvents maps each current event name to the older webhook-source element
// that names the same event (Tableau Webhooks "Events and Payloads").
var webhookEvents = map[string]string{
	"AdminPromoted":              "webhook-event-user-promoted-admin",
	"AdminDemoted":               "webhook-event-user-demoted-admin",
	"DatasourceUpdated":          "webhook-source-event-datasource-updated",
	"DatasourceCreated":          "webhook-source-event-datasource-created",
	"DatasourceDeleted":          "webhook-source-event-datasource-deleted",
	"DatasourceRefreshStarted":   "webhook-source-event-datasource-refresh-started",
	"DatasourceRefreshSucceeded": "webhook-source-event-datasource-refresh-succeeded",
	"DatasourceRefreshFailed":    "webhook-source-event-datasource-refresh-failed",
	"LabelCreated":               "webhook-source-event-label-created",
	"LabelUpdated":               "webhook-source-event-label-updated",
	"LabelDeleted":               "webhook-source-event-label-LabelDeleted",
	"SiteCreated":                "webhook-source-event-site-created",
	"SiteUpdated":                "webhook-source-event-site-updated",
	"SiteDeleted":                "webhook-source-event-site-deleted",
	"UserDeleted":                "webhook-source-event-user-deleted",
	"ViewDeleted":                "webhook-source-event-view-deleted",
	"WorkbookUpdated":            "webhook-source-event-workbook-updated",
	"WorkbookCreated":            "webhook-source-event-workbook-created",
	"WorkbookDeleted":            "webhook-source-event-workbook-deleted",
	"WorkbookRefreshStarted":     "webhook-source-event-workbook-refresh-started",
	"WorkbookRefreshSucceeded":   "webhook-source-event-workbook-refresh-succeeded",
	"WorkbookRefreshFailed":      "webhook-source-event-workbook-refresh-failed",
}

func eventForSource(source string) (string, bool) {
	for ev, src := range webhookEvents {
		if src == source {
			return ev, true
		}
	}
	return "", false
}

type webhook struct {
	id      string
	name    string
	event   string
	url     string
	enabled bool
	owner   *user
	created time.Time
	updated time.Time
}

// WebhookInfo is the simulator's view of a registered webhook.
type WebhookInfo struct {
	ID        string
	Name      string
	Event     string
	URL       string
	Enabled   bool
	OwnerID   string
	CreatedAt time.Time
}

// Delivery is one attempt to POST to a webhook destination, by an event or by
// Test a Webhook.
type Delivery struct {
	WebhookID string
	Event     string // "" for a test delivery
	URL       string
	Attempt   int // 1 for the first try, up to 4
	Status    int // 0 when the request failed
	Err       string
	Body      []byte
	Test      bool
	Time      time.Time
}

// eventPayload is the JSON Tableau posts to a destination. Field order follows
// the documentation.
type eventPayload struct {
	Resource     string `json:"resource"`
	EventType    string `json:"event_type"`
	ResourceName string `json:"resource_name"`
	SiteLUID     string `json:"site_luid"`
	ResourceLUID string `json:"resource_luid"`
	CreatedAt    string `json:"created_at"`
}

// Webhooks returns the registered webhooks in creation order.
func (s *Server) Webhooks() []WebhookInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]WebhookInfo, 0, len(s.hookOrder))
	for _, h := range s.hookOrder {
		out = append(out, WebhookInfo{
			ID: h.id, Name: h.name, Event: h.event, URL: h.url,
			Enabled: h.enabled, OwnerID: h.owner.id, CreatedAt: h.created,
		})
	}
	return out
}

// Deliveries returns every delivery attempt so far, in the order they completed.
func (s *Server) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Delivery, len(s.deliveries))
	copy(out, s.deliveries)
	for i := range out {
		out[i].Body = bytes.Clone(out[i].Body)
	}
	return out
}

// SetDuplicateDeliveries turns duplicate delivery of every event on or off; see
// DuplicateWebhookDeliveries.
func (s *Server) SetDuplicateDeliveries(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg.duplicates = on
}

func requireAdmin(c *call) error {
	if !c.sess.user.isAdmin() {
		return errForbidden("Only server and site administrators can manage webhooks.")
	}
	return nil
}

func (s *Server) listWebhooks(c *call, _ []string) error {
	if err := requireAdmin(c); err != nil {
		return err
	}
	s.mu.Lock()
	nodes := make([]*node, 0, len(s.hookOrder))
	for _, h := range s.hookOrder {
		nodes = append(nodes, h.node())
	}
	s.mu.Unlock()
	return c.reply(http.StatusOK, listEl("webhooks", nodes...))
}

func (s *Server) getWebhook(c *call, p []string) error {
	if err := requireAdmin(c); err != nil {
		return err
	}
	s.mu.Lock()
	h := s.webhooks[p[0]]
	var n *node
	if h != nil {
		n = h.node()
	}
	s.mu.Unlock()
	if n == nil {
		return errWebhookNotFound(p[0])
	}
	return c.reply(http.StatusOK, n)
}

func (s *Server) createWebhook(c *call, _ []string) error {
	if err := requireAdmin(c); err != nil {
		return err
	}
	req, err := c.decode()
	if err != nil {
		return err
	}
	spec, err := s.parseWebhook(obj(req, "webhook"), true)
	if err != nil {
		return err
	}
	now := time.Now()
	h := &webhook{
		id:      newLUID(),
		name:    spec.name,
		event:   spec.event,
		url:     spec.url,
		enabled: spec.enabled == nil || *spec.enabled,
		owner:   c.sess.user,
		created: now,
		updated: now,
	}
	s.mu.Lock()
	s.webhooks[h.id] = h
	s.hookOrder = append(s.hookOrder, h)
	n := h.node()
	s.mu.Unlock()
	c.w.Header().Set("Location", fmt.Sprintf("/api/%s/sites/%s/webhooks/%s", c.version, s.site.id, h.id))
	return c.reply(http.StatusCreated, n)
}

// updateWebhook is Update a Webhook (3.8+): any of name, event, destination and
// isEnabled may be given.
func (s *Server) updateWebhook(c *call, p []string) error {
	if err := requireAdmin(c); err != nil {
		return err
	}
	req, err := c.decode()
	if err != nil {
		return err
	}
	spec, err := s.parseWebhook(obj(req, "webhook"), false)
	if err != nil {
		return err
	}
	s.mu.Lock()
	h := s.webhooks[p[0]]
	if h == nil {
		s.mu.Unlock()
		return errWebhookNotFound(p[0])
	}
	if spec.name != "" {
		h.name = spec.name
	}
	if spec.event != "" {
		h.event = spec.event
	}
	if spec.url != "" {
		h.url = spec.url
	}
	if spec.enabled != nil {
		h.enabled = *spec.enabled
	}
	h.updated = time.Now()
	n := h.node()
	s.mu.Unlock()
	return c.reply(http.StatusOK, n)
}

func (s *Server) deleteWebhook(c *call, p []string) error {
	if err := requireAdmin(c); err != nil {
		return err
	}
	s.mu.Lock()
	h := s.webhooks[p[0]]
	if h != nil {
		delete(s.webhooks, h.id)
		for i, x := range s.hookOrder {
			if x == h {
				s.hookOrder = append(s.hookOrder[:i:i], s.hookOrder[i+1:]...)
				break
			}
		}
	}
	s.mu.Unlock()
	if h == nil {
		return errWebhookNotFound(p[0])
	}
	return c.noContent(http.StatusNoContent)
}

// testWebhook is Test a Webhook: it really posts an empty payload to the
// destination and reports the destination's status and body.
func (s *Server) testWebhook(c *call, p []string) error {
	if err := requireAdmin(c); err != nil {
		return err
	}
	s.mu.Lock()
	h := s.webhooks[p[0]]
	var dest string
	if h != nil {
		dest = h.url
	}
	s.mu.Unlock()
	if h == nil {
		return newError(http.StatusBadRequest, codeWebhookTestUnknown,
			fmt.Sprintf("Webhook '%s' could not be found.", p[0]))
	}
	status, body, err := s.post(c.r.Context(), dest, nil)
	s.recordDelivery(Delivery{WebhookID: h.id, URL: dest, Attempt: 1, Status: status, Err: errText(err), Test: true})
	if err != nil {
		return errBadRequest(fmt.Sprintf("The webhook test could not reach the destination: %v", err))
	}
	return c.reply(http.StatusOK,
		el("webhookTestResult", "id", h.id, "status", strconv.Itoa(status)).add(textEl("body", string(body))))
}

func errWebhookNotFound(id string) *apiError {
	return newError(http.StatusNotFound, codeWebhookMissing, fmt.Sprintf("Webhook '%s' could not be found.", id))
}

type webhookSpec struct {
	name    string
	event   string
	url     string
	enabled *bool
}

// parseWebhook validates a webhook element. The event may be named by the event
// attribute, by the older webhook-source child, or by both if they agree.
func (s *Server) parseWebhook(w map[string]any, create bool) (webhookSpec, error) {
	var spec webhookSpec
	if w == nil {
		return spec, errBadRequest("The request body must contain a webhook element.")
	}
	spec.name = str(w, "name")
	if create && spec.name == "" {
		return spec, errBadRequest("The webhook name is required.")
	}
	spec.event = str(w, "event")
	if spec.event != "" {
		if _, ok := webhookEvents[spec.event]; !ok {
			return spec, errBadRequest(fmt.Sprintf("'%s' is not a supported webhook event.", spec.event))
		}
	}
	if src := obj(w, "webhook-source"); len(src) > 0 {
		if len(src) != 1 {
			return spec, errBadRequest("webhook-source must name exactly one event.")
		}
		var name string
		for k := range src {
			name = k
		}
		ev, ok := eventForSource(name)
		if !ok {
			return spec, errBadRequest(fmt.Sprintf("'%s' is not a supported webhook source event.", name))
		}
		if spec.event != "" && spec.event != ev {
			return spec, errBadRequest(fmt.Sprintf("The event '%s' and webhook-source '%s' do not match.", spec.event, name))
		}
		spec.event = ev
	}
	if create && spec.event == "" {
		return spec, errBadRequest("The webhook event is required.")
	}
	if dest := obj(obj(w, "webhook-destination"), "webhook-destination-http"); dest != nil {
		if m := str(dest, "method"); m != "" && !strings.EqualFold(m, http.MethodPost) {
			return spec, errBadRequest(fmt.Sprintf("The webhook destination method must be POST, not '%s'.", m))
		}
		u, err := url.Parse(str(dest, "url"))
		if err != nil || u.Host == "" {
			return spec, errBadRequest(fmt.Sprintf("'%s' is not a valid webhook destination URL.", str(dest, "url")))
		}
		s.mu.Lock()
		allowHTTP := s.cfg.allowHTTP
		s.mu.Unlock()
		if u.Scheme != "https" && !(u.Scheme == "http" && allowHTTP) {
			return spec, errBadRequest("The webhook destination URL must be https and have a valid certificate.")
		}
		spec.url = u.String()
	} else if create {
		return spec, errBadRequest("The webhook destination URL is required.")
	}
	enabled, ok, err := boolField(w, "isEnabled")
	if err != nil {
		return spec, errBadRequest(err.Error())
	}
	if ok {
		spec.enabled = &enabled
	}
	return spec, nil
}

func (h *webhook) node() *node {
	return el("webhook",
		"id", h.id,
		"name", h.name,
		"isEnabled", h.enabled,
		"statusChangeReason", "",
		"event", h.event,
		"createdAt", stamp(h.created),
		"updatedAt", stamp(h.updated),
	).add(
		el("webhook-source").add(el(webhookEvents[h.event])),
		el("webhook-destination").add(el("webhook-destination-http", "method", "POST", "url", h.url)),
		el("owner", "id", h.owner.id, "name", h.owner.name),
	)
}

// emitLocked sends the refresh event of an item to every enabled webhook
// registered for it. Deliveries run in the background, like Tableau's.
func (s *Server) emitLocked(it *item, what string) {
	prefix := "Workbook"
	if it.kind == kindDatasource {
		prefix = "Datasource"
	}
	event := prefix + what
	payload, err := json.Marshal(eventPayload{
		Resource:     "EXTRACTS",
		EventType:    event,
		ResourceName: it.name,
		SiteLUID:     s.site.id,
		ResourceLUID: it.id,
		CreatedAt:    stamp(time.Now()),
	})
	if err != nil {
		panic("tableautest: marshal webhook payload: " + err.Error())
	}
	copies := 1
	if s.cfg.duplicates {
		copies = 2
	}
	for _, h := range s.hookOrder {
		if !h.enabled || h.event != event {
			continue
		}
		id, dest := h.id, h.url
		for range copies {
			s.goLocked(func() { s.deliver(id, event, dest, payload) })
		}
	}
}

// goLocked runs f in the background unless the server is closing; Close waits
// for it.
func (s *Server) goLocked(f func()) {
	if s.closed {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

func (s *Server) deliver(hookID, event, dest string, payload []byte) {
	wait := webhookBackoff
	for attempt := 1; ; attempt++ {
		status, _, err := s.post(s.ctx, dest, payload)
		s.recordDelivery(Delivery{
			WebhookID: hookID, Event: event, URL: dest, Attempt: attempt,
			Status: status, Err: errText(err), Body: payload,
		})
		if err == nil && status >= 200 && status < 300 {
			return
		}
		if attempt > webhookRetries || !s.sleep(s.ctx, wait) {
			return
		}
		wait *= 2
	}
}

func (s *Server) post(ctx context.Context, dest string, payload []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, dest, bytes.NewReader(payload))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Tableau-Webhooks")
	resp, err := s.hooks.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxHookReply))
	return resp.StatusCode, body, nil
}

func (s *Server) recordDelivery(d Delivery) {
	d.Time = time.Now()
	s.mu.Lock()
	s.deliveries = append(s.deliveries, d)
	s.mu.Unlock()
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
