package main

import (
	"context"
	"strings"
	"testing"
)

// make plan in the demo, as the README shows it: the targets with their
// source and why, what the map excludes, the live connection, the change no
// content reads.
func TestPlanDemo(t *testing.T) {
	t.Setenv("DEMO", "true")
	for _, k := range []string{"TABLEAU_SERVER_URL", "SECRET_ID", "STATE_TABLE", "REFRESH_MAP", "REFRESH_MAP_FILE", "LINEAGE"} {
		t.Setenv(k, "")
	}
	var out strings.Builder
	if err := run(context.Background(), []string{"-job", "123"}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"dbt job 123, run ", ": 6 to refresh",
		`map      workbook "Executive Summary" in project "Finance"`,
		`model.shop.orders → model.shop.order_facts → model.shop.order_facts_v → ANALYTICS.MARTS.ORDER_FACTS_V → workbook "Order Facts" (Finance)`,
		"excluded by the refresh map:", `workbook "Scratchpad"`,
		"live connections (nothing to refresh):", `datasource "Orders (live)"`,
		"changed relations no Tableau content reads:", "snapshot.shop.customers_snapshot",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), `"Customers"`) {
		t.Errorf("an untouched model's content is planned:\n%s", out.String())
	}
	for _, bad := range [][]string{{"-job", "x"}, {}} {
		if err := run(context.Background(), bad, &out); err == nil || !strings.Contains(err.Error(), "-job must be") {
			t.Errorf("run(%v) = %v", bad, err)
		}
	}
}
