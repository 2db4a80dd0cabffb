"""The Python alternative BenchmarkColdStart compares the webhook with.

What users deploy today instead of the bridge: a Python 3 Lambda function
that imports requests and boto3 and builds its AWS client at module scope,
as Lambda functions do so that warm invocations reuse it. A minimal runtime
loop below the handler speaks the Lambda Runtime API with the standard
library, so that, as for the Go bootstraps, init ends with the first
GET .../invocation/next. Lambda's managed Python runtime also imports its
own runtime client (awslambdaric) first, so a deployed function starts
slower than this: the figure is Python's best case.

The benchmark runs this file with the interpreter named on its first line,
which it writes; with PYREF_WITHOUT_REQUESTS=1 (set when requests cannot
be imported) requests is left out.
"""

import http.client
import json
import os

if os.environ.get("PYREF_WITHOUT_REQUESTS") != "1":
    import requests  # noqa: F401  imported, as the functions it stands for do

import boto3

dynamodb = boto3.client("dynamodb")


def handler(event, context):
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "text/plain"},
        "body": "Hello from Python",
    }


def main():
    conn = http.client.HTTPConnection(os.environ["AWS_LAMBDA_RUNTIME_API"])
    base = "/2018-06-01/runtime/invocation/"
    while True:
        conn.request("GET", base + "next")
        resp = conn.getresponse()
        event = resp.read()
        if resp.status != 200:
            raise SystemExit(f"next: {resp.status} {event!r}")
        request_id = resp.getheader("Lambda-Runtime-Aws-Request-Id")
        reply = json.dumps(handler(json.loads(event), None)).encode()
        conn.request("POST", base + request_id + "/response", body=reply,
                     headers={"Content-Type": "application/json"})
        conn.getresponse().read()


if __name__ == "__main__":
    main()
