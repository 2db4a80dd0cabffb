package tableau_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau/tableautest"
)

// Refresh a workbook by name and wait for the refresh to finish. The
// simulator stands in for Tableau; with a real server only the URL and the
// credentials change.
func Example() {
	srv := tableautest.NewServer(tableautest.WithSite("mysite"))
	defer srv.Close()
	srv.AddPAT("refresh-bot", "s3cret")
	srv.AddWorkbook("Sales & Margin, 2024", "Finance")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := tableau.NewClient(srv.URL(),
		tableau.WithSite("mysite"),
		tableau.WithPAT("refresh-bot", "s3cret"))
	if err != nil {
		log.Fatal(err)
	}
	wb, err := c.FindWorkbook(ctx, "Sales & Margin, 2024", "Finance")
	if err != nil {
		log.Fatal(err)
	}
	res, err := c.RefreshWorkbook(ctx, wb.ID)
	if err != nil {
		log.Fatal(err)
	}
	if res.AlreadyQueued {
		fmt.Println("a refresh was already queued")
		return
	}
	job, err := c.WaitForJob(ctx, res.Job.ID, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("refreshed %q in %q: %s\n", wb.Name, wb.Project.Name, *job.FinishCode)
	// Output: refreshed "Sales & Margin, 2024" in "Finance": success
}

// Several Lambda instances share one personal access token through a
// SessionStore (in production a DynamoDB table), so they do not end each
// other's sessions.
func ExampleWithSessionStore() {
	srv := tableautest.NewServer()
	defer srv.Close()
	srv.AddPAT("refresh-bot", "s3cret")
	id := srv.AddDatasource("Orders", "Finance")

	store := tableau.NewMemorySessionStore()
	ctx := context.Background()
	for range 3 { // three instances, one after another
		c, err := tableau.NewClient(srv.URL(),
			tableau.WithPAT("refresh-bot", "s3cret"),
			tableau.WithSessionStore(store))
		if err != nil {
			log.Fatal(err)
		}
		if _, err := c.Datasource(ctx, id); err != nil {
			log.Fatal(err)
		}
	}
	srv.Close() // waits for the simulator to finish recording requests
	fmt.Println("sign-ins:", srv.Count("POST", "/auth/signin"))
	// Output: sign-ins: 1
}

// Retryable separates failures worth a later retry from ones a person must fix.
func ExampleRetryable() {
	srv := tableautest.NewServer()
	defer srv.Close()
	srv.AddPAT("refresh-bot", "s3cret")
	live := srv.AddWorkbook("Live dashboard", "Finance", tableautest.NoExtract())

	c, err := tableau.NewClient(srv.URL(), tableau.WithPAT("refresh-bot", "s3cret"))
	if err != nil {
		log.Fatal(err)
	}
	_, err = c.RefreshWorkbook(context.Background(), live)
	fmt.Println(errors.Is(err, tableau.ErrNoExtract), tableau.Retryable(err))
	// Output: true false
}

// Find what reads the tables a dbt run rebuilt, and what to refresh: the
// published extract as a data source, the embedded extract through its
// workbook; the workbook that only reads the published source needs nothing
// of its own, and the live source has nothing to refresh.
func ExampleClient_LookupTables() {
	srv := tableautest.NewServer()
	defer srv.Close()
	srv.AddPAT("refresh-bot", "s3cret")
	orders := tableautest.TableRef{Database: "ANALYTICS", Schema: "MARTS", Name: "ORDERS", ConnectionType: "snowflake"}
	ds := srv.AddDatasource("Orders", "Finance", tableautest.ReadsTables(orders))
	srv.AddDatasource("Orders (live)", "Finance", tableautest.NoExtract(), tableautest.ReadsTables(orders))
	srv.AddWorkbook("Sales", "Finance", tableautest.UsesDatasources(ds))
	srv.AddWorkbook("Ops", "Ops", tableautest.ReadsTables(orders))

	c, err := tableau.NewClient(srv.URL(), tableau.WithPAT("refresh-bot", "s3cret"))
	if err != nil {
		log.Fatal(err)
	}
	found, err := c.LookupTables(context.Background(), []string{"orders"}) // as dbt names it
	if err != nil {
		log.Fatal(tableau.MetadataFix(err), err)
	}
	for _, e := range found.Edges() {
		if e.Target.Extract {
			fmt.Printf("refresh %s %q (%s reads %s)\n", e.Target.Kind, e.Target.Name, e.Via, e.Table.FullName)
		}
	}
	// Output:
	// refresh datasource "Orders" (published data source reads [MARTS].[ORDERS])
	// refresh workbook "Ops" (embedded data source "Ops" reads [MARTS].[ORDERS])
}
