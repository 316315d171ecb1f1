package httpbridge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/litefs-sql/litefs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// errNoPrimary stands for the driver's refusal when no primary is known.
var errNoPrimary = fmt.Errorf("%w: %w", litefs.ErrNotPrimary, litefs.ErrNoPrimary)

// newBridge returns a Bridge for node "self" that logs nowhere, unless c says
// otherwise.
func newBridge(tb testing.TB, c Config) *Bridge {
	tb.Helper()
	if c.InstanceID == "" {
		c.InstanceID = "self"
	}
	if c.Logger == nil {
		c.Logger = discardLogger()
	}
	if c.WaitPrimary == nil {
		c.WaitPrimary = func(ctx context.Context, refusal error) (string, error) {
			return "", errors.New("no WaitPrimary in this test")
		}
	}
	b, err := New(c)
	require.NoError(tb, err, "New")
	return b
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// refuse reports a refused write to r's Tracker, as the driver does.
func refuse(tb testing.TB, r *http.Request, err error) {
	tb.Helper()
	t := litefs.TrackerFrom(r.Context())
	require.NotNil(tb, t, "no litefs.Tracker in the request context")
	t.ReportRefusal(err)
}

func notPrimary(id string) error { return &litefs.NotPrimaryError{PrimaryID: id} }

// events collects the Events a Bridge reports.
type events struct {
	mu sync.Mutex
	es []Event
}

func (e *events) add(ev Event) {
	e.mu.Lock()
	e.es = append(e.es, ev)
	e.mu.Unlock()
}

func (e *events) only(tb testing.TB) Event {
	tb.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	require.Len(tb, e.es, 1, "events")
	return e.es[0]
}

func (e *events) none(tb testing.TB) {
	tb.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	require.Empty(tb, e.es, "events")
}

// onlyReader hides every method of a reader but Read.
type onlyReader struct{ io.Reader }

// serve runs h on one request and returns the recorded response.
func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// refusalHandlers are handlers whose write is refused before the response
// starts, each in its own way: every one must become a replay to node-a.
var refusalHandlers = []struct {
	name    string
	handler func(t *testing.T, w http.ResponseWriter, r *http.Request)
}{
	{name: "handler writes its own 500", handler: func(t *testing.T, w http.ResponseWriter, r *http.Request) {
		refuse(t, r, notPrimary("node-a"))
		w.Header().Set("X-Handler", "1")
		http.Error(w, "database error", http.StatusInternalServerError)
	}},
	{name: "handler writes nothing", handler: func(t *testing.T, w http.ResponseWriter, r *http.Request) {
		refuse(t, r, notPrimary("node-a"))
	}},
	{name: "handler sets a status only", handler: func(t *testing.T, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Handler", "1")
		w.WriteHeader(http.StatusCreated)
		refuse(t, r, notPrimary("node-a"))
	}},
	{name: "handler panics with the refusal", handler: func(t *testing.T, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Handler", "1")
		panic(fmt.Errorf("saving post: %w", notPrimary("node-a")))
	}},
	{name: "handler panics after reporting", handler: func(t *testing.T, w http.ResponseWriter, r *http.Request) {
		refuse(t, r, notPrimary("node-a"))
		panic(notPrimary("node-b")) // the first refusal wins
	}},
	{name: "handler writes the body with io.Copy", handler: func(t *testing.T, w http.ResponseWriter, r *http.Request) {
		refuse(t, r, notPrimary("node-a"))
		w.(io.ReaderFrom).ReadFrom(onlyReader{strings.NewReader("error page")})
	}},
	{name: "handler writes with WriteString after a refusal", handler: func(t *testing.T, w http.ResponseWriter, r *http.Request) {
		refuse(t, r, notPrimary("node-a"))
		io.WriteString(w, "error page")
		w.(http.Flusher).Flush()
	}},
	{name: "refusal reported from another goroutine", handler: func(t *testing.T, w http.ResponseWriter, r *http.Request) {
		done := make(chan struct{})
		go func() { defer close(done); refuse(t, r, notPrimary("node-a")) }()
		<-done
		w.WriteHeader(http.StatusInternalServerError)
	}},
}

func TestRefusalBecomesReplay(t *testing.T) {
	t.Parallel()
	for _, tc := range refusalHandlers {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var ev events
			b := newBridge(t, Config{OnEvent: ev.add})
			h := b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { tc.handler(t, w, r) }))
			w := serve(h, httptest.NewRequest(http.MethodPost, "/posts", strings.NewReader("title=x")))

			assert.Equal(t, http.StatusConflict, w.Code, "status")
			assert.Equal(t, "instance=node-a;state=litefs-hops:1", w.Header().Get("Fly-Replay"), "Fly-Replay")
			assert.Empty(t, w.Header().Get("X-Handler"), "X-Handler")
			assert.Empty(t, w.Body.String(), "body")
			e := ev.only(t)
			assert.Equal(t, ReasonRefused, e.Reason, "event reason")
			assert.Equal(t, "node-a", e.Primary, "event primary")
			assert.Equal(t, uint64(1), b.Count(ReasonRefused), "Count(ReasonRefused)")
		})
	}
}

func TestNoRefusalPassesThrough(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		handler    http.HandlerFunc
		wantStatus int
		wantBody   string
	}{
		{name: "body", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Handler", "1")
			io.WriteString(w, "hello")
		}, wantStatus: http.StatusOK, wantBody: "hello"},
		{name: "status then body", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Handler", "1")
			w.WriteHeader(http.StatusCreated)
			w.Write([]byte("made"))
		}, wantStatus: http.StatusCreated, wantBody: "made"},
		{name: "status only", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Handler", "1")
			w.WriteHeader(http.StatusNoContent)
		}, wantStatus: http.StatusNoContent, wantBody: ""},
		{name: "second WriteHeader ignored", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Handler", "1")
			w.WriteHeader(http.StatusAccepted)
			w.WriteHeader(http.StatusTeapot)
		}, wantStatus: http.StatusAccepted, wantBody: ""},
		{name: "empty write", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Handler", "1")
			w.Write(nil)
		}, wantStatus: http.StatusOK, wantBody: ""},
		{name: "io.Copy from a file-like reader", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Handler", "1")
			w.(io.ReaderFrom).ReadFrom(onlyReader{strings.NewReader(strings.Repeat("x", 2000))})
		}, wantStatus: http.StatusOK, wantBody: strings.Repeat("x", 2000)},
		{name: "nothing", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Handler", "1")
		}, wantStatus: http.StatusOK, wantBody: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var ev events
			b := newBridge(t, Config{OnEvent: ev.add})
			w := serve(b.Handler(tc.handler), httptest.NewRequest(http.MethodGet, "/", nil))
			assert.Equal(t, tc.wantStatus, w.Code, "status")
			assert.Equal(t, tc.wantBody, w.Body.String(), "body")
			assert.Equal(t, "1", w.Header().Get("X-Handler"), "X-Handler")
			ev.none(t)
		})
	}
}

func TestOtherPanicsPropagate(t *testing.T) {
	t.Parallel()
	plain := errors.New("boom")
	tests := []struct {
		name  string
		value any
	}{
		{name: "string", value: "boom"},
		{name: "error", value: plain},
		{name: "ErrAbortHandler", value: http.ErrAbortHandler},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var ev events
			b := newBridge(t, Config{OnEvent: ev.add})
			h := b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusCreated)
				panic(tc.value)
			}))
			w := httptest.NewRecorder()
			got := func() (v any) {
				defer func() { v = recover() }()
				h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/", nil))
				return nil
			}()
			assert.Equal(t, tc.value, got, "panic value")
			// The held status never went out, so outer recovery middleware
			// can still answer.
			assert.Equal(t, http.StatusOK, w.Code, "recorder's status: none written")
			assert.False(t, w.Flushed, "flushed")
			assert.Empty(t, w.Body.String(), "body")
			ev.none(t)
		})
	}
}

func TestTooLate(t *testing.T) {
	t.Parallel()
	t.Run("refusal after the body started", func(t *testing.T) {
		t.Parallel()
		var ev events
		var logs bytes.Buffer
		b := newBridge(t, Config{OnEvent: ev.add, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		h := b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "partial")
			refuse(t, r, notPrimary("node-a"))
			io.WriteString(w, " rest")
		}))
		w := serve(h, httptest.NewRequest(http.MethodPost, "/", nil))
		assert.Equal(t, "partial rest", w.Body.String(), "body")
		assert.Empty(t, w.Header().Get("Fly-Replay"), "Fly-Replay")
		e := ev.only(t)
		assert.Equal(t, ReasonTooLate, e.Reason, "event reason")
		assert.Equal(t, Keep, e.Verdict, "event verdict")
		assert.Equal(t, "node-a", e.Primary, "event primary")
		assert.Equal(t, uint64(1), b.Count(ReasonTooLate), "Count(ReasonTooLate)")
		assert.Contains(t, logs.String(), "level=ERROR", "log")
		assert.Contains(t, logs.String(), "reason=\"too late\"", "log")
	})
	t.Run("refusal after a flush", func(t *testing.T) {
		t.Parallel()
		var ev events
		b := newBridge(t, Config{OnEvent: ev.add})
		h := b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusAccepted)
			w.(http.Flusher).Flush()
			refuse(t, r, notPrimary("node-a"))
		}))
		w := serve(h, httptest.NewRequest(http.MethodPost, "/", nil))
		assert.Equal(t, http.StatusAccepted, w.Code, "status")
		assert.Equal(t, ReasonTooLate, ev.only(t).Reason, "reason")
	})
	t.Run("refusal after an informational response", func(t *testing.T) {
		t.Parallel()
		var ev events
		b := newBridge(t, Config{OnEvent: ev.add})
		h := b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusEarlyHints)
			refuse(t, r, notPrimary("node-a"))
		}))
		serve(h, httptest.NewRequest(http.MethodPost, "/", nil))
		assert.Equal(t, ReasonTooLate, ev.only(t).Reason, "reason")
	})
}

// TestTooLatePanicAborts: a refusal panicking after the body started aborts
// the response, so the client cannot take it for complete.
func TestTooLatePanicAborts(t *testing.T) {
	t.Parallel()
	{
		var ev events
		b := newBridge(t, Config{OnEvent: ev.add})
		h := b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "partial")
			panic(notPrimary("node-a"))
		}))
		got := func() (v any) {
			defer func() { v = recover() }()
			serve(h, httptest.NewRequest(http.MethodPost, "/", nil))
			return nil
		}()
		assert.Equal(t, http.ErrAbortHandler, got, "panic")
		assert.Equal(t, ReasonTooLate, ev.only(t).Reason, "reason")
	}
}

// noPrimaryCases are what WaitPrimary may answer when a write was refused
// with no primary known, and what the client must then get.
var noPrimaryCases = []struct {
	name        string
	wait        func(ctx context.Context, refusal error) (string, error)
	primaryWait time.Duration
	wantStatus  int
	wantReplay  string
	wantReason  Reason
}{
	{name: "primary appears", wait: func(ctx context.Context, refusal error) (string, error) {
		if !errors.Is(refusal, litefs.ErrNoPrimary) {
			return "", fmt.Errorf("got refusal %v", refusal)
		}
		return "node-b", nil
	}, wantStatus: http.StatusConflict, wantReplay: "instance=node-b;state=litefs-hops:1", wantReason: ReasonRefused},
	{name: "this node became primary", wait: func(ctx context.Context, refusal error) (string, error) {
		return "", nil
	}, wantStatus: http.StatusServiceUnavailable, wantReason: ReasonNoPrimary},
	{name: "no primary in time", wait: func(ctx context.Context, refusal error) (string, error) {
		<-ctx.Done()
		return "", context.Cause(ctx)
	}, primaryWait: 10 * time.Millisecond, wantStatus: http.StatusServiceUnavailable, wantReason: ReasonNoPrimary},
	{name: "the new primary is this node's ID", wait: func(ctx context.Context, refusal error) (string, error) {
		return "self", nil
	}, wantStatus: http.StatusServiceUnavailable, wantReason: ReasonLoop},
	{name: "WaitPrimary returns an invalid ID", wait: func(ctx context.Context, refusal error) (string, error) {
		return "node-b;fallback=force_self", nil
	}, wantStatus: http.StatusServiceUnavailable, wantReason: ReasonNoPrimary},
	{name: "waiting disabled", wait: func(ctx context.Context, refusal error) (string, error) {
		return "", errors.New("WaitPrimary must not be called")
	}, primaryWait: -1, wantStatus: http.StatusServiceUnavailable, wantReason: ReasonNoPrimary},
}

func TestNoPrimary(t *testing.T) {
	t.Parallel()
	for _, tc := range noPrimaryCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var ev events
			b := newBridge(t, Config{OnEvent: ev.add, WaitPrimary: tc.wait, PrimaryWait: tc.primaryWait, RetryAfter: 1500 * time.Millisecond})
			h := b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				refuse(t, r, errNoPrimary)
				http.Error(w, "oops", http.StatusInternalServerError)
			}))
			w := serve(h, httptest.NewRequest(http.MethodPost, "/", nil))
			assert.Equal(t, tc.wantStatus, w.Code, "status")
			assert.Equal(t, tc.wantReplay, w.Header().Get("Fly-Replay"), "Fly-Replay")
			if tc.wantStatus == http.StatusServiceUnavailable {
				assert.Equal(t, "2", w.Header().Get("Retry-After"), "Retry-After")
				assert.True(t, strings.HasPrefix(w.Body.String(), "httpbridge: "), "body: got %q, want the bridge's message", w.Body)
			}
			assert.Equal(t, tc.wantReason, ev.only(t).Reason, "reason")
		})
	}
}

func TestDefaultWaitPrimaryNeedsDriverRefusal(t *testing.T) {
	t.Parallel()
	// The real litefs.WaitPrimary refuses refusals it did not make, at once.
	b, err := New(Config{InstanceID: "self", Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	h := b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { refuse(t, r, errNoPrimary) }))
	w := serve(h, httptest.NewRequest(http.MethodPost, "/", nil))
	assert.Equal(t, http.StatusServiceUnavailable, w.Code, "status")
}

func TestRejectAndReplayArePluggable(t *testing.T) {
	t.Parallel()
	var got []Decision
	b := newBridge(t, Config{
		Replay: ReplayerFunc(func(w http.ResponseWriter, r *http.Request, d Decision) {
			got = append(got, d)
			http.Redirect(w, r, "https://"+d.Primary+".example/", http.StatusTemporaryRedirect)
		}),
		Reject: func(w http.ResponseWriter, r *http.Request, d Decision) {
			got = append(got, d)
			w.WriteHeader(http.StatusTeapot)
		},
	})
	h := b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		refuse(t, r, notPrimary(r.URL.Query().Get("primary")))
	}))
	w := serve(h, httptest.NewRequest(http.MethodPost, "/?primary=node-a", nil))
	assert.Equal(t, http.StatusTemporaryRedirect, w.Code, "replay's status")
	assert.Equal(t, "https://node-a.example/", w.Header().Get("Location"), "replay's Location")
	w = serve(h, httptest.NewRequest(http.MethodPost, "/?primary=self", nil))
	assert.Equal(t, http.StatusTeapot, w.Code, "rejection's status")
	require.Len(t, got, 2, "decisions")
	assert.Equal(t, Replay, got[0].Verdict, "first verdict")
	assert.Equal(t, Reject, got[1].Verdict, "second verdict")
	assert.Equal(t, ReasonLoop, got[1].Reason, "second reason")
}

// TestServer runs the bridge behind a real net/http server.
func TestServer(t *testing.T) {
	t.Parallel()
	b := newBridge(t, Config{})
	srv := httptest.NewServer(b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			refuse(t, r, notPrimary("node-a"))
			http.Error(w, "write failed", http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "read ok")
	})))
	t.Cleanup(srv.Close)

	res, err := srv.Client().Post(srv.URL, "text/plain", strings.NewReader("x"))
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	assert.Equal(t, http.StatusConflict, res.StatusCode, "POST's status")
	assert.Equal(t, "instance=node-a;state=litefs-hops:1", res.Header.Get("Fly-Replay"), "POST's Fly-Replay")
	assert.Empty(t, body, "POST's body")
	res, err = srv.Client().Get(srv.URL)
	require.NoError(t, err)
	body, _ = io.ReadAll(res.Body)
	res.Body.Close()
	assert.Equal(t, http.StatusOK, res.StatusCode, "GET's status")
	assert.Equal(t, "read ok", string(body), "GET's body")
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	fwd, err := NewForwarder(ForwardConfig{URL: "http://{primary}:8080", MaxBody: 100})
	require.NoError(t, err)
	tests := []struct {
		name string
		c    Config
		want string // in the error; "" for none
	}{
		{name: "defaults", c: Config{InstanceID: "m1"}, want: ""},
		{name: "bad instance ID", c: Config{InstanceID: "a b"}, want: "InstanceID"},
		{name: "instance ID with a separator", c: Config{InstanceID: "a;fallback=x"}, want: "InstanceID"},
		{name: "negative hops", c: Config{InstanceID: "m1", MaxHops: -1}, want: "MaxHops"},
		{name: "negative Retry-After", c: Config{InstanceID: "m1", RetryAfter: -time.Second}, want: "RetryAfter"},
		{name: "status out of range", c: Config{InstanceID: "m1", ReplayStatus: 42}, want: "ReplayStatus"},
		{name: "negative replay timeout", c: Config{InstanceID: "m1", ReplayTimeout: -1}, want: "ReplayTimeout"},
		{name: "unknown fallback", c: Config{InstanceID: "m1", ReplayFallback: "elsewhere"}, want: "ReplayFallback"},
		{name: "fly-replay without a limit", c: Config{InstanceID: "m1", MaxReplayBody: -1}, want: "MaxReplayBody"},
		{name: "Forward bound under the replay limit", c: Config{InstanceID: "m1", Forward: fwd}, want: "Forward's MaxBody"},
		{name: "Forwarder as Replay", c: Config{InstanceID: "m1", Replay: fwd}, want: ""},
		{name: "nil Forwarder as Replay", c: Config{InstanceID: "m1", Replay: (*Forwarder)(nil)}, want: "nil *Forwarder"},
		{name: "two errors at once", c: Config{InstanceID: "m1", MaxHops: -1, ReplayStatus: 1000}, want: "ReplayStatus"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			wantConfigErr(t, tc.c, tc.want)
		})
	}
}

// wantConfigErr checks that New(c) fails with an error mentioning want, or
// succeeds when want is "".
func wantConfigErr(t *testing.T, c Config, want string) {
	t.Helper()
	_, err := New(c)
	if want == "" {
		assert.NoError(t, err)
	} else {
		assert.ErrorContains(t, err, want)
	}
}

func TestInstanceIDDefault(t *testing.T) {
	t.Setenv("FLY_MACHINE_ID", "148e21ea7e4089")
	b, err := New(Config{})
	require.NoError(t, err)
	assert.Equal(t, "148e21ea7e4089", b.cfg.InstanceID, "InstanceID")
	t.Setenv("FLY_MACHINE_ID", "")
	b, err = New(Config{})
	require.NoError(t, err)
	host, _ := os.Hostname()
	assert.Equal(t, host, b.cfg.InstanceID, "InstanceID without FLY_MACHINE_ID")
}

func TestMiddlewareUsesDefaults(t *testing.T) {
	t.Setenv("FLY_MACHINE_ID", "node-a")
	h := Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		refuse(t, r, notPrimary("node-a")) // the primary is this node: a loop
	}))
	w := serve(h, httptest.NewRequest(http.MethodPost, "/", nil))
	assert.Equal(t, http.StatusServiceUnavailable, w.Code, "status")
	assert.Equal(t, "1", w.Header().Get("Retry-After"), "Retry-After")
}

func TestErrorWrittenAfterReturn(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantReplay string
	}{
		{name: "refusal", err: notPrimary("node-a"), wantStatus: http.StatusConflict, wantReplay: "instance=node-a;state=litefs-hops:1"},
		{name: "other error", err: errors.New("constraint failed"), wantStatus: http.StatusInternalServerError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := newBridge(t, Config{})
			var inner http.ResponseWriter
			var herr error
			h := b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				inner = w
				refuse(t, r, tc.err) // ignored unless a refusal
				herr = tc.err
			}))
			framework := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				h.ServeHTTP(w, r)
				if herr != nil {
					http.Error(inner, "internal error", http.StatusInternalServerError)
				}
			})
			w := serve(framework, httptest.NewRequest(http.MethodPost, "/", nil))
			assert.Equal(t, tc.wantStatus, w.Code, "status")
			assert.Equal(t, tc.wantReplay, w.Header().Get("Fly-Replay"), "Fly-Replay")
			if tc.wantReplay != "" {
				assert.Empty(t, w.Body.String(), "body")
			}
		})
	}
}
