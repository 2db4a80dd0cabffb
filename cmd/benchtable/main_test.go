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
		{
			// b.ReportMetric(0, "ns/op") drops ns/op; units come sorted.
			name: "cold start with suppressed ns/op",
			in:   "BenchmarkColdStart-2   \t      60\t         6.300 hello-amd64-MB\t         1.373 hello-init-ms\t         0.01137 init-python-ratio\t       180.1 python-init-ms\t        53.13 python-peak-rss-MB\t        11.93 webhook-delivery-peak-rss-MB\n",
			want: "| ColdStart | 6.300 hello-amd64-MB, 1.373 hello-init-ms, 0.01137 init-python-ratio, 180.1 python-init-ms, 53.13 python-peak-rss-MB, 11.93 webhook-delivery-peak-rss-MB |\n",
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
