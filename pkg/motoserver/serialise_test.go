package motoserver

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestFrontSerialisesDynamoDB: behind the front, an upstream never sees two
// DynamoDB calls at once, while other services' calls still overlap.
func TestFrontSerialisesDynamoDB(t *testing.T) {
	tests := []struct {
		name       string
		target     string // X-Amz-Target
		wantSerial bool
	}{
		{"DynamoDB calls one at a time", "DynamoDB_20120810.PutItem", true},
		{"Secrets Manager calls at once", "secretsmanager.GetSecretValue", false},
		{"query-protocol calls (SNS) at once", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var inFlight, most atomic.Int32
			upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := inFlight.Add(1)
				defer inFlight.Add(-1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				// Each call waits for a second one to overlap it (or for a
				// while, when the front is to prevent that): a parallel
				// front passes the test whatever the timing, a serialising
				// one cannot.
				limit := time.Now().Add(5 * time.Second)
				if tt.wantSerial {
					limit = time.Now().Add(20 * time.Millisecond)
				}
				for most.Load() < 2 && time.Now().Before(limit) {
					time.Sleep(time.Millisecond)
				}
				w.WriteHeader(http.StatusOK)
			}))
			defer upstream.Close()
			f, err := startFront(upstream.URL)
			if err != nil {
				t.Fatal(err)
			}
			defer f.close()

			const callers = 8
			var wg sync.WaitGroup
			start := make(chan struct{})
			for range callers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					req, _ := http.NewRequest(http.MethodPost, f.url+"/", nil)
					if tt.target != "" {
						req.Header.Set("X-Amz-Target", tt.target)
					}
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Error(err)
						return
					}
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						t.Errorf("status %d", resp.StatusCode)
					}
				}()
			}
			close(start)
			wg.Wait()
			if got := most.Load(); tt.wantSerial && got != 1 {
				t.Errorf("upstream saw %d calls at once, want 1", got)
			} else if !tt.wantSerial && got < 2 {
				t.Errorf("upstream saw at most %d call at once; the front serialised calls it should pass through", got)
			}
		})
	}
}
