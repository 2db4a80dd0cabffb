package secrets_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/motoserver"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/secrets"
)

var sm *secretsmanager.Client

func TestMain(m *testing.M) {
	os.Exit(motoserver.Main(m, func(s *motoserver.Server) {
		cfg, err := s.AWSConfig(context.Background())
		if err != nil {
			panic(err)
		}
		sm = secretsmanager.NewFromConfig(cfg)
	}))
}

// countingAPI counts GetSecretValue calls on their way to moto_server.
type countingAPI struct {
	calls atomic.Int32
	fail  atomic.Bool
}

func (c *countingAPI) GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	c.calls.Add(1)
	if c.fail.Load() {
		return nil, fmt.Errorf("injected outage")
	}
	return sm.GetSecretValue(ctx, in, opts...)
}

func createSecret(t *testing.T, value string) string {
	t.Helper()
	name := fmt.Sprintf("%s-%d", t.Name(), time.Now().UnixNano())
	name = strings.NewReplacer("/", "-", " ", "-").Replace(name)
	if _, err := sm.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{Name: &name, SecretString: &value}); err != nil {
		t.Fatal(err)
	}
	return name
}

const full = `{"dbt_webhook_secret":"whsec","tableau_pat_name":"bridge","tableau_pat_secret":"pat-s3cret"}`

func TestCacheFetchesOncePerTTL(t *testing.T) {
	id := createSecret(t, full)
	api := &countingAPI{}
	now := time.Unix(1000, 0)
	c := secrets.NewCache(api, id, secrets.WithTTL(time.Minute), secrets.WithClock(func() time.Time { return now }))
	ctx := context.Background()

	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			creds, err := c.Credentials(ctx)
			if err != nil || creds.TableauPATSecret != "pat-s3cret" {
				t.Errorf("Credentials() = %v, %v", creds, err)
			}
		}()
	}
	wg.Wait()
	if got := api.calls.Load(); got != 1 {
		t.Fatalf("GetSecretValue calls = %d, want 1", got)
	}
	now = now.Add(61 * time.Second)
	if _, err := c.Credentials(ctx); err != nil {
		t.Fatal(err)
	}
	if got := api.calls.Load(); got != 2 {
		t.Fatalf("GetSecretValue calls after TTL = %d, want 2", got)
	}

	// An outage after expiry serves the stale value for one more TTL, then fails.
	api.fail.Store(true)
	now = now.Add(61 * time.Second)
	if _, err := c.Credentials(ctx); err != nil {
		t.Fatalf("stale value not served during outage: %v", err)
	}
	now = now.Add(2 * time.Minute)
	if _, err := c.Credentials(ctx); err == nil || !strings.Contains(err.Error(), "injected outage") {
		t.Fatalf("Credentials() after grace = %v, want the outage error", err)
	}
}

func TestCacheErrors(t *testing.T) {
	tests := []struct {
		name, value, want string
	}{
		{"not json", `pat-s3cret`, "not a JSON object"},
		{"missing webhook secret", `{"tableau_pat_name":"a","tableau_pat_secret":"b"}`, "missing dbt_webhook_secret"},
		{"missing pat", `{"dbt_webhook_secret":"a"}`, "tableau_pat_name, tableau_pat_secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := createSecret(t, tt.value)
			_, err := secrets.NewCache(sm, id).Credentials(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "pat-s3cret") {
				t.Errorf("error reveals the secret: %v", err)
			}
		})
	}
	t.Run("unknown secret", func(t *testing.T) {
		_, err := secrets.NewCache(sm, "no-such-secret").Credentials(context.Background())
		if err == nil || !strings.Contains(err.Error(), "read secret no-such-secret") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestConnectedAppSuffices(t *testing.T) {
	c, err := secrets.Parse(`{"dbt_webhook_secret":"w","tableau_client_id":"c","tableau_secret_id":"i","tableau_secret_value":"v","tableau_username":"u"}`)
	if err != nil || !c.ConnectedApp() {
		t.Fatalf("Parse() = %v, %v", c, err)
	}
}

func TestCredentialsNeverPrintValues(t *testing.T) {
	c, err := secrets.Parse(full)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%v %+v", *c, *c), c.LogValue().String()} {
		if strings.Contains(s, "whsec") || strings.Contains(s, "pat-s3cret") {
			t.Errorf("printed credentials reveal a secret: %s", s)
		}
	}
}

func TestEnv(t *testing.T) {
	env := map[string]string{"DBT_WEBHOOK_SECRET": "w", "TABLEAU_PAT_NAME": "n", "TABLEAU_PAT_SECRET": "s"}
	c, err := secrets.Env{Getenv: func(k string) string { return env[k] }}.Credentials(context.Background())
	if err != nil || c.TableauPATName != "n" {
		t.Fatalf("Env = %v, %v", c, err)
	}
	delete(env, "TABLEAU_PAT_SECRET")
	if _, err := (secrets.Env{Getenv: func(k string) string { return env[k] }}).Credentials(context.Background()); err == nil || !strings.Contains(err.Error(), "tableau_pat_secret") {
		t.Fatalf("err = %v", err)
	}
}
