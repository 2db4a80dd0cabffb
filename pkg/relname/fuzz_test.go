package relname

import "testing"

// FuzzParse checks that Parse never panics and that every name it accepts
// survives a round trip through its canonical text and through FromParts.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"analytics.marts.orders", `"ANALYTICS"."MARTS"."ORDERS"`, "[MARTS].[ORDERS]",
		"`my-project.marts.orders`", "`p`.`d`.`t`", `"my.db".s.t`, `"we""ird".t`, "[a]]b].t",
		"a..b", `"a`, "x", " a . b ", "`a``b`.c", "straẞe.öl",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := Parse(s)
		if err != nil {
			return
		}
		if n.Schema() == "" || n.Table() == "" {
			t.Fatalf("Parse(%q) = %#v: empty schema or table", s, n)
		}
		again, err := Parse(n.String())
		if err != nil || again != n {
			t.Fatalf("Parse(%q) = %#v; Parse(%q) = %#v, %v", s, n, n.String(), again, err)
		}
		parts, err := FromParts(n.Database(), n.Schema(), n.Table())
		if err != nil || parts != n {
			t.Fatalf("FromParts of %#v = %#v, %v", n, parts, err)
		}
		if !n.Matches(n.WithoutDatabase()) {
			t.Fatalf("%s does not match its own two-part name", n)
		}
	})
}
