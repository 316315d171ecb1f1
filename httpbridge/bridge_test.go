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
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return b
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// refuse reports a refused write to r's Tracker, as the driver does.
func refuse(tb testing.TB, r *http.Request, err error) {
	tb.Helper()
	t := litefs.TrackerFrom(r.Context())
	if t == nil {
		tb.Fatal("no litefs.Tracker in the request context")
	}
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
	if len(e.es) != 1 {
		tb.Fatalf("got %d events, want 1: %+v", len(e.es), e.es)
	}
	return e.es[0]
}

func (e *events) none(tb testing.TB) {
	tb.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.es) != 0 {
		tb.Fatalf("got events %+v, want none", e.es)
	}
}

// onlyReader hides every method of a reader but Read.
type onlyReader struct{ io.Reader }

// serve runs h on one request and returns the recorded response.
func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestRefusalBecomesReplay(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		handler func(t *testing.T, w http.ResponseWriter, r *http.Request)
	}{
		{"handler writes its own 500", func(t *testing.T, w http.ResponseWriter, r *http.Request) {
			refuse(t, r, notPrimary("node-a"))
			w.Header().Set("X-Handler", "1")
			http.Error(w, "database error", http.StatusInternalServerError)
		}},
		{"handler writes nothing", func(t *testing.T, w http.ResponseWriter, r *http.Request) {
			refuse(t, r, notPrimary("node-a"))
		}},
		{"handler sets a status only", func(t *testing.T, w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Handler", "1")
			w.WriteHeader(http.StatusCreated)
			refuse(t, r, notPrimary("node-a"))
		}},
		{"handler panics with the refusal", func(t *testing.T, w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Handler", "1")
			panic(fmt.Errorf("saving post: %w", notPrimary("node-a")))
		}},
		{"handler panics after reporting", func(t *testing.T, w http.ResponseWriter, r *http.Request) {
			refuse(t, r, notPrimary("node-a"))
			panic(notPrimary("node-b")) // the first refusal wins
		}},
		{"handler writes the body with io.Copy", func(t *testing.T, w http.ResponseWriter, r *http.Request) {
			refuse(t, r, notPrimary("node-a"))
			w.(io.ReaderFrom).ReadFrom(onlyReader{strings.NewReader("error page")})
		}},
		{"handler writes with WriteString after a refusal", func(t *testing.T, w http.ResponseWriter, r *http.Request) {
			refuse(t, r, notPrimary("node-a"))
			io.WriteString(w, "error page")
			w.(http.Flusher).Flush()
		}},
		{"refusal reported from another goroutine", func(t *testing.T, w http.ResponseWriter, r *http.Request) {
			done := make(chan struct{})
			go func() { defer close(done); refuse(t, r, notPrimary("node-a")) }()
			<-done
			w.WriteHeader(http.StatusInternalServerError)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var ev events
			b := newBridge(t, Config{OnEvent: ev.add})
			h := b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { tc.handler(t, w, r) }))
			w := serve(h, httptest.NewRequest(http.MethodPost, "/posts", strings.NewReader("title=x")))

			assert.Equal(t, http.StatusConflict, w.Code, "status")
			if got, want := w.Header().Get("Fly-Replay"), "instance=node-a;state=litefs-hops:1"; got != want {
				t.Errorf("Fly-Replay: got %q, want %q", got, want)
			}
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
		{"body", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Handler", "1")
			io.WriteString(w, "hello")
		}, http.StatusOK, "hello"},
		{"status then body", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Handler", "1")
			w.WriteHeader(http.StatusCreated)
			w.Write([]byte("made"))
		}, http.StatusCreated, "made"},
		{"status only", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Handler", "1")
			w.WriteHeader(http.StatusNoContent)
		}, http.StatusNoContent, ""},
		{"second WriteHeader ignored", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Handler", "1")
			w.WriteHeader(http.StatusAccepted)
			w.WriteHeader(http.StatusTeapot)
		}, http.StatusAccepted, ""},
		{"empty write", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Handler", "1")
			w.Write(nil)
		}, http.StatusOK, ""},
		{"io.Copy from a file-like reader", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Handler", "1")
			w.(io.ReaderFrom).ReadFrom(onlyReader{strings.NewReader(strings.Repeat("x", 2000))})
		}, http.StatusOK, strings.Repeat("x", 2000)},
		{"nothing", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Handler", "1")
		}, http.StatusOK, ""},
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
		{"string", "boom"},
		{"error", plain},
		{"ErrAbortHandler", http.ErrAbortHandler},
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
			if got != tc.value {
				t.Errorf("panic value: got %v, want %v", got, tc.value)
			}
			// The held status never went out, so outer recovery middleware
			// can still answer.
			if w.Code != http.StatusOK || w.Flushed || w.Body.Len() != 0 {
				t.Errorf("response: got status %v flushed %v body %q, want nothing written", w.Code, w.Flushed, w.Body)
			}
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
		if e.Reason != ReasonTooLate || e.Verdict != Keep || e.Primary != "node-a" {
			t.Errorf("event: got %v/%v/%q, want too late/keep/node-a", e.Reason, e.Verdict, e.Primary)
		}
		assert.Equal(t, uint64(1), b.Count(ReasonTooLate), "Count(ReasonTooLate)")
		if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "reason=\"too late\"") {
			t.Errorf("log: got %q, want an ERROR record with reason too late", logs.String())
		}
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
	t.Run("panic after the body started aborts", func(t *testing.T) {
		t.Parallel()
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
		if got != http.ErrAbortHandler {
			t.Errorf("panic: got %v, want %v", got, http.ErrAbortHandler)
		}
		assert.Equal(t, ReasonTooLate, ev.only(t).Reason, "reason")
	})
}

func TestNoPrimary(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		wait        func(ctx context.Context, refusal error) (string, error)
		primaryWait time.Duration
		wantStatus  int
		wantReplay  string
		wantReason  Reason
	}{
		{"primary appears", func(ctx context.Context, refusal error) (string, error) {
			if !errors.Is(refusal, litefs.ErrNoPrimary) {
				return "", fmt.Errorf("got refusal %v", refusal)
			}
			return "node-b", nil
		}, 0, http.StatusConflict, "instance=node-b;state=litefs-hops:1", ReasonRefused},
		{"this node became primary", func(ctx context.Context, refusal error) (string, error) {
			return "", nil
		}, 0, http.StatusServiceUnavailable, "", ReasonNoPrimary},
		{"no primary in time", func(ctx context.Context, refusal error) (string, error) {
			<-ctx.Done()
			return "", context.Cause(ctx)
		}, 10 * time.Millisecond, http.StatusServiceUnavailable, "", ReasonNoPrimary},
		{"the new primary is this node's ID", func(ctx context.Context, refusal error) (string, error) {
			return "self", nil
		}, 0, http.StatusServiceUnavailable, "", ReasonLoop},
		{"WaitPrimary returns an invalid ID", func(ctx context.Context, refusal error) (string, error) {
			return "node-b;fallback=force_self", nil
		}, 0, http.StatusServiceUnavailable, "", ReasonNoPrimary},
		{"waiting disabled", func(ctx context.Context, refusal error) (string, error) {
			return "", errors.New("WaitPrimary must not be called")
		}, -1, http.StatusServiceUnavailable, "", ReasonNoPrimary},
	}
	for _, tc := range tests {
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
				if !strings.HasPrefix(w.Body.String(), "httpbridge: ") {
					t.Errorf("body: got %q, want a litefs message", w.Body)
				}
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
	if w := serve(h, httptest.NewRequest(http.MethodPost, "/?primary=node-a", nil)); w.Code != http.StatusTemporaryRedirect || w.Header().Get("Location") != "https://node-a.example/" {
		t.Errorf("replay: got %v %q, want 307 to node-a", w.Code, w.Header().Get("Location"))
	}
	if w := serve(h, httptest.NewRequest(http.MethodPost, "/?primary=self", nil)); w.Code != http.StatusTeapot {
		t.Errorf("reject: got %v, want %v", w.Code, http.StatusTeapot)
	}
	if len(got) != 2 || got[0].Verdict != Replay || got[1].Verdict != Reject || got[1].Reason != ReasonLoop {
		t.Errorf("decisions: got %+v, want a replay then a loop rejection", got)
	}
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
	if res.StatusCode != http.StatusConflict || res.Header.Get("Fly-Replay") != "instance=node-a;state=litefs-hops:1" || len(body) != 0 {
		t.Errorf("POST: got %v %q %q, want 409 with Fly-Replay and no body", res.StatusCode, res.Header.Get("Fly-Replay"), body)
	}
	res, err = srv.Client().Get(srv.URL)
	require.NoError(t, err)
	body, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || string(body) != "read ok" {
		t.Errorf("GET: got %v %q, want 200 %q", res.StatusCode, body, "read ok")
	}
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
		{"defaults", Config{InstanceID: "m1"}, ""},
		{"bad instance ID", Config{InstanceID: "a b"}, "InstanceID"},
		{"instance ID with a separator", Config{InstanceID: "a;fallback=x"}, "InstanceID"},
		{"negative hops", Config{InstanceID: "m1", MaxHops: -1}, "MaxHops"},
		{"negative Retry-After", Config{InstanceID: "m1", RetryAfter: -time.Second}, "RetryAfter"},
		{"status out of range", Config{InstanceID: "m1", ReplayStatus: 42}, "ReplayStatus"},
		{"negative replay timeout", Config{InstanceID: "m1", ReplayTimeout: -1}, "ReplayTimeout"},
		{"unknown fallback", Config{InstanceID: "m1", ReplayFallback: "elsewhere"}, "ReplayFallback"},
		{"fly-replay without a limit", Config{InstanceID: "m1", MaxReplayBody: -1}, "MaxReplayBody"},
		{"Forward bound under the replay limit", Config{InstanceID: "m1", Forward: fwd}, "Forward's MaxBody"},
		{"Forwarder as Replay", Config{InstanceID: "m1", Replay: fwd}, ""},
		{"nil Forwarder as Replay", Config{InstanceID: "m1", Replay: (*Forwarder)(nil)}, "nil *Forwarder"},
		{"two errors at once", Config{InstanceID: "m1", MaxHops: -1, ReplayStatus: 1000}, "ReplayStatus"},
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
	switch {
	case want == "" && err != nil:
		t.Errorf("got %v, want no error", err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Errorf("got %v, want an error about %s", err, want)
	}
}

func TestInstanceIDDefault(t *testing.T) {
	t.Setenv("FLY_MACHINE_ID", "148e21ea7e4089")
	b, err := New(Config{})
	require.NoError(t, err)
	assert.Equal(t, "148e21ea7e4089", b.cfg.InstanceID, "InstanceID")
	t.Setenv("FLY_MACHINE_ID", "")
	if b, err = New(Config{}); err != nil {
		t.Fatal(err)
	}
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
		{"refusal", notPrimary("node-a"), http.StatusConflict, "instance=node-a;state=litefs-hops:1"},
		{"other error", errors.New("constraint failed"), http.StatusInternalServerError, ""},
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
			if tc.wantReplay != "" && w.Body.Len() != 0 {
				t.Errorf("body: got %q, want empty", w.Body)
			}
		})
	}
}
