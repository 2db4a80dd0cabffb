package main

import (
	"slices"
	"strings"
	"testing"
)

func TestParseBaseURL(t *testing.T) {
	tests := []struct {
		name      string
		raw       string
		allowHTTP bool
		want      string // the base URL, or "" for an error
		wantErr   string
	}{
		{name: "https route", raw: "https://abc.execute-api.eu-west-1.amazonaws.com/tableau/webhook", want: "https://abc.execute-api.eu-west-1.amazonaws.com/tableau/webhook"},
		{name: "trailing slash and case", raw: " HTTPS://api.example.com/tableau/webhook/ ", want: "https://api.example.com/tableau/webhook"},
		{name: "loopback http with -allow-http", raw: "http://127.0.0.1:8080/tableau/webhook", allowHTTP: true, want: "http://127.0.0.1:8080/tableau/webhook"},
		{name: "localhost http with -allow-http", raw: "http://localhost:3000/tableau/webhook", allowHTTP: true, want: "http://localhost:3000/tableau/webhook"},
		{name: "IPv6 loopback http with -allow-http", raw: "http://[::1]:3000/tableau/webhook", allowHTTP: true, want: "http://[::1]:3000/tableau/webhook"},
		{name: "loopback http", raw: "http://127.0.0.1:8080/tableau/webhook", wantErr: "-allow-http"},
		{name: "remote http", raw: "http://api.example.com/tableau/webhook", allowHTTP: true, wantErr: "only to https"},
		{name: "empty", raw: "", wantErr: "-url is required"},
		{name: "relative", raw: "/tableau/webhook", wantErr: "not an absolute URL"},
		{name: "no host", raw: "https:///tableau/webhook", wantErr: "not an absolute URL"},
		{name: "user info", raw: "https://u:p@api.example.com/tableau/webhook", wantErr: "user or password"},
		{name: "query", raw: "https://api.example.com/tableau/webhook?x=1", wantErr: "query"},
		{name: "fragment", raw: "https://api.example.com/tableau/webhook#x", wantErr: "fragment"},
		{name: "other scheme", raw: "wss://api.example.com/tableau/webhook", wantErr: "must be https"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseBaseURL(tt.raw, tt.allowHTTP)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseBaseURL(%q) = %v, %v; want an error containing %q", tt.raw, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got.String() != tt.want {
				t.Fatalf("parseBaseURL(%q) = %v, %v; want %s", tt.raw, got, err, tt.want)
			}
		})
	}
}

func TestDisplayURL(t *testing.T) {
	tests := []struct{ raw, want string }{
		{"https://api.example.com/tableau/webhook/" + testToken, "https://api.example.com/tableau/webhook/****S0dG"},
		{"https://api.example.com/tableau/webhook/" + testToken + "/", "https://api.example.com/tableau/webhook/****S0dG/"},
		{"https://hooks.example.com/short", "https://hooks.example.com/****"},
		{"https://hooks.example.com/in?token=abc&z=1", "https://hooks.example.com/****?token=****&z=****"},
		{"https://user:pw@hooks.example.com/x", "https://****@hooks.example.com/****"},
		{"https://hooks.example.com", "https://hooks.example.com"},
		{"", "(unparseable URL)"},
		{"::not a url", "(unparseable URL)"},
	}
	for _, tt := range tests {
		if got := displayURL(tt.raw); got != tt.want {
			t.Errorf("displayURL(%q) = %q, want %q", tt.raw, got, tt.want)
		}
	}
}

func TestCheckToken(t *testing.T) {
	tests := []struct{ token, wantErr string }{
		{testToken, ""},
		{"a-b_c.d~e" + testToken, ""},
		{"", "is missing"},
		{"0123456789abcde", "too short"},
		{testToken + "/x", "URL path segment"},
		{testToken + " ", "URL path segment"},
		{testToken + "é", "URL path segment"},
	}
	for _, tt := range tests {
		err := checkToken(tt.token, "TABLEAU_WEBHOOK_TOKEN")
		if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("checkToken(%q) = %v, want %q", tt.token, err, tt.wantErr)
		}
		if err != nil && tt.token != "" && strings.Contains(err.Error(), tt.token) {
			t.Errorf("checkToken error shows the token: %v", err)
		}
	}
}

func TestSameURL(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"https://a.example.com/x/t", "https://a.example.com/x/t", true},
		{"https://A.example.com/x/t/", "HTTPS://a.example.com/x/t", true},
		{"https://a.example.com/x/t", "https://a.example.com/x/u", false},
		{"https://a.example.com/x/t", "http://a.example.com/x/t", false},
		{"https://a.example.com/x/t", "https://b.example.com/x/t", false},
	}
	for _, tt := range tests {
		if got := sameURL(tt.a, tt.b); got != tt.want {
			t.Errorf("sameURL(%q, %q) = %t", tt.a, tt.b, got)
		}
	}
}

func TestRedactor(t *testing.T) {
	var r redactor
	r.add(testToken, "short", "", "p@ss/word!")
	got := r.redact("url .../" + testToken + " body short p%40ss%2Fword%21 p@ss%2Fword%21 p@ss/word!")
	want := "url .../****S0dG body short **** **** ****"
	if got != want {
		t.Errorf("redact = %q, want %q", got, want)
	}
}

func TestParseEvents(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr string
	}{
		{in: strings.Join(defaultEvents, ","), want: defaultEvents},
		{in: " workbookrefreshfailed , DatasourceRefreshStarted,WorkbookRefreshFailed", want: []string{"WorkbookRefreshFailed", "DatasourceRefreshStarted"}},
		{in: "WorkbookRefreshFailed,Nope", wantErr: `unknown event "Nope"; valid events: ` + strings.Join(refreshEvents, ", ")},
		{in: "SiteDeleted", wantErr: "SiteDeleted is not a refresh event"},
		{in: "", wantErr: "empty name"},
		{in: "WorkbookRefreshFailed,,", wantErr: "empty name"},
	}
	for _, tt := range tests {
		got, err := parseEvents(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseEvents(%q) = %v, %v; want error %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("parseEvents(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}
