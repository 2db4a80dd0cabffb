package demo

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strconv"
	"testing"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dbtcloud"
)

// A real PAT left in the shell (the webhooks CLI's section tells users to
// set one) must not reach the simulator, which knows only the demo's: it is
// overridden, and the user is told which variables were.
func TestApplyOverridesWhatTheSimulatorsCannotKnow(t *testing.T) {
	d := Start()
	defer d.Close()
	t.Setenv("TABLEAU_PAT_NAME", "refresh-bot")
	t.Setenv("TABLEAU_PAT_SECRET", "a-real-secret")
	t.Setenv("TABLEAU_CLIENT_ID", "real-app")
	t.Setenv("DBT_WEBHOOK_SECRET", WebhookSecret) // the same value is no override
	t.Setenv("REFRESH_MAP", `{"jobs":{"123":[{"datasource":"Orders"}]}}`)
	for _, k := range []string{"TABLEAU_SITE", "TABLEAU_SECRET_ID", "TABLEAU_SECRET_VALUE", "TABLEAU_USERNAME", "REFRESH_MAP_FILE"} {
		t.Setenv(k, "")
	}

	got := d.Apply()
	if want := []string{"TABLEAU_CLIENT_ID", "TABLEAU_PAT_NAME", "TABLEAU_PAT_SECRET"}; !slices.Equal(got, want) {
		t.Errorf("Apply() reported %v overridden, want %v", got, want)
	}
	for k, want := range map[string]string{
		"TABLEAU_PAT_NAME": PATName, "TABLEAU_PAT_SECRET": PATSecret, "TABLEAU_CLIENT_ID": "", "TABLEAU_SITE": Site,
		// The map is the user's to choose.
		"REFRESH_MAP": `{"jobs":{"123":[{"datasource":"Orders"}]}}`,
	} {
		if v := os.Getenv(k); v != want {
			t.Errorf("%s = %q after Apply, want %q", k, v, want)
		}
	}
}

// TestPrintedEventIsARunLineageCanRead: the event make run prints a curl
// command for names a run the dbt Cloud simulator has, finished, with its
// artifacts: a run it does not know leaves lineage nothing to read, and the
// demo would refresh the map's one target instead of the six the README
// promises.
func TestPrintedEventIsARunLineageCanRead(t *testing.T) {
	d := Start()
	defer d.Close()
	var out bytes.Buffer
	if err := d.PrintInstructions(&out, "127.0.0.1:3000"); err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`--data-binary @(\S+)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no curl command in:\n%s", out.String())
	}
	body, err := os.ReadFile(m[1])
	if err != nil {
		t.Fatal(err)
	}
	var ev dbtcloud.WebhookEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		t.Fatal(err)
	}
	id, err := strconv.ParseInt(ev.Data.RunID, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	run, ok := d.DBT.Run(id)
	if !ok || run.JobID != 123 || run.Status != int(dbtcloud.StatusSuccess) || run.FinishedAt.IsZero() {
		t.Errorf("the printed event's run %d in the dbt Cloud simulator: %+v, found %t; want a finished, successful run of job 123", id, run, ok)
	}
}
