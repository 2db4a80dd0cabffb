package main

import (
	"net/http"
	"runtime"
	"testing"
	"time"
)

// BenchmarkAWSConfigCost answers issue 12's question about pkg/awsenv: does
// the SDK's own config.LoadDefaultConfig cost more than 5 ms of init over a
// hello world? It starts, in rotating order each round, the hello world,
// the hello world plus config.LoadDefaultConfig (testdata/helloconfig), and
// the SDK floor built with pkg/awsenv (testdata/sdkfloor) and with
// config.LoadDefaultConfig (testdata/sdkfloorconfig), and reports the
// medians of each round's differences:
//
//	config-over-hello-ms        helloconfig init - hello init
//	floor-config-over-awsenv-ms sdkfloorconfig init - sdkfloor init
//
//	go test -run '^$' -bench AWSConfigCost -benchtime 60x ./functions/webhook/
func BenchmarkAWSConfigCost(b *testing.B) {
	if testing.Short() {
		b.Skip("builds and starts four bootstraps; run without -short")
	}
	names := []string{"hello", "helloconfig", "sdkfloor", "sdkfloorconfig"}
	bins := map[string]string{}
	for _, n := range names {
		bins[n] = buildBootstrap(b, "./testdata/"+n, runtime.GOOS, runtime.GOARCH)
	}
	env := deploymentEnv(b.TempDir())
	event := getEvent(b)
	inits := map[string][]time.Duration{}
	rss := map[string][]int64{}
	for round := 0; b.Loop(); round++ {
		for i := range names {
			n := names[(round+i)%len(names)]
			cs := startCold(b, bins[n], env, event)
			if r := apiResponse(b, cs.res); r.StatusCode != http.StatusOK {
				b.Fatalf("%s answered %d %s", n, r.StatusCode, r.Body)
			}
			inits[n] = append(inits[n], cs.init)
			rss[n] = append(rss[n], cs.peakRSS)
		}
	}
	diff := func(a, c []time.Duration) float64 {
		ds := make([]time.Duration, len(a))
		for i := range a {
			ds[i] = a[i] - c[i]
		}
		return ms(median(ds))
	}
	b.ReportMetric(0, "ns/op")
	for _, n := range names {
		b.ReportMetric(ms(median(inits[n])), n+"-init-ms")
		b.ReportMetric(float64(median(rss[n]))/1e6, n+"-peak-rss-MB")
	}
	b.ReportMetric(diff(inits["helloconfig"], inits["hello"]), "config-over-hello-ms")
	b.ReportMetric(diff(inits["sdkfloorconfig"], inits["sdkfloor"]), "floor-config-over-awsenv-ms")
	b.ReportMetric(medianRatio(inits["helloconfig"], inits["hello"]), "helloconfig-ratio")
}
