package httpbridge

import (
	"bytes"
	"io"
	"net/http"
)

// body counts the request body bytes the handler reads and, when a Forwarder
// may need to re-send the body, keeps a copy of them up to a bound.
type body struct {
	rc      io.ReadCloser
	n       int64 // bytes read so far
	eof     bool
	keep    bool // copy what is read into kept
	kept    []byte
	keepMax int64
	lost    bool // more than keepMax bytes were read: the copy was dropped
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
		if int64(len(b.kept))+int64(n) > b.keepMax {
			b.keep, b.lost, b.kept = false, true, nil
		} else {
			b.kept = append(b.kept, p[:n]...)
		}
	}
	if err == io.EOF {
		b.eof = true
	}
	return n, err
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

// replay returns a reader that yields the whole body again: the kept copy
// of what was read, then the unread rest. It reports false if the copy was
// dropped for exceeding the bound.
func (b *body) replay() (io.ReadCloser, bool) {
	if b.lost {
		return nil, false
	}
	if b.eof {
		return io.NopCloser(bytes.NewReader(b.kept)), true
	}
	return &replayBody{Reader: io.MultiReader(bytes.NewReader(b.kept), b.rc), c: b.rc}, true
}

type replayBody struct {
	io.Reader
	c io.Closer
}

func (r *replayBody) Close() error { return r.c.Close() }
