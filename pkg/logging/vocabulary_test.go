package logging_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// vocabulary is every key the bridge logs with, and what its value is. A key
// that is not here is either a new word for an old thing (use the old word)
// or a new thing (add it here and to the package doc).
var vocabulary = map[string]string{
	"request_id": "string", "dbt_job_id": "string", "dbt_run_id": "string", "dbt_run_url": "string",
	"dbt_status": "string", "event_id": "string", "event_type": "string", "target": "string",
	"tableau_item_id": "string", "tableau_item_name": "string", "tableau_job_id": "string", "tableau_site": "string",
	"tableau_event": "string", "refresh_state": "string", "result": "string", "rode_on": "string",
	"targets": "count", "unsettled": "count", "failed": "count", "deferred": "count",
	"notes": "string", "reason": "string", "error": "string", "notification_key": "string", "kind": "string",
	"credentials": "string: which credentials, never a secret",
	"method":      "string", "path": "string", "status": "number", "bytes": "count", "duration": "duration",
	"attempt": "count", "attempts": "count", "retry_in": "duration", "retry_at": "time",
	"age": "duration", "ahead": "duration", "next_check_in": "duration", "triggered_at": "time",
	// Tableau sign-in and version negotiation.
	"site": "string", "site_id": "string", "user_id": "string", "auth": "string", "version": "string", "got": "string", "code": "string",
	// Slack's host (never its URL, which is a secret).
	"host": "string",
	// The Tableau route's token check, and the router.
	"configured": "bool", "route_key": "string", "payload_version": "string", "routes": "string",
	// Building the lineage index from Tableau's Metadata API.
	"connection": "string", "stage": "string", "tables": "count", "page_size": "count", "next_page_size": "count", "slowest_page": "duration",
	// CloudWatch embedded metrics.
	"NotificationsLost": "count", "ExternalRefreshes": "count",
}

// logMethods are slog's logging calls and where their key-value pairs
// start.
var logMethods = map[string]int{
	"Debug": 1, "Info": 1, "Warn": 1, "Error": 1,
	"DebugContext": 2, "InfoContext": 2, "WarnContext": 2, "ErrorContext": 2,
	"Log": 3, "With": 0,
}

// TestOneVocabulary reads every non-test Go file of the module and checks
// that each key logged with a string literal is in the vocabulary.
func TestOneVocabulary(t *testing.T) {
	root := filepath.Join("..", "..")
	fset := token.NewFileSet()
	unknown := map[string][]string{}
	seen := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && p != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			first, ok := logMethods[sel.Sel.Name]
			if !ok {
				return true
			}
			if id, ok := sel.X.(*ast.Ident); ok && id.Name == "logging" && sel.Sel.Name == "With" {
				first = 1 // logging.With(ctx, args...)
			}
			for i := first; i < len(call.Args); i++ {
				lit, ok := call.Args[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING || i+1 >= len(call.Args) {
					continue // an slog.Attr, or a message
				}
				key, _ := strconv.Unquote(lit.Value)
				seen++
				if _, ok := vocabulary[key]; !ok {
					unknown[key] = append(unknown[key], fset.Position(lit.Pos()).String())
				}
				i++ // its value
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen < 50 {
		t.Fatalf("found only %d logged keys: is the walk looking at the module?", seen)
	}
	keys := make([]string, 0, len(unknown))
	for k := range unknown {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Errorf("log key %q is not in the vocabulary (pkg/logging): %s", k, strings.Join(unknown[k], ", "))
	}
}
