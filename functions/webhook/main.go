// Command webhook is the Lambda function behind POST /dbt/webhook. It runs as
// a Lambda when AWS_LAMBDA_RUNTIME_API is set; otherwise it serves the route
// locally (-listen) or handles one event file (-event), against the local
// simulators when no deployment is configured.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/bridge"
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
	listen := flag.String("listen", "127.0.0.1:3000", "address to serve the HTTP API on when run locally")
	event := flag.String("event", "", "handle one API Gateway v2 event from this JSON file, print the response and exit")
	checkMap := flag.Bool("check-map", false, "validate REFRESH_MAP or REFRESH_MAP_FILE and exit")
	checkConfig := flag.Bool("check-config", false, "validate the whole configuration a deployment would run with (no demo) and exit")
	flag.Parse()
	ctx := context.Background()

	switch {
	case *checkMap:
		m, err := refreshmap.Load(os.Getenv)
		if err != nil {
			return err
		}
		fmt.Printf("refresh map OK: %s\n", m)
		return nil
	case *checkConfig:
		cfg, err := bridge.FromEnv(os.Getenv)
		if err != nil {
			return err
		}
		fmt.Print(cfg.Describe())
		return nil
	}
	deps, d, stop, err := bridge.Start(ctx)
	if err != nil {
		return err
	}
	defer stop()
	dbtHook, err := webhook.New(deps.Secrets, deps.Refresher, webhook.Config{Map: deps.Config.Map, MaxEventAge: deps.Config.MaxEventAge, Logger: deps.Logger})
	if err != nil {
		return err
	}
	tableauHook, err := webhook.NewTableau(deps.Secrets, deps.Store, deps.Tracker, deps.Logger)
	if err != nil {
		return err
	}
	h := webhook.NewRouter(map[string]webhook.HTTPHandler{webhook.Route: dbtHook.Handle, webhook.TableauRoute: tableauHook.Handle}, deps.Logger)
	switch {
	case os.Getenv("AWS_LAMBDA_RUNTIME_API") != "":
		lambda.Start(h.Handle)
		return nil
	case *event != "":
		return localrun.Invoke(ctx, *event, 12*time.Second, h.Handle, os.Stdout)
	}
	srv := &localrun.Server{Handler: h.Handle, Routes: h.Routes(), Timeout: 12 * time.Second, Logger: deps.Logger}
	if d != nil {
		if err := d.PrintInstructions(os.Stderr, *listen); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "dbt webhook listening on http://%s/dbt/webhook\n", *listen)
	return http.ListenAndServe(*listen, srv)
}
