package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

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

// cfnTemplate is template.yaml as CloudFormation reads it: cfn-lint's
// decoder (installed with cfn-lint, which make test needs anyway) turns the
// short-form tags into their JSON forms.
type cfnTemplate struct {
	Parameters map[string]struct {
		Default any
	}
	Conditions map[string]any
	Globals    struct {
		Function struct {
			Environment struct{ Variables map[string]any }
		}
	}
	Resources map[string]struct {
		Properties struct {
			Environment struct{ Variables map[string]any }
			Events      map[string]struct {
				Type       string
				Properties struct{ Input, State any }
			}
		}
	}
}

func loadTemplate(t *testing.T) *cfnTemplate {
	t.Helper()
	const decode = `import json, sys
from cfnlint.decode import decode
tpl, problems = decode(sys.argv[1])
if problems:
    sys.exit("\n".join(str(p) for p in problems))
print(json.dumps(tpl, default=str))`
	out, err := exec.Command("python3", "-c", decode, filepath.Join("..", "..", "template.yaml")).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("decode template.yaml with cfn-lint's decoder (make test installs cfn-lint): %v\n%s", err, stderr)
	}
	var tpl cfnTemplate
	if err := json.Unmarshal(out, &tpl); err != nil {
		t.Fatal(err)
	}
	return &tpl
}

// stack resolves the intrinsic functions a function's environment uses, as
// CloudFormation would for a stack created with params (the template's
// defaults for the rest) whose resources got the physical ids in physical.
type stack struct {
	tpl      *cfnTemplate
	params   map[string]string
	physical map[string]string
}

func (s *stack) value(t *testing.T, v any) string {
	t.Helper()
	switch v := v.(type) {
	case string:
		return v
	case float64:
		return fmt.Sprint(v)
	case map[string]any:
		for fn, arg := range v {
			switch fn {
			case "Ref":
				return s.ref(t, arg.(string))
			case "Fn::If":
				args := arg.([]any)
				if s.condition(t, args[0].(string)) {
					return s.value(t, args[1])
				}
				return s.value(t, args[2])
			case "Fn::GetAtt":
				parts := arg.([]any)
				return s.ref(t, fmt.Sprint(parts[0])) + "." + fmt.Sprint(parts[1])
			case "Fn::Join":
				args := arg.([]any)
				var parts []string
				for _, p := range args[1].([]any) {
					parts = append(parts, s.value(t, p))
				}
				return strings.Join(parts, args[0].(string))
			}
		}
	}
	t.Fatalf("template: cannot resolve %v", v)
	return ""
}

func (s *stack) ref(t *testing.T, name string) string {
	t.Helper()
	if v, ok := s.params[name]; ok {
		return v
	}
	if p, ok := s.tpl.Parameters[name]; ok {
		if p.Default == nil {
			t.Fatalf("template: parameter %s has no default and the test gives no value", name)
		}
		return fmt.Sprint(p.Default)
	}
	if v, ok := s.physical[name]; ok {
		return v
	}
	t.Fatalf("template: the test gives no physical id for resource %s", name)
	return ""
}

func (s *stack) condition(t *testing.T, name string) bool {
	t.Helper()
	c, ok := s.tpl.Conditions[name]
	if !ok {
		t.Fatalf("template: no condition %s", name)
	}
	return s.eval(t, c)
}

func (s *stack) eval(t *testing.T, c any) bool {
	t.Helper()
	m, ok := c.(map[string]any)
	if !ok || len(m) != 1 {
		t.Fatalf("template: cannot evaluate condition %v", c)
	}
	for fn, arg := range m {
		args, _ := arg.([]any)
		switch fn {
		case "Fn::Equals":
			return s.value(t, args[0]) == s.value(t, args[1])
		case "Fn::Not":
			return !s.eval(t, args[0])
		case "Fn::And", "Fn::Or":
			any, all := false, true
			for _, a := range args {
				v := s.eval(t, a)
				any, all = any || v, all && v
			}
			return map[bool]bool{true: all, false: any}[fn == "Fn::And"]
		case "Condition":
			return s.condition(t, arg.(string))
		}
	}
	t.Fatalf("template: cannot evaluate condition %v", c)
	return false
}

// env is function's environment in the stack: Globals' variables and its
// own, resolved.
func (s *stack) env(t *testing.T, function string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for k, v := range s.tpl.Globals.Function.Environment.Variables {
		out[k] = s.value(t, v)
	}
	res, ok := s.tpl.Resources[function]
	if !ok {
		t.Fatalf("template: no resource %s", function)
	}
	for k, v := range res.Properties.Environment.Variables {
		out[k] = s.value(t, v)
	}
	return out
}

// templateStack is a stack of template.yaml as far as this machine can
// deploy one: its table, secret and topic in moto_server, the sample refresh
// map in /var/task, and each function's environment as CloudFormation
// would resolve it for params.
type templateStack struct {
	*stack
	moto *motoserver.Server
	task string
}

// newTemplateStack creates the stack's resources; secret is the JSON the
// stack's secret holds.
func newTemplateStack(t *testing.T, params map[string]string, secretJSON string) *templateStack {
	t.Helper()
	ctx := context.Background()
	moto, err := motoserver.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(moto.Stop)
	awsCfg, err := moto.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := dynamo.CreateTable(ctx, dynamodb.NewFromConfig(awsCfg), "stack-StateTable-1A2B"); err != nil {
		t.Fatal(err)
	}
	secret, err := secretsmanager.NewFromConfig(awsCfg).CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String("BridgeSecret-abc"), SecretString: aws.String(secretJSON),
	})
	if err != nil {
		t.Fatal(err)
	}
	topic, err := sns.NewFromConfig(awsCfg).CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("stack-NotificationTopic-1A2B")})
	if err != nil {
		t.Fatal(err)
	}
	// SAM deploys the sample map beside the bootstrap, in /var/task.
	task := t.TempDir()
	mapJSON, err := os.ReadFile("refresh-map.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(task, "refresh-map.json"), mapJSON, 0o600); err != nil {
		t.Fatal(err)
	}
	return &templateStack{
		stack: &stack{
			tpl:    loadTemplate(t),
			params: params,
			physical: map[string]string{
				"StateTable": "stack-StateTable-1A2B", "BridgeSecret": *secret.ARN,
				"NotificationTopic": *topic.TopicArn, "AlarmTopic": "arn:aws:sns:us-east-1:123456789012:stack-AlarmTopic-1A2B",
			},
		},
		moto: moto,
		task: task,
	}
}

// lambdaEnv is function's process environment in Lambda.
func (st *templateStack) lambdaEnv(t *testing.T, function string) []string {
	t.Helper()
	env := []string{
		"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing",
		"AWS_ENDPOINT_URL=" + st.moto.URL, "AWS_LAMBDA_FUNCTION_NAME=" + function, "HOME=" + t.TempDir(),
	}
	vars := st.env(t, function)
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := vars[k]
		if rest, ok := strings.CutPrefix(v, "/var/task/"); ok {
			v = filepath.Join(st.task, rest)
		}
		env = append(env, k+"="+v)
	}
	return env
}

// schedule is the input and state of one of function's ScheduleV2 events.
func (st *templateStack) schedule(t *testing.T, function, event string) (input []byte, enabled bool) {
	t.Helper()
	ev, ok := st.tpl.Resources[function].Properties.Events[event]
	if !ok || ev.Type != "ScheduleV2" {
		t.Fatalf("template: %s has no ScheduleV2 event %s", function, event)
	}
	in, ok := ev.Properties.Input.(string)
	if !ok {
		t.Fatalf("template: %s.%s: Input %v is not a plain string", function, event, ev.Properties.Input)
	}
	return []byte(in), ev.Properties.State == nil || st.value(t, ev.Properties.State) == "ENABLED"
}

// TestTemplateDefaultsFollowTableauJobs deploys, as far as this machine
// can, the stack a new user gets by giving only the required parameters:
// both bootstraps run with the environment template.yaml gives them, against
// moto_server and the Tableau simulator. A delivery queues refreshes; the
// five-minute follow-up, which the template always schedules, must follow
// them to their end although no dbt Cloud account is configured; a tick
// that names dbt jobs is one clear configuration error.
func TestTemplateDefaultsFollowTableauJobs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds both bootstraps and runs them; run without -short")
	}
	const whSecret = "whsec-template-test"
	tab := tableautest.NewServer(tableautest.WithJobTimings(0, 0))
	t.Cleanup(tab.Close)
	tab.AddPAT("bot", "pat-secret")
	workbook := tab.AddWorkbook("Sales Overview", "Finance")
	datasource := tab.AddDatasource("Orders", "Finance")
	// The one parameter without a default; the simulator is plain http on
	// loopback, which the functions allow there only.
	st := newTemplateStack(t, map[string]string{"TableauServerUrl": tab.URL()},
		fmt.Sprintf(`{"dbt_webhook_secret":%q,"tableau_pat_name":"bot","tableau_pat_secret":"pat-secret","tableau_webhook_token":"generated-by-the-stack-0123456789"}`, whSecret))
	lambdaEnv := func(function string) []string { return st.lambdaEnv(t, function) }
	if v := st.env(t, "SchedulerFunction")["DBT_ACCOUNT_ID"]; v != "" {
		t.Fatalf("the template's default DBT_ACCOUNT_ID is %q; this test is about a stack without one", v)
	}
	if _, on := st.schedule(t, "SchedulerFunction", "LineageIndex"); on {
		t.Errorf("the lineage index schedule is enabled in a stack without a dbt Cloud account, where lineage is off")
	}

	webhookBin := buildBootstrap(t, ".", runtime.GOOS, runtime.GOARCH)
	r := apiResponse(t, startCold(t, webhookBin, lambdaEnv("WebhookFunction"), signedDelivery(t, demo.Event(777, time.Now()), whSecret)).res)
	if r.StatusCode != http.StatusOK || strings.Count(r.Body, `"result":"refreshed"`) != 2 {
		t.Fatalf("delivery: %d %s, want both targets refreshed", r.StatusCode, r.Body)
	}

	schedulerBin := buildBootstrap(t, "../scheduler", runtime.GOOS, runtime.GOARCH)
	schedulerEnv := lambdaEnv("SchedulerFunction")
	follow := startColdWithin(t, schedulerBin, schedulerEnv, []byte(`{"follow": true}`), time.Minute).res
	if follow.IsError {
		t.Fatalf("follow-up with the template's defaults failed: %s: %s", follow.ErrorType, follow.Body)
	}
	var out struct {
		Tableau struct {
			Open, Succeeded int
		} `json:"tableau"`
	}
	if err := json.Unmarshal(follow.Body, &out); err != nil {
		t.Fatalf("follow-up result %s: %v", follow.Body, err)
	}
	if out.Tableau.Open != 2 || out.Tableau.Succeeded != 2 {
		t.Errorf("follow-up result %s, want the two refresh jobs followed to success", follow.Body)
	}
	for _, id := range []string{workbook, datasource} {
		if n := tab.RefreshCount(id); n != 1 {
			t.Errorf("item %s refreshed %d times, want 1", id, n)
		}
	}

	tick := startColdWithin(t, schedulerBin, schedulerEnv, []byte(`{"jobs": ["123"]}`), time.Minute).res
	if !tick.IsError || !strings.Contains(string(tick.Body), "DBT_ACCOUNT_ID") || strings.Count(string(tick.Body), "configuration") != 1 {
		t.Errorf("tick naming a job without dbt Cloud settings: error=%t %s, want one configuration error naming DBT_ACCOUNT_ID", tick.IsError, tick.Body)
	}
}

// TestTemplateLineageStack is the stack of someone who gives the dbt Cloud
// account too: lineage is on in both functions (the webhook reads the run's
// artifacts, so it needs the account as much as the scheduler does), a
// delivery refreshes the map's targets and the content downstream of what
// the run changed, once each, and the template's hourly lineage_index
// schedule is enabled and builds the index.
func TestTemplateLineageStack(t *testing.T) {
	if testing.Short() {
		t.Skip("builds both bootstraps and runs them; run without -short")
	}
	const whSecret, dbtToken = "whsec-template-test", "dbt-service-token"
	tab := tableautest.NewServer(tableautest.WithJobTimings(0, 0))
	t.Cleanup(tab.Close)
	tab.AddPAT("bot", "pat-secret")
	table := func(name string) tableautest.TableRef {
		return tableautest.TableRef{Database: "ANALYTICS", Schema: "MARTS", Name: name, ConnectionType: "snowflake"}
	}
	ids := map[string]string{
		"Sales Overview": tab.AddWorkbook("Sales Overview", "Finance"),
		"Orders":         tab.AddDatasource("Orders", "Finance", tableautest.ReadsTables(table("ORDERS"))),
		"Daily Orders":   tab.AddDatasource("Daily Orders", "Finance", tableautest.ReadsTables(table("ORDERS_DAILY"))),
		"Customers":      tab.AddDatasource("Customers", "Finance", tableautest.ReadsTables(table("CUSTOMERS"))),
	}
	dbt := dbtcloudtest.NewServer(dbtcloudtest.WithToken(dbtToken))
	t.Cleanup(dbt.Close)
	dbt.AddJob(123, "Daily build")
	dbt.AddFinishedRun(123, 777)

	st := newTemplateStack(t, map[string]string{
		"TableauServerUrl": tab.URL(),
		"DbtAccountId":     strconv.FormatInt(dbt.AccountID(), 10),
		"DbtCloudUrl":      dbt.URL(),
	}, fmt.Sprintf(`{"dbt_webhook_secret":%q,"tableau_pat_name":"bot","tableau_pat_secret":"pat-secret","dbt_api_token":%q}`, whSecret, dbtToken))
	indexEvent, on := st.schedule(t, "SchedulerFunction", "LineageIndex")
	if !on {
		t.Errorf("the lineage index schedule is disabled in a stack with a dbt Cloud account and Lineage=auto")
	}

	webhookBin := buildBootstrap(t, ".", runtime.GOOS, runtime.GOARCH)
	r := apiResponse(t, startCold(t, webhookBin, st.lambdaEnv(t, "WebhookFunction"), signedDelivery(t, demo.Event(777, time.Now()), whSecret)).res)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("delivery: %d %s", r.StatusCode, r.Body)
	}
	var reply struct {
		Targets []struct {
			Target, Source, Result string
		} `json:"targets"`
	}
	if err := json.Unmarshal([]byte(r.Body), &reply); err != nil {
		t.Fatalf("delivery reply %s: %v", r.Body, err)
	}
	got := map[string]string{}
	for _, o := range reply.Targets {
		got[o.Target] = o.Source + " " + o.Result
	}
	// Orders is both in the map and downstream of orders: refreshed once.
	want := map[string]string{
		`workbook "Sales Overview" in project "Finance"`:          "map refreshed",
		`datasource "Orders"`:                                     "map refreshed",
		`datasource "Daily Orders" (` + ids["Daily Orders"] + `)`: "lineage refreshed",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("delivery refreshed %v, want %v\n%s", got, want, r.Body)
	}
	for name, n := range map[string]int{"Sales Overview": 1, "Orders": 1, "Daily Orders": 1, "Customers": 0} {
		if c := tab.RefreshCount(ids[name]); c != n {
			t.Errorf("%s refreshed %d times, want %d", name, c, n)
		}
	}

	schedulerBin := buildBootstrap(t, "../scheduler", runtime.GOOS, runtime.GOARCH)
	build := startColdWithin(t, schedulerBin, st.lambdaEnv(t, "SchedulerFunction"), indexEvent, time.Minute).res
	if build.IsError || !strings.Contains(string(build.Body), `"published":true`) {
		t.Errorf("the template's lineage_index event (%s): error=%t %s, want the index built and published", indexEvent, build.IsError, build.Body)
	}
}
