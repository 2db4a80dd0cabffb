// Package demo sets up a local playground for `make run` and `make invoke`:
// a Tableau simulator with demo content, credentials and a refresh map that
// points dbt job 123 at it, and a correctly signed sample event to send.
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

// RefreshMap maps the demo job to demo content: a workbook by name and
// project, and a data source by name. Jobs 456 and 789 map the rest of the
// status page's demo content (status.go).
const RefreshMap = `{"jobs":{"123":[{"workbook":"Sales Overview","project":"Finance"},{"datasource":"Orders"}],` +
	`"456":[{"workbook":"Executive KPIs","project":"Finance"},{"datasource":"Customers","project":"Marketing"}],` +
	`"789":[{"datasource":"Inventory","freshness_sla":"6h"}]}}`

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
	items := map[string]string{
		"Sales Overview": srv.AddWorkbook("Sales Overview", "Finance"),
		"Orders":         srv.AddDatasource("Orders", "Finance"),
		"Executive KPIs": srv.AddWorkbook("Executive KPIs", "Finance"),
		"Customers":      srv.AddDatasource("Customers", "Marketing"),
		"Inventory":      srv.AddDatasource("Inventory", "Operations"),
	}
	srv.AddWorkbook("Sales Overview", "Sandbox")
	dbt := dbtcloudtest.NewServer(dbtcloudtest.WithToken(DBTToken))
	dbt.AddJob(123, "Daily build", dbtcloudtest.RunTimings(2*time.Second, 3*time.Second, 5*time.Second))
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
		},
	}
}

// userChoices are the demo variables a user may set to try the demo their
// way: their own refresh map over the demo content. Every other one names or
// unlocks a simulator, which knows only the demo's values: a real PAT left in
// the shell would only earn a bare 401001 from the simulator.
var userChoices = map[string]bool{"REFRESH_MAP": true}

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
	body := Event(now.Unix(), now)
	path := filepath.Join(os.TempDir(), "dbt-run-completed.json")
	if err := os.WriteFile(path, body, 0o600); err != nil {
		return fmt.Errorf("write sample event: %w", err)
	}
	fmt.Fprintf(w, "Tableau simulator with demo content at %s (site %q): dbt job %s refreshes workbook \"Sales Overview\" (project Finance) and data source \"Orders\".\n",
		d.Tableau.URL(), Site, JobID)
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
