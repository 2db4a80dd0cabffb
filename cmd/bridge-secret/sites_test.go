package main

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

const emeaSecret = "emea-secret-3f2e1d0c"

// TestSiteKeys: -site sets and gets one key of another site's credentials,
// under tableau_sites, keeping every other key, the other sites' included.
func TestSiteKeys(t *testing.T) {
	id := createSecret(t, `{"dbt_webhook_secret":"whsec-1","tableau_pat_name":"bot","tableau_pat_secret":"`+patSecret+`",
		"tableau_sites":{"APAC":{"tableau_pat_name":"apac-bot"}}}`)
	steps := []struct {
		name  string
		args  []string
		stdin string
		code  int
		want  []string
	}{
		{"a new site's key", []string{"-site", "emea", "set", "tableau_pat_name"}, "emea-bot\n", exitOK,
			[]string{`set tableau_sites["emea"].tableau_pat_name in secret`, "kept the site's no other keys"}},
		{"its secret", []string{"-site", "emea", "set", "tableau_pat_secret"}, emeaSecret, exitOK,
			[]string{`set tableau_sites["emea"].tableau_pat_secret`, "kept the site's tableau_pat_name"}},
		{"a site's entry in another case", []string{"-site", "apac", "set", "tableau_pat_secret"}, "apac-secret-9a8b7c", exitOK,
			[]string{`set tableau_sites["APAC"].tableau_pat_secret`}},
		{"get a site's key", []string{"-site", "emea", "get", "tableau_pat_name"}, "", exitOK, []string{"emea-bot"}},
		{"a key the site has not", []string{"-site", "emea", "get", "tableau_username"}, "", exitFail,
			[]string{`tableau_sites["emea"].tableau_username is not set`}},
		{"a key no site has", []string{"-site", "emea", "set", "dbt_api_token"}, "x", exitUsage,
			[]string{`unknown key "dbt_api_token" for a site`}},
		{"tableau_sites as a whole", []string{"set", "tableau_sites"}, "{}", exitUsage,
			[]string{"tableau_sites holds the other sites' keys: set one with -site"}},
		{"a URL for a site", []string{"-site", "https://x/site/emea", "keys"}, "", exitUsage, []string{"-site: site"}},
		{"keys", []string{"keys"}, "", exitOK, []string{
			`tableau_sites["APAC"]  set: tableau_pat_name, tableau_pat_secret; signs in`,
			`tableau_sites["emea"]  set: tableau_pat_name, tableau_pat_secret; signs in`, "ready:"}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			r := runCmd(t, id, st.stdin, st.args...)
			if r.code != st.code {
				t.Fatalf("exit %d, want %d\nstdout %s\nstderr %s", r.code, st.code, r.stdout, r.stderr)
			}
			for _, w := range st.want {
				if !strings.Contains(r.stdout+r.stderr, w) {
					t.Errorf("output lacks %q:\n%s%s", w, r.stdout, r.stderr)
				}
			}
			assertNoValues(t, r, patSecret, emeaSecret, "whsec-1", "apac-secret-9a8b7c")
		})
	}
	value, _ := current(t, id)
	var got map[string]any
	if err := json.Unmarshal([]byte(value), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"dbt_webhook_secret": "whsec-1", "tableau_pat_name": "bot", "tableau_pat_secret": patSecret,
		"tableau_sites": map[string]any{
			"APAC": map[string]any{"tableau_pat_name": "apac-bot", "tableau_pat_secret": "apac-secret-9a8b7c"},
			"emea": map[string]any{"tableau_pat_name": "emea-bot", "tableau_pat_secret": emeaSecret},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("secret = %s\nwant %s", mustJSON(t, got), mustJSON(t, want))
	}
}

func TestKeysHalfASite(t *testing.T) {
	id := createSecret(t, `{"dbt_webhook_secret":"w","tableau_pat_name":"bot","tableau_pat_secret":"`+patSecret+`","tableau_sites":{"emea":{"tableau_pat_name":"emea-bot"}}}`)
	r := runCmd(t, id, "", "keys")
	if !strings.Contains(r.stdout, `tableau_sites["emea"]  set: tableau_pat_name; cannot sign in: missing tableau_pat_secret`) {
		t.Errorf("keys:\n%s%s", r.stdout, r.stderr)
	}
}
