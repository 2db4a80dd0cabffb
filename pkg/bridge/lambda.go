//go:build lambda.norpc

package bridge

import (
	"context"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/awsenv"
)

// The Lambda bootstrap's versions of local.go: measured with
// `go test -run '^$' -bench ColdStart ./functions/webhook/`, the SDK's
// config package (it links the STS, SSO, SSO OIDC and sign-in clients) and
// the simulators behind the demo made up about a fifth of the webhook's
// cold start, for nothing a Lambda function uses.

// loadAWSConfig reads region, credentials and endpoint overrides from the
// environment Lambda sets.
func loadAWSConfig(context.Context) (aws.Config, error) {
	return awsenv.Load(os.Getenv)
}

// startDemo is never reached in Lambda, where TABLEAU_SERVER_URL or
// SECRET_ID is set; a bootstrap run without either fails on the missing
// configuration instead.
func startDemo() (Demo, func()) { return nil, func() {} }
