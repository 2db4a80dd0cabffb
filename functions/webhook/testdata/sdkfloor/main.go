// Command sdkfloor is the second reference of BenchmarkColdStart: the hello
// world of testdata/hello plus what any Go Lambda function using these AWS
// services pays at start-up, the package initialisation of the SDK clients
// the webhook builds (DynamoDB, Secrets Manager, SNS) and their
// construction, with the SDK's default configuration as the webhook's
// bootstrap builds it. The webhook's init minus this one's is the cost of
// our own code.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sns"
)

func main() {
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "sdkfloor:", err)
		os.Exit(1)
	}
	clients := []any{dynamodb.NewFromConfig(cfg), secretsmanager.NewFromConfig(cfg), sns.NewFromConfig(cfg)}
	lambda.Start(func(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		return events.APIGatewayV2HTTPResponse{
			StatusCode: 200,
			Headers:    map[string]string{"Content-Type": "text/plain"},
			Body:       fmt.Sprintf("%d clients", len(clients)),
		}, nil
	})
}
