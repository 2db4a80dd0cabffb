package dbtcloud

import (
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"
)

func TestVerifySignature(t *testing.T) {
	body, err := os.ReadFile("testdata/run_completed_success.json")
	if err != nil {
		t.Fatal(err)
	}
	const secret = "whsec-test"
	good := SignatureHeader(body, secret)
	tests := []struct {
		name    string
		body    []byte
		header  string
		secret  string
		wantErr bool
	}{
		{"valid", body, good, secret, false},
		{"uppercase hex", body, strings.ToUpper(good), secret, false},
		{"surrounding spaces", body, " " + good + " ", secret, false},
		{"tampered body", append([]byte(" "), body...), good, secret, true},
		{"one byte changed", []byte(strings.Replace(string(body), `"123"`, `"124"`, 1)), good, secret, true},
		{"wrong secret", body, good, "other", true},
		{"missing header", body, "", secret, true},
		{"not hex", body, "sha256=" + good, secret, true},
		{"truncated", body, good[:32], secret, true},
		{"empty secret", body, hex.EncodeToString(Sign(body, "")), "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifySignature(tt.body, tt.header, tt.secret)
			if (err != nil) != tt.wantErr {
				t.Fatalf("VerifySignature() = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}

func TestParseWebhook(t *testing.T) {
	success, err := os.ReadFile("testdata/run_completed_success.json")
	if err != nil {
		t.Fatal(err)
	}
	errored, err := os.ReadFile("testdata/run_completed_errored.json")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		body        string
		wantErr     string // substring of the error; "" for success
		wantSuccess bool
		wantRun     string
	}{
		{name: "success fixture", body: string(success), wantSuccess: true, wantRun: "12345"},
		{name: "errored fixture", body: string(errored), wantSuccess: false, wantRun: "12346"},
		{name: "started event", body: `{"eventType":"job.run.started","data":{"jobId":"1","runId":"2","runStatus":"Running","runStatusCode":3}}`, wantRun: "2"},
		{name: "success word but code 20", body: `{"eventType":"job.run.completed","data":{"jobId":"1","runId":"2","runStatus":"Success","runStatusCode":20}}`, wantRun: "2"},
		{name: "not json", body: `<xml/>`, wantErr: "not valid JSON"},
		{name: "truncated", body: string(success[:40]), wantErr: "not valid JSON"},
		{name: "empty", body: ``, wantErr: "not valid JSON"},
		{name: "missing eventType", body: `{"data":{"jobId":"1","runId":"2"}}`, wantErr: "missing eventType"},
		{name: "missing runId and jobId", body: `{"eventType":"job.run.completed","data":{}}`, wantErr: "missing data.runId, data.jobId"},
		{name: "no data", body: `{"eventType":"job.run.completed"}`, wantErr: "data.runId"},
		{name: "runId as number", body: `{"eventType":"job.run.completed","data":{"jobId":"1","runId":2}}`, wantErr: `"data.runId" must be a string`},
		{name: "accountId as string", body: `{"accountId":"1","eventType":"job.run.completed","data":{"jobId":"1","runId":"2"}}`, wantErr: `"accountId" must be a number`},
		{name: "status code as string", body: `{"eventType":"job.run.completed","data":{"jobId":"1","runId":"2","runStatusCode":"10"}}`, wantErr: `"data.runStatusCode" must be a number`},
		{name: "bad timestamp", body: `{"timestamp":"yesterday","eventType":"job.run.completed","data":{"jobId":"1","runId":"2"}}`, wantErr: "not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := ParseWebhook([]byte(tt.body))
			if tt.wantErr != "" {
				var pe *ParseError
				if !errors.As(err, &pe) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseWebhook() error = %v, want ParseError containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseWebhook() error = %v", err)
			}
			if ev.Data.RunID != tt.wantRun {
				t.Errorf("RunID = %q, want %q", ev.Data.RunID, tt.wantRun)
			}
			if got := ev.Succeeded(); got != tt.wantSuccess {
				t.Errorf("Succeeded() = %v, want %v", got, tt.wantSuccess)
			}
		})
	}
}

func TestParseWebhookFields(t *testing.T) {
	body, err := os.ReadFile("testdata/run_completed_success.json")
	if err != nil {
		t.Fatal(err)
	}
	ev, err := ParseWebhook(body)
	if err != nil {
		t.Fatal(err)
	}
	if ev.AccountID != 1 || ev.Data.JobID != "123" || ev.Data.RunStatusCode != StatusSuccess ||
		ev.Data.EnvironmentName != "Production" || ev.Timestamp.Year() != 2023 || ev.Timestamp.Nanosecond() != 789265936 {
		t.Errorf("decoded event = %+v", ev)
	}
}

func TestRunStatus(t *testing.T) {
	tests := []struct {
		s                 RunStatus
		terminal, success bool
		name              string
	}{
		{StatusQueued, false, false, "Queued"},
		{StatusStarting, false, false, "Starting"},
		{StatusRunning, false, false, "Running"},
		{StatusSuccess, true, true, "Success"},
		{StatusError, true, false, "Error"},
		{StatusCancelled, true, false, "Cancelled"},
		{RunStatus(7), false, false, "Status(7)"},
	}
	for _, tt := range tests {
		if tt.s.Terminal() != tt.terminal || tt.s.Success() != tt.success || tt.s.String() != tt.name {
			t.Errorf("%d: Terminal=%v Success=%v String=%q", int(tt.s), tt.s.Terminal(), tt.s.Success(), tt.s.String())
		}
	}
}
