package webhook_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/dbtcloud"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/lineage"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refresh"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/refreshmap"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/secrets"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/state"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/tableau"
	"github.com/dbt-tableau-refresh/dbt-tableau-refresh/pkg/webhook"
)

// The secret of the demo deployment (events/env.json), so that the sample
// events in events/ verify as they are.
const fuzzWebhookSecret = "local-demo-secret"

// fuzzNow is shortly after the sample events in events/ were sent.
var fuzzNow = time.Date(2026, 11, 23, 6, 0, 10, 0, time.UTC)

const fuzzMap = `{"jobs":{"123":[{"workbook":"Sales Overview","project":"Finance"},{"datasource":"Orders"},{"datasource_id":"ds-customers"}],` +
	`"456":[{"workbook_id":"wb-static"}]}}`

type fuzzSecrets struct{}

func (fuzzSecrets) Credentials(context.Context) (*secrets.Credentials, error) {
	return &secrets.Credentials{DBTWebhookSecret: fuzzWebhookSecret, TableauPATName: "bot", TableauPATSecret: "pat"}, nil
}

var _ secrets.Source = fuzzSecrets{}

// fuzzTableau counts every call; mode chooses how Tableau behaves.
type fuzzTableau struct {
	calls    atomic.Int64 // client constructions and API calls
	refreshs atomic.Int64 // refresh requests
	mode     int          // 0: accepts, 1: rejects the bridge's credentials, 2: answers 503
}

func (f *fuzzTableau) err() error {
	if f.mode == 2 {
		return &tableau.Error{StatusCode: http.StatusServiceUnavailable, Method: http.MethodPost, Path: "/fuzz"}
	}
	return nil
}

// SignIn fails in mode 1 only, as Tableau does for a revoked PAT.
func (f *fuzzTableau) SignIn(context.Context) error {
	f.calls.Add(1)
	if f.mode == 1 {
		return &tableau.SignInError{Site: "fuzz", Credentials: `personal access token "fuzz"`,
			Err: &tableau.Error{StatusCode: http.StatusUnauthorized, Code: tableau.CodeBadCredentials, Method: http.MethodPost, Path: "/auth/signin"}}
	}
	return nil
}

func (f *fuzzTableau) FindWorkbook(_ context.Context, name, project string) (*tableau.Workbook, error) {
	f.calls.Add(1)
	if err := f.err(); err != nil {
		return nil, err
	}
	return &tableau.Workbook{ID: "wb-" + name, Name: name, Project: tableau.Project{Name: project}}, nil
}

func (f *fuzzTableau) FindDatasource(_ context.Context, name, project string) (*tableau.Datasource, error) {
	f.calls.Add(1)
	if err := f.err(); err != nil {
		return nil, err
	}
	return &tableau.Datasource{ID: "ds-" + name, Name: name, Project: tableau.Project{Name: project}}, nil
}

func (f *fuzzTableau) RefreshWorkbook(_ context.Context, id string, _ ...tableau.RefreshOption) (*tableau.RefreshResult, error) {
	return f.refresh(id)
}

func (f *fuzzTableau) RefreshDatasource(_ context.Context, id string, _ ...tableau.RefreshOption) (*tableau.RefreshResult, error) {
	return f.refresh(id)
}

func (f *fuzzTableau) refresh(id string) (*tableau.RefreshResult, error) {
	f.calls.Add(1)
	f.refreshs.Add(1)
	if err := f.err(); err != nil {
		return nil, err
	}
	return &tableau.RefreshResult{Job: &tableau.Job{ID: "job-" + id}}, nil
}

func fuzzHandler(t *testing.T, mode int) (*webhook.DBTHandler, *fuzzTableau, *refreshmap.Map) {
	t.Helper()
	m, err := refreshmap.Parse([]byte(fuzzMap))
	if err != nil {
		t.Fatal(err)
	}
	tab := &fuzzTableau{mode: mode}
	now := func() time.Time { return fuzzNow }
	r := refresh.New(state.NewMemory(state.WithClock(now)), tab, refresh.WithClock(now))
	h, err := webhook.NewDBT(fuzzSecrets{}, r, lineage.MapOnly(m), webhook.WithMaxEventAge(24*time.Hour), webhook.WithClock(now))
	if err != nil {
		t.Fatal(err)
	}
	return h, tab, m
}

// fuzzDeliver calls Handle and checks what every reply must be.
func fuzzDeliver(t *testing.T, h *webhook.DBTHandler, req events.APIGatewayV2HTTPRequest) (int, webhook.DBTReply) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := h.Handle(ctx, req)
	if err != nil {
		t.Fatalf("Handle returned error %v", err)
	}
	switch resp.StatusCode {
	case 200, 400, 401, 405, 413, 503:
	default:
		t.Fatalf("status %d for %+v", resp.StatusCode, req)
	}
	if ct := resp.Headers["Content-Type"]; ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	var reply webhook.DBTReply
	if !json.Valid([]byte(resp.Body)) || json.Unmarshal([]byte(resp.Body), &reply) != nil || !strings.HasPrefix(resp.Body, "{") {
		t.Fatalf("reply %q is not a JSON object", resp.Body)
	}
	if reply.Message == "" {
		t.Fatalf("reply %q has no message", resp.Body)
	}
	return resp.StatusCode, reply
}

func fuzzRequest(body, header, method string, b64 bool, headerName string) events.APIGatewayV2HTTPRequest {
	req := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: webhook.DBTRoute, RawPath: "/dbt/webhook",
		Headers:         map[string]string{"content-type": "application/json", headerName: header},
		Body:            body,
		IsBase64Encoded: b64,
	}
	req.RequestContext.HTTP.Method = method
	req.RequestContext.RequestID = "fuzz"
	return req
}

// FuzzHandler drives (*webhook.DBTHandler).Handle entirely in memory: static
// credentials, the memory state store, a fake Tableau that counts calls. It
// needs neither moto_server nor the network (the package's TestMain starts
// moto_server anyway; this target does not use it). Run it with
//
//	go test -run='^$' -fuzz='^FuzzHandler$' -fuzztime=60s ./pkg/webhook/
//
// Each input is delivered twice: once as given (body, Authorization header,
// base64 flag), and once signed the way dbt Cloud signs it. Properties: no
// panic; the status is one of 200, 400, 401, 405, 413, 503; the reply is a
// JSON object; a delivery whose signature does not verify gets 401 (or an
// earlier 400/405/413) and reaches neither the parser nor Tableau; a signed
// delivery is answered by what its payload says; a signed delivery repeated
// queues no second refresh.
func FuzzHandler(f *testing.F) {
	// The sample deliveries of events/ (real API Gateway events, signed with
	// the demo secret), as API Gateway hands them over.
	samples, err := filepath.Glob(filepath.Join("..", "..", "events", "dbt-*.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range samples {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		var ev events.APIGatewayV2HTTPRequest
		if err := json.Unmarshal(b, &ev); err != nil {
			f.Fatalf("%s: %v", name, err)
		}
		f.Add([]byte(ev.Body), ev.Headers["authorization"], ev.IsBase64Encoded)
	}
	payload := func(job, status string, code int, ts string) []byte {
		return []byte(`{"accountId":1,"webhookId":"wsu_1","eventId":"wev_1","timestamp":"` + ts + `","eventType":"job.run.completed","webhookName":"t",` +
			`"data":{"jobId":"` + job + `","jobName":"Daily","runId":"70002","runStatus":"` + status + `","runStatusCode":` + strconv.Itoa(code) + `}}`)
	}
	sign := func(b []byte) string { return dbtcloud.SignatureHeader(b, fuzzWebhookSecret) }
	for _, b := range [][]byte{
		payload("123", "Success", 10, "2026-11-23T06:00:00Z"),
		payload("456", "Success", 10, "2026-11-23T06:00:00Z"),
		payload("999", "Success", 10, "2026-11-23T06:00:00Z"),
		payload("123", "Success", 10, "2026-11-20T06:00:00Z"),
		payload("123", "Success", 10, "0001-01-01T00:00:00Z"),
		payload("123", "Success", 20, "2026-11-23T06:00:00Z"),
		payload("123", "Errored", 20, "2026-11-23T06:00:00Z"),
		[]byte(`{"eventType":"job.run.completed","data":{"jobId":"123","runStatus":"Success","runStatusCode":10}}`),
		[]byte(`{"eventType":"job.run.completed","data":{"jobId":"123","runId":5}}`),
		[]byte(`{"eventType":`),
		[]byte(``),
	} {
		f.Add(b, sign(b), false)
		f.Add([]byte(base64.StdEncoding.EncodeToString(b)), sign(b), true)
		f.Add(b, strings.ToUpper(sign(b)), false)
		f.Add(b, "", false)
		f.Add(b, sign(append(b, ' ')), false)
	}
	f.Add([]byte(`%%%`), "", true)
	f.Add([]byte(`e30=`), sign([]byte(`{}`)), true)
	f.Add([]byte(`e30`), sign([]byte(`{}`)), true)

	f.Fuzz(func(t *testing.T, body []byte, sig string, b64 bool) {
		// What dbt signed: the body, or what it decodes to when it came
		// base64-encoded.
		payload := body
		decoded, decodeErr := base64.StdEncoding.DecodeString(string(body))
		if b64 && decodeErr == nil {
			payload = decoded
		}
		mode := len(payload) % 3
		headerName := "authorization"
		if len(sig)%2 == 1 {
			headerName = "Authorization"
		}
		method := [...]string{http.MethodPost, http.MethodPost, "", http.MethodGet}[len(sig)%4]

		// 1. As given.
		h, tab, _ := fuzzHandler(t, mode)
		status, reply := fuzzDeliver(t, h, fuzzRequest(string(body), sig, method, b64, headerName))
		mac := hmac.New(sha256.New, []byte(fuzzWebhookSecret))
		mac.Write(payload)
		verified := (!b64 || decodeErr == nil) &&
			fuzzLowerASCII(strings.TrimSpace(sig)) == hex.EncodeToString(mac.Sum(nil))
		switch {
		case method == http.MethodGet:
			if status != 405 {
				t.Fatalf("GET answered %d %q", status, reply.Message)
			}
		case b64 && decodeErr != nil:
			if status != 400 {
				t.Fatalf("bad base64 %q answered %d %q", body, status, reply.Message)
			}
		case !verified:
			if status != 401 || !strings.Contains(reply.Message, "signature") {
				t.Fatalf("unverified body %q with header %q answered %d %q, want 401", payload, sig, status, reply.Message)
			}
		default:
			fuzzCheckSigned(t, payload, status, reply, tab, mode)
		}
		if !verified || method == http.MethodGet {
			if n := tab.calls.Load(); n != 0 {
				t.Fatalf("rejected delivery (%d) made %d Tableau calls", status, n)
			}
			if reply.RunID != "" || reply.JobID != "" || len(reply.Targets) != 0 {
				t.Fatalf("rejected delivery (%d) was parsed: %+v", status, reply)
			}
		}

		// 2. Signed as dbt Cloud signs it, on a fresh deployment, twice.
		h, tab, _ = fuzzHandler(t, mode)
		enc := string(payload)
		if b64 {
			enc = base64.StdEncoding.EncodeToString(payload)
		}
		req := fuzzRequest(enc, dbtcloud.SignatureHeader(payload, fuzzWebhookSecret), http.MethodPost, b64, headerName)
		status, reply = fuzzDeliver(t, h, req)
		fuzzCheckSigned(t, payload, status, reply, tab, mode)
		refreshes := tab.refreshs.Load()
		status2, reply2 := fuzzDeliver(t, h, req)
		if n := tab.refreshs.Load(); n != refreshes && mode == 0 {
			t.Fatalf("a repeated delivery of %q queued %d more refreshes", payload, n-refreshes)
		}
		if status == 200 && mode == 0 && status2 != 200 {
			t.Fatalf("repeated delivery answered %d %q after 200", status2, reply2.Message)
		}
		for _, o := range reply2.Targets {
			if mode == 0 && o.Result != state.OutcomeDuplicate {
				t.Fatalf("repeated delivery: target %s is %q, want %q", o.Name, o.Result, state.OutcomeDuplicate)
			}
		}
	})
}

// fuzzCheckSigned checks the answer to a delivery whose signature verified.
func fuzzCheckSigned(t *testing.T, payload []byte, status int, reply webhook.DBTReply, tab *fuzzTableau, mode int) {
	t.Helper()
	ev, err := dbtcloud.ParseWebhook(payload)
	if err != nil {
		if status != 400 || tab.calls.Load() != 0 {
			t.Fatalf("signed invalid payload %q (%v) answered %d %q after %d Tableau calls", payload, err, status, reply.Message, tab.calls.Load())
		}
		return
	}
	if reply.RunID != ev.Data.RunID || reply.JobID != ev.Data.JobID {
		t.Fatalf("reply %+v is not about run %q of job %q", reply, ev.Data.RunID, ev.Data.JobID)
	}
	age := fuzzNow.Sub(ev.Timestamp)
	if ev.Succeeded() && (ev.Timestamp.IsZero() || age < -webhook.MaxClockSkew) {
		if status != 400 || tab.calls.Load() != 0 {
			t.Fatalf("successful run dated %v answered %d %q after %d Tableau calls, want 400", ev.Timestamp, status, reply.Message, tab.calls.Load())
		}
		return
	}
	if status != 200 && status != 503 {
		t.Fatalf("signed valid payload %q answered %d %q", payload, status, reply.Message)
	}
	m, _ := refreshmap.Parse([]byte(fuzzMap))
	targets := m.Targets(ev.Data.JobID)
	if !ev.Succeeded() || age > 24*time.Hour || len(targets) == 0 {
		if status != 200 || tab.calls.Load() != 0 || len(reply.Targets) != 0 {
			t.Fatalf("payload %q needs no refresh but got %d %+v after %d Tableau calls", payload, status, reply, tab.calls.Load())
		}
		return
	}
	if len(reply.Targets) != len(targets) {
		t.Fatalf("reply lists %d targets, job %s has %d", len(reply.Targets), ev.Data.JobID, len(targets))
	}
	// Rejected credentials (mode 1) are the bridge's own setup failing,
	// which a person fixes while dbt redelivers: 503, as for Tableau's 503
	// (mode 2).
	want := map[int]int{0: 200, 1: 503, 2: 503}[mode]
	if status != want || tab.calls.Load() == 0 {
		t.Fatalf("payload %q with Tableau mode %d answered %d %+v after %d calls, want %d", payload, mode, status, reply, tab.calls.Load(), want)
	}
	for _, o := range reply.Targets {
		if mode == 0 && o.Result != state.OutcomeRefreshed || mode != 0 && o.Result != state.OutcomeFailed {
			t.Fatalf("mode %d: target %s: %+v", mode, o.Name, o)
		}
	}
}

// fuzzLowerASCII lower-cases A-Z only: no Unicode folding can turn a
// header that is not hex into one that verifies.
func fuzzLowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
