package remote

import (
	"bufio"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestCheckURL(t *testing.T) {
	tests := []struct {
		raw, want, wantErr string
	}{
		{raw: "https://tableau.example.com", want: "https://tableau.example.com"},
		{raw: " HTTPS://tableau.example.com/prefix ", want: "https://tableau.example.com/prefix"},
		{raw: "http://127.0.0.1:8080", want: "http://127.0.0.1:8080"},
		{raw: "http://localhost:3000", want: "http://localhost:3000"},
		{raw: "http://[::1]:3000", want: "http://[::1]:3000"},
		{raw: "http://example.com", wantErr: "must use https"},
		{raw: "example.com", wantErr: "has no host"},
		{raw: "", wantErr: "is empty"},
		{raw: "https://user:hunter2@example.com", wantErr: "user or password"},
		{raw: "ftp://example.com", wantErr: `scheme "ftp"`},
		{raw: "mailto:x@example.com", wantErr: "not a URL"},
		// A mistyped Slack URL is still a secret: errors must not quote it.
		{raw: "http://hooks.slack.com/services/T0/B0/secret-part", wantErr: "must use https"},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			u, err := CheckURL(tt.raw)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("CheckURL = %v, %v; want error %q", u, err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "secret-part") || strings.Contains(err.Error(), "hunter2") {
					t.Errorf("error %q quotes the URL", err)
				}
				return
			}
			if err != nil || u.String() != tt.want {
				t.Fatalf("CheckURL = %v, %v; want %s", u, err, tt.want)
			}
		})
	}
}

// TestDoClassifiesFailures checks the one rule every client relies on to
// decide whether a request that must not be repeated (a refresh, a dbt
// trigger) may be: was it sent?
func TestDoClassifiesFailures(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	// Reads the whole request, then hangs up without a reply: the server
	// may have acted.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = http.ReadRequest(bufio.NewReader(c))
			c.Close()
		}
	}()
	untrusted := httptest.NewUnstartedServer(http.NotFoundHandler())
	untrusted.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is the point
	untrusted.StartTLS()
	defer untrusted.Close()
	redirecting := httptest.NewServer(http.RedirectHandler("https://elsewhere.example.com/steal", http.StatusFound))
	defer redirecting.Close()

	tests := []struct {
		name          string
		url           string
		wantSent      bool
		wantPermanent bool
		wantStatus    int // a reply, not a TransportError
	}{
		{name: "connection refused", url: closedURL},
		{name: "cut after the request", url: "http://" + l.Addr().String(), wantSent: true},
		{name: "certificate not trusted", url: untrusted.URL, wantPermanent: true},
		{name: "redirect refused", url: redirecting.URL, wantStatus: http.StatusFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, tt.url+"/api/secret-token", strings.NewReader("{}"))
			resp, err := Do(NewHTTPClient(), req, "svc", "/api")
			if tt.wantStatus != 0 {
				if err != nil || resp.StatusCode != tt.wantStatus {
					t.Fatalf("Do = %v, %v; want the %d itself", resp, err, tt.wantStatus)
				}
				resp.Body.Close()
				return
			}
			var te *TransportError
			if !errors.As(err, &te) {
				t.Fatalf("Do = %v, %v; want a *TransportError", resp, err)
			}
			if te.Sent != tt.wantSent || te.Permanent() != tt.wantPermanent || te.Transient() == tt.wantPermanent {
				t.Errorf("sent=%t permanent=%t transient=%t; want sent=%t permanent=%t", te.Sent, te.Permanent(), te.Transient(), tt.wantSent, tt.wantPermanent)
			}
			if strings.Contains(err.Error(), "secret-token") || !strings.HasPrefix(err.Error(), "svc: POST /api: ") {
				t.Errorf("message %q: want the service and path given, never the URL", err)
			}
		})
	}
}

func TestReadBody(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat("x", 100)))
	}))
	defer srv.Close()
	for _, tt := range []struct {
		limit    int64
		wantLen  int
		tooLarge bool
	}{{200, 100, false}, {100, 100, false}, {10, 10, true}} {
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		data, tooLarge, err := ReadBody(resp, tt.limit)
		resp.Body.Close()
		if err != nil || len(data) != tt.wantLen || tooLarge != tt.tooLarge {
			t.Errorf("ReadBody(limit %d) = %d bytes, tooLarge=%t, %v; want %d, %t", tt.limit, len(data), tooLarge, err, tt.wantLen, tt.tooLarge)
		}
	}
}
