//go:build linux

package main

// A small client of the Chrome DevTools Protocol over
// --remote-debugging-pipe: the browser reads commands on its fd 3 and writes
// replies and events on its fd 4, as JSON messages each ended by a NUL
// byte. A pipe needs no port, no websocket and no DevToolsActivePort file,
// and closes when the browser dies; the few commands the browser test uses
// need no library.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

// browserFlags make headless Chromium run as root in a container, and keep
// it off the network: this test's machine may have none.
var browserFlags = []string{
	"--headless",
	"--no-sandbox", // the sandbox refuses to run as root
	"--disable-gpu",
	"--disable-dev-shm-usage",
	"--disable-quic",
	"--no-first-run",
	"--no-default-browser-check",
	"--disable-background-networking",
	"--disable-component-update",
	"--disable-sync",
	"--disable-extensions",
	"--disable-features=Translate,MediaRouter,OptimizationHints",
	"--hide-scrollbars",
	"--mute-audio",
	"--window-size=1000,760",
	"--remote-debugging-pipe",
}

// cdpMessage is any message of the protocol: a command, its reply, or an
// event.
type cdpMessage struct {
	ID        int64           `json:"id,omitempty"`
	SessionID string          `json:"sessionId,omitempty"`
	Method    string          `json:"method,omitempty"`
	Params    any             `json:"params,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

// browser is a running Chromium driven over its debugging pipe.
type browser struct {
	cmd    *exec.Cmd
	in     *os.File // the browser's fd 3
	stderr *cappedBuffer

	mu      sync.Mutex
	nextID  int64
	pending map[int64]chan cdpMessage
	readErr error         // why the reader stopped
	done    chan struct{} // closed when the reader stops
}

// startBrowser starts Chromium from bin with a profile in a temporary
// directory, and closes it when the test ends.
func startBrowser(t *testing.T, bin string) *browser {
	t.Helper()
	// Pipe 1: we write, the browser reads on fd 3. Pipe 2: the browser
	// writes on fd 4, we read.
	cmdR, cmdW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	evR, evW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	args := append(append([]string{}, browserFlags...), "--user-data-dir="+t.TempDir(), "about:blank")
	cmd := exec.Command(bin, args...)
	cmd.ExtraFiles = []*os.File{cmdR, evW}
	b := &browser{cmd: cmd, in: cmdW, stderr: &cappedBuffer{max: 64 << 10}, pending: map[int64]chan cdpMessage{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = b.stderr, b.stderr
	// Its own process group, to kill its helper processes with it; killed
	// if the test process dies first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	cmdR.Close() // the browser's ends
	evW.Close()
	go b.read(evR)
	t.Cleanup(func() {
		b.close()
		if t.Failed() {
			t.Logf("browser output:\n%s", b.stderr.String())
		}
	})
	return b
}

// read delivers replies to their callers until the pipe closes.
func (b *browser) read(r io.ReadCloser) {
	defer r.Close()
	br := bufio.NewReaderSize(r, 1<<20)
	var err error
	for {
		var raw []byte
		if raw, err = br.ReadBytes(0); err != nil {
			break
		}
		var m cdpMessage
		if json.Unmarshal(raw[:len(raw)-1], &m) != nil || m.ID == 0 {
			continue // an event: the test polls instead
		}
		b.mu.Lock()
		ch := b.pending[m.ID]
		delete(b.pending, m.ID)
		b.mu.Unlock()
		if ch != nil {
			ch <- m
		}
	}
	b.mu.Lock()
	b.readErr = fmt.Errorf("browser pipe: %w", err)
	b.mu.Unlock()
	close(b.done)
}

// call sends a command (to a page when session is set) and decodes its
// result into result, if not nil.
func (b *browser) call(ctx context.Context, session, method string, params, result any) error {
	ch := make(chan cdpMessage, 1)
	b.mu.Lock()
	if b.readErr != nil {
		err := b.readErr
		b.mu.Unlock()
		return err
	}
	b.nextID++
	id := b.nextID
	b.pending[id] = ch
	msg, err := json.Marshal(cdpMessage{ID: id, SessionID: session, Method: method, Params: params})
	if err == nil {
		_, err = b.in.Write(append(msg, 0)) // under mu: one message at a time
	}
	b.mu.Unlock()
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	select {
	case m := <-ch:
		if m.Error != nil {
			return fmt.Errorf("%s: %s (%d)", method, m.Error.Message, m.Error.Code)
		}
		if result != nil {
			return json.Unmarshal(m.Result, result)
		}
		return nil
	case <-b.done:
		b.mu.Lock()
		defer b.mu.Unlock()
		return fmt.Errorf("%s: %w", method, b.readErr)
	case <-ctx.Done():
		b.mu.Lock()
		delete(b.pending, id)
		b.mu.Unlock()
		return fmt.Errorf("%s: %w", method, context.Cause(ctx))
	}
}

// close asks the browser to quit, and kills it if it does not.
func (b *browser) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = b.call(ctx, "", "Browser.close", nil, nil)
	exited := make(chan struct{})
	go func() {
		_ = b.cmd.Wait()
		close(exited)
	}()
	select {
	case <-exited:
	case <-ctx.Done():
		_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}
	b.in.Close()
}

// tab is one page of the browser.
type tab struct {
	b       *browser
	session string
}

// newTab opens a blank page and attaches to it.
func (b *browser) newTab(ctx context.Context) (*tab, error) {
	var created struct {
		TargetID string `json:"targetId"`
	}
	if err := b.call(ctx, "", "Target.createTarget", map[string]any{"url": "about:blank"}, &created); err != nil {
		return nil, err
	}
	var attached struct {
		SessionID string `json:"sessionId"`
	}
	params := map[string]any{"targetId": created.TargetID, "flatten": true}
	if err := b.call(ctx, "", "Target.attachToTarget", params, &attached); err != nil {
		return nil, err
	}
	return &tab{b: b, session: attached.SessionID}, nil
}

func (p *tab) call(ctx context.Context, method string, params, result any) error {
	return p.b.call(ctx, p.session, method, params, result)
}

// navigate loads url; it returns once the browser has committed to it, not
// when the page has loaded (see waitUntil).
func (p *tab) navigate(ctx context.Context, url string) error {
	var r struct {
		ErrorText string `json:"errorText"`
	}
	if err := p.call(ctx, "Page.navigate", map[string]any{"url": url}, &r); err != nil {
		return err
	}
	if r.ErrorText != "" {
		return fmt.Errorf("navigate to %s: %s", url, r.ErrorText)
	}
	return nil
}

// eval evaluates a JavaScript expression in the page and decodes its value
// into out, if not nil.
func (p *tab) eval(ctx context.Context, expr string, out any) error {
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	params := map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true}
	if err := p.call(ctx, "Runtime.evaluate", params, &r); err != nil {
		return err
	}
	if e := r.ExceptionDetails; e != nil {
		return fmt.Errorf("%s: %s %s", expr, e.Text, e.Exception.Description)
	}
	if out == nil {
		return nil
	}
	if len(r.Result.Value) == 0 {
		return fmt.Errorf("%s: no value", expr)
	}
	return json.Unmarshal(r.Result.Value, out)
}

// waitUntil evaluates a JavaScript condition until it is true, and fails the
// test if it is not within the deadline. Errors count as false: during a
// navigation the page's context comes and goes.
func (p *tab) waitUntil(t *testing.T, what, cond string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	var last error
	for {
		var ok bool
		err := p.eval(ctx, cond, &ok)
		if err == nil && ok {
			return
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v (last error: %v)", what, context.Cause(ctx), last)
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// typeInto focuses the element selector finds and types text into it, as
// a keyboard with an input method would.
func (p *tab) typeInto(ctx context.Context, selector, text string) error {
	q, _ := json.Marshal(selector)
	if err := p.eval(ctx, fmt.Sprintf(`document.querySelector(%s).focus()`, q), nil); err != nil {
		return err
	}
	return p.call(ctx, "Input.insertText", map[string]any{"text": text}, nil)
}

// click presses and releases the left mouse button in the middle of the
// element selector finds.
func (p *tab) click(ctx context.Context, selector string) error {
	q, _ := json.Marshal(selector)
	var at struct{ X, Y float64 }
	expr := fmt.Sprintf(`(() => { const r = document.querySelector(%s).getBoundingClientRect();
		return {X: r.x + r.width / 2, Y: r.y + r.height / 2}; })()`, q)
	if err := p.eval(ctx, expr, &at); err != nil {
		return err
	}
	for _, typ := range []string{"mousePressed", "mouseReleased"} {
		ev := map[string]any{"type": typ, "x": at.X, "y": at.Y, "button": "left", "clickCount": 1}
		if err := p.call(ctx, "Input.dispatchMouseEvent", ev, nil); err != nil {
			return err
		}
	}
	return nil
}

// screenshot returns a PNG of the page's viewport.
func (p *tab) screenshot(ctx context.Context) ([]byte, error) {
	var r struct {
		Data string `json:"data"`
	}
	if err := p.call(ctx, "Page.captureScreenshot", map[string]any{"format": "png"}, &r); err != nil {
		return nil, err
	}
	return base64.StdEncoding.DecodeString(r.Data)
}

// cappedBuffer keeps the first max bytes written to it; safe for
// concurrent use.
type cappedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (c *cappedBuffer) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := c.max - c.buf.Len(); room > 0 {
		c.buf.Write(b[:min(len(b), room)])
	}
	return len(b), nil
}

func (c *cappedBuffer) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}
