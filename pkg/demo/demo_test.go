package demo

import (
	"os"
	"slices"
	"testing"
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
