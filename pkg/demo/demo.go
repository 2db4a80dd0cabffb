// Package demo sets up a local playground for `make run` and `make invoke`:
// a dbt Cloud simulator whose job 123 builds a small dbt project, a Tableau
// simulator with content over that project's tables, credentials, and a
// correctly signed sample event to send. Lineage finds what a run of the
// job refreshes; the refresh map adds one workbook lineage cannot see and
// excludes a scratch workbook.
//
// The dbt project (dbtcloudtest.DemoSteps) rebuilds, on each run,
// analytics.marts.orders (a table), orders_daily (incrementally) and the
// seed country_codes, and so changes the views orders_v and order_facts_v
// (through an ephemeral model); it leaves customers and customer_ltv alone.
// The Tableau content over them:
//
//	data source "Orders" (Finance)          extract of MARTS.ORDERS              refreshed
//	data source "Orders (live)" (Finance)   live connection to MARTS.ORDERS       skipped: nothing to refresh
//	workbook "Sales Overview" (Finance)     embedded extract of MARTS.ORDERS_V   refreshed
//	workbook "Order Facts" (Finance)        embedded extract of MARTS.ORDER_FACTS_V, a view over an ephemeral model: refreshed
//	workbook "Country Report" (Finance)     custom SQL over SEEDS.COUNTRY_CODES  refreshed
//	data source "Daily Orders" (Finance)    extract of MARTS.ORDERS_DAILY        refreshed (the model is incremental)
//	data source "Customers" (Finance)       extract of MARTS.CUSTOMERS           not refreshed: the run did not touch it
//	workbook "Orders Dashboard" (Finance)   reads the published "Orders"         covered by refreshing "Orders"
//	workbook "Scratchpad" (Sandbox)         embedded extract of MARTS.ORDERS     excluded by the map
//	workbook "Executive Summary" (Finance)  reads a spreadsheet                  refreshed: listed in the map
package demo

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dbtcloud"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dbtcloud/dbtcloudtest"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau/tableautest"
)

// Values the demo uses. The sample events in events/ are signed with
// WebhookSecret.
const (
	WebhookSecret = "local-demo-secret"
	PATName       = "demo-pat"
	PATSecret     = "demo-pat-secret"
	// AdminPATName is a site administrator's PAT for the Tableau webhooks
	// CLI: Tableau keeps one session per PAT, so the CLI signing in with the
	// function's would end the function's session.
	AdminPATName   = "demo-admin-pat"
	AdminPATSecret = "demo-admin-pat-secret"
	JobID          = "123"
	DBTToken       = "demo-dbt-service-token"
	// WebhookToken guards the demo's Tableau webhook route; events/ has a
	// sample event for it.
	WebhookToken = "local-demo-webhook-token"
	Site         = "demo"
	// StatusPassword opens the demo's status page (any user name).
	StatusPassword = "local-demo-status"
)

// RefreshMap is the demo's map: lineage finds most of what job 123
// refreshes; the map adds a workbook built on a spreadsheet, which lineage
// cannot connect to dbt, and keeps the scratch workbook out. Jobs 456 and
// 789 map the rest of the status page's demo content (status.go).
const RefreshMap = `{"jobs":{"123":[{"workbook":"Executive Summary","project":"Finance"}],` +
	`"456":[{"workbook":"Executive KPIs","project":"Finance"},{"datasource":"Customers","project":"Marketing"}],` +
	`"789":[{"datasource":"Inventory","freshness_sla":"6h"}]},` +
	`"exclude":[{"workbook":"Scratchpad","project":"Sandbox"}]}`

// SampleRuns are the runs of job 123 the sample events in events/ report;
// the demo's dbt Cloud has them, finished, with their artifacts.
var sampleRuns = []int64{70001, 70002, 70003}

// Demo is a running playground.
type Demo struct {
	Tableau *tableautest.Server
	// DBT runs demo job 123 in about ten seconds, for the scheduled function.
	DBT *dbtcloudtest.Server
	// Env holds the variables the function should run with; callers set
	// only those the user has not set.
	Env map[string]string
	// items are the LUIDs of the demo content, by name.
	items map[string]string
}

// Start starts the simulator with demo content.
func Start() *Demo {
	// Webhooks may point at the local API, plain http on loopback, so that
	// the webhooks CLI can be tried end to end (make run prints how).
	srv := tableautest.NewServer(tableautest.WithSite(Site), tableautest.WithJobTimings(2*time.Second, 5*time.Second), tableautest.AllowHTTPDestinations())
	srv.AddPAT(PATName, PATSecret)
	srv.AddPAT(AdminPATName, AdminPATSecret)
	items := addContent(srv)
	dbt := dbtcloudtest.NewServer(dbtcloudtest.WithToken(DBTToken))
	dbt.AddJob(123, "Daily build", dbtcloudtest.RunTimings(2*time.Second, 3*time.Second, 5*time.Second))
	for _, id := range sampleRuns {
		dbt.AddFinishedRun(123, id)
	}
	return &Demo{
		Tableau: srv,
		DBT:     dbt,
		items:   items,
		Env: map[string]string{
			"DBT_CLOUD_URL":         dbt.URL(),
			"DBT_ACCOUNT_ID":        strconv.FormatInt(dbt.AccountID(), 10),
			"DBT_API_TOKEN":         DBTToken,
			"TABLEAU_SERVER_URL":    srv.URL(),
			"TABLEAU_SITE":          Site,
			"REFRESH_MAP":           RefreshMap,
			"DBT_WEBHOOK_SECRET":    WebhookSecret,
			"TABLEAU_PAT_NAME":      PATName,
			"TABLEAU_PAT_SECRET":    PATSecret,
			"TABLEAU_WEBHOOK_TOKEN": WebhookToken,
			"STATUS_PASSWORD":       StatusPassword,
			// The demo's credentials are these variables, not a secret.
			"SECRET_ID": "",
			// The demo signs in with its PAT: a connected app in the
			// shell would take precedence and be refused.
			"TABLEAU_CLIENT_ID": "", "TABLEAU_SECRET_ID": "", "TABLEAU_SECRET_VALUE": "", "TABLEAU_USERNAME": "",
			// The simulator holds the demo's one site.
			"TABLEAU_SITES": "",
		},
	}
}

// userChoices are the demo variables a user may set to try the demo their
// way: their own refresh map over the demo content. Every other one names or
// unlocks a simulator, which knows only the demo's values: a real PAT left in
// the shell would only earn a bare 401001 from the simulator.
var userChoices = map[string]bool{"REFRESH_MAP": true}

// addContent puts the demo's Tableau content, over the demo dbt project's
// tables, on srv, and the status page's (status.go), and returns the LUIDs
// Seed needs, by name.
func addContent(srv *tableautest.Server) map[string]string {
	table := func(schema, name string) tableautest.TableRef {
		return tableautest.TableRef{Database: "ANALYTICS", Schema: schema, Name: name, ConnectionType: "snowflake"}
	}
	items := map[string]string{}
	orders := srv.AddDatasource("Orders", "Finance", tableautest.ReadsTables(table("MARTS", "ORDERS")))
	items["Orders"] = orders
	srv.AddDatasource("Orders (live)", "Finance", tableautest.NoExtract(), tableautest.ReadsTables(table("MARTS", "ORDERS")))
	srv.AddDatasource("Daily Orders", "Finance", tableautest.ReadsTables(table("MARTS", "ORDERS_DAILY")))
	srv.AddDatasource("Customers", "Finance", tableautest.ReadsTables(table("MARTS", "CUSTOMERS")))
	items["Sales Overview"] = srv.AddWorkbook("Sales Overview", "Finance", tableautest.WithEmbeddedSources(tableautest.EmbeddedSource{
		Name: "Sales (extract)", Extract: true, Tables: []tableautest.TableRef{table("MARTS", "ORDERS_V")}}))
	srv.AddWorkbook("Order Facts", "Finance", tableautest.WithEmbeddedSources(tableautest.EmbeddedSource{
		Name: "Order facts (extract)", Extract: true, Tables: []tableautest.TableRef{table("MARTS", "ORDER_FACTS_V")}}))
	srv.AddWorkbook("Country Report", "Finance", tableautest.WithEmbeddedSources(tableautest.EmbeddedSource{
		Name: "Countries (custom SQL)", Extract: true, CustomSQL: []tableautest.CustomSQL{{
			Query:  "select code, name from analytics.seeds.country_codes where active",
			Tables: []tableautest.TableRef{table("SEEDS", "COUNTRY_CODES")},
		}}}))
	srv.AddWorkbook("Orders Dashboard", "Finance", tableautest.UsesDatasources(orders))
	srv.AddWorkbook("Scratchpad", "Sandbox", tableautest.WithEmbeddedSources(tableautest.EmbeddedSource{
		Name: "Scratch", Extract: true, Tables: []tableautest.TableRef{table("MARTS", "ORDERS")}}))
	srv.AddWorkbook("Sales Overview", "Sandbox")
	srv.AddWorkbook("Executive Summary", "Finance")
	// The status page's other jobs (456, 789), not built by the demo
	// project: listed in the map.
	items["Executive KPIs"] = srv.AddWorkbook("Executive KPIs", "Finance")
	items["Customers"] = srv.AddDatasource("Customers", "Marketing")
	items["Inventory"] = srv.AddDatasource("Inventory", "Operations")
	return items
}

// Apply sets the process environment to d.Env and returns, sorted, the
// variables the user had set to something else, which the demo overrides.
// The map is the user's to choose: it is not applied when they gave one.
// os.Setenv fails only for a key holding "=" or NUL, which d.Env does not.
func (d *Demo) Apply() (overridden []string) {
	for k, v := range d.Env {
		if k == "REFRESH_MAP" && os.Getenv("REFRESH_MAP_FILE") != "" {
			continue
		}
		cur := os.Getenv(k)
		if userChoices[k] && cur != "" {
			continue
		}
		if cur != "" && cur != v {
			overridden = append(overridden, k)
		}
		_ = os.Setenv(k, v)
	}
	sort.Strings(overridden)
	return overridden
}

// Close stops the simulators.
func (d *Demo) Close() {
	d.Tableau.Close()
	d.DBT.Close()
}

// Event returns a job.run.completed payload for a successful run of the demo
// job, stamped now.
func Event(runID int64, now time.Time) []byte {
	ev := dbtcloud.WebhookEvent{
		AccountID: 1, WebhookID: "wsu_demo", EventID: "wev_demo" + strconv.FormatInt(runID, 10),
		Timestamp: now.UTC(), EventType: dbtcloud.EventRunCompleted, WebhookName: "tableau-refresh",
		Data: dbtcloud.WebhookData{
			JobID: JobID, JobName: "Daily build", RunID: strconv.FormatInt(runID, 10),
			EnvironmentID: "1", EnvironmentName: "Production", DBTVersion: "1.8",
			ProjectName: "Analytics", ProjectID: "1", RunStatus: "Success", RunStatusCode: dbtcloud.StatusSuccess,
			RunStatusMessage: "None", RunReason: "Local demo",
			RunStartedAt: now.Add(-time.Minute).UTC().Format(time.RFC3339), RunFinishedAt: now.UTC().Format(time.RFC3339),
		},
	}
	b, _ := json.Marshal(ev)
	return b
}

// PrintInstructions tells a newcomer what the demo holds and prints a curl
// command that posts a freshly signed "run succeeded" event to addr.
func (d *Demo) PrintInstructions(w io.Writer, addr string) error {
	now := time.Now()
	// A run of its own, finished with its artifacts in the dbt Cloud
	// simulator, so that lineage can read what it changed.
	runID := now.Unix()
	d.DBT.AddFinishedRun(123, runID)
	body := Event(runID, now)
	path := filepath.Join(os.TempDir(), "dbt-run-completed.json")
	if err := os.WriteFile(path, body, 0o600); err != nil {
		return fmt.Errorf("write sample event: %w", err)
	}
	fmt.Fprintf(w, "Tableau simulator with demo content at %s (site %q), dbt Cloud simulator at %s: a run of dbt job %s rebuilds a small dbt project; "+
		"lineage finds the Tableau content over what it changed, and the refresh map adds workbook \"Executive Summary\" and keeps \"Scratchpad\" out.\n",
		d.Tableau.URL(), Site, d.DBT.URL(), JobID)
	fmt.Fprintf(w, "Send a signed 'run succeeded' event from another terminal:\n\n  curl -sS -X POST http://%s/dbt/webhook -H 'Content-Type: application/json' -H 'Authorization: %s' --data-binary @%s\n\n",
		addr, dbtcloud.SignatureHeader(body, os.Getenv("DBT_WEBHOOK_SECRET")), path)
	fmt.Fprintf(w, "The status page, with demo content in every state: http://%s/status (any user name, password %s); the same as JSON at /status.json:\n\n  curl -sS -u any:%s http://%s/status.json\n\n",
		addr, StatusPassword, StatusPassword, addr)
	fmt.Fprintf(w, "Try the Tableau webhooks CLI against the simulator and this API (Tableau will call http://%s/tableau/webhook/<token>):\n\n", addr)
	for _, l := range d.WebhooksRecipe(addr) {
		fmt.Fprintf(w, "  %s\n", l)
	}
	fmt.Fprintln(w)
	return nil
}

// WebhooksRecipe is the shell session that manages Tableau webhooks for the
// local API at addr: the environment the CLI needs (the simulator, a site
// administrator's PAT, the route's token), then create, test, list and
// delete. Local webhooks are plain http, which only -allow-http accepts.
func (d *Demo) WebhooksRecipe(addr string) []string {
	return []string{
		fmt.Sprintf("export TABLEAU_SERVER_URL=%s TABLEAU_SITE=%s TABLEAU_PAT_NAME=%s TABLEAU_PAT_SECRET=%s TABLEAU_WEBHOOK_TOKEN=%s",
			d.Tableau.URL(), Site, AdminPATName, AdminPATSecret, WebhookToken),
		fmt.Sprintf(`make tableau-webhooks ARGS="create -url http://%s/tableau/webhook -allow-http"`, addr),
		`make tableau-webhooks ARGS="test -all"`,
		`make tableau-webhooks ARGS=list`,
		`make tableau-webhooks ARGS="delete -all -yes"`,
	}
}
