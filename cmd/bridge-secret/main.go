// Command bridge-secret reads and sets single keys of the bridge's
// credentials secret (the stack output SecretArn), keeping every other key:
//
//	bridge-secret keys        which keys are set, never their values
//	bridge-secret set KEY     KEY's value from standard input, or a prompt that does not echo
//	bridge-secret get KEY     print one value, e.g. the generated tableau_webhook_token
//
// The secret is named by SECRET_ID, as for the functions. A value never
// comes from the command line, where shell history and ps would keep it.
// AWS credentials and region come from the SDK's usual sources (AWS_PROFILE,
// SSO, environment); a secret ARN also gives the region.
package main

import (
	"context"
	"os"
	"os/signal"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr, defaultAPI)
	stop()
	os.Exit(code)
}
