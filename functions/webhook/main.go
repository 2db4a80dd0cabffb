// Command webhook is the Lambda function behind the HTTP API: dbt Cloud's
// webhook (POST /dbt/webhook) and Tableau's (POST /tableau/webhook/{token}).
// It runs as a Lambda when AWS_LAMBDA_RUNTIME_API is set; otherwise it
// serves the routes locally (-listen) or handles one event file (-event),
// against the simulators when DEMO=true.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/app"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/config"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/localrun"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refreshmap"
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
	checkConfig := flag.Bool("check-config", false, "validate the whole configuration a deployment would run with and exit")
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
		cfg, err := config.FromEnv(os.Getenv)
		if err != nil {
			return err
		}
		fmt.Print(cfg.Describe())
		return nil
	}
	a, d, stop, err := app.Start(ctx)
	if err != nil {
		return err
	}
	defer stop()
	router, err := a.WebhookRouter()
	if err != nil {
		return err
	}
	switch {
	case os.Getenv("AWS_LAMBDA_RUNTIME_API") != "":
		lambda.Start(router.Handle)
		return nil
	case *event != "":
		return localrun.Invoke(ctx, *event, 12*time.Second, router.Handle, os.Stdout)
	}
	srv := &localrun.Server{Handler: router.Handle, Routes: router.Routes(), Timeout: 12 * time.Second, Logger: a.Logger}
	// Bound before anything says it is listening: a port in use is the
	// only line printed.
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	if d != nil {
		if err := d.PrintInstructions(os.Stderr, *listen); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "dbt webhook listening on http://%s/dbt/webhook\n", *listen)
	return http.Serve(ln, srv)
}
