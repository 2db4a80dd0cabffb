package dbtartifacts_test

import (
	"fmt"
	"strings"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dbtartifacts"
)

func ExampleChanged() {
	manifest := `{"metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v12.json"},
	  "nodes": {
	    "model.shop.orders":   {"resource_type": "model", "database": "analytics", "schema": "marts", "alias": "orders",
	                            "relation_name": "analytics.marts.orders", "config": {"materialized": "table"}},
	    "model.shop.orders_v": {"resource_type": "model", "database": "analytics", "schema": "marts", "alias": "orders_v",
	                            "relation_name": "analytics.marts.orders_v", "config": {"materialized": "view"}}},
	  "child_map": {"model.shop.orders": ["model.shop.orders_v"]}}`
	runResults := `{"metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v6.json"},
	  "results": [{"unique_id": "model.shop.orders", "status": "success", "relation_name": "analytics.marts.orders"}],
	  "args": {"which": "build"}}`

	m, err := dbtartifacts.ReadManifest(strings.NewReader(manifest))
	if err != nil {
		panic(err)
	}
	rr, err := dbtartifacts.ReadRunResults(strings.NewReader(runResults))
	if err != nil {
		panic(err)
	}
	cs, err := dbtartifacts.Changed(m, rr)
	if err != nil {
		panic(err)
	}
	for _, c := range cs.Changes {
		fmt.Printf("%s (%s)\n", c.Relation, c.Why())
	}
	// Output:
	// analytics.marts.orders (model.shop.orders)
	// analytics.marts.orders_v (model.shop.orders → model.shop.orders_v)
}
