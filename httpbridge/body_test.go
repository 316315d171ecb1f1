package httpbridge

import (
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// roundTripper adapts a function to an http.RoundTripper.
type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// drainingPrimary stands for the primary's server without a network: it
// reads the forwarded body whole and answers 201 with its length.
func drainingPrimary(r *http.Request) (*http.Response, error) {
	n, err := io.Copy(io.Discard, r.Body)
	if err != nil {
		return nil, err
	}
	return &http.Response{
		StatusCode: http.StatusCreated,
		Header:     http.Header{},
		Body:       io.NopCloser(strings.NewReader(strings.Repeat("n", int(n%7)))),
		Request:    r,
	}, nil
}

// offlineForwarder returns a Forwarder keeping copies up to maxBody whose
// primary is drainingPrimary.
func offlineForwarder(t *testing.T, maxBody int64) *Forwarder {
	t.Helper()
	f, err := NewForwarder(ForwardConfig{
		URL:       "http://{primary}:8080",
		MaxBody:   maxBody,
		Transport: roundTripper(drainingPrimary),
		Logger:    discardLogger(),
	})
	require.NoError(t, err)
	return f
}

// byteSource yields n bytes without holding them, so that a test measuring
// the heap sees the bridge's copy and not the request's source.
type byteSource struct{ n int64 }

func (s *byteSource) Read(p []byte) (int, error) {
	if s.n == 0 {
		return 0, io.EOF
	}
	m := min(int64(len(p)), s.n)
	clear(p[:m])
	s.n -= m
	return int(m), nil
}

// TestTooLargeNamesTheLimitThatApplied checks that the 413 and
// Decision.MaxBody name the bound that refused the body: the Forwarder's
// where one takes large bodies, not MaxReplayBody.
func TestTooLargeNamesTheLimitThatApplied(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		config  func(t *testing.T) Config
		size    int64
		chunked bool
		want    int64
	}{
		{name: "fly-replay only", size: 2000, want: 100,
			config: func(*testing.T) Config { return Config{MaxReplayBody: 100} }},
		{name: "Forward, body over its bound", size: 2000, want: 1000,
			config: func(t *testing.T) Config { return Config{MaxReplayBody: 100, Forward: offlineForwarder(t, 1000)} }},
		{name: "Forward, unknown length over its bound", size: 2000, chunked: true, want: 1000,
			config: func(t *testing.T) Config { return Config{MaxReplayBody: 100, Forward: offlineForwarder(t, 1000)} }},
		{name: "Forwarder as Replay", size: 2000, want: 1000,
			config: func(t *testing.T) Config { return Config{Replay: offlineForwarder(t, 1000)} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var ev events
			c := tc.config(t)
			c.OnEvent = ev.add
			b := newBridge(t, c)
			h := b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				refuse(t, r, notPrimary("node-a"))
			}))
			r := httptest.NewRequest(http.MethodPost, "/", &byteSource{n: tc.size})
			r.ContentLength = tc.size
			if tc.chunked {
				r.ContentLength = -1
			}
			w := serve(h, r)
			assert.Equal(t, http.StatusRequestEntityTooLarge, w.Code)
			assert.Contains(t, w.Body.String(), "over "+strconv.FormatInt(tc.want, 10)+" bytes")
			d := ev.only(t).Decision
			assert.Equal(t, ReasonTooLarge, d.Reason)
			assert.Equal(t, tc.want, d.MaxBody)
		})
	}
}

// TestBodyCopyHeap checks that the copies kept for a Forwarder cost their
// size and not twice it: 8 uploads of MaxBody at once, read whole by their
// handlers, allocate (and hold) under 1.2 × 8 × MaxBody, whether their
// length is announced or not.
func TestBodyCopyHeap(t *testing.T) {
	const maxBody, uploads = 16 << 20, 8
	for _, chunked := range []bool{false, true} {
		t.Run(map[bool]string{false: "Content-Length", true: "chunked"}[chunked], func(t *testing.T) {
			b := newBridge(t, Config{Forward: offlineForwarder(t, maxBody)})
			var read sync.WaitGroup
			read.Add(uploads)
			release := make(chan struct{})
			h := b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				read.Done()
				<-release
			}))
			var before, held, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			var done sync.WaitGroup
			for range uploads {
				r := httptest.NewRequest(http.MethodPost, "/", &byteSource{n: maxBody})
				r.ContentLength = map[bool]int64{false: maxBody, true: -1}[chunked]
				done.Go(func() { serve(h, r) })
			}
			read.Wait()
			runtime.GC()
			runtime.ReadMemStats(&held)
			close(release)
			done.Wait()
			runtime.ReadMemStats(&after)

			bound := uint64(uploads * maxBody * 12 / 10)
			t.Logf("held %d MiB, allocated %d MiB, bound %d MiB", (held.HeapAlloc-min(before.HeapAlloc, held.HeapAlloc))>>20,
				(after.TotalAlloc-before.TotalAlloc)>>20, bound>>20)
			assert.Less(t, held.HeapAlloc-min(before.HeapAlloc, held.HeapAlloc), bound, "heap held by the copies")
			assert.Less(t, after.TotalAlloc-before.TotalAlloc, bound, "bytes allocated for the copies")
		})
	}
}

// TestNoCopyOverContentLength checks that a body whose Content-Length is
// over the Forwarder's bound is never copied, and that, left unread by the
// handler, it still goes to the primary whole.
func TestNoCopyOverContentLength(t *testing.T) {
	const maxBody, size = 1 << 20, 8 << 20
	var ev events
	b := newBridge(t, Config{Forward: offlineForwarder(t, maxBody), OnEvent: ev.add})
	for _, read := range []bool{true, false} {
		h := b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if read {
				io.Copy(io.Discard, r.Body)
			}
			refuse(t, r, notPrimary("node-a"))
		}))
		r := httptest.NewRequest(http.MethodPost, "/", &byteSource{n: size})
		r.ContentLength = size
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		w := serve(h, r)
		runtime.ReadMemStats(&after)
		assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(maxBody/4), "bytes allocated, handler read %v", read)
		if read {
			assert.Equal(t, http.StatusRequestEntityTooLarge, w.Code)
		} else {
			assert.Equal(t, http.StatusCreated, w.Code, "an unread body is streamed to the primary")
			assert.Equal(t, strings.Repeat("n", size%7), w.Body.String())
		}
	}
	assert.Len(t, ev.es, 2)
}

// TestCopyFollowsWhatArrives: a client that announces a large body and sends
// a little of it gets a copy the size of what it sent, not of its claim.
func TestCopyFollowsWhatArrives(t *testing.T) {
	const maxBody = 16 << 20
	b := newBridge(t, Config{Forward: offlineForwarder(t, maxBody)})
	h := b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.CopyN(io.Discard, r.Body, 100)
	}))
	r := httptest.NewRequest(http.MethodPost, "/", &byteSource{n: maxBody})
	r.ContentLength = maxBody
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	serve(h, r)
	runtime.ReadMemStats(&after)
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(64<<10), "bytes allocated for 100 bytes read")
}
