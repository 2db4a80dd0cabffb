// Command echo is an aws-lambda-go function for the emulator's tests: it
// answers with what the runtime told it about the invocation, fails when
// asked to and panics when asked to.
package main

import (
	"context"
	"errors"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// Request says what to do.
type Request struct {
	Echo  string `json:"echo,omitempty"`
	Fail  string `json:"fail,omitempty"`
	Panic string `json:"panic,omitempty"`
}

// Reply is what aws-lambda-go made of the next request's headers.
type Reply struct {
	Echo        string `json:"echo"`
	RequestID   string `json:"request_id"`
	FunctionARN string `json:"function_arn"`
	DeadlineMs  int64  `json:"deadline_ms"`
	TraceID     string `json:"trace_id"`
}

func handle(ctx context.Context, req Request) (Reply, error) {
	switch {
	case req.Panic != "":
		panic(req.Panic)
	case req.Fail != "":
		return Reply{}, errors.New(req.Fail)
	}
	lc, _ := lambdacontext.FromContext(ctx)
	deadline, _ := ctx.Deadline()
	return Reply{
		Echo:        req.Echo,
		RequestID:   lc.AwsRequestID,
		FunctionARN: lc.InvokedFunctionArn,
		DeadlineMs:  deadline.UnixMilli(),
		TraceID:     os.Getenv("_X_AMZN_TRACE_ID"),
	}, nil
}

func main() {
	lambda.Start(handle)
}
