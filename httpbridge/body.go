package httpbridge

import (
	"bytes"
	"io"
	"math"
	"net/http"
)

// bodyPolicy answers, once per Bridge, the two questions a request body
// raises: what limit applies when the request must go to the primary, and
// whether the bridge keeps a copy of the body as the handler reads it (for
// a Forwarder, which re-sends it). Decision.MaxBody, and so the 413's
// message, come from limit alone.
type bodyPolicy struct {
	replayMax      int64 // largest body Config.Replay carries; MaxInt64 for any
	keepMax        int64 // bound of the kept copy; 0 when nothing forwards
	replayForwards bool  // Config.Replay is a *Forwarder: keepMax bounds every body
	forwards       bool  // Config.Forward takes the bodies over replayMax
}

// newBodyPolicy returns the policy of a bridge whose Replayer is replay
// (nil: not known yet) and whose Config.Forward is forward.
func newBodyPolicy(replay Replayer, forward *Forwarder, maxReplayBody int64) bodyPolicy {
	p := bodyPolicy{replayMax: maxReplayBody}
	if p.replayMax < 0 {
		p.replayMax = math.MaxInt64
	}
	if f, ok := replay.(*Forwarder); ok && f != nil {
		p.replayForwards, p.keepMax = true, f.maxBody
	} else if forward != nil {
		p.forwards, p.keepMax = true, forward.maxBody
	}
	return p
}

// limit is the body size over which a request cannot go to the primary:
// the Forwarder's bound where one takes the large bodies, else what the
// Replayer carries.
func (p bodyPolicy) limit() int64 {
	if p.keepMax > 0 {
		return p.keepMax
	}
	return p.replayMax
}

// watch reports whether the bridge wraps a request body: when its size is
// unknown, or when a Forwarder may re-send it. A plain GET costs nothing.
func (p bodyPolicy) watch(r *http.Request) bool {
	return r.Body != nil && r.Body != http.NoBody && (r.ContentLength < 0 || p.keepMax > 0)
}

// newBody wraps r's body. No copy is kept when the Content-Length already
// exceeds the bound: the handler's first read then loses the body for a
// Forwarder, but a body the handler leaves unread can still be streamed.
func (p bodyPolicy) newBody(r *http.Request) *body {
	b := &body{rc: r.Body, keepMax: p.keepMax}
	b.keep = p.keepMax > 0 && r.ContentLength <= p.keepMax
	b.lost = p.keepMax > 0 && !b.keep
	if b.keep && r.ContentLength > 0 {
		b.want = r.ContentLength
	}
	return b
}

// measure reports whether size must be measured by reading: the body's
// length is not known and a limit short of the Forwarder's may apply.
func (p bodyPolicy) measure() bool {
	return p.replayMax < math.MaxInt64 && !p.replayForwards
}

// Chunk sizes of a kept copy whose length is not known in advance: each
// chunk is as large as the copy so far, within these bounds, so a copy costs
// at most maxChunk more than its length and is never copied to grow.
const (
	minChunk = 4 << 10
	maxChunk = 1 << 20
)

// body counts the request body bytes the handler reads and, when a Forwarder
// may need to re-send the body, keeps a copy of them up to a bound.
//
// The copy is held in chunks that are filled and never moved, growing up to
// maxChunk and ending at the Content-Length when it is known. So a copy
// costs at most its size plus maxChunk, never twice its size as appending to
// one slice would while it grows, and a client that announces a large body
// and sends little gets little memory.
type body struct {
	rc      io.ReadCloser
	n       int64 // bytes read so far
	eof     bool
	keep    bool     // copy what is read into chunks
	chunks  [][]byte // the copy; every chunk but the last is full
	kept    int64    // bytes in chunks
	want    int64    // the Content-Length, if known: the copy's last chunk ends there
	keepMax int64
	lost    bool // the copy was dropped, or never kept: it cannot be re-sent
	closed  bool // the handler closed the body
}

func (b *body) Read(p []byte) (int, error) {
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	return b.read(p)
}

// read reads from the real body, which stays open for the bridge after the
// handler closed its view of it.
func (b *body) read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.n += int64(n)
	if b.keep && n > 0 {
		b.copy(p[:n])
	}
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

// copy appends p to the kept copy, or drops the copy if p takes it over
// the bound.
func (b *body) copy(p []byte) {
	if b.kept+int64(len(p)) > b.keepMax {
		b.keep, b.lost, b.chunks, b.kept = false, true, nil, 0
		return
	}
	for len(p) > 0 {
		last := len(b.chunks) - 1
		if last < 0 || len(b.chunks[last]) == cap(b.chunks[last]) {
			b.chunks = append(b.chunks, make([]byte, 0, max(b.nextChunk(b.kept), 1)))
			last++
		}
		c := b.chunks[last]
		m := min(len(p), cap(c)-len(c))
		b.chunks[last] = append(c, p[:m]...)
		b.kept += int64(m)
		p = p[m:]
	}
}

// nextChunk returns the capacity of the next chunk of a copy kept bytes
// long: as large as the copy so far,
// within [minChunk, maxChunk], and no larger than the rest of the
// Content-Length. So memory follows the bytes that arrived, never what a
// client merely announced.
func (b *body) nextChunk(kept int64) int {
	size := min(max(kept, minChunk), maxChunk)
	if rest := b.want - kept; b.want > 0 && rest > 0 {
		size = min(size, rest)
	}
	return int(min(size, b.keepMax))
}

// Close ends the handler's reads. The real body stays open, so the bridge
// can still measure and re-send it; net/http closes it when the request ends.
func (b *body) Close() error {
	b.closed = true
	return nil
}

// size returns the body's total length, reading what the handler left unread
// as far as limit+1 bytes to find out. A result over limit means "more than
// limit"; reading fails count as more, since the body can then not be
// re-sent whole.
func (b *body) size(limit int64) int64 {
	if b.eof {
		return b.n
	}
	var buf [4096]byte
	for empty := 0; b.n <= limit; {
		n, err := b.read(buf[:min(int64(len(buf)), limit+1-b.n)])
		switch {
		case err == io.EOF:
			return b.n
		case err != nil:
			return limit + 1
		case n > 0:
			empty = 0
		default:
			if empty++; empty > 100 {
				return limit + 1 // a reader that never progresses
			}
		}
	}
	return b.n
}

// resend returns a reader that yields the whole body again: the kept copy
// of what was read, then the unread rest. It reports false if the copy was
// dropped for exceeding the bound, or never kept and the handler read some.
func (b *body) resend() (io.ReadCloser, bool) {
	if b.lost && b.n > 0 {
		return nil, false
	}
	readers := make([]io.Reader, 0, len(b.chunks)+1)
	for _, c := range b.chunks {
		readers = append(readers, bytes.NewReader(c))
	}
	if b.eof {
		return io.NopCloser(io.MultiReader(readers...)), true
	}
	return &resendBody{Reader: io.MultiReader(append(readers, b.rc)...), c: b.rc}, true
}

type resendBody struct {
	io.Reader
	c io.Closer
}

func (r *resendBody) Close() error { return r.c.Close() }
