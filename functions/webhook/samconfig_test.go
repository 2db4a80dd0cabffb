package main

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// samconfig reads samconfig.toml's tables and their string values: the
// file is flat (table headers and key = "value" lines), so this is enough
// without a TOML parser.
func samconfig(t *testing.T) map[string]map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "samconfig.toml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	header := regexp.MustCompile(`^\[([A-Za-z0-9_.-]+)\]\s*$`)
	kv := regexp.MustCompile(`^([A-Za-z0-9_]+)\s*=\s*(.*?)\s*$`)
	tables := map[string]map[string]string{}
	table := ""
	for sc := bufio.NewScanner(f); sc.Scan(); {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if m := header.FindStringSubmatch(line); m != nil {
			table = m[1]
			tables[table] = map[string]string{}
			continue
		}
		if m := kv.FindStringSubmatch(line); m != nil && table != "" {
			tables[table][m[1]] = strings.Trim(m[2], `"`)
		}
	}
	return tables
}

// TestSamconfigLocalEnv: every sam local command that runs the functions
// gets events/env.json; without it, sam local start-api runs them with
// STATE_TABLE=StateTable, NOTIFY_TOPIC_ARN=NotificationTopic and no
// credentials. (The file pins no region either, but sam deploy --guided
// writes the one chosen back into it, so a test cannot insist.)
func TestSamconfigLocalEnv(t *testing.T) {
	tables := samconfig(t)
	for _, cmd := range []string{"local_invoke", "local_start_api", "local_start_lambda"} {
		if got := tables["default."+cmd+".parameters"]["env_vars"]; got != "events/env.json" {
			t.Errorf("samconfig.toml: [default.%s.parameters] env_vars = %q, want \"events/env.json\"", cmd, got)
		}
	}
}
