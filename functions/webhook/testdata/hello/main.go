// Command hello is the hello-world aws-lambda-go function that
// BenchmarkColdStart compares the webhook's cold start with: the same
// runtime loop and event type, no configuration and no SDK clients.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

func handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	return events.APIGatewayV2HTTPResponse{
		StatusCode: 200,
		Headers:    map[string]string{"Content-Type": "text/plain"},
		Body:       "Hello, world",
	}, nil
}

func main() {
	lambda.Start(handle)
}
