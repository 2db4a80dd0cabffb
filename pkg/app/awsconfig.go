//go:build !lambda.norpc

package app

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
)

// loadAWSConfig, outside the Lambda bootstrap, is the SDK's full chain:
// environment, shared config and credentials files (profiles, SSO), web
// identity, container and instance credentials, so that a developer's
// usual setup works for local runs against real AWS. The bootstrap, built
// with -tags lambda.norpc as any provided.al2023 function is, uses
// awsconfig_lambda.go instead.
func loadAWSConfig(ctx context.Context) (aws.Config, error) {
	return config.LoadDefaultConfig(ctx)
}
