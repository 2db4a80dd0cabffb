package motoserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"
)

// front is the proxy between the SDK and moto_server. DynamoDB applies each
// conditional write atomically per item; moto_server checks a condition
// and writes on one of many threads without a lock, so under load two
// racing claims can both win (seen: 2 winners of 20 in
// TestIdempotency/concurrent claims, and a target refreshed twice in
// TestScheduledAndWebhookPathsRace). Python's lock on the interpreter makes
// that rare on an idle machine; with its switch interval cut to 1 µs
// (sys.setswitchinterval, as a loaded machine would preempt it), 17 of
// 100 rounds of 20 racing claims had two winners or more straight
// against moto_server, none through the front. The front passes DynamoDB
// requests on one at a time, in arrival order, which makes every one of
// them atomic — stricter than DynamoDB, which serialises per item only,
// but the exactly-once tests need the guarantee, not the parallelism, and
// moto is no faster in parallel. Requests of other services pass through
// at once.
type front struct {
	url       string
	srv       *http.Server
	transport *http.Transport
	proxy     *httputil.ReverseProxy
	// dynamo is a one-slot semaphore; a channel rather than a mutex so
	// that a caller who gives up while queued leaves the queue. Blocked
	// senders on a channel are served first come, first served.
	dynamo chan struct{}
}

// isDynamoDB reports whether r is a DynamoDB API call: the JSON protocol
// names the operation in X-Amz-Target, e.g. DynamoDB_20120810.PutItem.
func isDynamoDB(r *http.Request) bool {
	return strings.HasPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_")
}

// dynamoOperation is the operation a DynamoDB call names ("PutItem"), or "".
func dynamoOperation(r *http.Request) string {
	if !isDynamoDB(r) {
		return ""
	}
	_, op, _ := strings.Cut(r.Header.Get("X-Amz-Target"), ".")
	return op
}

// startFront serves a front to upstream on a free loopback port.
func startFront(upstream string) (*front, error) {
	u, err := url.Parse(upstream)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("motoserver proxy: %w", err)
	}
	f := &front{
		transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second},
		dynamo:    make(chan struct{}, 1),
	}
	f.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Host = pr.In.Host // as signed
		},
		Transport: f.transport,
		ErrorLog:  log.New(io.Discard, "", 0),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, context.Canceled) {
				return // the caller is gone
			}
			http.Error(w, "motoserver proxy: "+err.Error(), http.StatusBadGateway)
		},
	}
	f.url = "http://" + l.Addr().String()
	f.srv = &http.Server{Handler: f, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = f.srv.Serve(l) }()
	return f, nil
}

func (f *front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if isDynamoDB(r) {
		select {
		case f.dynamo <- struct{}{}:
		case <-r.Context().Done():
			return
		}
		defer func() { <-f.dynamo }()
	}
	f.proxy.ServeHTTP(w, r)
}

func (f *front) close() {
	if f.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = f.srv.Shutdown(ctx)
	}
	f.transport.CloseIdleConnections()
}
