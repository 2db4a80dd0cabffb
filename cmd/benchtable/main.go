// Command benchtable turns `go test -bench` output (and the load tests'
// report lines) read on stdin into the one Markdown table that `make bench`
// prints and the README's Performance section shows.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
}

// row is one measurement: a name and its figures in the order measured.
type row struct {
	name    string
	figures []string
}

func run(in io.Reader, out io.Writer) error {
	var rows []row
	var failed []string
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "Benchmark"):
			if r, ok := parseBench(line); ok {
				rows = append(rows, r)
			}
		case strings.Contains(line, "LOAD: "):
			// t.Logf prefixes the file and line.
			name, rest, _ := strings.Cut(strings.TrimSpace(line[strings.Index(line, "LOAD: ")+len("LOAD: "):]), " ")
			if name != "" {
				rows = append(rows, row{name: "load: " + strings.TrimSuffix(name, ":"), figures: []string{strings.TrimSpace(rest)}})
			}
		case strings.HasPrefix(line, "--- FAIL") || strings.HasPrefix(line, "FAIL"):
			failed = append(failed, line)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if len(rows) == 0 {
		return fmt.Errorf("no benchmark lines on stdin")
	}
	fmt.Fprintln(out, "| measurement | figures |")
	fmt.Fprintln(out, "|---|---|")
	for _, r := range rows {
		fmt.Fprintf(out, "| %s | %s |\n", r.name, strings.Join(r.figures, ", "))
	}
	if len(failed) > 0 {
		return fmt.Errorf("some benchmarks failed: %s", strings.Join(failed, "; "))
	}
	return nil
}

// parseBench reads "BenchmarkX/sub-2  N  1234 ns/op  5.0 unit ...".
func parseBench(line string) (row, bool) {
	f := strings.Fields(line)
	if len(f) < 4 || len(f)%2 != 0 {
		return row{}, false
	}
	name := strings.TrimPrefix(f[0], "Benchmark")
	if i := strings.LastIndex(name, "-"); i > 0 {
		name = name[:i] // the GOMAXPROCS suffix
	}
	r := row{name: name}
	for i := 2; i+1 < len(f); i += 2 {
		r.figures = append(r.figures, f[i]+" "+f[i+1])
	}
	return r, true
}
