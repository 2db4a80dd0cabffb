package motoserver

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

func TestStartServesSecretsManager(t *testing.T) {
	ctx := context.Background()
	s, err := Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	cfg, err := s.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sm := secretsmanager.NewFromConfig(cfg)
	name, value := "motoserver-test", `{"k":"v"}`
	if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: &name, SecretString: &value}); err != nil {
		t.Fatalf("CreateSecret: %v", err)
	}
	out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: &name})
	if err != nil {
		t.Fatalf("GetSecretValue: %v", err)
	}
	if *out.SecretString != value {
		t.Errorf("SecretString = %q, want %q", *out.SecretString, value)
	}
}
