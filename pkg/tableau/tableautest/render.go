package tableautest

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// node is one element of a reply. Every reply is built once as a tree and then
// rendered as XML or JSON, because Tableau's JSON is a mechanical translation of
// its XML: attributes become keys whose values are strings (so numbers such as
// pagination counts, progress and finishCode arrive quoted), child elements become
// nested objects, repeated elements become arrays, and an empty list becomes {}.
// Building one tree keeps the two renderings from drifting apart.
type node struct {
	name  string
	attrs []attr
	kids  []*node
	text  *string // character data, e.g. <notes>...</notes>
	list  bool    // kids are list items: JSON {"item":[...]}, or {} when empty
}

type attr struct {
	key string
	val any // string or bool
}

// el makes an element with attributes given as key, value pairs.
func el(name string, kv ...any) *node {
	n := &node{name: name}
	for i := 0; i+1 < len(kv); i += 2 {
		n.attrs = append(n.attrs, attr{key: kv[i].(string), val: kv[i+1]})
	}
	return n
}

// listEl makes a list container such as <workbooks> or <tags>.
func listEl(name string, items ...*node) *node {
	return &node{name: name, list: true, kids: items}
}

func textEl(name, text string) *node {
	return &node{name: name, text: &text}
}

func (n *node) add(kids ...*node) *node {
	n.kids = append(n.kids, kids...)
	return n
}

// set adds an attribute only when the value is present, for attributes Tableau
// omits until they apply (startedAt, completedAt, finishCode...).
func (n *node) set(key, val string) *node {
	if val != "" {
		n.attrs = append(n.attrs, attr{key: key, val: val})
	}
	return n
}

func (n *node) writeJSON(b *bytes.Buffer) {
	if n.text != nil && len(n.attrs) == 0 && len(n.kids) == 0 {
		writeJSONValue(b, *n.text)
		return
	}
	b.WriteByte('{')
	sep := ""
	key := func(k string) {
		b.WriteString(sep)
		sep = ","
		writeJSONValue(b, k)
		b.WriteByte(':')
	}
	for _, a := range n.attrs {
		key(a.key)
		writeJSONValue(b, a.val)
	}
	if n.text != nil {
		// <productVersion build="x">2024.2.0</productVersion> becomes
		// {"value":"2024.2.0","build":"x"} in Tableau's JSON.
		key("value")
		writeJSONValue(b, *n.text)
	}
	if n.list {
		if len(n.kids) > 0 {
			key(n.kids[0].name)
			b.WriteByte('[')
			for i, k := range n.kids {
				if i > 0 {
					b.WriteByte(',')
				}
				k.writeJSON(b)
			}
			b.WriteByte(']')
		}
	} else {
		for _, k := range n.kids {
			key(k.name)
			k.writeJSON(b)
		}
	}
	b.WriteByte('}')
}

func writeJSONValue(b *bytes.Buffer, v any) {
	enc, err := json.Marshal(v)
	if err != nil {
		// Only strings and bools reach here; both always marshal.
		panic(fmt.Sprintf("tableautest: marshal %T: %v", v, err))
	}
	b.Write(enc)
}

func (n *node) writeXML(b *bytes.Buffer) {
	b.WriteByte('<')
	b.WriteString(n.name)
	for _, a := range n.attrs {
		fmt.Fprintf(b, " %s=\"", a.key)
		xmlEscape(b, fmt.Sprint(a.val))
		b.WriteByte('"')
	}
	if n.text == nil && len(n.kids) == 0 {
		b.WriteString("/>")
		return
	}
	b.WriteByte('>')
	if n.text != nil {
		xmlEscape(b, *n.text)
	}
	for _, k := range n.kids {
		k.writeXML(b)
	}
	fmt.Fprintf(b, "</%s>", n.name)
}

func xmlEscape(b *bytes.Buffer, s string) {
	// EscapeText also escapes quotes, which makes it safe inside attributes.
	_ = xml.EscapeText(b, []byte(s))
}

// render produces the reply body for the given top-level elements.
func render(asJSON bool, version string, kids ...*node) []byte {
	root := &node{name: "tsResponse", kids: kids}
	var b bytes.Buffer
	if asJSON {
		root.writeJSON(&b)
		return b.Bytes()
	}
	root.attrs = []attr{
		{"xmlns", "http://tableau.com/api"},
		{"xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance"},
		{"xsi:schemaLocation", "http://tableau.com/api https://help.tableau.com/samples/en-us/rest_api/ts-api_" +
			strings.ReplaceAll(version, ".", "_") + ".xsd"},
	}
	b.WriteString("<?xml version='1.0' encoding='UTF-8'?>")
	root.writeXML(&b)
	return b.Bytes()
}

// wantsJSON mirrors the server's content negotiation: JSON only when asked for,
// XML otherwise.
func wantsJSON(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		if strings.Contains(strings.ToLower(v), "application/json") {
			return true
		}
	}
	return false
}

// decodeBody reads a request body into the same map shape for JSON and XML, so
// handlers read fields once. Like the real server, the Content-Type decides the
// format and XML is the default: a JSON body sent without
// "Content-Type: application/json" is rejected.
func decodeBody(body []byte, contentType string) (map[string]any, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return map[string]any{}, nil
	}
	mt, _, _ := mime.ParseMediaType(contentType)
	if strings.HasSuffix(mt, "json") {
		var m map[string]any
		if err := json.Unmarshal(trimmed, &m); err != nil {
			return nil, fmt.Errorf("request body is not valid JSON: %w", err)
		}
		if m == nil {
			m = map[string]any{}
		}
		return m, nil
	}
	return decodeXML(trimmed)
}

// decodeXML turns <tsRequest><a x="1"><b/></a></tsRequest> into
// {"a":{"x":"1","b":{}}}, the shape of the equivalent JSON request.
func decodeXML(body []byte) (map[string]any, error) {
	dec := xml.NewDecoder(bytes.NewReader(body))
	var root map[string]any
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("request body is not valid XML: %w", err)
		}
		if start, ok := tok.(xml.StartElement); ok {
			v, err := decodeXMLElement(dec, start)
			if err != nil {
				return nil, err
			}
			m, ok := v.(map[string]any)
			if !ok {
				m = map[string]any{}
			}
			root = m
			break
		}
	}
	if root == nil {
		return nil, errors.New("request body has no XML element")
	}
	return root, nil
}

func decodeXMLElement(dec *xml.Decoder, start xml.StartElement) (any, error) {
	m := map[string]any{}
	for _, a := range start.Attr {
		m[a.Name.Local] = a.Value
	}
	var text strings.Builder
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("request body is not valid XML: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			v, err := decodeXMLElement(dec, t)
			if err != nil {
				return nil, err
			}
			if prev, dup := m[t.Name.Local]; dup {
				list, ok := prev.([]any)
				if !ok {
					list = []any{prev}
				}
				m[t.Name.Local] = append(list, v)
			} else {
				m[t.Name.Local] = v
			}
		case xml.CharData:
			text.Write(t)
		case xml.EndElement:
			if len(m) == 0 && strings.TrimSpace(text.String()) != "" {
				return text.String(), nil
			}
			return m, nil
		}
	}
}

// obj, str and boolField read decoded request bodies; absent or mistyped fields
// read as zero values so handlers can report them as missing.
func obj(m map[string]any, key string) map[string]any {
	v, _ := m[key].(map[string]any)
	return v
}

func str(m map[string]any, key string) string {
	switch v := m[key].(type) {
	case string:
		return v
	case float64:
		return fmt.Sprint(v)
	case bool:
		return fmt.Sprint(v)
	}
	return ""
}

// boolField accepts true and "true" because Tableau's own JSON carries booleans
// both ways.
func boolField(m map[string]any, key string) (val, ok bool, err error) {
	switch v := m[key].(type) {
	case nil:
		return false, false, nil
	case bool:
		return v, true, nil
	case string:
		switch strings.ToLower(v) {
		case "true":
			return true, true, nil
		case "false":
			return false, true, nil
		}
	}
	return false, false, fmt.Errorf("%s must be true or false", key)
}
