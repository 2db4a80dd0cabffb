package tableau

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Tableau's JSON is a translation of its XML, so scalar attributes often
// arrive as strings ("pageNumber":"1", "finishCode":"0", "isEnabled":"true")
// and sometimes as numbers or booleans. The flex types below accept both, so
// a change of server version does not break decoding.

// flexText reads a JSON string, number or boolean as text. An object with a
// "value" member (how an XML element with text and attributes translates)
// yields that value, and its "build" member, if any, goes to Build.
type flexText struct {
	Value string
	Build string
}

func (f *flexText) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || string(b) == "null":
		return nil
	case b[0] == '"':
		return json.Unmarshal(b, &f.Value)
	case b[0] == '{':
		var o struct {
			Value flexText `json:"value"`
			Build string   `json:"build"`
		}
		if err := json.Unmarshal(b, &o); err != nil {
			return err
		}
		f.Value, f.Build = o.Value.Value, o.Build
		return nil
	case b[0] == '[':
		var parts []flexText
		if err := json.Unmarshal(b, &parts); err != nil {
			return err
		}
		vals := make([]string, len(parts))
		for i, p := range parts {
			vals[i] = p.Value
		}
		f.Value = strings.Join(vals, "\n")
		return nil
	}
	f.Value = string(b) // number or boolean literal
	return nil
}

// flexInt reads an integer given as a number or a string. Set tells an
// absent value from zero, which matters for finishCode.
type flexInt struct {
	N   int
	Set bool
}

func (f *flexInt) UnmarshalJSON(b []byte) error {
	var t flexText
	if err := t.UnmarshalJSON(b); err != nil {
		return err
	}
	s := strings.TrimSpace(t.Value)
	if s == "" {
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("want an integer, got %q", s)
	}
	f.N, f.Set = n, true
	return nil
}

// flexBool reads true/false given as a boolean or a string.
type flexBool struct {
	B   bool
	Set bool
}

func (f *flexBool) UnmarshalJSON(b []byte) error {
	var t flexText
	if err := t.UnmarshalJSON(b); err != nil {
		return err
	}
	s := strings.TrimSpace(t.Value)
	if s == "" {
		return nil
	}
	v, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("want a boolean, got %q", s)
	}
	f.B, f.Set = v, true
	return nil
}

// Timestamp is a time from the REST API (ISO 8601, UTC). The zero value
// means the reply did not carry it. Unlike time.Time it decodes "" as zero
// rather than failing.
type Timestamp struct {
	time.Time
}

// UnmarshalJSON accepts RFC 3339 strings, "" and null.
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	var s flexText
	if err := s.UnmarshalJSON(b); err != nil {
		return err
	}
	if s.Value == "" {
		t.Time = time.Time{}
		return nil
	}
	v, err := time.Parse(time.RFC3339, s.Value)
	if err != nil {
		return fmt.Errorf("timestamp %q: %w", s.Value, err)
	}
	t.Time = v
	return nil
}

// MarshalJSON writes RFC 3339, or "" for the zero value.
func (t Timestamp) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte(`""`), nil
	}
	return json.Marshal(t.UTC().Format(time.RFC3339))
}

// pagination is the paging block of a list reply. Numbers come as strings.
// See https://help.tableau.com/current/api/rest_api/en-us/REST/rest_api_concepts_paging.htm.
type pagination struct {
	PageNumber     flexInt `json:"pageNumber"`
	PageSize       flexInt `json:"pageSize"`
	TotalAvailable flexInt `json:"totalAvailable"`
}
