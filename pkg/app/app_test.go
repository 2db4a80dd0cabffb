package app

import (
	"context"
	"strings"
	"testing"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/config"
)

func TestBuildWithoutAWS(t *testing.T) {
	kv := map[string]string{
		"TABLEAU_SERVER_URL": "https://tableau.example.com",
		"REFRESH_MAP":        `{"jobs":{"1":[{"workbook":"W"}]}}`,
		"DBT_WEBHOOK_SECRET": "w", "TABLEAU_PAT_NAME": "n", "TABLEAU_PAT_SECRET": "s",
	}
	getenv := func(k string) string { return kv[k] }
	cfg, err := config.FromEnv(getenv)
	if err != nil {
		t.Fatal(err)
	}
	a, err := Build(context.Background(), cfg, NewLogger(0))
	if err != nil {
		t.Fatal(err)
	}
	// Without SECRET_ID, credentials come from the same environment.
	creds, err := a.Secrets.Credentials(context.Background())
	if err != nil || creds.TableauPATName != "n" {
		t.Fatalf("credentials = %v, %v", creds, err)
	}
	if a.DBT != nil {
		t.Errorf("DBT client without an account = %v, want none: the scheduled path is off", a.DBT)
	}

	kv["DBT_ACCOUNT_ID"] = "7"
	if cfg, err = config.FromEnv(getenv); err != nil {
		t.Fatal(err)
	}
	if a, err = Build(context.Background(), cfg, NewLogger(0)); err != nil {
		t.Fatal(err)
	}
	if err := a.DBT.Check(context.Background()); err == nil || !strings.Contains(err.Error(), "dbt_api_token") {
		t.Errorf("Check without a token = %v", err)
	}
	if _, err := a.DBT.GetRun(context.Background(), 1); err == nil || !strings.Contains(err.Error(), "dbt_api_token") {
		t.Errorf("GetRun without a token = %v", err)
	}
	kv["DBT_API_TOKEN"] = "rotated-in"
	if err := a.DBT.Check(context.Background()); err != nil {
		t.Errorf("Check once the token is there: %v", err)
	}
}
