package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dbtcloud/dbtcloudtest"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/demo"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dynamo"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/motoserver"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau/tableautest"
)

// TestBootstrapDeliveryExactlyOnce runs the deployed binary, built as SAM
// builds it and configured as in Lambda through environment variables
// alone, through a real delivery: DynamoDB and Secrets Manager are moto_server, Tableau is the
// simulator. The same delivery is then handled by a second, separate cold
// start, as when dbt retries and Lambda routes the retry to a new instance:
// it must find the first instance's claim and Tableau session in the table,
// and neither refresh again nor sign in again. A third target cannot be
// refreshed (no extract): both deliveries report it failed, and the
// failure reaches the SNS topic once.
func TestBootstrapDeliveryExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the bootstrap with go build and runs it; run without -short")
	}
	ctx := context.Background()
	d := newDeliveryDeployment(t)
	bin := buildBootstrap(t, ".", runtime.GOOS, runtime.GOARCH)
	event := signedDelivery(t, demo.Event(4242, time.Now()), d.secret)

	results := map[string][]string{}
	for i, want := range []string{"refreshed", "duplicate"} {
		cs := startCold(t, bin, d.env, event)
		r := apiResponse(t, cs.res)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("delivery %d: %d %s, want 200", i+1, r.StatusCode, r.Body)
		}
		var body struct {
			Targets []struct {
				Target, Result string
				JobID          string `json:"job_id"`
			} `json:"targets"`
		}
		if err := json.Unmarshal([]byte(r.Body), &body); err != nil {
			t.Fatalf("delivery %d: %s: %v", i+1, r.Body, err)
		}
		if len(body.Targets) != 3 {
			t.Fatalf("delivery %d: %s, want three targets", i+1, r.Body)
		}
		for _, tg := range body.Targets {
			if strings.Contains(tg.Target, "Static") {
				if tg.Result != "failed" {
					t.Errorf("delivery %d: target %s: %s, want failed (no extract)", i+1, tg.Target, tg.Result)
				}
				continue
			}
			if tg.Result != want {
				t.Errorf("delivery %d: target %s: %s, want %s", i+1, tg.Target, tg.Result, want)
			}
			results[tg.Target] = append(results[tg.Target], tg.JobID)
		}
	}
	for _, id := range []string{d.workbook, d.datasource} {
		if n := d.tab.RefreshCount(id); n != 1 {
			t.Errorf("item %s refreshed %d times, want 1", id, n)
		}
	}
	for target, jobs := range results {
		if jobs[0] == "" || jobs[1] != jobs[0] {
			t.Errorf("target %s: job ids %q, want the first delivery's job reported again", target, jobs)
		}
	}
	// The failure is reported once, through the SNS topic, although both
	// deliveries met it.
	msgs, err := d.moto.SNSMessages(ctx, d.topicARN)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || !strings.Contains(msgs[0].Message, "Static") {
		t.Errorf("SNS messages = %+v, want one about workbook Static", msgs)
	}
	if n := d.tab.Count(http.MethodPost, "/auth/signin"); n != 1 {
		t.Errorf("%d Tableau sign-ins over two cold starts, want 1 (the session is kept in the table)", n)
	}
}

// deliveryDeployment is what a real delivery to the bootstrap needs:
// DynamoDB, Secrets Manager and SNS in moto_server, reached through
// per-service endpoint overrides, and the Tableau simulator, with a refresh
// map of three targets for demo.JobID. Two can be refreshed (workbook and
// datasource are their LUIDs); the third has no extract, so a delivery
// fails it and reports the failure on the SNS topic.
type deliveryDeployment struct {
	moto                 *motoserver.Server
	tab                  *tableautest.Server
	env                  []string
	secret               string // the dbt webhook secret deliveries are signed with
	topicARN             string
	workbook, datasource string
}

func newDeliveryDeployment(tb testing.TB) *deliveryDeployment {
	tb.Helper()
	ctx := context.Background()
	moto, err := motoserver.Start(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(moto.Stop)
	awsCfg, err := moto.AWSConfig(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	if err := dynamo.CreateTable(ctx, dynamodb.NewFromConfig(awsCfg), "bridge-state"); err != nil {
		tb.Fatal(err)
	}
	const whSecret = "whsec-bootstrap-test"
	secretJSON := fmt.Sprintf(`{"dbt_webhook_secret":%q,"tableau_pat_name":"bot","tableau_pat_secret":"pat-secret"}`, whSecret)
	if _, err := secretsmanager.NewFromConfig(awsCfg).CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String("bridge/credentials"), SecretString: &secretJSON,
	}); err != nil {
		tb.Fatal(err)
	}
	tab := tableautest.NewServer(tableautest.WithSite("analytics"), tableautest.WithJobTimings(time.Hour, time.Hour))
	tb.Cleanup(tab.Close)
	tab.AddPAT("bot", "pat-secret")
	workbook := tab.AddWorkbook("Sales Overview", "Finance")
	datasource := tab.AddDatasource("Orders", "Finance")
	tab.AddWorkbook("Static", "Finance", tableautest.NoExtract())
	topic, err := sns.NewFromConfig(awsCfg).CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("refresh-failures")})
	if err != nil {
		tb.Fatal(err)
	}

	env := slices.DeleteFunc(deploymentEnv(tb.TempDir()), func(kv string) bool {
		return strings.HasPrefix(kv, "TABLEAU_SERVER_URL=") || strings.HasPrefix(kv, "SECRET_ID=") ||
			strings.HasPrefix(kv, "STATE_TABLE=") || strings.HasPrefix(kv, "REFRESH_MAP=")
	})
	env = append(env,
		"TABLEAU_SERVER_URL="+tab.URL(), "TABLEAU_SITE=analytics",
		"SECRET_ID=bridge/credentials", "STATE_TABLE=bridge-state",
		fmt.Sprintf(`REFRESH_MAP={"jobs":{"%s":[{"workbook":"Sales Overview","project":"Finance"},{"datasource":"Orders"},{"workbook":"Static"}]}}`, demo.JobID),
		"NOTIFY_TOPIC_ARN="+*topic.TopicArn,
		// The per-service overrides must win over the general one, which
		// leads nowhere, as with the SDK's own environment configuration.
		"AWS_ENDPOINT_URL=http://127.0.0.1:9", "AWS_ENDPOINT_URL_DYNAMODB="+moto.URL, "AWS_ENDPOINT_URL_SECRETS_MANAGER="+moto.URL, "AWS_ENDPOINT_URL_SNS="+moto.URL,
	)
	return &deliveryDeployment{moto: moto, tab: tab, env: env, secret: whSecret, topicARN: *topic.TopicArn, workbook: workbook, datasource: datasource}
}

// signedDelivery wraps a dbt webhook body in the HTTP API event API Gateway
// hands the function, signed as dbt Cloud signs it.
func signedDelivery(tb testing.TB, body []byte, secret string) []byte {
	tb.Helper()
	req := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: "POST /dbt/webhook", RawPath: "/dbt/webhook",
		Headers: map[string]string{
			"content-type":  "application/json",
			"authorization": dbtcloudtest.Signature(body, secret),
			"user-agent":    "dbt-cloud-webhooks",
		},
		Body: string(body),
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey: "POST /dbt/webhook", Stage: "$default", RequestID: "req-bootstrap-test",
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: http.MethodPost, Path: "/dbt/webhook"},
		},
	}
	b, err := json.Marshal(req)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
