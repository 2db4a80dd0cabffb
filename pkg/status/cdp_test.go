package status_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A headless Chromium driven through the Chrome DevTools Protocol over
// --remote-debugging-pipe: messages are JSON, each ended by a NUL byte, on
// file descriptors 3 (to the browser) and 4 (from it). A pipe needs no
// WebSocket client, so the standard library is enough.

// findChromium returns the browser to test with: $CHROMIUM, else the first
// of the usual names on PATH.
func findChromium() (string, error) {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return exec.LookPath(p)
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no chromium, chromium-browser or google-chrome on PATH (make deps installs Debian's chromium; or set CHROMIUM)")
}

type cdpMessage struct {
	ID        int64           `json:"id,omitempty"`
	Method    string          `json:"method,omitempty"`
	Params    json.RawMessage `json:"params,omitempty"`
	SessionID string          `json:"sessionId,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

type browser struct {
	cmd  *exec.Cmd
	to   *os.File
	from *os.File

	next    atomic.Int64
	mu      sync.Mutex
	pending map[int64]chan cdpMessage
	// handlers get every event of their method, in the reader's goroutine;
	// they must not block (they may call send in a goroutine).
	handlers map[string]func(cdpMessage)
	done     chan struct{}
	wmu      sync.Mutex
}

// startBrowser launches headless Chromium with a fresh profile, as the
// project's tests run it, and ends it when the test does.
func startBrowser(t *testing.T, bin string) *browser {
	t.Helper()
	toR, toW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	fromR, fromW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
		"--disable-dev-shm-usage", "--user-data-dir="+filepath.Join(t.TempDir(), "profile"), "--remote-debugging-pipe", "about:blank")
	cmd.ExtraFiles = []*os.File{toR, fromW} // fds 3 and 4
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	toR.Close()
	fromW.Close()
	b := &browser{cmd: cmd, to: toW, from: fromR, pending: map[int64]chan cdpMessage{}, handlers: map[string]func(cdpMessage){}, done: make(chan struct{})}
	go b.read()
	t.Cleanup(func() {
		_ = b.cmd.Process.Kill()
		_ = b.cmd.Wait()
		b.to.Close()
		<-b.done
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("chromium's stderr:\n%s", tail(stderr.String(), 3000))
		}
	})
	return b
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

func (b *browser) read() {
	defer close(b.done)
	r := bufio.NewReaderSize(b.from, 1<<20)
	for {
		raw, err := r.ReadBytes(0)
		if err != nil {
			b.mu.Lock()
			for id, ch := range b.pending {
				close(ch)
				delete(b.pending, id)
			}
			b.mu.Unlock()
			return
		}
		var m cdpMessage
		if json.Unmarshal(raw[:len(raw)-1], &m) != nil {
			continue
		}
		b.mu.Lock()
		if m.ID != 0 {
			if ch, ok := b.pending[m.ID]; ok {
				delete(b.pending, m.ID)
				ch <- m
			}
		} else if h := b.handlers[m.Method]; h != nil {
			b.mu.Unlock()
			h(m)
			continue
		}
		b.mu.Unlock()
	}
}

// on registers the handler of an event.
func (b *browser) on(method string, h func(cdpMessage)) {
	b.mu.Lock()
	b.handlers[method] = h
	b.mu.Unlock()
}

// call sends a command (to a page when session is set) and waits for its
// result, decoded into out unless out is nil.
func (b *browser) call(ctx context.Context, session, method string, params, out any) error {
	id := b.next.Add(1)
	ch := make(chan cdpMessage, 1)
	b.mu.Lock()
	b.pending[id] = ch
	b.mu.Unlock()
	p, err := json.Marshal(params)
	if err != nil {
		return err
	}
	if params == nil {
		p = []byte("{}")
	}
	msg, _ := json.Marshal(cdpMessage{ID: id, Method: method, Params: p, SessionID: session})
	b.wmu.Lock()
	_, err = b.to.Write(append(msg, 0))
	b.wmu.Unlock()
	if err != nil {
		return fmt.Errorf("%s: write to chromium: %w", method, err)
	}
	select {
	case m, ok := <-ch:
		if !ok {
			return fmt.Errorf("%s: chromium closed the pipe", method)
		}
		if m.Error != nil {
			return fmt.Errorf("%s: %s (%d)", method, m.Error.Message, m.Error.Code)
		}
		if out != nil {
			return json.Unmarshal(m.Result, out)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

// page is one tab, attached in flat mode.
type page struct {
	b       *browser
	session string
	loaded  chan struct{}
	mu      sync.Mutex
	urls    []string // every request the page made
	status  []int    // the statuses of the responses it got, in order
	logs    []string // console and browser log entries (CSP violations among them)
}

// credentials answer HTTP authentication challenges: the first with
// user and password, any later one (a refused password) is cancelled, as
// a person would close the prompt.
type credentials struct{ user, password string }

// newPage opens a tab in a browser context of its own, like a fresh
// private window: no password a page before it gave is remembered.
func (b *browser) newPage(ctx context.Context, creds *credentials) (*page, error) {
	var bc struct {
		BrowserContextID string `json:"browserContextId"`
	}
	if err := b.call(ctx, "", "Target.createBrowserContext", nil, &bc); err != nil {
		return nil, err
	}
	var created struct {
		TargetID string `json:"targetId"`
	}
	if err := b.call(ctx, "", "Target.createTarget", map[string]any{"url": "about:blank", "browserContextId": bc.BrowserContextID}, &created); err != nil {
		return nil, err
	}
	var attached struct {
		SessionID string `json:"sessionId"`
	}
	if err := b.call(ctx, "", "Target.attachToTarget", map[string]any{"targetId": created.TargetID, "flatten": true}, &attached); err != nil {
		return nil, err
	}
	p := &page{b: b, session: attached.SessionID, loaded: make(chan struct{}, 8)}
	var challenges atomic.Int32
	// Handlers are the browser's, by method: each hears its page only.
	on := func(method string, h func(cdpMessage)) {
		b.on(method, func(m cdpMessage) {
			if m.SessionID == p.session {
				h(m)
			}
		})
	}
	on("Page.loadEventFired", func(cdpMessage) {
		select {
		case p.loaded <- struct{}{}:
		default:
		}
	})
	on("Network.requestWillBeSent", func(m cdpMessage) {
		var ev struct {
			Request struct{ URL string } `json:"request"`
		}
		_ = json.Unmarshal(m.Params, &ev)
		p.mu.Lock()
		p.urls = append(p.urls, ev.Request.URL)
		p.mu.Unlock()
	})
	on("Network.responseReceived", func(m cdpMessage) {
		var ev struct {
			Response struct{ Status int } `json:"response"`
		}
		_ = json.Unmarshal(m.Params, &ev)
		p.mu.Lock()
		p.status = append(p.status, ev.Response.Status)
		p.mu.Unlock()
	})
	on("Log.entryAdded", func(m cdpMessage) {
		var ev struct {
			Entry struct{ Level, Source, Text string } `json:"entry"`
		}
		_ = json.Unmarshal(m.Params, &ev)
		p.mu.Lock()
		p.logs = append(p.logs, ev.Entry.Level+" "+ev.Entry.Source+": "+ev.Entry.Text)
		p.mu.Unlock()
	})
	on("Fetch.requestPaused", func(m cdpMessage) {
		var ev struct {
			RequestID string `json:"requestId"`
		}
		_ = json.Unmarshal(m.Params, &ev)
		go func() {
			_ = b.call(ctx, p.session, "Fetch.continueRequest", map[string]any{"requestId": ev.RequestID}, nil)
		}()
	})
	on("Fetch.authRequired", func(m cdpMessage) {
		var ev struct {
			RequestID string `json:"requestId"`
		}
		_ = json.Unmarshal(m.Params, &ev)
		answer := map[string]any{"response": "CancelAuth"}
		if creds != nil && challenges.Add(1) == 1 {
			answer = map[string]any{"response": "ProvideCredentials", "username": creds.user, "password": creds.password}
		}
		go func() {
			_ = b.call(ctx, p.session, "Fetch.continueWithAuth", map[string]any{"requestId": ev.RequestID, "authChallengeResponse": answer}, nil)
		}()
	})
	for _, c := range []struct {
		method string
		params any
	}{
		{"Page.enable", nil}, {"Network.enable", nil}, {"Log.enable", nil},
		{"Fetch.enable", map[string]any{"handleAuthRequests": true, "patterns": []map[string]string{{"urlPattern": "*"}}}},
	} {
		if err := b.call(ctx, p.session, c.method, c.params, nil); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// navigate loads url and waits for its load event.
func (p *page) navigate(ctx context.Context, url string) error {
	for len(p.loaded) > 0 {
		<-p.loaded
	}
	if err := p.b.call(ctx, p.session, "Page.navigate", map[string]any{"url": url}, nil); err != nil {
		return err
	}
	select {
	case <-p.loaded:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("load %s: %w", url, ctx.Err())
	case <-time.After(30 * time.Second):
		return fmt.Errorf("load %s: no load event in 30s", url)
	}
}

// eval runs a JavaScript expression in the page (from DevTools: the page's
// own policy allows no script) and decodes its JSON value into out.
func (p *page) eval(ctx context.Context, expr string, out any) error {
	var res struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		Exception *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	if err := p.b.call(ctx, p.session, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}, &res); err != nil {
		return err
	}
	if res.Exception != nil {
		return fmt.Errorf("evaluate %s: %s", expr, res.Exception.Text)
	}
	return json.Unmarshal(res.Result.Value, out)
}

func (p *page) requested() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.urls...)
}

func (p *page) logged() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.logs...)
}

func (p *page) statuses() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]int(nil), p.status...)
}

// screenshot saves the page as a PNG in dir (screenshots/ is ignored by
// git): the whole page, not only the viewport.
func (p *page) screenshot(ctx context.Context, file string) error {
	var shot struct {
		Data []byte `json:"data"` // base64 in JSON, which []byte decodes
	}
	if err := p.b.call(ctx, p.session, "Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": true}, &shot); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	return os.WriteFile(file, shot.Data, 0o644)
}
