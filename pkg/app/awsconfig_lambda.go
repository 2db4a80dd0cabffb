//go:build lambda.norpc

package app

import (
	"context"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/awsenv"
)

// loadAWSConfig, in the Lambda bootstrap, reads region, credentials and
// endpoint overrides from the environment, which is where Lambda (and
// `sam local invoke`) puts them. The SDK's config package would also read
// them there, but linking it links the STS, SSO, SSO OIDC and sign-in
// clients, whose package initialisation every cold start pays for
// although a function never uses them: measured with
// `go test -run '^$' -bench ColdStart ./functions/webhook/`, leaving it out
// took the webhook's init from about 1.9x to about 1.7x that of a hello
// world.
func loadAWSConfig(context.Context) (aws.Config, error) {
	return awsenv.Load(os.Getenv)
}
