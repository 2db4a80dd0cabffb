package tableau

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Data quality warning types (DataQualityWarning.Type).
const (
	WarningTypeWarning     = "WARNING"
	WarningTypeDeprecated  = "DEPRECATED"
	WarningTypeStale       = "STALE"
	WarningTypeSensitive   = "SENSITIVE_DATA"
	WarningTypeMaintenance = "MAINTENANCE"
)

// Content types a data quality warning can be put on. Tableau puts them on
// data sources, flows, databases, tables and virtual connections, not on
// workbooks: a workbook shows the warnings of the data sources it uses.
const (
	WarningContentDatasource = "datasource"
	WarningContentFlow       = "flow"
	WarningContentDatabase   = "database"
	WarningContentTable      = "table"
)

// dqwMinVersion is the first REST API version with data quality warnings
// (Tableau 2019.3).
const dqwMinVersion = "3.5"

// DataQualityWarning is a data quality warning on a piece of content, shown
// to everyone who uses it. Its JSON form is the REST API's.
//
// See https://help.tableau.com/current/api/rest_api/en-us/REST/rest_api_ref_metadata.htm#add_dqw.
type DataQualityWarning struct {
	ID          string
	Type        string // one of the WarningType constants
	Message     string
	IsActive    bool
	IsSevere    bool
	ContentID   string // the LUID of the content it is on
	ContentType string
	Owner       *Owner
	CreatedAt   Timestamp
	UpdatedAt   Timestamp
}

// wireDQW is the JSON form: Tableau sends booleans as strings.
type wireDQW struct {
	ID          string    `json:"id,omitempty"`
	Type        string    `json:"type,omitempty"`
	Message     string    `json:"message"`
	IsActive    flexBool  `json:"isActive"`
	IsSevere    flexBool  `json:"isSevere"`
	ContentID   string    `json:"contentId,omitempty"`
	ContentType string    `json:"contentType,omitempty"`
	Owner       *Owner    `json:"owner,omitempty"`
	CreatedAt   Timestamp `json:"createdAt"`
	UpdatedAt   Timestamp `json:"updatedAt"`
}

// UnmarshalJSON reads the REST API's form.
func (w *DataQualityWarning) UnmarshalJSON(b []byte) error {
	var x wireDQW
	if err := json.Unmarshal(b, &x); err != nil {
		return err
	}
	*w = DataQualityWarning{
		ID: x.ID, Type: x.Type, Message: x.Message, IsActive: x.IsActive.B || !x.IsActive.Set, IsSevere: x.IsSevere.B,
		ContentID: x.ContentID, ContentType: x.ContentType, Owner: x.Owner, CreatedAt: x.CreatedAt, UpdatedAt: x.UpdatedAt,
	}
	return nil
}

// dqwFields are the fields a caller sets, the request element's.
type dqwFields struct {
	Type     string `json:"type"`
	IsActive bool   `json:"isActive"`
	Message  string `json:"message"`
	IsSevere bool   `json:"isSevere"`
}

func (w *DataQualityWarning) body() any {
	return struct {
		W dqwFields `json:"dataQualityWarning"`
	}{dqwFields{Type: strings.ToUpper(w.Type), IsActive: w.IsActive, Message: w.Message, IsSevere: w.IsSevere}}
}

func (w *DataQualityWarning) validate() error {
	if w == nil {
		return errors.New("data quality warning is nil")
	}
	switch strings.ToUpper(w.Type) {
	case WarningTypeWarning, WarningTypeDeprecated, WarningTypeStale, WarningTypeSensitive, WarningTypeMaintenance:
		return nil
	}
	return fmt.Errorf("data quality warning type %q: want one of WARNING, DEPRECATED, STALE, SENSITIVE_DATA, MAINTENANCE", w.Type)
}

// dqwReply holds what Tableau answers to the warning calls: one warning, or
// a list of them (Add answers either way, depending on the version).
type dqwReply struct {
	One  *DataQualityWarning `json:"dataQualityWarning"`
	List json.RawMessage     `json:"dataQualityWarningList"`
}

func (r *dqwReply) all() ([]*DataQualityWarning, error) {
	var items struct {
		W []*DataQualityWarning `json:"dataQualityWarning"`
	}
	if err := decodeList(r.List, &items); err != nil {
		return nil, fmt.Errorf("dataQualityWarningList: %w", err)
	}
	out := make([]*DataQualityWarning, 0, len(items.W)+1)
	if r.One != nil {
		out = append(out, r.One)
	}
	for _, w := range items.W {
		if w != nil {
			out = append(out, w)
		}
	}
	return out, nil
}

func (r *dqwReply) first(what string) (*DataQualityWarning, error) {
	all, err := r.all()
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", what, ErrBadReply, err)
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("%s: reply has no dataQualityWarning: %w", what, ErrBadReply)
	}
	return all[0], nil
}

func dqwContentPath(contentType, contentID string) (string, error) {
	if strings.TrimSpace(contentType) == "" || strings.ContainsAny(contentType, "/?#") {
		return "", fmt.Errorf("content type %q is not a content type such as datasource", contentType)
	}
	if err := checkID(contentType, contentID); err != nil {
		return "", err
	}
	return "dataQualityWarnings/" + url.PathEscape(strings.ToLower(contentType)) + "/" + url.PathEscape(contentID), nil
}

// AddDataQualityWarning puts w on the content (contentType one of the
// WarningContent constants) and returns it as stored, with its id. Tableau
// keeps one warning of each type on a piece of content.
//
// See https://help.tableau.com/current/api/rest_api/en-us/REST/rest_api_ref_metadata.htm#add_dqw.
func (c *Client) AddDataQualityWarning(ctx context.Context, contentType, contentID string, w *DataQualityWarning) (*DataQualityWarning, error) {
	path, err := dqwContentPath(contentType, contentID)
	if err == nil {
		err = w.validate()
	}
	if err != nil {
		return nil, fmt.Errorf("add data quality warning: %w", err)
	}
	if err := c.requireVersion(ctx, "data quality warnings", dqwMinVersion); err != nil {
		return nil, err
	}
	var reply dqwReply
	// Adding twice would make two warnings: repeated only when Tableau
	// certainly did not act.
	r := &request{method: http.MethodPost, sitePath: path, auth: true, mode: retryUnacted, body: w.body(), out: &reply, scope: ScopeQualityWarningsCreate}
	what := fmt.Sprintf("add data quality warning to %s %s", contentType, contentID)
	if err := c.send(ctx, r); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return reply.first(what)
}

// DataQualityWarnings returns the warnings on the content, whoever put them
// there.
//
// See https://help.tableau.com/current/api/rest_api/en-us/REST/rest_api_ref_metadata.htm#query_dqws.
func (c *Client) DataQualityWarnings(ctx context.Context, contentType, contentID string) ([]*DataQualityWarning, error) {
	path, err := dqwContentPath(contentType, contentID)
	if err != nil {
		return nil, fmt.Errorf("list data quality warnings: %w", err)
	}
	if err := c.requireVersion(ctx, "data quality warnings", dqwMinVersion); err != nil {
		return nil, err
	}
	var reply dqwReply
	r := &request{method: http.MethodGet, sitePath: path, auth: true, out: &reply, scope: ScopeQualityWarningsRead}
	what := fmt.Sprintf("list data quality warnings of %s %s", contentType, contentID)
	if err := c.send(ctx, r); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	all, err := reply.all()
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", what, ErrBadReply, err)
	}
	return all, nil
}

// UpdateDataQualityWarning changes the warning with the given id to w
// (type, message, active, severe) and returns it as stored.
//
// See https://help.tableau.com/current/api/rest_api/en-us/REST/rest_api_ref_metadata.htm#update_dqw.
func (c *Client) UpdateDataQualityWarning(ctx context.Context, id string, w *DataQualityWarning) (*DataQualityWarning, error) {
	err := checkID("data quality warning", id)
	if err == nil {
		err = w.validate()
	}
	if err != nil {
		return nil, fmt.Errorf("update data quality warning: %w", err)
	}
	if err := c.requireVersion(ctx, "data quality warnings", dqwMinVersion); err != nil {
		return nil, err
	}
	var reply dqwReply
	r := &request{method: http.MethodPut, sitePath: "dataQualityWarnings/" + url.PathEscape(id), auth: true, body: w.body(), out: &reply, scope: ScopeQualityWarningsUpdate}
	what := "update data quality warning " + id
	if err := c.send(ctx, r); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return reply.first(what)
}

// DeleteDataQualityWarning deletes the warning with the given id. (Tableau
// can also delete every warning on a piece of content at once; the bridge
// never does, since some may be people's.)
//
// See https://help.tableau.com/current/api/rest_api/en-us/REST/rest_api_ref_metadata.htm#delete_dqw.
func (c *Client) DeleteDataQualityWarning(ctx context.Context, id string) error {
	if err := checkID("data quality warning", id); err != nil {
		return fmt.Errorf("delete data quality warning: %w", err)
	}
	if err := c.requireVersion(ctx, "data quality warnings", dqwMinVersion); err != nil {
		return err
	}
	r := &request{method: http.MethodDelete, sitePath: "dataQualityWarnings/" + url.PathEscape(id), auth: true, scope: ScopeQualityWarningsDelete}
	if err := c.send(ctx, r); err != nil {
		return fmt.Errorf("delete data quality warning %s: %w", id, err)
	}
	return nil
}
