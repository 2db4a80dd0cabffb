package relname

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Aliases maps a database name as dbt writes it to the name or names
// Tableau's connections show for the same database. The zero value maps
// nothing. It is read-only after ParseAliases and safe for concurrent use.
type Aliases struct {
	// to holds folded dbt names and, for each, the folded Tableau names in
	// the order given.
	to map[string][]string
}

// ParseAliases reads aliases from a JSON object mapping each dbt database
// name to the Tableau database name, or to a list of names when Tableau
// connections use several, for example
//
//	{"analytics": "ANALYTICS_PROD", "raw": ["RAW", "RAW_SHARE"]}
//
// Names compare folded, as table names do; a name may be wrapped in one
// pair of quotes, backticks or brackets. An alias replaces the dbt name: to
// keep matching the dbt name too, list it among the Tableau names. Blank
// input means no aliases.
func ParseAliases(raw string) (Aliases, error) {
	if strings.TrimSpace(raw) == "" {
		return Aliases{}, nil
	}
	a := Aliases{to: map[string][]string{}}
	spelled := map[string]string{}
	dec := json.NewDecoder(strings.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return Aliases{}, errors.New(`relname: aliases must be a JSON object mapping dbt database names to Tableau database names, like {"analytics": "ANALYTICS_PROD"}`)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return Aliases{}, fmt.Errorf("relname: aliases are not valid JSON: %w", err)
		}
		key := tok.(string) // object keys are always strings
		from, err := aliasName(key)
		if err != nil {
			return Aliases{}, fmt.Errorf("relname: alias %q: %w", key, err)
		}
		if first, dup := spelled[from]; dup {
			return Aliases{}, fmt.Errorf("relname: database %q is aliased twice (as %q and %q); names compare without regard to case", from, first, key)
		}
		spelled[from] = key
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return Aliases{}, fmt.Errorf("relname: aliases are not valid JSON: %w", err)
		}
		targets, err := aliasTargets(value)
		if err != nil {
			return Aliases{}, fmt.Errorf("relname: alias %q: %w", key, err)
		}
		a.to[from] = targets
	}
	if _, err := dec.Token(); err != nil {
		return Aliases{}, fmt.Errorf("relname: aliases are not valid JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Aliases{}, errors.New("relname: aliases have text after the JSON object")
	}
	return a, nil
}

// aliasTargets reads an alias value: a name or a non-empty list of names.
func aliasTargets(value json.RawMessage) ([]string, error) {
	var names []string
	var one string
	switch {
	case json.Unmarshal(value, &one) == nil:
		names = []string{one}
	case json.Unmarshal(value, &names) == nil:
		if len(names) == 0 {
			return nil, errors.New("the list of Tableau database names is empty")
		}
	default:
		return nil, fmt.Errorf("value must be a Tableau database name or a list of names, got %s", bytes.TrimSpace(value))
	}
	var out []string
	for _, n := range names {
		to, err := aliasName(n)
		if err != nil {
			return nil, fmt.Errorf("value %q: %w", n, err)
		}
		if !slices.Contains(out, to) {
			out = append(out, to)
		}
	}
	return out, nil
}

// aliasName folds one database name, unwrapping one pair of quotes. Dots
// are kept: a database name is one identifier (BigQuery's domain-scoped
// projects, like example.com:analytics, hold one).
func aliasName(s string) (string, error) {
	if err := checkText(s); err != nil {
		return "", err
	}
	t := strings.TrimSpace(s)
	if len(t) >= 2 {
		if closer, ok := map[byte]byte{'"': '"', '`': '`', '[': ']'}[t[0]]; ok && t[len(t)-1] == closer {
			t = strings.ReplaceAll(t[1:len(t)-1], string([]byte{closer, closer}), string(closer))
		}
	}
	if t == "" {
		return "", errors.New("database name is empty")
	}
	return fold(t), nil
}

// Len returns how many dbt database names have aliases.
func (a Aliases) Len() int { return len(a.to) }

// Targets returns the folded database names Tableau shows for the folded dbt
// database name db: its aliases, or db itself when it has none.
func (a Aliases) Targets(db string) []string {
	if to, ok := a.to[db]; ok {
		return slices.Clone(to)
	}
	return []string{db}
}

// Candidates returns the names a Tableau table may carry for the dbt
// relation n: n's three-part name under each Tableau name of its database,
// then its two-part name (Tableau tables with no database match it). Looking
// each up in an index of Tableau tables keyed by Name.String finds the
// tables Match accepts. A dbt name with no database (Spark or Hive without
// a catalog) matches Tableau tables in any database: look its String up
// among the Tableau tables' WithoutDatabase().String() instead.
func (a Aliases) Candidates(n Name) []Name {
	if n.IsZero() {
		return nil
	}
	if n.database == "" {
		return []Name{n}
	}
	var out []Name
	for _, db := range a.Targets(n.database) {
		out = append(out, Name{database: db, schema: n.schema, table: n.table})
	}
	return append(out, n.WithoutDatabase())
}

// Match reports whether the Tableau table tableau is the dbt relation dbt:
// the same schema and table, and, when both have a database, a Tableau
// database that is one of the dbt database's Tableau names.
func (a Aliases) Match(dbt, tableau Name) bool {
	if dbt.IsZero() || tableau.IsZero() || dbt.schema != tableau.schema || dbt.table != tableau.table {
		return false
	}
	if dbt.database == "" || tableau.database == "" {
		return true
	}
	return slices.Contains(a.Targets(dbt.database), tableau.database)
}

// String lists the aliases for a start-up log line, like
// "ANALYTICS→ANALYTICS_PROD, RAW→RAW|RAW_SHARE", sorted.
func (a Aliases) String() string {
	keys := make([]string, 0, len(a.to))
	for k := range a.to {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"→"+strings.Join(a.to[k], "|"))
	}
	return strings.Join(parts, ", ")
}
