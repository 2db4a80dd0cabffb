package main

import (
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/app"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/config"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/demo"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/localrun"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/logging"
)

// TestLocalRecipe follows, word for word, the recipe `make run` prints for
// trying the webhooks CLI locally: the demo's simulator, the local HTTP API
// in front of the webhook function, and create, test, list and delete. The
// test deliveries must reach the bridge's Tableau route and get its 200.
func TestLocalRecipe(t *testing.T) {
	d := demo.Start()
	t.Cleanup(d.Close)
	cfg, err := config.FromEnv(func(k string) string { return d.Env[k] })
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	logger := logging.New(logs, slog.LevelInfo)
	a, err := app.Build(t.Context(), cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	router, err := a.WebhookRouter()
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(&localrun.Server{Handler: router.Handle, Routes: router.Routes(), Timeout: 12 * time.Second})
	t.Cleanup(api.Close)
	addr := strings.TrimPrefix(api.URL, "http://")

	recipe := d.WebhooksRecipe(addr)
	e := env{}
	for _, kv := range strings.Fields(strings.TrimPrefix(recipe[0], "export ")) {
		k, v, _ := strings.Cut(kv, "=")
		e[k] = v
	}
	var outputs []result
	for _, line := range recipe[1:] {
		args, ok := strings.CutPrefix(line, "make tableau-webhooks ARGS=")
		if !ok {
			t.Fatalf("recipe line %q is not a make tableau-webhooks command", line)
		}
		r := runCLI(t, e, noAWS(t), strings.Fields(strings.Trim(args, `"`))...)
		r.want(t, exitOK)
		outputs = append(outputs, r)
	}
	if n := countLines(outputs[0].stdout, "created"); n != len(defaultEvents) {
		t.Errorf("create made %d webhooks, want %d:\n%s", n, len(defaultEvents), outputs[0].stdout)
	}
	if n := countLines(outputs[1].stdout, "200 OK"); n != len(defaultEvents) {
		t.Errorf("test: %d deliveries answered 200, want %d:\n%s", n, len(defaultEvents), outputs[1].stdout)
	}
	if n := strings.Count(logs.String(), "Tableau webhook test delivery received"); n != len(defaultEvents) {
		t.Errorf("the bridge logged %d test deliveries, want %d", n, len(defaultEvents))
	}
	if !strings.Contains(outputs[2].stdout, "dbt-tableau-refresh-") {
		t.Errorf("list does not show the webhooks:\n%s", outputs[2].stdout)
	}
	if hooks := d.Tableau.Webhooks(); len(hooks) != 0 {
		t.Errorf("%d webhooks left after delete -all", len(hooks))
	}
}

// lockedBuffer collects the API's logs, written from its server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
