// Command webhook is the Lambda function behind POST /dbt/webhook. Run as a
// Lambda when AWS_LAMBDA_RUNTIME_API is set; otherwise it serves the route
// locally (-listen) or handles one event file (-event), starting a Tableau
// simulator with demo content when TABLEAU_SERVER_URL is unset.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/bridge"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/demo"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/localrun"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refreshmap"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/webhook"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "webhook:", err)
		os.Exit(1)
	}
}

func run() error {
	listen := flag.String("listen", "", "serve the HTTP API locally on this address, e.g. 127.0.0.1:3000")
	event := flag.String("event", "", "handle one API Gateway v2 event from this JSON file and print the response")
	checkMap := flag.Bool("check-map", false, "validate REFRESH_MAP or REFRESH_MAP_FILE and exit")
	flag.Parse()
	ctx := context.Background()

	if *checkMap {
		m, err := refreshmap.Load(os.Getenv)
		if err != nil {
			return err
		}
		fmt.Printf("refresh map OK: %d dbt jobs\n", len(m.Jobs()))
		return nil
	}
	inLambda := os.Getenv("AWS_LAMBDA_RUNTIME_API") != ""
	// A deployed stack always sets both; with neither, this is a local run.
	var d *demo.Demo
	if os.Getenv("TABLEAU_SERVER_URL") == "" && os.Getenv("SECRET_ID") == "" {
		d = demo.Start()
		defer d.Close()
		d.Apply()
		fmt.Fprintln(os.Stderr, "TABLEAU_SERVER_URL and SECRET_ID are unset: using the Tableau simulator with demo content at", d.Tableau.URL())
	}

	cfg, err := bridge.FromEnv(os.Getenv)
	if err != nil {
		return err
	}
	logger := bridge.NewLogger(cfg.LogLevel)
	deps, err := bridge.Build(ctx, cfg, logger)
	if err != nil {
		return err
	}
	h, err := webhook.New(deps.Secrets, deps.Refresher, webhook.Config{Map: cfg.Map, MaxEventAge: cfg.MaxEventAge, Logger: logger})
	if err != nil {
		return err
	}

	switch {
	case inLambda:
		lambda.Start(h.Handle)
		return nil
	case *event != "":
		return localrun.Invoke(ctx, *event, 15*time.Second, h.Handle, os.Stdout)
	default:
		return serve(*listen, h, logger, d)
	}
}

func serve(addr string, h *webhook.Handler, logger *slog.Logger, d *demo.Demo) error {
	if addr == "" {
		addr = "127.0.0.1:3000"
	}
	srv := &localrun.Server{Handler: h.Handle, Routes: []string{webhook.Route}, Timeout: 15 * time.Second, Logger: logger}
	fmt.Fprintf(os.Stderr, "dbt webhook listening on http://%s/dbt/webhook\n", addr)
	if d != nil {
		cmd, err := demo.WriteSampleRequest(os.TempDir(), addr, os.Getenv("DBT_WEBHOOK_SECRET"), time.Now())
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "Tableau simulator with demo content at %s (site %q); dbt job %s refreshes workbook \"Sales Overview\" (Finance) and data source \"Orders\".\n", d.Tableau.URL(), demo.Site, demo.JobID)
		fmt.Fprintf(os.Stderr, "Send a signed 'run succeeded' event from another terminal:\n\n  %s\n\n", cmd)
	}
	err := http.ListenAndServe(addr, srv)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
