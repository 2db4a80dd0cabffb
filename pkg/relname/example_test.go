package relname_test

import (
	"fmt"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/relname"
)

func ExampleParse() {
	for _, s := range []string{`"ANALYTICS"."MARTS"."ORDERS"`, "analytics.marts.orders", "`my-project.marts.orders`", "[MARTS].[ORDERS]"} {
		n, err := relname.Parse(s)
		fmt.Println(n, err)
	}
	// Output:
	// ANALYTICS.MARTS.ORDERS <nil>
	// ANALYTICS.MARTS.ORDERS <nil>
	// MY-PROJECT.MARTS.ORDERS <nil>
	// MARTS.ORDERS <nil>
}

func ExampleAliases_Match() {
	aliases, err := relname.ParseAliases(`{"analytics": "ANALYTICS_PROD"}`)
	if err != nil {
		panic(err)
	}
	dbt, _ := relname.Parse("analytics.marts.orders") // from run_results.json
	tableau, _ := relname.FromParts("ANALYTICS_PROD", "MARTS", "ORDERS")
	twoPart, _ := relname.Parse("[MARTS].[ORDERS]") // a fullName without its database
	fmt.Println(aliases.Match(dbt, tableau), aliases.Match(dbt, twoPart))
	for _, c := range aliases.Candidates(dbt) {
		fmt.Println(c)
	}
	// Output:
	// true true
	// ANALYTICS_PROD.MARTS.ORDERS
	// MARTS.ORDERS
}
