package tableautest

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// This file parses GraphQL query documents (the executable subset of the
// October 2021 specification that a client of the Metadata API sends):
// operations with names and variable definitions, selection sets, aliases,
// arguments with every literal kind. Fragments are recognised and refused,
// because the bridge does not use them and the simulator does not resolve
// them.

// gqlDocument is a parsed query document.
type gqlDocument struct {
	ops []*gqlOperation
}

type gqlOperation struct {
	kind string // "query", "mutation" or "subscription"
	name string
	vars []gqlVarDef
	sel  []*gqlSelection
}

type gqlVarDef struct {
	name string
	typ  *gqlTypeRef
	def  *gqlValue
	loc  gqlLocation
}

// gqlTypeRef is a variable's declared type: a named type, or a list of one,
// either of which may be non-null.
type gqlTypeRef struct {
	name    string
	elem    *gqlTypeRef // set for a list type
	nonNull bool
}

func (t *gqlTypeRef) String() string {
	s := t.name
	if t.elem != nil {
		s = "[" + t.elem.String() + "]"
	}
	if t.nonNull {
		s += "!"
	}
	return s
}

type gqlSelection struct {
	alias string // "" when the field is not aliased
	name  string
	args  []gqlArgument
	sel   []*gqlSelection
	loc   gqlLocation
}

// key is the response key: the alias, or the field name.
func (s *gqlSelection) key() string {
	if s.alias != "" {
		return s.alias
	}
	return s.name
}

type gqlArgument struct {
	name string
	val  *gqlValue
	loc  gqlLocation
}

type gqlValueKind int

const (
	gqlVariable gqlValueKind = iota
	gqlInt
	gqlFloat
	gqlString
	gqlBoolean
	gqlNull
	gqlEnum
	gqlList
	gqlObject
)

type gqlValue struct {
	kind   gqlValueKind
	raw    string // the variable name, the literal's text, or the enum name
	str    string // decoded string literal
	list   []*gqlValue
	fields []gqlObjectField
	loc    gqlLocation
}

type gqlObjectField struct {
	name string
	val  *gqlValue
}

type gqlLocation struct {
	Line   int `json:"line"`
	Column int `json:"column"`
}

// gqlSyntaxError is a document that does not parse.
type gqlSyntaxError struct {
	msg string
	loc gqlLocation
}

func (e *gqlSyntaxError) Error() string { return e.msg }

type tokenKind int

const (
	tokEOF tokenKind = iota
	tokPunct
	tokName
	tokInt
	tokFloat
	tokString
)

type token struct {
	kind tokenKind
	text string // punctuator, name, number text, or decoded string
	loc  gqlLocation
}

type lexer struct {
	src  string
	pos  int
	line int
	col  int // of src[pos], 1-based
}

func (l *lexer) advance(n int) {
	for i := 0; i < n && l.pos < len(l.src); i++ {
		if l.src[l.pos] == '\n' {
			l.line++
			l.col = 1
		} else {
			l.col++
		}
		l.pos++
	}
}

func (l *lexer) errorf(loc gqlLocation, format string, args ...any) error {
	return &gqlSyntaxError{
		msg: fmt.Sprintf("Invalid Syntax : %s at line %d column %d", fmt.Sprintf(format, args...), loc.Line, loc.Column),
		loc: loc,
	}
}

// next returns the next token, skipping whitespace, commas and comments,
// which GraphQL treats as insignificant.
func (l *lexer) next() (token, error) {
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',':
			l.advance(1)
		case c == '#':
			for l.pos < len(l.src) && l.src[l.pos] != '\n' {
				l.advance(1)
			}
		case strings.HasPrefix(l.src[l.pos:], "\ufeff"):
			l.advance(3)
		default:
			return l.token()
		}
	}
	return token{kind: tokEOF, loc: gqlLocation{l.line, l.col}}, nil
}

func (l *lexer) token() (token, error) {
	loc := gqlLocation{l.line, l.col}
	c := l.src[l.pos]
	switch {
	case strings.HasPrefix(l.src[l.pos:], "..."):
		l.advance(3)
		return token{kind: tokPunct, text: "...", loc: loc}, nil
	case strings.ContainsRune("!$&()=:@[]{}|", rune(c)):
		l.advance(1)
		return token{kind: tokPunct, text: string(c), loc: loc}, nil
	case c == '_' || isLetter(c):
		start := l.pos
		for l.pos < len(l.src) && (l.src[l.pos] == '_' || isLetter(l.src[l.pos]) || isDigit(l.src[l.pos])) {
			l.advance(1)
		}
		return token{kind: tokName, text: l.src[start:l.pos], loc: loc}, nil
	case c == '-' || isDigit(c):
		return l.number(loc)
	case c == '"':
		if strings.HasPrefix(l.src[l.pos:], `"""`) {
			return l.blockString(loc)
		}
		return l.string(loc)
	}
	r, _ := utf8.DecodeRuneInString(l.src[l.pos:])
	return token{}, l.errorf(loc, "offending token '%c'", r)
}

func (l *lexer) number(loc gqlLocation) (token, error) {
	start := l.pos
	if l.src[l.pos] == '-' {
		l.advance(1)
	}
	digits := func() int {
		n := 0
		for l.pos < len(l.src) && isDigit(l.src[l.pos]) {
			l.advance(1)
			n++
		}
		return n
	}
	if digits() == 0 {
		return token{}, l.errorf(loc, "offending token '%s'", l.src[start:l.pos])
	}
	kind := tokInt
	if l.pos < len(l.src) && l.src[l.pos] == '.' {
		l.advance(1)
		if digits() == 0 {
			return token{}, l.errorf(loc, "offending token '%s'", l.src[start:l.pos])
		}
		kind = tokFloat
	}
	if l.pos < len(l.src) && (l.src[l.pos] == 'e' || l.src[l.pos] == 'E') {
		l.advance(1)
		if l.pos < len(l.src) && (l.src[l.pos] == '+' || l.src[l.pos] == '-') {
			l.advance(1)
		}
		if digits() == 0 {
			return token{}, l.errorf(loc, "offending token '%s'", l.src[start:l.pos])
		}
		kind = tokFloat
	}
	if l.pos < len(l.src) && (l.src[l.pos] == '_' || isLetter(l.src[l.pos]) || l.src[l.pos] == '.') {
		return token{}, l.errorf(loc, "offending token '%s%c'", l.src[start:l.pos], l.src[l.pos])
	}
	return token{kind: kind, text: l.src[start:l.pos], loc: loc}, nil
}

func (l *lexer) string(loc gqlLocation) (token, error) {
	l.advance(1)
	var b strings.Builder
	for {
		if l.pos >= len(l.src) || l.src[l.pos] == '\n' || l.src[l.pos] == '\r' {
			return token{}, l.errorf(loc, "unterminated string")
		}
		c := l.src[l.pos]
		switch {
		case c == '"':
			l.advance(1)
			return token{kind: tokString, text: b.String(), loc: loc}, nil
		case c == '\\':
			if l.pos+1 >= len(l.src) {
				return token{}, l.errorf(loc, "unterminated string")
			}
			esc := l.src[l.pos+1]
			switch esc {
			case '"', '\\', '/':
				b.WriteByte(esc)
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'u':
				if l.pos+6 > len(l.src) {
					return token{}, l.errorf(loc, "bad unicode escape")
				}
				n, err := strconv.ParseUint(l.src[l.pos+2:l.pos+6], 16, 32)
				if err != nil {
					return token{}, l.errorf(loc, "bad unicode escape '\\u%s'", l.src[l.pos+2:l.pos+6])
				}
				b.WriteRune(rune(n))
				l.advance(4)
			default:
				return token{}, l.errorf(loc, "bad escape '\\%c'", esc)
			}
			l.advance(2)
		default:
			r, size := utf8.DecodeRuneInString(l.src[l.pos:])
			b.WriteRune(r)
			l.advance(size)
		}
	}
}

// blockString reads a """...""" string. Indentation is kept as written:
// the simulator never needs block strings to be dedented.
func (l *lexer) blockString(loc gqlLocation) (token, error) {
	l.advance(3)
	var b strings.Builder
	for {
		if l.pos >= len(l.src) {
			return token{}, l.errorf(loc, "unterminated block string")
		}
		if strings.HasPrefix(l.src[l.pos:], `\"""`) {
			b.WriteString(`"""`)
			l.advance(4)
			continue
		}
		if strings.HasPrefix(l.src[l.pos:], `"""`) {
			l.advance(3)
			return token{kind: tokString, text: b.String(), loc: loc}, nil
		}
		b.WriteByte(l.src[l.pos])
		l.advance(1)
	}
}

func isLetter(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }

// parser is a recursive-descent parser with one token of lookahead.
type parser struct {
	lex lexer
	tok token
}

func parseGraphQL(src string) (*gqlDocument, error) {
	p := &parser{lex: lexer{src: src, line: 1, col: 1}}
	if err := p.advance(); err != nil {
		return nil, err
	}
	doc := &gqlDocument{}
	if p.tok.kind == tokEOF {
		return nil, p.lex.errorf(p.tok.loc, "the document contains no operation")
	}
	for p.tok.kind != tokEOF {
		op, err := p.definition()
		if err != nil {
			return nil, err
		}
		doc.ops = append(doc.ops, op)
	}
	return doc, nil
}

func (p *parser) advance() error {
	t, err := p.lex.next()
	if err != nil {
		return err
	}
	p.tok = t
	return nil
}

func (p *parser) unexpected() error {
	if p.tok.kind == tokEOF {
		return p.lex.errorf(p.tok.loc, "offending token '<EOF>'")
	}
	return p.lex.errorf(p.tok.loc, "offending token '%s'", p.tok.text)
}

func (p *parser) is(punct string) bool { return p.tok.kind == tokPunct && p.tok.text == punct }

func (p *parser) expect(punct string) error {
	if !p.is(punct) {
		return p.unexpected()
	}
	return p.advance()
}

func (p *parser) name() (string, gqlLocation, error) {
	if p.tok.kind != tokName {
		return "", p.tok.loc, p.unexpected()
	}
	t := p.tok
	return t.text, t.loc, p.advance()
}

func (p *parser) definition() (*gqlOperation, error) {
	if p.is("{") {
		sel, err := p.selectionSet()
		return &gqlOperation{kind: "query", sel: sel}, err
	}
	if p.tok.kind != tokName {
		return nil, p.unexpected()
	}
	switch p.tok.text {
	case "query", "mutation", "subscription":
	case "fragment":
		return nil, p.lex.errorf(p.tok.loc, "fragments are not supported by this simulator")
	default:
		return nil, p.unexpected()
	}
	op := &gqlOperation{kind: p.tok.text}
	if err := p.advance(); err != nil {
		return nil, err
	}
	if p.tok.kind == tokName {
		op.name = p.tok.text
		if err := p.advance(); err != nil {
			return nil, err
		}
	}
	if p.is("(") {
		vars, err := p.variableDefinitions()
		if err != nil {
			return nil, err
		}
		op.vars = vars
	}
	if err := p.directives(); err != nil {
		return nil, err
	}
	sel, err := p.selectionSet()
	if err != nil {
		return nil, err
	}
	op.sel = sel
	return op, nil
}

func (p *parser) variableDefinitions() ([]gqlVarDef, error) {
	if err := p.expect("("); err != nil {
		return nil, err
	}
	var defs []gqlVarDef
	for !p.is(")") {
		loc := p.tok.loc
		if err := p.expect("$"); err != nil {
			return nil, err
		}
		name, _, err := p.name()
		if err != nil {
			return nil, err
		}
		if err := p.expect(":"); err != nil {
			return nil, err
		}
		typ, err := p.typeRef()
		if err != nil {
			return nil, err
		}
		d := gqlVarDef{name: name, typ: typ, loc: loc}
		if p.is("=") {
			if err := p.advance(); err != nil {
				return nil, err
			}
			v, err := p.value(true)
			if err != nil {
				return nil, err
			}
			d.def = v
		}
		if err := p.directives(); err != nil {
			return nil, err
		}
		defs = append(defs, d)
	}
	if len(defs) == 0 {
		return nil, p.unexpected()
	}
	return defs, p.advance()
}

func (p *parser) typeRef() (*gqlTypeRef, error) {
	var t *gqlTypeRef
	if p.is("[") {
		if err := p.advance(); err != nil {
			return nil, err
		}
		elem, err := p.typeRef()
		if err != nil {
			return nil, err
		}
		if err := p.expect("]"); err != nil {
			return nil, err
		}
		t = &gqlTypeRef{elem: elem}
	} else {
		name, _, err := p.name()
		if err != nil {
			return nil, err
		}
		t = &gqlTypeRef{name: name}
	}
	if p.is("!") {
		t.nonNull = true
		if err := p.advance(); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// directives parses and discards @name(args): no directive changes what the
// simulator returns for the queries it serves.
func (p *parser) directives() error {
	for p.is("@") {
		if err := p.advance(); err != nil {
			return err
		}
		if _, _, err := p.name(); err != nil {
			return err
		}
		if p.is("(") {
			if _, err := p.arguments(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (p *parser) selectionSet() ([]*gqlSelection, error) {
	if err := p.expect("{"); err != nil {
		return nil, err
	}
	var sel []*gqlSelection
	for !p.is("}") {
		if p.is("...") {
			return nil, p.lex.errorf(p.tok.loc, "fragments are not supported by this simulator")
		}
		f, err := p.field()
		if err != nil {
			return nil, err
		}
		sel = append(sel, f)
	}
	if len(sel) == 0 {
		return nil, p.unexpected()
	}
	return sel, p.advance()
}

func (p *parser) field() (*gqlSelection, error) {
	name, loc, err := p.name()
	if err != nil {
		return nil, err
	}
	f := &gqlSelection{name: name, loc: loc}
	if p.is(":") {
		if err := p.advance(); err != nil {
			return nil, err
		}
		f.alias = name
		if f.name, _, err = p.name(); err != nil {
			return nil, err
		}
	}
	if p.is("(") {
		if f.args, err = p.arguments(); err != nil {
			return nil, err
		}
	}
	if err := p.directives(); err != nil {
		return nil, err
	}
	if p.is("{") {
		if f.sel, err = p.selectionSet(); err != nil {
			return nil, err
		}
	}
	return f, nil
}

func (p *parser) arguments() ([]gqlArgument, error) {
	if err := p.expect("("); err != nil {
		return nil, err
	}
	var args []gqlArgument
	for !p.is(")") {
		name, loc, err := p.name()
		if err != nil {
			return nil, err
		}
		if err := p.expect(":"); err != nil {
			return nil, err
		}
		v, err := p.value(false)
		if err != nil {
			return nil, err
		}
		args = append(args, gqlArgument{name: name, val: v, loc: loc})
	}
	if len(args) == 0 {
		return nil, p.unexpected()
	}
	return args, p.advance()
}

// value parses a value; const forbids variables, as in default values.
func (p *parser) value(isConst bool) (*gqlValue, error) {
	t := p.tok
	v := &gqlValue{loc: t.loc}
	switch {
	case t.kind == tokPunct && t.text == "$" && !isConst:
		if err := p.advance(); err != nil {
			return nil, err
		}
		name, _, err := p.name()
		if err != nil {
			return nil, err
		}
		v.kind, v.raw = gqlVariable, name
		return v, nil
	case t.kind == tokPunct && t.text == "[":
		if err := p.advance(); err != nil {
			return nil, err
		}
		v.kind = gqlList
		for !p.is("]") {
			item, err := p.value(isConst)
			if err != nil {
				return nil, err
			}
			v.list = append(v.list, item)
		}
		return v, p.advance()
	case t.kind == tokPunct && t.text == "{":
		if err := p.advance(); err != nil {
			return nil, err
		}
		v.kind = gqlObject
		for !p.is("}") {
			name, _, err := p.name()
			if err != nil {
				return nil, err
			}
			if err := p.expect(":"); err != nil {
				return nil, err
			}
			item, err := p.value(isConst)
			if err != nil {
				return nil, err
			}
			v.fields = append(v.fields, gqlObjectField{name: name, val: item})
		}
		return v, p.advance()
	case t.kind == tokInt:
		v.kind, v.raw = gqlInt, t.text
	case t.kind == tokFloat:
		v.kind, v.raw = gqlFloat, t.text
	case t.kind == tokString:
		v.kind, v.str = gqlString, t.text
	case t.kind == tokName && (t.text == "true" || t.text == "false"):
		v.kind, v.raw = gqlBoolean, t.text
	case t.kind == tokName && t.text == "null":
		v.kind = gqlNull
	case t.kind == tokName:
		v.kind, v.raw = gqlEnum, t.text
	default:
		return nil, p.unexpected()
	}
	return v, p.advance()
}
