package tableautest

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Data quality warnings (REST API "Data Quality Warning Methods", 3.5+).
// Tableau puts them on data sources, flows, databases, tables, columns and
// virtual connections, never on workbooks (a workbook shows the warnings of
// the data sources it uses), and keeps one warning of each type on a piece
// of content. The simulator holds only workbooks and data sources, so of
// the content types it finds data sources alone; the others are valid but
// unknown (404003), and workbook is refused (400000). A second warning of a
// type already on the content answers 409 (code 409000): the reference says
// there is one of each type, not what the server answers to a second, so
// this follows the best available reading.

// dqwContentTypes are the content types of the Add Data Quality Warning URI.
var dqwContentTypes = map[string]bool{
	"datasource": true, "flow": true, "database": true, "table": true, "column": true,
	"virtualconnection": true, "virtualconnectiontable": true,
}

var dqwTypes = map[string]bool{"WARNING": true, "DEPRECATED": true, "STALE": true, "SENSITIVE_DATA": true, "MAINTENANCE": true}

const codeDQWExists = "409000"

type dqw struct {
	id          string
	contentID   string
	contentType string
	typ         string
	message     string
	active      bool
	severe      bool
	owner       *user
	created     time.Time
	updated     time.Time
}

// DataQualityWarningInfo is the simulator's view of a data quality warning.
type DataQualityWarningInfo struct {
	ID          string
	ContentID   string
	ContentType string
	Type        string
	Message     string
	IsActive    bool
	IsSevere    bool
	OwnerID     string
}

// DataQualityWarnings returns the warnings on the content with the given
// LUID, in creation order.
func (s *Server) DataQualityWarnings(contentID string) []DataQualityWarningInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	var infos []DataQualityWarningInfo
	for _, w := range s.dqwOrder {
		if w.contentID == contentID {
			infos = append(infos, DataQualityWarningInfo{
				ID: w.id, ContentID: w.contentID, ContentType: w.contentType, Type: w.typ, Message: w.message,
				IsActive: w.active, IsSevere: w.severe, OwnerID: w.owner.id,
			})
		}
	}
	return infos
}

// AddDataQualityWarning puts a warning on a data source as a person would
// in Tableau's web UI (owned by the site's built-in administrator), and
// returns its id: the warnings a bridge must leave alone.
func (s *Server) AddDataQualityWarning(contentID, typ, message string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	w := &dqw{id: newLUID(), contentID: contentID, contentType: "datasource", typ: strings.ToUpper(typ), message: message, active: true, owner: s.owner, created: now, updated: now}
	s.addDQWLocked(w)
	return w.id
}

func (s *Server) addDQWLocked(w *dqw) {
	if s.dqws == nil {
		s.dqws = map[string]*dqw{}
	}
	s.dqws[w.id] = w
	s.dqwOrder = append(s.dqwOrder, w)
}

func (s *Server) deleteDQWLocked(w *dqw) {
	delete(s.dqws, w.id)
	for i, x := range s.dqwOrder {
		if x == w {
			s.dqwOrder = append(s.dqwOrder[:i:i], s.dqwOrder[i+1:]...)
			return
		}
	}
}

// dqwContent checks the content-type and content-luid of a URI.
func (s *Server) dqwContentLocked(contentType, id string) (string, error) {
	ct := strings.ToLower(contentType)
	if ct == kindWorkbook {
		return "", errBadRequest("Data quality warnings cannot be added to workbooks; add them to the data sources the workbook uses.")
	}
	if !dqwContentTypes[ct] {
		return "", errBadRequest(fmt.Sprintf("Invalid content type '%s'.", contentType))
	}
	if ct != kindDatasource {
		return "", errUnknownResource(fmt.Sprintf("No %s '%s' on this site.", ct, id))
	}
	if it := s.items[id]; it == nil || it.kind != kindDatasource {
		return "", errItemNotFound(kindDatasource, id)
	}
	return ct, nil
}

// parseDQW reads a dataQualityWarning element; on create the type is
// required and isActive defaults to true.
func parseDQW(req map[string]any, w *dqw, create bool) error {
	e := obj(req, "dataQualityWarning")
	if e == nil {
		return errBadRequest("The request body must contain a dataQualityWarning element.")
	}
	if typ := strings.ToUpper(str(e, "type")); typ != "" {
		if !dqwTypes[typ] {
			return errBadRequest(fmt.Sprintf("'%s' is not a data quality warning type.", str(e, "type")))
		}
		w.typ = typ
	} else if create {
		return errBadRequest("The data quality warning type is required.")
	}
	if _, ok := e["message"]; ok {
		w.message = str(e, "message")
	}
	for key, dst := range map[string]*bool{"isActive": &w.active, "isSevere": &w.severe} {
		v, ok, err := boolField(e, key)
		if err != nil {
			return errBadRequest(err.Error())
		}
		if ok {
			*dst = v
		}
	}
	return nil
}

func (s *Server) addDQW(c *call, p []string) error {
	req, err := c.decode()
	if err != nil {
		return err
	}
	now := time.Now()
	w := &dqw{id: newLUID(), contentID: p[1], active: true, owner: c.sess.user, created: now, updated: now}
	if err := parseDQW(req, w, true); err != nil {
		return err
	}
	s.mu.Lock()
	ct, err := s.dqwContentLocked(p[0], p[1])
	if err == nil {
		for _, x := range s.dqwOrder {
			if x.contentID == w.contentID && x.typ == w.typ {
				err = newError(http.StatusConflict, codeDQWExists, fmt.Sprintf("The %s already has a data quality warning of type %s.", ct, w.typ))
				break
			}
		}
	}
	if err != nil {
		s.mu.Unlock()
		return err
	}
	w.contentType = ct
	s.addDQWLocked(w)
	n := s.dqwNode(w)
	s.mu.Unlock()
	return c.reply(http.StatusOK, n)
}

func (s *Server) listDQWs(c *call, p []string) error {
	s.mu.Lock()
	if _, err := s.dqwContentLocked(p[0], p[1]); err != nil {
		s.mu.Unlock()
		return err
	}
	var nodes []*node
	for _, w := range s.dqwOrder {
		if w.contentID == p[1] {
			nodes = append(nodes, s.dqwNode(w))
		}
	}
	s.mu.Unlock()
	return c.reply(http.StatusOK, listEl("dataQualityWarningList", nodes...))
}

func (s *Server) deleteContentDQWs(c *call, p []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.dqwContentLocked(p[0], p[1]); err != nil {
		return err
	}
	for _, w := range append([]*dqw(nil), s.dqwOrder...) {
		if w.contentID == p[1] {
			s.deleteDQWLocked(w)
		}
	}
	return c.noContent(http.StatusNoContent)
}

func errDQWNotFound(id string) *apiError {
	return newError(http.StatusNotFound, codeUnknownResource, fmt.Sprintf("Data quality warning '%s' could not be found.", id))
}

func (s *Server) getDQW(c *call, p []string) error {
	s.mu.Lock()
	w := s.dqws[p[0]]
	var n *node
	if w != nil {
		n = s.dqwNode(w)
	}
	s.mu.Unlock()
	if n == nil {
		return errDQWNotFound(p[0])
	}
	return c.reply(http.StatusOK, n)
}

func (s *Server) updateDQW(c *call, p []string) error {
	req, err := c.decode()
	if err != nil {
		return err
	}
	s.mu.Lock()
	w := s.dqws[p[0]]
	if w == nil {
		s.mu.Unlock()
		return errDQWNotFound(p[0])
	}
	upd := *w
	if err := parseDQW(req, &upd, false); err != nil {
		s.mu.Unlock()
		return err
	}
	for _, x := range s.dqwOrder {
		if x != w && x.contentID == w.contentID && x.typ == upd.typ {
			s.mu.Unlock()
			return newError(http.StatusConflict, codeDQWExists, fmt.Sprintf("The %s already has a data quality warning of type %s.", w.contentType, upd.typ))
		}
	}
	upd.updated = time.Now()
	*w = upd
	n := s.dqwNode(w)
	s.mu.Unlock()
	return c.reply(http.StatusOK, n)
}

func (s *Server) deleteDQW(c *call, p []string) error {
	s.mu.Lock()
	w := s.dqws[p[0]]
	if w != nil {
		s.deleteDQWLocked(w)
	}
	s.mu.Unlock()
	if w == nil {
		return errDQWNotFound(p[0])
	}
	return c.noContent(http.StatusNoContent)
}

func (s *Server) dqwNode(w *dqw) *node {
	return el("dataQualityWarning",
		"id", w.id,
		"userDisplayName", w.owner.name,
		"contentId", w.contentID,
		"contentType", strings.ToUpper(w.contentType),
		"message", w.message,
		"type", w.typ,
		"isActive", w.active,
		"createdAt", stamp(w.created),
		"updatedAt", stamp(w.updated),
		"isSevere", w.severe,
	).add(el("site", "id", s.site.id), el("owner", "id", w.owner.id))
}
