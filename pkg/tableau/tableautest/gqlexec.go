package tableautest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// This file validates and executes parsed GraphQL documents against a small
// schema of object types whose fields are resolved by Go functions. Errors
// follow the shape graphql-java (which serves Tableau's Metadata API) gives
// them: a message, locations, a path, and extensions.

// gqlField is one field of an object type.
type gqlField struct {
	typ  string            // a scalar name or an object type name
	list bool              // a list of typ
	args map[string]string // argument name -> input type, e.g. "Int", "[String]", "Workbook_Filter"
	// resolve returns the field's value: a Go scalar, a parent value for
	// the object type, or []any of those when list is set.
	resolve func(ec *gqlExec, parent any, args map[string]any) (any, error)
}

type gqlObjectType struct {
	name   string
	fields map[string]*gqlField
	// uncounted types (connections, PageInfo) are plumbing, not content,
	// and do not count towards the node limit.
	uncounted bool
}

type gqlSchema struct {
	query   *gqlObjectType
	objects map[string]*gqlObjectType
	inputs  map[string]map[string]string // input type -> field -> input type
}

// wireErrorf words an error the way graphql-java does (capitalised, with
// a full stop): its text goes to the client as it is.
func wireErrorf(format string, args ...any) error {
	return &wireError{fmt.Sprintf(format, args...)}
}

type wireError struct{ msg string }

func (e *wireError) Error() string { return e.msg }

// gqlError is one entry of a reply's "errors".
type gqlError struct {
	Message    string         `json:"message"`
	Locations  []gqlLocation  `json:"locations,omitempty"`
	Path       []any          `json:"path,omitempty"`
	Extensions map[string]any `json:"extensions,omitempty"`
}

// gqlFieldError is returned by a resolver to fail its field (which becomes
// null) with a Tableau error code.
type gqlFieldError struct {
	code, severity, message string
}

func (e *gqlFieldError) Error() string { return e.message }

// gqlExec carries one execution.
type gqlExec struct {
	schema *gqlSchema
	vars   map[string]any
	errors []gqlError
	data   any // whatever the caller's resolvers need (the content snapshot)

	nodes     int  // content objects resolved so far
	nodeLimit int  // 0: none
	limitHit  bool // resolution stopped at nodeLimit
	// cutRoot, when >= 0, keeps only that many nodes of the first root
	// connection, to imitate a query cut short by the time limit.
	cutRoot int
}

// orderedObject keeps a response object's keys in selection order, as the
// GraphQL specification requires of serialised results.
type orderedObject struct {
	keys []string
	vals []any
}

func (o *orderedObject) set(k string, v any) {
	for i, have := range o.keys {
		if have == k {
			o.vals[i] = v
			return
		}
	}
	o.keys = append(o.keys, k)
	o.vals = append(o.vals, v)
}

// MarshalJSON writes the object with its keys in order.
func (o *orderedObject) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	if err := writeJSON(&b, o); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func writeJSON(b *bytes.Buffer, v any) error {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case *orderedObject:
		b.WriteByte('{')
		for i, k := range x.keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(b, k)
			b.WriteByte(':')
			if err := writeJSON(b, x.vals[i]); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeJSON(b, e); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case string:
		writeString(b, x)
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case int:
		b.WriteString(strconv.Itoa(x))
	default:
		raw, err := json.Marshal(x)
		if err != nil {
			return err
		}
		b.Write(raw)
	}
	return nil
}

func writeString(b *bytes.Buffer, s string) {
	raw, _ := json.Marshal(s) // a string always marshals
	b.Write(raw)
}

// validationError builds an error the way graphql-java words validation
// failures: "Validation error (Kind@[path]) : detail".
func validationError(kind string, path []string, loc gqlLocation, format string, args ...any) gqlError {
	return gqlError{
		Message:    fmt.Sprintf("Validation error (%s@[%s]) : %s", kind, strings.Join(path, "/"), fmt.Sprintf(format, args...)),
		Locations:  []gqlLocation{loc},
		Extensions: map[string]any{"classification": "ValidationError"},
	}
}

// prepare picks the operation, coerces the variables and validates the
// selections. Any error means the request is not executed.
func (s *gqlSchema) prepare(doc *gqlDocument, opName string, raw map[string]any) (*gqlOperation, map[string]any, []gqlError) {
	var op *gqlOperation
	switch {
	case opName != "":
		for _, o := range doc.ops {
			if o.name == opName {
				op = o
			}
		}
		if op == nil {
			return nil, nil, []gqlError{{Message: fmt.Sprintf("Unknown operation named '%s'.", opName),
				Extensions: map[string]any{"classification": "ValidationError"}}}
		}
	case len(doc.ops) == 1:
		op = doc.ops[0]
	default:
		return nil, nil, []gqlError{{Message: "Must provide operation name if query contains multiple operations.",
			Extensions: map[string]any{"classification": "ValidationError"}}}
	}
	if op.kind != "query" {
		return nil, nil, []gqlError{{Message: fmt.Sprintf("Schema is not configured for %ss.", op.kind),
			Extensions: map[string]any{"classification": "ValidationError"}}}
	}
	vars := map[string]any{}
	declared := map[string]*gqlTypeRef{}
	var errs []gqlError
	for _, d := range op.vars {
		declared[d.name] = d.typ
		v, given := raw[d.name]
		if !given && d.def != nil {
			dv, err := literalValue(d.def, nil)
			if err != nil {
				errs = append(errs, validationError("WrongType", nil, d.loc, "%v", err))
				continue
			}
			v, given = dv, true
		}
		if !given || v == nil {
			if d.typ.nonNull {
				errs = append(errs, gqlError{
					Message:    fmt.Sprintf("Variable '%s' has an invalid value: Variable '%s' has coerced Null value for NonNull type '%s'", d.name, d.name, d.typ),
					Locations:  []gqlLocation{d.loc},
					Extensions: map[string]any{"classification": "ValidationError"},
				})
			}
			vars[d.name] = nil
			continue
		}
		cv, err := s.coerceVariable(v, d.typ)
		if err != nil {
			errs = append(errs, gqlError{
				Message:    fmt.Sprintf("Variable '%s' has an invalid value: %v", d.name, err),
				Locations:  []gqlLocation{d.loc},
				Extensions: map[string]any{"classification": "ValidationError"},
			})
			continue
		}
		vars[d.name] = cv
	}
	errs = append(errs, s.validate(s.query, op.sel, nil, declared)...)
	if len(errs) > 0 {
		return nil, nil, errs
	}
	return op, vars, nil
}

// coerceVariable checks a JSON variable value against its declared type.
func (s *gqlSchema) coerceVariable(v any, t *gqlTypeRef) (any, error) {
	if v == nil {
		if t.nonNull {
			return nil, fmt.Errorf("null for non-null type '%s'", t)
		}
		return nil, nil
	}
	if t.elem != nil {
		items, ok := v.([]any)
		if !ok {
			items = []any{v} // input coercion wraps a single value in a list
		}
		out := make([]any, len(items))
		for i, it := range items {
			cv, err := s.coerceVariable(it, t.elem)
			if err != nil {
				return nil, err
			}
			out[i] = cv
		}
		return out, nil
	}
	return s.coerceInput(v, t.name)
}

// coerceInput checks a value (from JSON or a literal) against a named
// input type and returns it in the form resolvers receive.
func (s *gqlSchema) coerceInput(v any, typ string) (any, error) {
	if v == nil {
		return nil, nil
	}
	if inner, ok := strings.CutPrefix(typ, "["); ok {
		inner = strings.TrimSuffix(inner, "]")
		items, isList := v.([]any)
		if !isList {
			items = []any{v}
		}
		out := make([]any, len(items))
		for i, it := range items {
			cv, err := s.coerceInput(it, inner)
			if err != nil {
				return nil, err
			}
			out[i] = cv
		}
		return out, nil
	}
	switch typ {
	case "String", "ID", "DateTime":
		if str, ok := v.(string); ok {
			return str, nil
		}
		return nil, wireErrorf("Expected type '%s' but was '%s'.", typ, jsonKind(v))
	case "Boolean":
		if b, ok := v.(bool); ok {
			return b, nil
		}
		return nil, wireErrorf("Expected type 'Boolean' but was '%s'.", jsonKind(v))
	case "Int":
		switch n := v.(type) {
		case int:
			return n, nil
		case float64:
			if n == math.Trunc(n) && math.Abs(n) <= math.MaxInt32 {
				return int(n), nil
			}
		}
		return nil, wireErrorf("Expected type 'Int' but was '%s'.", jsonKind(v))
	case "Float":
		switch n := v.(type) {
		case int:
			return float64(n), nil
		case float64:
			return n, nil
		}
		return nil, wireErrorf("Expected type 'Float' but was '%s'.", jsonKind(v))
	}
	fields, ok := s.inputs[typ]
	if !ok {
		if str, isStr := v.(string); isStr { // an enum
			return str, nil
		}
		return nil, wireErrorf("Unknown type '%s'.", typ)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, wireErrorf("Expected type '%s' but was '%s'.", typ, jsonKind(v))
	}
	out := make(map[string]any, len(obj))
	for k, fv := range obj {
		ft, known := fields[k]
		if !known {
			return nil, wireErrorf("Input type '%s' has no field '%s'.", typ, k)
		}
		cv, err := s.coerceInput(fv, ft)
		if err != nil {
			return nil, fmt.Errorf("field '%s': %v", k, err)
		}
		out[k] = cv
	}
	return out, nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case string:
		return "String"
	case bool:
		return "Boolean"
	case float64, int:
		return "Number"
	case []any:
		return "Array"
	case map[string]any:
		return "Object"
	}
	return fmt.Sprintf("%T", v)
}

// literalValue turns a parsed value into the Go form variables take,
// reading variables from vars.
func literalValue(v *gqlValue, vars map[string]any) (any, error) {
	switch v.kind {
	case gqlVariable:
		return vars[v.raw], nil
	case gqlInt:
		n, err := strconv.Atoi(v.raw)
		if err != nil {
			return nil, wireErrorf("Int literal %s is out of range", v.raw)
		}
		return n, nil
	case gqlFloat:
		f, err := strconv.ParseFloat(v.raw, 64)
		if err != nil {
			return nil, wireErrorf("Float literal %s is out of range", v.raw)
		}
		return f, nil
	case gqlString:
		return v.str, nil
	case gqlBoolean:
		return v.raw == "true", nil
	case gqlNull:
		return nil, nil
	case gqlEnum:
		return v.raw, nil
	case gqlList:
		out := make([]any, len(v.list))
		for i, it := range v.list {
			x, err := literalValue(it, vars)
			if err != nil {
				return nil, err
			}
			out[i] = x
		}
		return out, nil
	case gqlObject:
		out := make(map[string]any, len(v.fields))
		for _, f := range v.fields {
			x, err := literalValue(f.val, vars)
			if err != nil {
				return nil, err
			}
			out[f.name] = x
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown value kind %d", v.kind)
}

// validate checks selections against typ: every field exists, arguments
// are known and of the right type, objects have subselections and scalars
// none, and every variable used is declared.
func (s *gqlSchema) validate(typ *gqlObjectType, sel []*gqlSelection, path []string, declared map[string]*gqlTypeRef) []gqlError {
	var errs []gqlError
	for _, f := range sel {
		p := append(append([]string(nil), path...), f.key())
		if f.name == "__typename" {
			if f.sel != nil {
				errs = append(errs, validationError("SubselectionNotAllowed", p, f.loc,
					"Subselection not allowed on leaf type 'String!' of field '__typename'"))
			}
			continue
		}
		def, ok := typ.fields[f.name]
		if !ok {
			errs = append(errs, validationError("FieldUndefined", p, f.loc,
				"Field '%s' in type '%s' is undefined", f.name, typ.name))
			continue
		}
		for _, a := range f.args {
			at, known := def.args[a.name]
			if !known {
				errs = append(errs, validationError("UnknownArgument", p, a.loc, "Unknown field argument '%s'", a.name))
				continue
			}
			errs = append(errs, s.validateValue(a.val, at, a.name, p, declared)...)
		}
		obj := s.objects[def.typ]
		switch {
		case obj == nil && f.sel != nil:
			errs = append(errs, validationError("SubselectionNotAllowed", p, f.loc,
				"Subselection not allowed on leaf type '%s' of field '%s'", def.typ, f.name))
		case obj != nil && f.sel == nil:
			errs = append(errs, validationError("SubselectionRequired", p, f.loc,
				"Subselection required for type '%s' of field '%s'", def.typ, f.name))
		case obj != nil:
			errs = append(errs, s.validate(obj, f.sel, p, declared)...)
		}
	}
	return errs
}

func (s *gqlSchema) validateValue(v *gqlValue, typ, arg string, path []string, declared map[string]*gqlTypeRef) []gqlError {
	if v.kind == gqlVariable {
		dt, ok := declared[v.raw]
		if !ok {
			return []gqlError{validationError("UndefinedVariable", path, v.loc, "Undefined variable '%s'", v.raw)}
		}
		// Every argument and input field here is nullable, so a variable fits
		// when its type, non-null markers aside, is the position's.
		if got := strings.ReplaceAll(dt.String(), "!", ""); got != typ {
			return []gqlError{validationError("VariableTypeMismatch", path, v.loc,
				"Variable type '%s' doesn't match expected type '%s'", dt, typ)}
		}
		return nil
	}
	if v.kind == gqlObject {
		fields, ok := s.inputs[typ]
		if !ok {
			return []gqlError{validationError("WrongType", path, v.loc,
				"argument '%s' with value an object is not a valid '%s'", arg, typ)}
		}
		var errs []gqlError
		for _, f := range v.fields {
			ft, known := fields[f.name]
			if !known {
				errs = append(errs, validationError("WrongType", path, v.loc,
					"argument '%s' contains a field not in '%s': '%s'", arg, typ, f.name))
				continue
			}
			errs = append(errs, s.validateValue(f.val, ft, arg+"."+f.name, path, declared)...)
		}
		return errs
	}
	if v.kind == gqlList {
		inner := strings.TrimSuffix(strings.TrimPrefix(typ, "["), "]")
		var errs []gqlError
		for _, it := range v.list {
			errs = append(errs, s.validateValue(it, inner, arg, path, declared)...)
		}
		return errs
	}
	lit, err := literalValue(v, nil)
	if err == nil {
		_, err = s.coerceInput(lit, typ)
	}
	if err != nil {
		return []gqlError{validationError("WrongType", path, v.loc, "argument '%s' is not a valid '%s': %v", arg, typ, err)}
	}
	return nil
}

// execute runs a validated operation and returns its data.
func (ec *gqlExec) execute(op *gqlOperation) *orderedObject {
	return ec.object(ec.schema.query, nil, op.sel, nil)
}

func (ec *gqlExec) object(typ *gqlObjectType, parent any, sel []*gqlSelection, path []any) *orderedObject {
	out := &orderedObject{}
	for _, f := range sel {
		out.set(f.key(), nil) // fix the key order before resolving out of order
	}
	// nodes first: a connection's pageInfo must describe the nodes that were
	// actually returned when the node limit cut them short.
	order := make([]int, len(sel))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return sel[order[a]].name == "nodes" && sel[order[b]].name != "nodes" })
	for _, i := range order {
		f := sel[i]
		p := append(append([]any(nil), path...), f.key())
		if f.name == "__typename" {
			out.set(f.key(), typ.name)
			continue
		}
		def := typ.fields[f.name]
		if obj := ec.schema.objects[def.typ]; ec.limitHit && obj != nil && !obj.uncounted {
			continue // past the node limit no more content resolves; pageInfo still does
		}
		args := make(map[string]any, len(f.args))
		for _, a := range f.args {
			v, _ := literalValue(a.val, ec.vars)
			cv, err := ec.schema.coerceInput(v, def.args[a.name])
			if err != nil {
				ec.errors = append(ec.errors, gqlError{Message: err.Error(), Locations: []gqlLocation{a.loc}, Path: p,
					Extensions: map[string]any{"classification": "ValidationError"}})
				continue
			}
			args[a.name] = cv
		}
		v, err := def.resolve(ec, parent, args)
		if err != nil {
			ge := gqlError{Message: err.Error(), Locations: []gqlLocation{f.loc}, Path: p}
			if fe, ok := err.(*gqlFieldError); ok {
				ge.Extensions = map[string]any{"severity": fe.severity, "code": fe.code}
			}
			ec.errors = append(ec.errors, ge)
			continue
		}
		out.set(f.key(), ec.complete(def, f, v, p, parent))
	}
	return out
}

// complete turns a resolved value into output, running subselections and
// counting content objects against the node limit.
func (ec *gqlExec) complete(def *gqlField, f *gqlSelection, v any, path []any, parent any) any {
	obj := ec.schema.objects[def.typ]
	if obj == nil || v == nil {
		return v
	}
	if !def.list {
		if !ec.count(obj) {
			return nil
		}
		return ec.object(obj, v, f.sel, path)
	}
	items := v.([]any)
	out := make([]any, 0, len(items))
	rootNodes := len(path) == 2 && f.name == "nodes"
	for i, it := range items {
		if rootNodes && ec.cutRoot >= 0 && i >= ec.cutRoot {
			break
		}
		if !ec.count(obj) {
			break
		}
		o := ec.object(obj, it, f.sel, append(path, i))
		if ec.limitHit {
			break // drop the object the limit cut into: partial data holds whole objects
		}
		out = append(out, o)
	}
	if conn, ok := parent.(*gqlConnection); ok && f.name == "nodes" {
		conn.kept = len(out)
	}
	return out
}

// count records one more content object and reports whether it is within
// the node limit.
func (ec *gqlExec) count(obj *gqlObjectType) bool {
	if obj.uncounted {
		return true
	}
	ec.nodes++
	if ec.nodeLimit > 0 && ec.nodes > ec.nodeLimit {
		ec.limitHit = true
		return false
	}
	return true
}

// gqlConnection is the value of a *Connection field: one page of items.
type gqlConnection struct {
	items    []any
	total    int
	more     bool   // items beyond this page exist
	after    string // the cursor the page started after
	cursorOf func(any) string
	kept     int // how many nodes the reply holds; -1 until nodes resolved
}

func (c *gqlConnection) pageInfo() *gqlPageInfo {
	kept := c.kept
	if kept < 0 {
		kept = len(c.items)
	}
	pi := &gqlPageInfo{hasNext: c.more || kept < len(c.items), hasPrev: c.after != ""}
	if kept > 0 {
		pi.start, pi.end = c.cursorOf(c.items[0]), c.cursorOf(c.items[kept-1])
	} else if c.after != "" {
		pi.end = c.after
	}
	return pi
}

type gqlPageInfo struct {
	hasNext, hasPrev bool
	start, end       string
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// connectionTypes adds the connection and PageInfo types for node type name.
func connectionType(name, plural string) *gqlObjectType {
	return &gqlObjectType{name: plural + "Connection", uncounted: true, fields: map[string]*gqlField{
		"nodes": {typ: name, list: true, resolve: func(_ *gqlExec, p any, _ map[string]any) (any, error) {
			return p.(*gqlConnection).items, nil
		}},
		"pageInfo": {typ: "PageInfo", resolve: func(_ *gqlExec, p any, _ map[string]any) (any, error) {
			return p.(*gqlConnection).pageInfo(), nil
		}},
		"totalCount": {typ: "Int", resolve: func(_ *gqlExec, p any, _ map[string]any) (any, error) {
			return p.(*gqlConnection).total, nil
		}},
	}}
}

var pageInfoType = &gqlObjectType{name: "PageInfo", uncounted: true, fields: map[string]*gqlField{
	"hasNextPage": {typ: "Boolean", resolve: func(_ *gqlExec, p any, _ map[string]any) (any, error) {
		return p.(*gqlPageInfo).hasNext, nil
	}},
	"hasPreviousPage": {typ: "Boolean", resolve: func(_ *gqlExec, p any, _ map[string]any) (any, error) {
		return p.(*gqlPageInfo).hasPrev, nil
	}},
	"startCursor": {typ: "String", resolve: func(_ *gqlExec, p any, _ map[string]any) (any, error) {
		return nullable(p.(*gqlPageInfo).start), nil
	}},
	"endCursor": {typ: "String", resolve: func(_ *gqlExec, p any, _ map[string]any) (any, error) {
		return nullable(p.(*gqlPageInfo).end), nil
	}},
}}
