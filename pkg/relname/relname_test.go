package relname

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name, in       string
		db, schema, tb string
		canonical      string
	}{
		{"snowflake unquoted lower case", "analytics.marts.orders", "ANALYTICS", "MARTS", "ORDERS", "ANALYTICS.MARTS.ORDERS"},
		{"snowflake unquoted upper case", "ANALYTICS.MARTS.ORDERS", "ANALYTICS", "MARTS", "ORDERS", "ANALYTICS.MARTS.ORDERS"},
		{"snowflake quoted", `"ANALYTICS"."MARTS"."ORDERS"`, "ANALYTICS", "MARTS", "ORDERS", "ANALYTICS.MARTS.ORDERS"},
		{"postgres quoted lower case", `"analytics"."marts"."orders"`, "ANALYTICS", "MARTS", "ORDERS", "ANALYTICS.MARTS.ORDERS"},
		{"mixed case", `Analytics.Marts."Orders"`, "ANALYTICS", "MARTS", "ORDERS", "ANALYTICS.MARTS.ORDERS"},
		{"tableau fullName", "[MARTS].[ORDERS]", "", "MARTS", "ORDERS", "MARTS.ORDERS"},
		{"sql server three brackets", "[Analytics].[dbo].[Orders]", "ANALYTICS", "DBO", "ORDERS", "ANALYTICS.DBO.ORDERS"},
		{"two-part bare", "marts.orders", "", "MARTS", "ORDERS", "MARTS.ORDERS"},
		{"bigquery per-part backticks", "`my-project`.`marts`.`orders`", "MY-PROJECT", "MARTS", "ORDERS", "MY-PROJECT.MARTS.ORDERS"},
		{"bigquery path in one pair of backticks", "`my-project.marts.orders`", "MY-PROJECT", "MARTS", "ORDERS", "MY-PROJECT.MARTS.ORDERS"},
		{"bigquery dataset.table in backticks", "`marts.orders`", "", "MARTS", "ORDERS", "MARTS.ORDERS"},
		{"bigquery mixed backticks", "`my-project`.marts.`orders`", "MY-PROJECT", "MARTS", "ORDERS", "MY-PROJECT.MARTS.ORDERS"},
		{"databricks catalog", "`main`.`marts`.`orders`", "MAIN", "MARTS", "ORDERS", "MAIN.MARTS.ORDERS"},
		{"dot inside double quotes", `"my.db"."marts"."orders"`, "MY.DB", "MARTS", "ORDERS", `"MY.DB".MARTS.ORDERS`},
		{"dot inside brackets", "[sales.eu].[orders]", "", "SALES.EU", "ORDERS", `"SALES.EU".ORDERS`},
		{"escaped double quote", `"we""ird".t`, "", `WE"IRD`, "T", `"WE""IRD".T`},
		{"escaped bracket", "[a]]b].t", "", "A]B", "T", `"A]B".T`},
		{"escaped backtick", "`a``b`.t", "", "A`B", "T", "\"A`B\".T"},
		{"spaces around parts and dots", "  analytics . marts .  orders ", "ANALYTICS", "MARTS", "ORDERS", "ANALYTICS.MARTS.ORDERS"},
		{"space inside a bare part", "my schema.orders", "", "MY SCHEMA", "ORDERS", "MY SCHEMA.ORDERS"},
		{"leading space kept in quotes", `" marts".orders`, "", " MARTS", "ORDERS", `" MARTS".ORDERS`},
		// ß and ẞ fold together; neither becomes "SS", which no warehouse does.
		{"unicode folds", "straẞe.öl", "", "STRAßE", "ÖL", "STRAßE.ÖL"},
		{"dollar and digits", "db1.s$2.t_3", "DB1", "S$2", "T_3", "DB1.S$2.T_3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if n.Database() != tt.db || n.Schema() != tt.schema || n.Table() != tt.tb {
				t.Errorf("Parse(%q) = (%q, %q, %q), want (%q, %q, %q)", tt.in, n.Database(), n.Schema(), n.Table(), tt.db, tt.schema, tt.tb)
			}
			if got := n.String(); got != tt.canonical {
				t.Errorf("String() = %s, want %s", got, tt.canonical)
			}
			again, err := Parse(n.String())
			if err != nil || again != n {
				t.Errorf("Parse(String()) = %#v, %v; want %#v", again, err, n)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"empty", "", "empty name"},
		{"blank", "   ", "empty name"},
		{"one part", "orders", "one part"},
		{"one quoted part", `"orders"`, "one part"},
		{"four parts", "server.db.schema.table", "4 parts"},
		{"four parts in backticks", "`a.b.c.d`", "4 parts"},
		{"empty middle part", "a..b", "empty part"},
		{"trailing dot", "a.b.", "ends with a dot"},
		{"leading dot", ".a.b", "empty part"},
		{"unterminated quote", `"a.b`, "unterminated"},
		{"unterminated bracket", "[a].[b", "unterminated"},
		{"unterminated backtick", "`a.b", "unterminated"},
		{"empty quotes", `"".b`, "empty quoted part"},
		{"empty brackets", "[].b", "empty quoted part"},
		{"empty piece in backticks", "`a..b`", "empty part"},
		{"text after quotes", `"a"x.b`, "unexpected"},
		{"quote inside bare part", `a"b.c`, "unexpected"},
		{"bracket inside bare part", "a]b.c", "unexpected"},
		{"control character", "a.b\n", "control character"},
		{"invalid utf-8", "a.\xff", "UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse(%q) = %v, want an error", tt.in, n)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "relname: ") {
				t.Errorf("Parse(%q) error = %q, want it to mention %q", tt.in, err, tt.want)
			}
		})
	}
}

func TestFromParts(t *testing.T) {
	tests := []struct {
		name               string
		db, schema, table  string
		want               string
		wantErr            string
		sameAsParsedFromIn string
	}{
		{name: "manifest parts", db: "analytics", schema: "marts", table: "orders", want: "ANALYTICS.MARTS.ORDERS", sameAsParsedFromIn: `"ANALYTICS"."MARTS"."ORDERS"`},
		{name: "tableau parts without database", schema: "MARTS", table: "ORDERS", want: "MARTS.ORDERS", sameAsParsedFromIn: "[MARTS].[ORDERS]"},
		{name: "bigquery project", db: "my-project", schema: "marts", table: "orders", want: "MY-PROJECT.MARTS.ORDERS", sameAsParsedFromIn: "`my-project.marts.orders`"},
		{name: "dots are kept inside a part", db: "", schema: "sales.eu", table: "orders", want: `"SALES.EU".ORDERS`, sameAsParsedFromIn: "[sales.eu].[orders]"},
		{name: "no schema", table: "orders", wantErr: "schema name is empty"},
		{name: "no table", schema: "marts", wantErr: "table name is empty"},
		{name: "control character", schema: "marts", table: "or\x00ders", wantErr: "control character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := FromParts(tt.db, tt.schema, tt.table)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("FromParts = %v, %v; want error %q", n, err, tt.wantErr)
				}
				return
			}
			if err != nil || n.String() != tt.want {
				t.Fatalf("FromParts = %v, %v; want %s", n, err, tt.want)
			}
			parsed, err := Parse(tt.sameAsParsedFromIn)
			if err != nil || parsed != n {
				t.Errorf("Parse(%q) = %v, %v; want it equal to FromParts' %v", tt.sameAsParsedFromIn, parsed, err, n)
			}
		})
	}
}

func TestMatches(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		want bool
	}{
		{"same three-part name, different quoting and case", `"ANALYTICS"."MARTS"."ORDERS"`, "analytics.marts.orders", true},
		{"two-part tableau name matches three-part dbt name", "analytics.marts.orders", "[MARTS].[ORDERS]", true},
		{"and the other way round", "[MARTS].[ORDERS]", "analytics.marts.orders", true},
		{"different database", "analytics.marts.orders", "analytics_dev.marts.orders", false},
		{"different schema", "analytics.marts.orders", "analytics.staging.orders", false},
		{"different table", "marts.orders", "marts.orders_v", false},
		{"backticked bigquery against tableau parts", "`proj`.`marts`.`orders`", "proj.marts.orders", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, errA := Parse(tt.a)
			b, errB := Parse(tt.b)
			if errA != nil || errB != nil {
				t.Fatal(errA, errB)
			}
			if got := a.Matches(b); got != tt.want {
				t.Errorf("%s.Matches(%s) = %v, want %v", a, b, got, tt.want)
			}
		})
	}
	if (Name{}).Matches(Name{}) {
		t.Error("zero names match each other")
	}
}
