package httpbridge

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Underlying writers with chosen optional methods.
type (
	plainWriter  struct{ http.ResponseWriter }
	flushOnly    struct{ http.ResponseWriter }
	hijackOnly   struct{ http.ResponseWriter }
	flushErrOnly struct{ http.ResponseWriter }
	both         struct{ http.ResponseWriter }
	unwrapOnly   struct{ w http.ResponseWriter }
)

func (flushOnly) Flush()                                        {}
func (hijackOnly) Hijack() (net.Conn, *bufio.ReadWriter, error) { return nil, nil, errors.New("test") }
func (flushErrOnly) FlushError() error                          { return nil }
func (both) Flush()                                             {}
func (both) Hijack() (net.Conn, *bufio.ReadWriter, error)       { return nil, nil, errors.New("test") }
func (u unwrapOnly) Header() http.Header                        { return u.w.Header() }
func (u unwrapOnly) Write(p []byte) (int, error)                { return u.w.Write(p) }
func (u unwrapOnly) WriteHeader(code int)                       { u.w.WriteHeader(code) }
func (u unwrapOnly) Unwrap() http.ResponseWriter                { return u.w }

func TestWriterAdvertises(t *testing.T) {
	t.Parallel()
	rec := func() http.ResponseWriter { return plainWriter{httptest.NewRecorder()} }
	tests := []struct {
		name              string
		w                 http.ResponseWriter
		wantFlush, wantHj bool
	}{
		{name: "neither", w: rec(), wantFlush: false, wantHj: false},
		{name: "Flusher", w: flushOnly{rec()}, wantFlush: true, wantHj: false},
		{name: "FlushError", w: flushErrOnly{rec()}, wantFlush: true, wantHj: false},
		{name: "Hijacker", w: hijackOnly{rec()}, wantFlush: false, wantHj: true},
		{name: "both", w: both{rec()}, wantFlush: true, wantHj: true},
		{name: "both behind Unwrap", w: unwrapOnly{both{rec()}}, wantFlush: true, wantHj: true},
		{name: "Flusher behind two Unwraps", w: unwrapOnly{unwrapOnly{flushOnly{rec()}}}, wantFlush: true, wantHj: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := newBridge(t, Config{})
			var gotFlush, gotHj bool
			var gotUnwrap http.ResponseWriter
			b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, gotFlush = w.(http.Flusher)
				_, gotHj = w.(http.Hijacker)
				gotUnwrap = w.(interface{ Unwrap() http.ResponseWriter }).Unwrap()
			})).ServeHTTP(tc.w, httptest.NewRequest(http.MethodGet, "/", nil))
			assert.Equal(t, tc.wantFlush, gotFlush, "Flusher")
			assert.Equal(t, tc.wantHj, gotHj, "Hijacker")
			assert.True(t, gotUnwrap == tc.w, "Unwrap: got %T, want the underlying %T", gotUnwrap, tc.w)
		})
	}
}

func TestResponseControllerThroughBridge(t *testing.T) {
	t.Parallel()
	b := newBridge(t, Config{})
	release := make(chan struct{})
	errs := make(chan error, 1)
	srv := httptest.NewServer(b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		err := errors.Join(
			rc.SetReadDeadline(time.Now().Add(time.Minute)),
			rc.SetWriteDeadline(time.Now().Add(time.Minute)),
			rc.EnableFullDuplex(),
		)
		w.Header().Set("X-Stream", "1")
		w.WriteHeader(http.StatusAccepted)
		err = errors.Join(err, rc.Flush())
		errs <- err
		<-release // the client must see the headers before the handler returns
		io.WriteString(w, "done")
	})))
	t.Cleanup(srv.Close)

	res, err := srv.Client().Get(srv.URL)
	if err != nil {
		close(release)
	}
	require.NoError(t, err)
	defer res.Body.Close()
	assert.NoError(t, <-errs, "ResponseController")
	assert.Equal(t, http.StatusAccepted, res.StatusCode, "status before the handler returned")
	close(release)
	body, _ := io.ReadAll(res.Body)
	assert.Equal(t, "done", string(body), "body")
}

func TestResponseControllerUnsupported(t *testing.T) {
	t.Parallel()
	b := newBridge(t, Config{})
	var flushErr, deadlineErr error
	w := plainWriter{httptest.NewRecorder()}
	b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		flushErr = rc.Flush()
		deadlineErr = rc.SetWriteDeadline(time.Now())
	})).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
	assert.ErrorIs(t, flushErr, http.ErrNotSupported, "Flush")
	assert.ErrorIs(t, deadlineErr, http.ErrNotSupported, "SetWriteDeadline")
}

// hijackCases hijack the connection through the bridge, after a refusal
// or not.
var hijackCases = []struct {
	name     string
	hijack   func(w http.ResponseWriter) (net.Conn, *bufio.ReadWriter, error)
	refuse   bool // before hijacking
	wantBody string
}{
	{name: "Hijacker", hijack: func(w http.ResponseWriter) (net.Conn, *bufio.ReadWriter, error) {
		return w.(http.Hijacker).Hijack()
	}, refuse: false, wantBody: "raw"},
	{name: "ResponseController", hijack: func(w http.ResponseWriter) (net.Conn, *bufio.ReadWriter, error) {
		return http.NewResponseController(w).Hijack()
	}, refuse: false, wantBody: "raw"},
	{name: "after a refusal", hijack: func(w http.ResponseWriter) (net.Conn, *bufio.ReadWriter, error) {
		return w.(http.Hijacker).Hijack()
	}, refuse: true, wantBody: ""},
}

func TestHijack(t *testing.T) {
	t.Parallel()
	for _, tc := range hijackCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var ev events
			b := newBridge(t, Config{OnEvent: ev.add})
			hijackErr := make(chan error, 1)
			served := make(chan struct{}) // closed when the bridge is done
			h := b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.refuse {
					refuse(t, r, notPrimary("node-a"))
				}
				w.WriteHeader(http.StatusTeapot) // held, then dropped by the hijack
				conn, rw, err := tc.hijack(w)
				hijackErr <- err
				if err != nil {
					return
				}
				defer conn.Close()
				rw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nraw")
				rw.Flush()
				refuse(t, r, notPrimary("node-a")) // after the hijack: too late
			}))
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				defer close(served)
				h.ServeHTTP(w, r)
			}))
			t.Cleanup(srv.Close)

			res, err := srv.Client().Post(srv.URL, "text/plain", nil)
			require.NoError(t, err)
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			<-served
			err = <-hijackErr
			if tc.refuse {
				assert.ErrorIs(t, err, ErrResponseDropped, "Hijack")
				assert.Equal(t, http.StatusConflict, res.StatusCode, "status")
				assert.NotEmpty(t, res.Header.Get("Fly-Replay"), "Fly-Replay")
				assert.Equal(t, ReasonRefused, ev.only(t).Reason, "reason")
				return
			}
			require.NoError(t, err, "Hijack")
			assert.Equal(t, http.StatusOK, res.StatusCode, "status")
			assert.Equal(t, tc.wantBody, string(body), "body")
			assert.Equal(t, ReasonTooLate, ev.only(t).Reason, "reason")
		})
	}
}

func TestHTTP2(t *testing.T) {
	t.Parallel()
	b := newBridge(t, Config{})
	srv := httptest.NewUnstartedServer(b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, flush := w.(http.Flusher)
		_, hj := w.(http.Hijacker)
		if r.Method == http.MethodPost {
			refuse(t, r, notPrimary("node-a"))
		}
		io.WriteString(w, r.Proto+" "+map[bool]string{true: "flush", false: "-"}[flush]+" "+map[bool]string{true: "hijack", false: "-"}[hj])
	})))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)

	res, err := srv.Client().Get(srv.URL)
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	assert.Equal(t, "HTTP/2.0 flush -", string(body), "GET")
	res, err = srv.Client().Post(srv.URL, "text/plain", strings.NewReader("x"))
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, "instance=node-a;state=litefs-hops:1", res.Header.Get("Fly-Replay"), "POST Fly-Replay")
}

func TestInvalidStatusPanicsAsWithoutBridge(t *testing.T) {
	t.Parallel()
	b := newBridge(t, Config{})
	srv := httptest.NewServer(b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		assert.Panics(t, func() { w.WriteHeader(42) }, "WriteHeader(42): want net/http's panic")
	})))
	t.Cleanup(srv.Close)
	res, err := srv.Client().Get(srv.URL)
	require.NoError(t, err)
	res.Body.Close()
}

// TestWriteDeadlineReachesConn shows SetWriteDeadline through the wrapper
// acting on the real connection: a deadline in the past fails the write.
func TestWriteDeadlineReachesConn(t *testing.T) {
	t.Parallel()
	b := newBridge(t, Config{})
	errs := make(chan error, 1)
	srv := httptest.NewServer(b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if err := rc.SetWriteDeadline(time.Now().Add(-time.Second)); err != nil {
			errs <- err
			return
		}
		_, err := w.Write(make([]byte, 1<<20))
		errs <- errors.Join(err, rc.Flush())
	})))
	t.Cleanup(srv.Close)
	res, err := srv.Client().Get(srv.URL)
	if err == nil {
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	assert.ErrorIs(t, <-errs, os.ErrDeadlineExceeded, "write after a past deadline")
}

// TestDroppedOutputFailsWrites: once a refusal means the handler's output is
// dropped, its writes and flushes fail with ErrResponseDropped, so a
// streaming handler stops early instead of producing output for nothing.
func TestDroppedOutputFailsWrites(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		write func(w http.ResponseWriter) error
	}{
		{name: "Write", write: func(w http.ResponseWriter) error { _, err := w.Write([]byte("x")); return err }},
		{name: "empty Write", write: func(w http.ResponseWriter) error { _, err := w.Write(nil); return err }},
		{name: "WriteString", write: func(w http.ResponseWriter) error { _, err := io.WriteString(w, "x"); return err }},
		{name: "Flush", write: func(w http.ResponseWriter) error { return http.NewResponseController(w).Flush() }},
		{name: "io.Copy of a long stream", write: func(w http.ResponseWriter) error {
			src := &byteSource{n: 64 << 20}
			_, err := io.Copy(w, src)
			if src.n < 63<<20 {
				return errors.New("io.Copy read on after the first failed write")
			}
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := newBridge(t, Config{})
			var err error
			h := b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				refuse(t, r, notPrimary("node-a"))
				err = tc.write(w)
			}))
			w := serve(h, httptest.NewRequest(http.MethodPost, "/", nil))
			assert.ErrorIs(t, err, ErrResponseDropped)
			assert.Equal(t, "instance=node-a;state=litefs-hops:1", w.Header().Get(HeaderReplay))
		})
	}
}
