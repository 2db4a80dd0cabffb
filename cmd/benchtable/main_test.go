package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	tests := []struct {
		name, in, want, wantErr string
	}{
		{
			name: "bench and load lines",
			in: "goos: linux\nBenchmarkWarmWebhook/tableau-latency=0ms/targets=1-2  \t 200\t 202354 ns/op\t 0.1530 p50-ms\t 335 allocs/op\n" +
				"    harness_test.go:10: LOAD: load-duplicates: 1000 deliveries, throughput=250/s\nok  \tpkg\t1.2s\n",
			want: "| WarmWebhook/tableau-latency=0ms/targets=1 | 202354 ns/op, 0.1530 p50-ms, 335 allocs/op |\n| load: load-duplicates | 1000 deliveries, throughput=250/s |\n",
		},
		{name: "nothing", in: "ok pkg 1s\n", wantErr: "no benchmark lines"},
		{name: "failure is an error", in: "BenchmarkX-2 1 5 ns/op\n--- FAIL: BenchmarkY\n", want: "| X | 5 ns/op |", wantErr: "failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(strings.NewReader(tt.in), &out)
			if (tt.wantErr == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if !strings.Contains(out.String(), tt.want) {
				t.Errorf("output:\n%s\nwant it to contain:\n%s", out.String(), tt.want)
			}
		})
	}
}
