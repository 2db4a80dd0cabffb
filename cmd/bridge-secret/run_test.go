package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/motoserver"
)

var client *secretsmanager.Client

func TestMain(m *testing.M) {
	os.Exit(motoserver.Main(m, func(s *motoserver.Server) {
		cfg, err := s.AWSConfig(context.Background())
		if err != nil {
			panic(err)
		}
		client = secretsmanager.NewFromConfig(cfg)
	}))
}

func motoAPI(context.Context, string) (secretsAPI, error) { return client, nil }

// The secret as the stack creates it: the template's keys, empty, and the
// generated Tableau webhook token.
const (
	generatedToken = "Vq3Lr8Tz0Wp6Ns2Kc9Hd5Fg1Bm7Xj4Ya2Ue8Io0P"
	stackSecret    = `{"dbt_webhook_secret":"","tableau_pat_name":"","tableau_pat_secret":"","dbt_api_token":"","slack_webhook_url":"","tableau_webhook_token":"` + generatedToken + `"}`
	patSecret      = "pat-secret-7c1e9a2b4d"
)

func createSecret(t *testing.T, value string) string {
	t.Helper()
	out, err := client.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{
		Name:         aws.String(strings.NewReplacer("/", "-").Replace(t.Name())),
		SecretString: aws.String(value),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = client.DeleteSecret(context.Background(), &secretsmanager.DeleteSecretInput{SecretId: out.ARN, ForceDeleteWithoutRecovery: aws.Bool(true)})
	})
	return aws.ToString(out.ARN)
}

func current(t *testing.T, id string) (value, version string) {
	t.Helper()
	out, err := client.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.SecretString), aws.ToString(out.VersionId)
}

type result struct {
	code           int
	stdout, stderr string
}

func runCmd(t *testing.T, secretID, stdin string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	env := func(k string) string {
		if k == "SECRET_ID" {
			return secretID
		}
		return ""
	}
	code := run(context.Background(), args, env, strings.NewReader(stdin), &stdout, &stderr, motoAPI)
	return result{code, stdout.String(), stderr.String()}
}

func TestSetKeepsTheOtherKeys(t *testing.T) {
	tests := []struct {
		name    string
		initial string
		key     string
		stdin   string
		want    map[string]any
	}{
		{
			name:    "fills a key of the stack's secret, keeping the generated token",
			initial: stackSecret,
			key:     "tableau_pat_secret",
			stdin:   patSecret + "\n",
			want: map[string]any{
				"dbt_webhook_secret": "", "tableau_pat_name": "", "tableau_pat_secret": patSecret,
				"dbt_api_token": "", "slack_webhook_url": "", "tableau_webhook_token": generatedToken,
			},
		},
		{
			name:    "adds a key the secret lacks",
			initial: `{"dbt_webhook_secret":"whsec","tableau_pat_name":"bot","tableau_pat_secret":"s"}`,
			key:     "dbt_api_token",
			stdin:   "dbtc_token", // no final newline, as from a clipboard
			want: map[string]any{
				"dbt_webhook_secret": "whsec", "tableau_pat_name": "bot", "tableau_pat_secret": "s", "dbt_api_token": "dbtc_token",
			},
		},
		{
			name:    "replaces a value, keeping keys the bridge does not read and values of other types",
			initial: `{"tableau_pat_name":"old","note":"kept","rotation":{"days":30}}`,
			key:     "tableau_pat_name",
			stdin:   "refresh-bot\r\n",
			want:    map[string]any{"tableau_pat_name": "refresh-bot", "note": "kept", "rotation": map[string]any{"days": float64(30)}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := createSecret(t, tt.initial)
			_, before := current(t, id)
			r := runCmd(t, id, tt.stdin, "set", tt.key)
			if r.code != exitOK {
				t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
			}
			value, after := current(t, id)
			if after == before {
				t.Fatal("no new version was written")
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(value), &got); err != nil {
				t.Fatal(err)
			}
			if g, w := mustJSON(t, got), mustJSON(t, tt.want); g != w {
				t.Errorf("secret now\n %s\nwant\n %s", g, w)
			}
			assertNoValues(t, r, tt.stdin, generatedToken, patSecret)
			if !strings.Contains(r.stdout, "set "+tt.key) {
				t.Errorf("stdout %q does not say what was set", r.stdout)
			}
		})
	}
}

func TestSetWritesNothingOnBadInput(t *testing.T) {
	tests := []struct {
		name     string
		initial  string
		secretID string // "" for the created secret's ARN
		args     []string
		stdin    string
		code     int
		stderr   string
	}{
		{"unknown key", stackSecret, "", []string{"set", "tableau_pat"}, "v", exitUsage, `unknown key "tableau_pat"`},
		{"no key", stackSecret, "", []string{"set"}, "v", exitUsage, "set takes one key"},
		{"a value on the command line", stackSecret, "", []string{"set", "tableau_pat_secret", "v"}, "", exitUsage, "never the command line"},
		{"empty value", stackSecret, "", []string{"set", "tableau_pat_secret"}, "", exitFail, "no value for tableau_pat_secret"},
		{"only a newline", stackSecret, "", []string{"set", "tableau_pat_secret"}, "\n", exitFail, "no value for tableau_pat_secret"},
		{"two lines", stackSecret, "", []string{"set", "tableau_pat_secret"}, "a\nb\n", exitFail, "more than one line"},
		{"surrounding space", stackSecret, "", []string{"set", "tableau_pat_name"}, " bot\n", exitFail, "white space"},
		{"secret is not JSON", "user=bot;secret=s3cr3t-not-json", "", []string{"set", "tableau_pat_secret"}, "v", exitFail, "is not a JSON object"},
		{"secret is a JSON array", `["s3cr3t-not-json"]`, "", []string{"set", "tableau_pat_secret"}, "v", exitFail, "is not a JSON object"},
		{"no SECRET_ID", stackSecret, "-", []string{"set", "tableau_pat_secret"}, "v", exitFail, "SECRET_ID is not set"},
		{"no such secret", stackSecret, "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope-AbCdEf", []string{"set", "tableau_pat_secret"}, "v", exitFail, "read secret arn:aws:secretsmanager:us-east-1:123456789012:secret:nope-AbCdEf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := createSecret(t, tt.initial)
			before, version := current(t, id)
			target := id
			switch tt.secretID {
			case "":
			case "-":
				target = ""
			default:
				target = tt.secretID
			}
			r := runCmd(t, target, tt.stdin, tt.args...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.stderr) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", r.code, r.stderr, tt.code, tt.stderr)
			}
			if after, v := current(t, id); after != before || v != version {
				t.Errorf("secret changed to %q (version %s, was %s)", after, v, version)
			}
			assertNoValues(t, r, "s3cr3t-not-json", generatedToken)
		})
	}
}

func TestSetSameValueWritesNothing(t *testing.T) {
	id := createSecret(t, `{"tableau_pat_name":"bot"}`)
	_, before := current(t, id)
	r := runCmd(t, id, "bot\n", "set", "tableau_pat_name")
	if r.code != exitOK || !strings.Contains(r.stdout, "nothing written") {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if _, after := current(t, id); after != before {
		t.Error("a new version was written for an unchanged value")
	}
}

func TestSetTokenSaysToRecreateTableauWebhooks(t *testing.T) {
	id := createSecret(t, stackSecret)
	r := runCmd(t, id, "Nw5Rt8Yu1Io4Pa7Sd0Fg3Hj6Kl9Zx2Cv5Bn8Mq1W\n", "set", "tableau_webhook_token")
	if r.code != exitOK || !strings.Contains(r.stdout, "create -replace") {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestGet(t *testing.T) {
	id := createSecret(t, stackSecret)
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"generated token", []string{"get", "tableau_webhook_token"}, exitOK, generatedToken + "\n", ""},
		{"empty key", []string{"get", "tableau_pat_secret"}, exitFail, "", "tableau_pat_secret is not set"},
		{"unknown key", []string{"get", "token"}, exitUsage, "", `unknown key "token"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCmd(t, id, "", tt.args...)
			if r.code != tt.code || r.stdout != tt.stdout || !strings.Contains(r.stderr, tt.stderr) {
				t.Errorf("got exit %d, stdout %q, stderr %q; want exit %d, stdout %q, stderr containing %q", r.code, r.stdout, r.stderr, tt.code, tt.stdout, tt.stderr)
			}
		})
	}
}

func TestKeys(t *testing.T) {
	tests := []struct {
		name    string
		initial string
		code    int
		lines   []string
	}{
		{
			name:    "as the stack creates it",
			initial: stackSecret,
			code:    exitFail,
			lines: []string{
				"dbt_webhook_secret     empty", "tableau_webhook_token  set", "tableau_client_id      not set",
				"not ready: secret is missing dbt_webhook_secret, tableau_pat_name, tableau_pat_secret",
			},
		},
		{
			name:    "filled in, with a typo",
			initial: `{"dbt_webhook_secret":"whsec-1","tableau_pat_name":"bot","tableau_pat_secret":"` + patSecret + `","dbt_api_tokn":"x"}`,
			code:    exitOK,
			lines:   []string{"tableau_pat_secret     set", "dbt_api_tokn           present, but the bridge does not read it", "ready:"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := createSecret(t, tt.initial)
			r := runCmd(t, id, "", "keys")
			if r.code != tt.code {
				t.Errorf("exit %d, want %d; stderr %q", r.code, tt.code, r.stderr)
			}
			for _, l := range tt.lines {
				if !strings.Contains(r.stdout+r.stderr, l) {
					t.Errorf("output lacks %q:\n%s%s", l, r.stdout, r.stderr)
				}
			}
			assertNoValues(t, r, generatedToken, patSecret, "whsec-1")
		})
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"rotate"}, {"keys", "extra"}} {
		if r := runCmd(t, "x", "", args...); r.code != exitUsage || !strings.Contains(r.stderr, "usage: bridge-secret") {
			t.Errorf("%v: exit %d, stderr %q", args, r.code, r.stderr)
		}
	}
	if r := runCmd(t, "x", "", "-h"); r.code != exitOK || !strings.Contains(r.stdout, "usage: bridge-secret") {
		t.Errorf("-h: exit %d, stdout %q", r.code, r.stdout)
	}
}

func TestKnownKeysAreTheCredentials(t *testing.T) {
	got := strings.Join(knownKeys(), ",")
	for _, k := range []string{"dbt_webhook_secret", "tableau_pat_name", "tableau_pat_secret", "dbt_api_token", "tableau_webhook_token", "slack_webhook_url", "tableau_client_id"} {
		if !strings.Contains(","+got+",", ","+k+",") {
			t.Errorf("knownKeys() = %s, lacks %s", got, k)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// assertNoValues fails if any output holds one of the values: the command
// says which keys it touched, never what they hold.
func assertNoValues(t *testing.T, r result, values ...string) {
	t.Helper()
	for _, v := range values {
		v = strings.TrimSpace(v)
		if len(v) < 4 {
			continue
		}
		if strings.Contains(r.stdout, v) || strings.Contains(r.stderr, v) {
			t.Errorf("output reveals %q:\nstdout %s\nstderr %s", v, r.stdout, r.stderr)
		}
	}
}
