package dbtartifacts

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
)

// walker reads an artifact one token at a time, so that no section larger
// than one entry (one node, one macro, one result) is ever held in memory.
type walker struct {
	dec *json.Decoder
	// what names the file in errors: "manifest.json", "run_results.json".
	what string
}

func newWalker(r io.Reader, what string) *walker {
	return &walker{dec: json.NewDecoder(r), what: what}
}

// fail wraps a decoding error with the file and the byte offset reached, so
// a truncated download reads as one.
func (w *walker) fail(doing string, err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("dbtartifacts: %s: %s (at byte %d): %w", w.what, doing, w.dec.InputOffset(), err)
}

// open consumes the opening delimiter of an object or array.
func (w *walker) open(want json.Delim, doing string) error {
	tok, err := w.dec.Token()
	if err != nil {
		return w.fail(doing, err)
	}
	if tok != want {
		return w.fail(doing, fmt.Errorf("expected %s, found %s", delimName(want), tokenName(tok)))
	}
	return nil
}

// openOrNull is open, but also accepts null, which the schemas allow for
// some sections (child_map, parent_map); it reports whether a container
// was opened.
func (w *walker) openOrNull(want json.Delim, doing string) (bool, error) {
	tok, err := w.dec.Token()
	if err != nil {
		return false, w.fail(doing, err)
	}
	if tok == nil {
		return false, nil
	}
	if tok != want {
		return false, w.fail(doing, fmt.Errorf("expected %s or null, found %s", delimName(want), tokenName(tok)))
	}
	return true, nil
}

// close consumes the closing delimiter after dec.More reported false.
func (w *walker) close(doing string) error {
	if _, err := w.dec.Token(); err != nil {
		return w.fail(doing, err)
	}
	return nil
}

// key reads an object key.
func (w *walker) key(doing string) (string, error) {
	tok, err := w.dec.Token()
	if err != nil {
		return "", w.fail(doing, err)
	}
	k, ok := tok.(string)
	if !ok {
		return "", w.fail(doing, fmt.Errorf("expected a key, found %s", tokenName(tok)))
	}
	return k, nil
}

// decode reads one value into v.
func (w *walker) decode(v any, doing string) error {
	if err := w.dec.Decode(v); err != nil {
		return w.fail(doing, err)
	}
	return nil
}

// skip reads past one value without keeping it. Decode into a type that
// ignores its input still scans the value, but allocates nothing for it.
func (w *walker) skip(doing string) error {
	return w.decode(&ignored{}, doing)
}

// skipSection reads past a value that may be large (every macro of a
// project, every disabled node) one entry at a time, so that memory is
// bounded by its largest entry rather than by the section.
func (w *walker) skipSection(doing string) error {
	tok, err := w.dec.Token()
	if err != nil {
		return w.fail(doing, err)
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil // a scalar, already read
	}
	for w.dec.More() {
		if d == '{' {
			if _, err := w.key(doing); err != nil {
				return err
			}
		}
		if err := w.skip(doing); err != nil {
			return err
		}
	}
	return w.close(doing)
}

// document reads a whole artifact: its top-level object and nothing after
// it. The metadata, which dbt writes first, is checked against kind and
// supported before anything else is read, so a wrong file is refused
// before its bulk; section reads every other key it knows (reporting
// true), and the rest are skipped one entry at a time. It returns the
// metadata and the schema version.
func (w *walker) document(kind string, supported []int, section func(key string) (bool, error)) (*metadata, int, error) {
	const doing = "reading the top-level object"
	if err := w.open('{', doing); err != nil {
		return nil, 0, err
	}
	var meta *metadata
	var version int
	for w.dec.More() {
		k, err := w.key(doing)
		if err != nil {
			return nil, 0, err
		}
		if k == "metadata" {
			meta = &metadata{}
			if err := w.decode(meta, "reading metadata"); err != nil {
				return nil, 0, err
			}
			if version, err = checkSchema(meta, kind, w.what, supported...); err != nil {
				return nil, 0, err
			}
			continue
		}
		known, err := section(k)
		if err != nil {
			return nil, 0, err
		}
		if !known {
			if err := w.skipSection("reading " + k); err != nil {
				return nil, 0, err
			}
		}
	}
	if err := w.close(doing); err != nil {
		return nil, 0, err
	}
	if err := w.end(); err != nil {
		return nil, 0, err
	}
	if meta == nil {
		_, err := checkSchema(nil, kind, w.what)
		return nil, 0, err
	}
	return meta, version, nil
}

// end checks that nothing follows the top-level object.
func (w *walker) end() error {
	if tok, err := w.dec.Token(); err != io.EOF {
		if err != nil {
			return w.fail("after the top-level object", err)
		}
		return w.fail("after the top-level object", fmt.Errorf("unexpected %s", tokenName(tok)))
	}
	return nil
}

// ignored is a json.Unmarshaler that drops what it is given.
type ignored struct{}

func (*ignored) UnmarshalJSON([]byte) error { return nil }

func delimName(d json.Delim) string {
	switch d {
	case '{':
		return "an object"
	case '[':
		return "an array"
	}
	return string(d)
}

func tokenName(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		if v == '{' || v == '[' {
			return delimName(v)
		}
		return fmt.Sprintf("%q", string(v))
	case string:
		return "a string"
	case nil:
		return "null"
	case bool:
		return "a boolean"
	}
	return "a number"
}

// Artifact kinds, as named in dbt_schema_version URLs.
const (
	kindManifest   = "manifest"
	kindRunResults = "run-results"
)

// schemaURL matches https://schemas.getdbt.com/dbt/manifest/v12.json.
var schemaURL = regexp.MustCompile(`^https://schemas\.getdbt\.com/dbt/([a-z-]+)/v([0-9]{1,4})\.json$`)

// metadata is the part of an artifact's metadata the reader keeps.
type metadata struct {
	DBTSchemaVersion string `json:"dbt_schema_version"`
	DBTVersion       string `json:"dbt_version"`
	GeneratedAt      string `json:"generated_at"`
	InvocationID     string `json:"invocation_id"`
	AdapterType      string `json:"adapter_type"`
	ProjectName      string `json:"project_name"`
}

// checkSchema returns the version of an artifact of kind, or an error that
// says what the file is instead.
func checkSchema(m *metadata, kind, file string, supported ...int) (int, error) {
	if m == nil || m.DBTSchemaVersion == "" {
		return 0, fmt.Errorf("dbtartifacts: %s: not a dbt artifact (no metadata.dbt_schema_version)", file)
	}
	parts := schemaURL.FindStringSubmatch(m.DBTSchemaVersion)
	if parts == nil {
		return 0, fmt.Errorf("dbtartifacts: %s: not a dbt artifact: dbt_schema_version is %q", file, m.DBTSchemaVersion)
	}
	if parts[1] != kind {
		return 0, fmt.Errorf("dbtartifacts: %s: this is a %s artifact (%s), not %s", file, parts[1], m.DBTSchemaVersion, file)
	}
	v, _ := strconv.Atoi(parts[2])
	for _, s := range supported {
		if v == s {
			return v, nil
		}
	}
	return 0, fmt.Errorf("dbtartifacts: %s: schema v%d (written by dbt %s) is not supported; this reader knows %s",
		file, v, orUnknown(m.DBTVersion), versionList(supported))
}

func versionList(vs []int) string {
	s := ""
	for i, v := range vs {
		switch {
		case i == 0:
		case i == len(vs)-1:
			s += " and "
		default:
			s += ", "
		}
		s += "v" + strconv.Itoa(v)
	}
	return s
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
