//go:build !lambda.norpc

package bridge

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/demo"
)

// The parts only a run outside Lambda needs. The bootstrap (built with
// -tags lambda.norpc, as for any provided.al2023 function) leaves them out,
// and with them the packages whose initialisation every cold start would
// pay for: see lambda.go.

// loadAWSConfig is the SDK's full chain: environment, shared config and
// credentials files (profiles, SSO), web identity, container and instance
// credentials; a developer's usual setup works.
func loadAWSConfig(ctx context.Context) (aws.Config, error) {
	return config.LoadDefaultConfig(ctx)
}

// startDemo starts the Tableau and dbt Cloud simulators with demo content
// and fills in the variables the user left unset.
func startDemo() (Demo, func()) {
	d := demo.Start()
	d.Apply()
	fmt.Fprintln(os.Stderr, "TABLEAU_SERVER_URL and SECRET_ID are unset: using the Tableau simulator with demo content at", d.Tableau.URL())
	return d, d.Close
}
