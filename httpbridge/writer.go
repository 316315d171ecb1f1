package httpbridge

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"

	"github.com/litefs-sql/litefs"
)

// ErrResponseDropped is returned by the ResponseWriter's Write, Flush
// (FlushError) and Hijack once a write of the request was refused before the
// response started: the handler's output is being dropped, and the bridge
// answers instead. A streaming handler can stop early on it; io.Copy does.
var ErrResponseDropped = errors.New("httpbridge: response dropped: a write was refused, and the bridge answers instead")

// phase is where a handler's response stands. The phases in which the
// response has started, sent and hijacked, come last: started relies on it.
type phase uint8

const (
	// held: nothing has gone out; a status may be held back, and the bridge
	// can still replace the response.
	held phase = iota
	// dropped: a refusal came before the response started; the handler's
	// output goes nowhere. Only the bridge leaves this phase (rewrite).
	dropped
	// sent: the status line went out; the response stands.
	sent
	// hijacked: the handler took the connection; nothing more is sent.
	hijacked
)

// writer holds back the status line and headers of a handler's response
// until the handler writes a body byte, flushes, hijacks or returns. Until
// then the bridge can still swap the response for a replay.
//
// At the point where the response would start, writer looks at the request's
// Tracker once: a refusal seen by then means the handler's response (often
// its own 500) is dropped, and the bridge answers instead. With
// read-your-writes on, that point is also where the Tracker is asked whether
// a write committed, and the TXID cookie added if one did.
//
// Only writer's own methods change phase: start (held to sent or dropped),
// drop, hijack, and rewrite (dropped back to held, for the bridge's answer).
type writer struct {
	w       http.ResponseWriter
	tracker *litefs.Tracker
	phase   phase
	status  int // status held back; 0 if none yet

	// Read-your-writes: when setCookie is true, the response gets the TXID
	// cookie of a write the request committed.
	setCookie bool
	bridge    *Bridge       // names, logs and records the TXID
	req       *http.Request // for the cookie's Secure attribute
	txid      txidState
}

// started reports whether the response went out (or the connection was
// hijacked): too late to replace it.
func (w *writer) started() bool { return w.phase >= sent }

// replaceable reports whether a refusal means the response will be replaced:
// a request that committed a write here before is not replayed.
func (w *writer) replaceable() bool {
	return w.tracker.Refusal() != nil && !w.tracker.Committed()
}

// drop moves a held response to dropped if a refusal means it will be
// replaced, and reports whether the response is dropped.
func (w *writer) drop() bool {
	if w.phase == held && w.replaceable() {
		w.phase = dropped
	}
	return w.phase == dropped
}

// start commits the response: it sends the held status, unless a refusal was
// already seen, in which case it reports false and the response is dropped.
func (w *writer) start() bool {
	if w.started() {
		return true
	}
	if w.drop() {
		return false
	}
	w.phase = sent
	if w.setCookie {
		w.addTXIDCookie()
	}
	if w.status != 0 {
		w.w.WriteHeader(w.status)
	}
	return true
}

// finish sends a status the handler set but never followed with a body, and
// the TXID cookie of a handler that wrote nothing at all: net/http sends
// the headers after the handler returns.
func (w *writer) finish() {
	if w.phase != held {
		return
	}
	if w.setCookie {
		w.addTXIDCookie()
	}
	if w.status != 0 {
		w.phase = sent
		w.w.WriteHeader(w.status)
	}
}

// rewrite forgets a dropped or never-started response, its headers
// included, so the bridge can write its own answer through w (which then
// gets the TXID cookie of a write that did commit).
func (w *writer) rewrite() {
	clear(w.w.Header())
	w.phase, w.status = held, 0
}

// txidState is where a response stands with its TXID cookie.
type txidState uint8

const (
	txidUnchecked txidState = iota // the commit point has not come (or was a hijack)
	txidNone                       // no write had committed at the commit point
	txidCommitted                  // a write had committed: the cookie was set if LiteFS had a TXID
)

// addTXIDCookie sets the TXID cookie if the handler has committed a write,
// reading <db>-pos once. It runs at the commit point, before the status line
// goes out, and only when no refusal was seen: a replaced response did not
// write here.
func (w *writer) addTXIDCookie() {
	if !w.tracker.Committed() {
		w.txid = txidNone
		return
	}
	w.txid = txidCommitted
	id, ok, err := w.bridge.committedTXID(w.tracker)
	if err != nil {
		w.bridge.cfg.Logger.Log(w.req.Context(), slog.LevelWarn, "httpbridge: cannot read the TXID of a committed write; no TXID cookie",
			"cookie", w.bridge.cfg.TXIDCookie, "error", err)
		return
	}
	if ok { // else the database is not in a LiteFS mount
		w.bridge.saw(id)
		w.bridge.setTXIDCookie(w.w.Header(), id, overTLS(w.req))
	}
}

// lateCommit logs, at level Debug, a write committed after the commit
// point, too late for its cookie.
func (w *writer) lateCommit() {
	if w.txid == txidCommitted {
		return
	}
	ctx, log := w.req.Context(), w.bridge.cfg.Logger
	if log.Enabled(ctx, slog.LevelDebug) && w.tracker.Committed() {
		log.Log(ctx, slog.LevelDebug, "httpbridge: a write committed after the response started; no TXID cookie",
			"cookie", w.bridge.cfg.TXIDCookie, "hijacked", w.phase == hijacked, "method", w.req.Method, "path", w.req.URL.Path)
	}
}

func (w *writer) Header() http.Header { return w.w.Header() }

func (w *writer) WriteHeader(code int) {
	switch {
	case w.started():
		w.w.WriteHeader(code) // let net/http report a superfluous call
	case w.phase == dropped:
	case code < 100 || code > 999:
		w.w.WriteHeader(code) // let net/http panic as it would without the bridge
	case code < 200 && code != http.StatusSwitchingProtocols:
		// An informational response goes out now, so the response has
		// started: fly-replay can no longer be trusted to apply.
		if w.start() {
			w.w.WriteHeader(code)
		}
	case w.status == 0:
		w.status = code
	}
}

func (w *writer) Write(p []byte) (int, error) {
	if !w.started() {
		if len(p) == 0 {
			return 0, w.touch()
		}
		if !w.start() {
			return 0, ErrResponseDropped
		}
	}
	return w.w.Write(p)
}

// touch is an empty write before the response started: it implies a 200,
// as net/http's would, and sends nothing yet.
func (w *writer) touch() error {
	if w.drop() {
		return ErrResponseDropped
	}
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return nil
}

func (w *writer) WriteString(s string) (int, error) {
	if !w.started() {
		if len(s) == 0 {
			return 0, w.touch()
		}
		if !w.start() {
			return 0, ErrResponseDropped
		}
	}
	return io.WriteString(w.w, s)
}

// ReadFrom keeps the underlying writer's ReadFrom (sendfile) for all but the
// first chunk, which goes through Write so that an empty source does not
// start the response.
func (w *writer) ReadFrom(src io.Reader) (int64, error) {
	var n int64
	if !w.started() {
		buf := make([]byte, 512)
		for !w.started() {
			m, err := src.Read(buf)
			if m > 0 {
				if _, werr := w.Write(buf[:m]); werr != nil {
					return n, werr
				}
				n += int64(m)
			}
			if err == io.EOF {
				return n, nil
			}
			if err != nil {
				return n, err
			}
		}
	}
	m, err := io.Copy(w.w, src)
	return n + m, err
}

// Unwrap returns the underlying ResponseWriter, for http.ResponseController.
func (w *writer) Unwrap() http.ResponseWriter { return w.w }

func (w *writer) flush() error {
	if !w.start() {
		return ErrResponseDropped
	}
	return http.NewResponseController(w.w).Flush()
}

func (w *writer) hijack() (net.Conn, *bufio.ReadWriter, error) {
	switch {
	case w.phase == hijacked:
		return nil, nil, http.ErrHijacked
	case w.phase != sent && w.drop():
		return nil, nil, ErrResponseDropped
	}
	conn, rw, err := http.NewResponseController(w.w).Hijack()
	if err == nil {
		// The held status is never sent: the handler owns the connection.
		w.phase = hijacked
	}
	return conn, rw, err
}

// The variants below advertise Flush and Hijack only where the underlying
// writer (or one it unwraps to) supports them. Each is a single pointer, so
// storing one in an http.ResponseWriter does not allocate.
type (
	flushWriter        struct{ *writer }
	hijackWriter       struct{ *writer }
	flushHijackWriter  struct{ *writer }
	flushErrorer       interface{ FlushError() error }
	responseUnwrapper  interface{ Unwrap() http.ResponseWriter }
	hijackFlushWriters interface {
		http.Flusher
		http.Hijacker
	}
)

func (w flushWriter) Flush()            { w.flush() }
func (w flushWriter) FlushError() error { return w.flush() }
func (w hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return w.hijack()
}
func (w flushHijackWriter) Flush()            { w.flush() }
func (w flushHijackWriter) FlushError() error { return w.flush() }
func (w flushHijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return w.hijack()
}

var (
	_ http.ResponseWriter = (*writer)(nil)
	_ io.StringWriter     = (*writer)(nil)
	_ io.ReaderFrom       = (*writer)(nil)
	_ responseUnwrapper   = (*writer)(nil)
	_ http.Flusher        = flushWriter{}
	_ flushErrorer        = flushWriter{}
	_ http.Hijacker       = hijackWriter{}
	_ hijackFlushWriters  = flushHijackWriter{}
)

// maxUnwrap bounds the walk down a chain of wrapped writers.
const maxUnwrap = 16

// capabilities reports whether w, or a writer it unwraps to, can flush and
// hijack: what http.ResponseController would find.
func capabilities(w http.ResponseWriter) (flush, hijack bool) {
	for range maxUnwrap {
		if !flush {
			switch w.(type) {
			case http.Flusher, flushErrorer:
				flush = true
			}
		}
		if !hijack {
			_, hijack = w.(http.Hijacker)
		}
		u, ok := w.(responseUnwrapper)
		if !ok || flush && hijack {
			break
		}
		w = u.Unwrap()
	}
	return flush, hijack
}

// wrap returns w.w's stand-in, with the optional methods w.w has.
func (w *writer) wrap() http.ResponseWriter {
	switch flush, hijack := capabilities(w.w); {
	case flush && hijack:
		return flushHijackWriter{w}
	case flush:
		return flushWriter{w}
	case hijack:
		return hijackWriter{w}
	default:
		return w
	}
}
