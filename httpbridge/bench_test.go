package httpbridge

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/litefs-sql/litefs"
	"github.com/stretchr/testify/require"
)

// discardWriter is a ResponseWriter that keeps nothing, so a benchmark
// measures the middleware rather than a recorder.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}
func (w *discardWriter) Flush()                      {}

type benchKey struct{}

// withValue is the least a middleware handing the handler a value in the
// request context can do.
func withValue(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), benchKey{}, w)))
	})
}

// fixedPosition is a node at TXID 10, never waiting: what the bridge does
// with the answers, not the file reads behind them.
type fixedPosition struct{}

func (fixedPosition) CurrentTXID(context.Context) (litefs.TXID, error) { return 10, nil }
func (fixedPosition) WaitTXID(context.Context, litefs.TXID) (litefs.TXID, error) {
	return 10, nil
}
func (fixedPosition) CheckPrimary(context.Context) error { return nil }

// BenchmarkMiddleware measures what the bridge adds to a request that needs
// no replay: a handler that sets a header and writes a short body. "context"
// is the least any middleware that hands the handler a value in the request
// context pays (a context and a copy of the Request): the floor under
// "bridge". "ryw" has read-your-writes on and a request without the cookie;
// "ryw-reached" one whose cookie names a transaction the bridge knows this
// node has, among other cookies.
func BenchmarkMiddleware(b *testing.B) {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "ok")
	})
	bridge, err := New(Config{InstanceID: "self"})
	require.NoError(b, err)
	ryw, err := New(Config{InstanceID: "self", Position: fixedPosition{}})
	require.NoError(b, err)
	ryw.saw(10)
	const cookies = "theme=dark; session=0123456789abcdef0123456789abcdef; __txid=0000000000000005"
	for _, bc := range []struct {
		name   string
		h      http.Handler
		cookie string
	}{
		{"bare", handler, ""},
		{"context", withValue(handler), ""},
		{"bridge", bridge.Handler(handler), ""},
		{"ryw", ryw.Handler(handler), ""},
		{"ryw-reached", ryw.Handler(handler), cookies},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := httptest.NewRequest(http.MethodGet, "/posts/1", nil)
			if bc.cookie != "" {
				r.Header.Set("Cookie", bc.cookie)
			}
			w := &discardWriter{h: make(http.Header)}
			b.ReportAllocs()
			for b.Loop() {
				bc.h.ServeHTTP(w, r)
			}
		})
	}
}
