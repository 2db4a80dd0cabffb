package relname

import (
	"slices"
	"strings"
	"testing"
)

func TestParseAliases(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string // Aliases.String()
		wantErr string
	}{
		{name: "unset", in: "", want: ""},
		{name: "blank", in: "  \n", want: ""},
		{name: "empty object", in: "{}", want: ""},
		{name: "one alias", in: `{"analytics": "ANALYTICS_PROD"}`, want: "ANALYTICS→ANALYTICS_PROD"},
		{name: "a list keeps the dbt name too", in: `{"raw": ["RAW", "raw_share"], "analytics": "analytics_prod"}`, want: "ANALYTICS→ANALYTICS_PROD, RAW→RAW|RAW_SHARE"},
		{name: "quoted names are unwrapped", in: `{"\"analytics\"": "[ANALYTICS_PROD]", "` + "`main`" + `": "hive_metastore"}`, want: "ANALYTICS→ANALYTICS_PROD, MAIN→HIVE_METASTORE"},
		{name: "dots stay in a database name", in: `{"example.com:proj": "PROJ"}`, want: "EXAMPLE.COM:PROJ→PROJ"},
		{name: "repeated target kept once", in: `{"a": ["B", "b"]}`, want: "A→B"},
		{name: "not JSON", in: "analytics=ANALYTICS_PROD", wantErr: "must be a JSON object"},
		{name: "an array", in: `["analytics"]`, wantErr: "must be a JSON object"},
		{name: "a number value", in: `{"analytics": 1}`, wantErr: `alias "analytics": value must be a Tableau database name or a list of names, got 1`},
		{name: "an object value", in: `{"analytics": {"to": "X"}}`, wantErr: "value must be"},
		{name: "empty value", in: `{"analytics": ""}`, wantErr: `alias "analytics": value "": database name is empty`},
		{name: "null value", in: `{"analytics": null}`, wantErr: "database name is empty"},
		{name: "empty list", in: `{"analytics": []}`, wantErr: "list of Tableau database names is empty"},
		{name: "empty key", in: `{"": "X"}`, wantErr: "database name is empty"},
		{name: "duplicate key in another case", in: `{"analytics": "A", "ANALYTICS": "B"}`, wantErr: `database "ANALYTICS" is aliased twice (as "analytics" and "ANALYTICS")`},
		{name: "trailing comma", in: `{"a": "b",}`, wantErr: "not valid JSON"},
		{name: "unterminated", in: `{"a": "b"`, wantErr: "not valid JSON"},
		{name: "text after the object", in: `{"a": "b"} {"c": "d"}`, wantErr: "text after the JSON object"},
		{name: "control character", in: `{"a\u0007": "b"}`, wantErr: "control character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := ParseAliases(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseAliases(%q) = %v, %v; want error containing %q", tt.in, a, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseAliases(%q): %v", tt.in, err)
			}
			if got := a.String(); got != tt.want {
				t.Errorf("ParseAliases(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestAliasesMatch(t *testing.T) {
	aliases, err := ParseAliases(`{"analytics": "ANALYTICS_PROD", "raw": ["RAW", "RAW_SHARE"]}`)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name         string
		aliases      Aliases
		dbt, tableau string
		want         bool
	}{
		{"no aliases, same database", Aliases{}, "analytics.marts.orders", "[ANALYTICS].[MARTS].[ORDERS]", true},
		{"no aliases, two-part tableau name", Aliases{}, "analytics.marts.orders", "[MARTS].[ORDERS]", true},
		{"no aliases, other database", Aliases{}, "analytics.marts.orders", "ANALYTICS_PROD.MARTS.ORDERS", false},
		{"alias reaches the tableau name", aliases, "analytics.marts.orders", "ANALYTICS_PROD.MARTS.ORDERS", true},
		{"alias replaces the dbt name", aliases, "analytics.marts.orders", "ANALYTICS.MARTS.ORDERS", false},
		{"alias leaves two-part names alone", aliases, "analytics.marts.orders", "MARTS.ORDERS", true},
		{"a list keeps the dbt name", aliases, `"RAW"."SHOP"."ORDERS"`, "raw.shop.orders", true},
		{"and adds the share", aliases, `"RAW"."SHOP"."ORDERS"`, "raw_share.shop.orders", true},
		{"other databases are untouched", aliases, "dev.marts.orders", "DEV.MARTS.ORDERS", true},
		{"schema still has to match", aliases, "analytics.marts.orders", "ANALYTICS_PROD.STAGING.ORDERS", false},
		{"two-part dbt name matches any database", aliases, "marts.orders", "ANALYTICS_PROD.MARTS.ORDERS", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dbt, err1 := Parse(tt.dbt)
			tab, err2 := Parse(tt.tableau)
			if err1 != nil || err2 != nil {
				t.Fatal(err1, err2)
			}
			if got := tt.aliases.Match(dbt, tab); got != tt.want {
				t.Errorf("Match(%s, %s) = %v, want %v", dbt, tab, got, tt.want)
			}
			if dbt.Database() == "" {
				return // Candidates documents that such names need a two-part index
			}
			// An index keyed by String must give the same verdict as Match.
			index := map[string]bool{tab.String(): true}
			found := false
			for _, c := range tt.aliases.Candidates(dbt) {
				found = found || index[c.String()]
			}
			if found != tt.want {
				t.Errorf("Candidates(%s) = %v; lookup of %s gives %v, Match says %v", dbt, tt.aliases.Candidates(dbt), tab, found, tt.want)
			}
		})
	}
}

func TestCandidates(t *testing.T) {
	aliases, err := ParseAliases(`{"raw": ["RAW_SHARE", "RAW"]}`)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := Parse("raw.shop.orders")
	var got []string
	for _, c := range aliases.Candidates(n) {
		got = append(got, c.String())
	}
	want := []string{"RAW_SHARE.SHOP.ORDERS", "RAW.SHOP.ORDERS", "SHOP.ORDERS"}
	if !slices.Equal(got, want) {
		t.Errorf("Candidates = %v, want %v", got, want)
	}
	if c := aliases.Candidates(Name{}); c != nil {
		t.Errorf("Candidates(zero) = %v", c)
	}
}
