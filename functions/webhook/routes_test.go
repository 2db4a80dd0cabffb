package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/app"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/config"
)

// TestTemplateRoutesAreTheRouters checks that the HTTP API events
// template.yaml gives WebhookFunction are exactly the routes the function
// serves: a route missing from the template is unreachable in AWS, and one
// the function does not serve answers 404 there.
func TestTemplateRoutesAreTheRouters(t *testing.T) {
	const decode = `import json, sys
from cfnlint.decode import decode
tpl, problems = decode(sys.argv[1])
if problems:
    sys.exit("\n".join(str(p) for p in problems))
print(json.dumps(tpl["Resources"]["WebhookFunction"]["Properties"]["Events"], default=str))`
	out, err := exec.Command("python3", "-c", decode, filepath.Join("..", "..", "template.yaml")).Output()
	if err != nil {
		t.Fatalf("decode template.yaml with cfn-lint's decoder (make test installs cfn-lint): %v", err)
	}
	var evs map[string]struct {
		Type       string
		Properties struct{ Method, Path string }
	}
	if err := json.Unmarshal(out, &evs); err != nil {
		t.Fatal(err)
	}
	var declared []string
	for name, ev := range evs {
		if ev.Type != "HttpApi" {
			t.Errorf("WebhookFunction event %s is a %s, want HttpApi", name, ev.Type)
			continue
		}
		declared = append(declared, strings.ToUpper(ev.Properties.Method)+" "+ev.Properties.Path)
	}
	slices.Sort(declared)

	env := map[string]string{
		"TABLEAU_SERVER_URL": "https://tableau.example.com", "REFRESH_MAP": `{"jobs":{"1":[{"workbook":"W"}]}}`,
		"DBT_WEBHOOK_SECRET": "s", "TABLEAU_PAT_NAME": "n", "TABLEAU_PAT_SECRET": "p",
	}
	cfg, err := config.FromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.Build(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	router, err := a.WebhookRouter()
	if err != nil {
		t.Fatal(err)
	}
	served := router.Routes()
	if strings.Join(declared, "\n") != strings.Join(served, "\n") {
		t.Errorf("template.yaml routes WebhookFunction gets:\n  %s\nroutes the function serves:\n  %s", strings.Join(declared, "\n  "), strings.Join(served, "\n  "))
	}
	if !slices.Contains(served, "GET /status") || !slices.Contains(served, "GET /status.json") {
		t.Errorf("routes %v lack the status page", served)
	}
}
