package localrun

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

// TestServeRoutes checks that requests reach the handler as API Gateway
// would hand them over: by route key, with lower-case headers and the query
// string, GET routes as well as POST ones.
func TestServeRoutes(t *testing.T) {
	echo := func(_ context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		b, _ := json.Marshal(map[string]any{
			"route": req.RouteKey, "method": req.RequestContext.HTTP.Method, "query": req.QueryStringParameters,
			"auth": req.Headers["authorization"], "body": req.Body,
		})
		return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusOK, Headers: map[string]string{"Cache-Control": "no-store"}, Body: string(b)}, nil
	}
	srv := httptest.NewServer(&Server{Handler: echo, Routes: []string{"POST /dbt/webhook", "GET /status", "GET /status.json"}})
	defer srv.Close()
	tests := []struct {
		method, path string
		status       int
		want         []string
	}{
		{"GET", "/status?state=stale", 200, []string{`"route":"GET /status"`, `"query":{"state":"stale"}`, `"auth":"Basic dTpw"`, `"method":"GET"`}},
		{"GET", "/status.json", 200, []string{`"route":"GET /status.json"`}},
		{"POST", "/dbt/webhook", 200, []string{`"route":"POST /dbt/webhook"`, `"body":"{}"`}},
		{"POST", "/status", 405, []string{"Method Not Allowed"}},
		{"GET", "/dbt/webhook", 405, nil},
		{"GET", "/statusx", 404, []string{"Not Found"}},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader("{}"))
			req.Header.Set("Authorization", "Basic dTpw")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(body), w) {
					t.Errorf("body %s lacks %s", body, w)
				}
			}
			if tt.status == 200 && resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("the handler's headers were not passed on: %v", resp.Header)
			}
		})
	}
}
