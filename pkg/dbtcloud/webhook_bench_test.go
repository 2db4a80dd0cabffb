package dbtcloud

import (
	"bytes"
	"fmt"
	"testing"
)

// BenchmarkVerifySignature is the HMAC check every delivery pays before
// anything else.
//
//	go test -run '^$' -bench VerifySignature ./pkg/dbtcloud/
func BenchmarkVerifySignature(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10} {
		b.Run(fmt.Sprintf("body=%dKiB", size>>10), func(b *testing.B) {
			body := bytes.Repeat([]byte("x"), size)
			header := SignatureHeader(body, "whsec")
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if err := VerifySignature(body, header, "whsec"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
