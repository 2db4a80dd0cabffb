// Package relname parses warehouse relation names and compares them the way
// warehouses do, so that a table named by dbt (relation_name in its
// artifacts) can be found among the tables Tableau's Metadata API reports.
//
// The two sides write the same table differently:
//
//	dbt on Snowflake     analytics.marts.orders   or "ANALYTICS"."MARTS"."ORDERS"
//	dbt on BigQuery      `my-project`.`marts`.`orders`
//	dbt on Databricks    `main`.`marts`.`orders`
//	Tableau fullName     [MARTS].[ORDERS]   (the database comes separately)
//
// A Name holds two or three parts (database, schema, table), each unquoted
// and case-folded. Folding is deliberate: Snowflake folds unquoted names to
// upper case while dbt usually writes them in lower case, and Postgres,
// Redshift, Databricks and SQL Server compare names case-insensitively, so
// the same table reaches us in both cases. Two tables whose names differ
// only by case (possible with quoted identifiers on Snowflake or Postgres, or
// on BigQuery, whose table names are case-sensitive) are treated as one;
// warehouse naming conventions make that rare, and the cost is at most an
// extra refresh. The folded form is upper case for ASCII, the way Snowflake,
// the most common warehouse under Tableau, shows names.
//
// Database names can differ between dbt and Tableau (a share, a replica, a
// connection that names the database differently); Aliases maps them.
package relname

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Name is a relation name normalised for comparison: two or three folded,
// unquoted parts. Names are comparable with ==; the zero Name is not a valid
// name. Build one with Parse or FromParts.
type Name struct {
	database, schema, table string
}

// Database returns the folded database (BigQuery project, Databricks
// catalog) part, or "" for a two-part name.
func (n Name) Database() string { return n.database }

// Schema returns the folded schema (BigQuery dataset) part.
func (n Name) Schema() string { return n.schema }

// Table returns the folded table or view part.
func (n Name) Table() string { return n.table }

// IsZero reports whether n is the zero Name.
func (n Name) IsZero() bool { return n == Name{} }

// WithoutDatabase returns the two-part name of n.
func (n Name) WithoutDatabase() Name { return Name{schema: n.schema, table: n.table} }

// String returns the canonical text of n, like ANALYTICS.MARTS.ORDERS. A
// part that could be misread (one holding a dot, a quote, a bracket or
// surrounding spaces) is double-quoted, so Parse(n.String()) == n. It is the
// key to index names by.
func (n Name) String() string {
	if n.IsZero() {
		return ""
	}
	var b strings.Builder
	if n.database != "" {
		writePart(&b, n.database)
		b.WriteByte('.')
	}
	writePart(&b, n.schema)
	b.WriteByte('.')
	writePart(&b, n.table)
	return b.String()
}

// Matches reports whether n and o name the same relation: the same schema
// and table, and the same database unless either has none. A two-part name
// from Tableau matches the three-part name dbt writes; a one-part name is
// never a Name, so it cannot match by accident.
func (n Name) Matches(o Name) bool {
	if n.IsZero() || o.IsZero() || n.schema != o.schema || n.table != o.table {
		return false
	}
	return n.database == "" || o.database == "" || n.database == o.database
}

func writePart(b *strings.Builder, part string) {
	if !needsQuotes(part) {
		b.WriteString(part)
		return
	}
	b.WriteByte('"')
	b.WriteString(strings.ReplaceAll(part, `"`, `""`))
	b.WriteByte('"')
}

func needsQuotes(part string) bool {
	if strings.ContainsAny(part, ".\"`[]") {
		return true
	}
	first, _ := utf8.DecodeRuneInString(part)
	last, _ := utf8.DecodeLastRuneInString(part)
	return unicode.IsSpace(first) || unicode.IsSpace(last)
}

// Parse reads a relation name as a warehouse or Tableau writes it: two or
// three parts separated by dots, each bare or quoted with "double quotes"
// (Snowflake, Postgres, Redshift), `backticks` (BigQuery, Databricks) or
// [brackets] (SQL Server, Tableau's fullName). A doubled closing character
// inside quotes stands for itself ("a""b"). Dots inside double quotes or
// brackets belong to the identifier ("my.schema".orders has two parts);
// dots inside backticks separate parts, because BigQuery reads
// `project.dataset.table` as a path. Bare parts are trimmed of spaces.
func Parse(s string) (Name, error) {
	parts, err := split(s)
	if err != nil {
		return Name{}, fmt.Errorf("relname: %q: %w", s, err)
	}
	switch len(parts) {
	case 2:
		return Name{schema: fold(parts[0]), table: fold(parts[1])}, nil
	case 3:
		return Name{database: fold(parts[0]), schema: fold(parts[1]), table: fold(parts[2])}, nil
	case 1:
		return Name{}, fmt.Errorf("relname: %q has one part; a schema and a table are needed to match it", s)
	}
	return Name{}, fmt.Errorf("relname: %q has %d parts; expected schema.table or database.schema.table", s, len(parts))
}

// FromParts builds a Name from parts that are already unquoted, as the dbt
// manifest (database, schema, alias) and the Tableau Metadata API
// (database.name, schema, name) report them. database may be empty; schema
// and table may not.
func FromParts(database, schema, table string) (Name, error) {
	for _, p := range []struct{ what, v string }{{"database", database}, {"schema", schema}, {"table", table}} {
		if p.v == "" && p.what != "database" {
			return Name{}, fmt.Errorf("relname: %s name is empty", p.what)
		}
		if err := checkText(p.v); err != nil {
			return Name{}, fmt.Errorf("relname: %s name %q: %w", p.what, p.v, err)
		}
	}
	return Name{database: fold(database), schema: fold(schema), table: fold(table)}, nil
}

// checkText rejects what no warehouse puts in a name and what would make a
// log line lie: invalid UTF-8 and control characters.
func checkText(s string) error {
	if !utf8.ValidString(s) {
		return errors.New("not valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return fmt.Errorf("control character %U", r)
		}
	}
	return nil
}

// split cuts s into its unquoted parts.
func split(s string) ([]string, error) {
	if err := checkText(s); err != nil {
		return nil, err
	}
	var parts []string
	rest := strings.TrimSpace(s)
	if rest == "" {
		return nil, errors.New("empty name")
	}
	for {
		rest = strings.TrimLeftFunc(rest, unicode.IsSpace)
		var got []string
		var err error
		got, rest, err = readPart(rest)
		if err != nil {
			return nil, err
		}
		parts = append(parts, got...)
		rest = strings.TrimLeftFunc(rest, unicode.IsSpace)
		if rest == "" {
			return parts, nil
		}
		if rest[0] != '.' {
			return nil, fmt.Errorf("unexpected %q after part %d", rest[:1], len(parts))
		}
		rest = rest[1:]
		if strings.TrimSpace(rest) == "" {
			return nil, errors.New("ends with a dot")
		}
	}
}

// readPart reads one part from the start of s and returns it with what
// follows. A backticked part may hold several dot-separated parts.
func readPart(s string) (parts []string, rest string, err error) {
	switch s[0] {
	case '"':
		id, rest, err := readQuoted(s, '"')
		if err != nil {
			return nil, "", err
		}
		return []string{id}, rest, nil
	case '[':
		id, rest, err := readQuoted(s, ']')
		if err != nil {
			return nil, "", err
		}
		return []string{id}, rest, nil
	case '`':
		path, rest, err := readQuoted(s, '`')
		if err != nil {
			return nil, "", err
		}
		for p := range strings.SplitSeq(path, ".") {
			if p == "" {
				return nil, "", fmt.Errorf("empty part in `%s`", path)
			}
			parts = append(parts, p)
		}
		return parts, rest, nil
	}
	end := strings.IndexByte(s, '.')
	if end < 0 {
		end = len(s)
	}
	part := strings.TrimSpace(s[:end])
	if part == "" {
		return nil, "", errors.New("empty part")
	}
	if i := strings.IndexAny(part, "\"`[]"); i >= 0 {
		return nil, "", fmt.Errorf("unexpected %q inside unquoted part %q", part[i:i+1], part)
	}
	return []string{part}, s[end:], nil
}

// readQuoted reads a part that starts with an opening quote and ends with
// closer; a doubled closer is a literal one.
func readQuoted(s string, closer byte) (id, rest string, err error) {
	var b strings.Builder
	i := 1
	for {
		j := strings.IndexByte(s[i:], closer)
		if j < 0 {
			return "", "", fmt.Errorf("unterminated %c", s[0])
		}
		b.WriteString(s[i : i+j])
		i += j + 1
		if i < len(s) && s[i] == closer {
			b.WriteByte(closer)
			i++
			continue
		}
		break
	}
	if b.Len() == 0 {
		return "", "", fmt.Errorf("empty quoted part %c%c", s[0], closer)
	}
	return b.String(), s[i:], nil
}

// fold maps every rune to the smallest rune it equals under Unicode simple
// case folding, so that fold(a) == fold(b) exactly when strings.EqualFold(a,
// b). For ASCII that is upper case.
func fold(s string) string {
	isFolded := true
	for _, r := range s {
		if foldRune(r) != r {
			isFolded = false
			break
		}
	}
	if isFolded {
		return s
	}
	return strings.Map(foldRune, s)
}

func foldRune(r rune) rune {
	if r < utf8.RuneSelf {
		if 'a' <= r && r <= 'z' {
			return r - 'a' + 'A'
		}
		return r
	}
	least := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		least = min(least, f)
	}
	return least
}
