package dbtcloud

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// Fuzz targets for the webhook entry point: signature verification and the
// payload parser. Seeds come from f.Add below, from testdata/*.json and from
// testdata/fuzz/<FuzzName>/. Run one with, e.g.
//
//	go test -run='^$' -fuzz='^FuzzVerifyAndParseWebhook$' -fuzztime=60s ./pkg/dbtcloud/

const fuzzSecret = "whsec-fuzz-7d1e"

// fuzzMAC computes the expected signature independently of Sign.
func fuzzMAC(body []byte, secret string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return m.Sum(nil)
}

// asciiLower lower-cases A-Z only, so that no Unicode case folding (the
// Kelvin sign folds to "k") can make a non-hex header look like hex.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// fuzzSeedBodies are real and tricky payloads shared by both targets.
func fuzzSeedBodies(f *testing.F) [][]byte {
	f.Helper()
	bodies := [][]byte{
		[]byte(`{"eventType":"job.run.started","data":{"jobId":"1","runId":"2","runStatus":"Running","runStatusCode":3}}`),
		[]byte(`{"eventType":"job.run.completed","data":{"jobId":"123","runId":"9","runStatus":"Success","runStatusCode":10}}`),
		[]byte(`{"eventType":"job.run.errored","data":{"jobId":"123","runId":"9","runStatus":"Errored","runStatusCode":20,"runErroredAt":"2023-01-31 21:15:20.419714+00:00"}}`),
		[]byte(`{"eventType":"job.run.completed","data":{"jobId":"1","runId":2}}`),
		[]byte(`{"accountId":"1","eventType":"job.run.completed","data":{"jobId":"1","runId":"2"}}`),
		[]byte(`{"eventType":"job.run.completed","data":{"jobId":"1","runId":"2","runStatusCode":"10"}}`),
		[]byte(`{"eventType":"job.run.completed","data":{"jobId":"1","runId":"2","runStatusCode":1e400}}`),
		[]byte(`{"accountId":-9223372036854775809,"eventType":"x","data":{"jobId":"1","runId":"2"}}`),
		[]byte(`{"timestamp":"yesterday","eventType":"job.run.completed","data":{"jobId":"1","runId":"2"}}`),
		[]byte(`{"timestamp":"2023-01-31T19:29:35+25:00","eventType":"e","data":{"jobId":"1","runId":"2"}}`),
		[]byte(`{"timestamp":null,"eventType":"e","data":null}`),
		[]byte(`{"EVENTTYPE":"job.run.completed","DATA":{"JOBID":"1","RUNID":"2"}}`),
		[]byte(`{"eventType":"e","eventType":"","data":{"jobId":"1","runId":"2"}}`),
		[]byte(`{"eventType":"e\u0000","data":{"jobId":"\ud800","runId":"\xff"}}`),
		[]byte(`{"eventType":"e","data":[]}`),
		[]byte(`{"eventType":{"a":1},"data":{}}`),
		[]byte(`[]`),
		[]byte(`null`),
		[]byte(`"job.run.completed"`),
		[]byte(`<xml/>`),
		[]byte(`{"eventType":`),
		[]byte(``),
		[]byte(" \t\n"),
		[]byte(`{"eventType":"e","data":{"jobId":"1","runId":"2","x":` + strings.Repeat("[", 300) + strings.Repeat("]", 300) + `}}`),
	}
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	if len(files) == 0 {
		f.Fatal("no testdata/*.json fixtures")
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		bodies = append(bodies, b)
	}
	return bodies
}

// FuzzVerifyAndParseWebhook mirrors the webhook path: VerifySignature, then
// ParseWebhook only for a body that verified.
func FuzzVerifyAndParseWebhook(f *testing.F) {
	for _, body := range fuzzSeedBodies(f) {
		good := hex.EncodeToString(fuzzMAC(body, fuzzSecret))
		f.Add(body, good)
		f.Add(body, strings.ToUpper(good))
		f.Add(body, " "+good+"\t\n")
		f.Add(body, "")
		f.Add(body, "sha256="+good)
		f.Add(body, good[:63])
		f.Add(body, good+"00")
		f.Add(body, hex.EncodeToString(fuzzMAC(body, "other-secret")))
	}
	f.Add([]byte(`{}`), strings.Repeat("0", 64))
	f.Add([]byte(`{}`), "\u212a"+strings.Repeat("a", 63)) // Kelvin sign folds to k

	f.Fuzz(func(t *testing.T, body []byte, header string) {
		mac := fuzzMAC(body, fuzzSecret)
		want := asciiLower(strings.TrimSpace(header)) == hex.EncodeToString(mac)

		err := VerifySignature(body, header, fuzzSecret)
		if got := err == nil; got != want {
			t.Fatalf("VerifySignature(body %q, header %q) = %v, want verified=%v", body, header, err, want)
		}
		if err != nil && !errors.Is(err, ErrBadSignature) {
			t.Fatalf("VerifySignature error = %v, want ErrBadSignature", err)
		}
		if VerifySignature(body, header, "") == nil {
			t.Fatalf("VerifySignature with an empty secret accepted header %q", header)
		}
		if err == nil {
			checkParse(t, body)
		}

		// What dbt Cloud itself would send for this body must verify, in the
		// spellings the doc comment allows, so the parser is reached for
		// every body and not only the rare ones the fuzzer signs right.
		good := hex.EncodeToString(mac)
		for _, h := range []string{good, strings.ToUpper(good), " " + good + "\r\n"} {
			if err := VerifySignature(body, h, fuzzSecret); err != nil {
				t.Fatalf("VerifySignature(body %q, correct header %q) = %v", body, h, err)
			}
		}
		checkParse(t, body)
	})
}

// FuzzParseWebhook fuzzes the payload parser alone, seeded with every JSON
// fixture of the package.
func FuzzParseWebhook(f *testing.F) {
	for _, body := range fuzzSeedBodies(f) {
		f.Add(body)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ev := checkParse(t, body)
		if ev == nil {
			return
		}
		// The decoded event survives a re-encode: what the parser accepted
		// it accepts again, unchanged.
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatalf("re-encode %+v: %v", ev, err)
		}
		again := checkParse(t, b)
		if again == nil {
			t.Fatalf("re-encoded event %s was rejected", b)
		}
		if !again.Timestamp.Equal(ev.Timestamp) {
			t.Fatalf("timestamp %v became %v", ev.Timestamp, again.Timestamp)
		}
		again.Timestamp = ev.Timestamp
		if *again != *ev {
			t.Fatalf("re-encoded event differs:\n got %+v\nwant %+v", *again, *ev)
		}
	})
}

// checkParse asserts ParseWebhook's contract and returns the event, or nil
// when the body was rejected.
func checkParse(t *testing.T, body []byte) *WebhookEvent {
	t.Helper()
	ev, err := ParseWebhook(body)
	if err != nil {
		var pe *ParseError
		if !errors.As(err, &pe) || err != error(pe) {
			t.Fatalf("ParseWebhook(%q) error %T %v, want *ParseError", body, err, err)
		}
		if ev != nil {
			t.Fatalf("ParseWebhook(%q) returned both an event and error %v", body, err)
		}
		if pe.Reason == "" || !utf8.ValidString(pe.Reason) && utf8.Valid(body) {
			t.Fatalf("ParseWebhook(%q) error reason %q", body, pe.Reason)
		}
		return nil
	}
	if ev == nil {
		t.Fatalf("ParseWebhook(%q) = nil, nil", body)
	}
	if ev.EventType == "" || ev.Data.RunID == "" || ev.Data.JobID == "" {
		t.Fatalf("ParseWebhook(%q) accepted an event without eventType, runId or jobId: %+v", body, ev)
	}
	if ev.Succeeded() && (ev.EventType != EventRunCompleted || ev.Data.RunStatusCode != StatusSuccess) {
		t.Fatalf("Succeeded() for %+v", ev)
	}
	return ev
}
