// Command tableau-webhooks manages the Tableau webhooks that deliver refresh
// events (WorkbookRefreshSucceeded, DatasourceRefreshFailed, ...) to the
// deployed bridge's route POST /tableau/webhook/{token}.
//
//	tableau-webhooks list
//	tableau-webhooks create -url https://<api>/tableau/webhook [-events ...] [-replace]
//	tableau-webhooks test   -id ID | -all
//	tableau-webhooks delete -id ID | -all  -yes
//
// It reads the same environment as the functions (TABLEAU_SERVER_URL,
// TABLEAU_SITE, TABLEAU_API_VERSION, SECRET_ID or the upper-case credential
// variables, STATE_TABLE) but needs no refresh map. The destination's secret
// token comes from the credentials (tableau_webhook_token) and is never
// printed: URLs are shown with their last path segment masked.
//
// Tableau lets only site administrators manage webhooks.
package main

import (
	"context"
	"os"
	"os/signal"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
