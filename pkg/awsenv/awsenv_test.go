package awsenv_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/awsenv"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/motoserver"
)

var moto *motoserver.Server

func TestMain(m *testing.M) {
	os.Exit(motoserver.Main(m, func(s *motoserver.Server) { moto = s }))
}

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

var lambdaEnv = map[string]string{
	"AWS_REGION":            "eu-west-1",
	"AWS_DEFAULT_REGION":    "eu-west-1",
	"AWS_ACCESS_KEY_ID":     "ASIAEXAMPLE",
	"AWS_SECRET_ACCESS_KEY": "secret",
	"AWS_SESSION_TOKEN":     "token",
}

func with(kv map[string]string) map[string]string {
	m := map[string]string{}
	for k, v := range lambdaEnv {
		m[k] = v
	}
	for k, v := range kv {
		if v == "-" {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	return m
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name         string
		env          map[string]string
		region       string
		baseEndpoint string
		container    bool // credentials come from an endpoint, not fetched here
		wantErr      []string
	}{
		{name: "Lambda environment", env: lambdaEnv, region: "eu-west-1"},
		{name: "default region only", env: with(map[string]string{"AWS_REGION": "-", "AWS_DEFAULT_REGION": "us-west-2"}), region: "us-west-2"},
		{name: "AWS_REGION wins", env: with(map[string]string{"AWS_REGION": "ap-south-1", "AWS_DEFAULT_REGION": "us-west-2"}), region: "ap-south-1"},
		{name: "endpoint override", env: with(map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:5000"}), region: "eu-west-1", baseEndpoint: "http://127.0.0.1:5000"},
		{name: "endpoint override ignored", env: with(map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:5000", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}), region: "eu-west-1"},
		{
			name:    "no region and no credentials, both named",
			env:     map[string]string{},
			wantErr: []string{"AWS_REGION is not set", "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set"},
		},
		{name: "key id without secret", env: with(map[string]string{"AWS_SECRET_ACCESS_KEY": "-"}), wantErr: []string{"AWS_SECRET_ACCESS_KEY is not set, but AWS_ACCESS_KEY_ID is"}},
		{name: "secret without key id", env: with(map[string]string{"AWS_ACCESS_KEY_ID": "-"}), wantErr: []string{"AWS_ACCESS_KEY_ID is not set, but AWS_SECRET_ACCESS_KEY is"}},
		{name: "endpoint without scheme", env: with(map[string]string{"AWS_ENDPOINT_URL": "localhost:5000"}), wantErr: []string{"AWS_ENDPOINT_URL: want an http(s) URL", `"localhost:5000"`}},
		{name: "container credentials, relative", env: with(map[string]string{"AWS_ACCESS_KEY_ID": "-", "AWS_SECRET_ACCESS_KEY": "-", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/abc"}), region: "eu-west-1", container: true},
		{name: "container credentials, https", env: with(map[string]string{"AWS_ACCESS_KEY_ID": "-", "AWS_SECRET_ACCESS_KEY": "-", "AWS_CONTAINER_CREDENTIALS_FULL_URI": "https://creds.example.com/role"}), region: "eu-west-1", container: true},
		{name: "container credentials over http from elsewhere", env: with(map[string]string{"AWS_ACCESS_KEY_ID": "-", "AWS_SECRET_ACCESS_KEY": "-", "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://10.0.0.5/creds"}), wantErr: []string{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "not \"10.0.0.5\""}},
		{name: "container credentials URL not http", env: with(map[string]string{"AWS_ACCESS_KEY_ID": "-", "AWS_SECRET_ACCESS_KEY": "-", "AWS_CONTAINER_CREDENTIALS_FULL_URI": "file:///etc/creds"}), wantErr: []string{"AWS_CONTAINER_CREDENTIALS_FULL_URI: want an http(s) URL"}},
		{name: "no credentials names both ways", env: with(map[string]string{"AWS_ACCESS_KEY_ID": "-", "AWS_SECRET_ACCESS_KEY": "-"}), wantErr: []string{"AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set", "AWS_CONTAINER_CREDENTIALS_FULL_URI"}},
		{name: "bad ignore flag", env: with(map[string]string{"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "yes please"}), wantErr: []string{"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: want true or false"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := awsenv.Load(env(tt.env))
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("Load succeeded, want an error naming %q", tt.wantErr)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Region != tt.region {
				t.Errorf("Region = %q, want %q", cfg.Region, tt.region)
			}
			if got := aws.ToString(cfg.BaseEndpoint); got != tt.baseEndpoint {
				t.Errorf("BaseEndpoint = %q, want %q", got, tt.baseEndpoint)
			}
			if tt.container {
				if cfg.Credentials == nil {
					t.Error("no credentials provider")
				}
				return
			}
			creds, err := cfg.Credentials.Retrieve(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if creds.AccessKeyID != tt.env["AWS_ACCESS_KEY_ID"] || creds.SecretAccessKey != tt.env["AWS_SECRET_ACCESS_KEY"] || creds.SessionToken != tt.env["AWS_SESSION_TOKEN"] {
				t.Errorf("credentials = %q/%q/%q, want the environment's", creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken)
			}
		})
	}
}

func TestEndpointVariable(t *testing.T) {
	for sdkID, want := range map[string]string{
		"DynamoDB":        "AWS_ENDPOINT_URL_DYNAMODB",
		"Secrets Manager": "AWS_ENDPOINT_URL_SECRETS_MANAGER",
		"SNS":             "AWS_ENDPOINT_URL_SNS",
	} {
		if got := awsenv.EndpointVariable(sdkID); got != want {
			t.Errorf("EndpointVariable(%q) = %q, want %q", sdkID, got, want)
		}
	}
}

// The service clients must see the per-service endpoints exactly as with the
// SDK's own environment configuration: here DynamoDB goes to moto_server
// through AWS_ENDPOINT_URL_DYNAMODB while every other service is sent to a
// closed port by AWS_ENDPOINT_URL, and real requests prove which is which.
// The clients read part of this from the process environment themselves,
// hence t.Setenv.
func TestServiceEndpoints(t *testing.T) {
	closed := closedPort(t)
	for k, v := range lambdaEnv {
		t.Setenv(k, v)
	}
	t.Setenv("AWS_ENDPOINT_URL", closed)
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", moto.URL)
	cfg, err := awsenv.Load(os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := dynamodb.NewFromConfig(cfg).ListTables(ctx, &dynamodb.ListTablesInput{}); err != nil {
		t.Errorf("DynamoDB through AWS_ENDPOINT_URL_DYNAMODB: %v", err)
	}
	_, err = secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) { o.RetryMaxAttempts = 1 }).
		ListSecrets(ctx, &secretsmanager.ListSecretsInput{})
	var opErr *net.OpError
	if !errors.As(err, &opErr) || !strings.Contains(err.Error(), strings.TrimPrefix(closed, "http://")) {
		t.Errorf("Secrets Manager through AWS_ENDPOINT_URL: err = %v, want a refused connection to %s", err, closed)
	}

	t.Setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
	if cfg, err = awsenv.Load(os.Getenv); err != nil {
		t.Fatal(err)
	}
	if ep := dynamodb.NewFromConfig(cfg).Options().BaseEndpoint; ep != nil {
		t.Errorf("with AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true, DynamoDB endpoint = %q, want the default", *ep)
	}
}

// TestContainerCredentials fetches credentials as the SDK's container
// provider does, with the authorization token read from its file at each
// fetch.
func TestContainerCredentials(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("agent-token-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var auth []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = append(auth, r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"AccessKeyId":"ASIACONTAINER","SecretAccessKey":"container-secret","Token":"container-token","Expiration":%q}`,
			time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	}))
	defer srv.Close()
	cfg, err := awsenv.Load(env(with(map[string]string{
		"AWS_ACCESS_KEY_ID": "-", "AWS_SECRET_ACCESS_KEY": "-",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI":     srv.URL + "/creds",
		"AWS_CONTAINER_AUTHORIZATION_TOKEN":      "ignored-when-a-file-is-named",
		"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": tokenFile,
	})))
	if err != nil {
		t.Fatal(err)
	}
	creds, err := cfg.Credentials.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if creds.AccessKeyID != "ASIACONTAINER" || creds.SecretAccessKey != "container-secret" || creds.SessionToken != "container-token" {
		t.Errorf("credentials = %+v, want the endpoint's", creds)
	}
	if len(auth) != 1 || auth[0] != "agent-token-1" {
		t.Errorf("Authorization headers = %q, want the token file's content", auth)
	}
}

func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}
