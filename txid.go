package litefs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
)

// TXID is the ID of a LiteFS transaction: it grows by one with every
// transaction the primary commits, on every node that applies it.
type TXID uint64

// String returns id as 16 lower-case hex digits, the form LiteFS uses in
// <db>-pos and its proxy uses in the __txid cookie.
func (id TXID) String() string {
	const hex = "0123456789abcdef"
	var b [16]byte
	for i := 15; i >= 0; i-- {
		b[i] = hex[id&0xf]
		id >>= 4
	}
	return string(b[:])
}

// ParseTXID parses the 16 hex digits of [TXID.String].
func ParseTXID(s string) (TXID, error) {
	if len(s) != 16 {
		return 0, fmt.Errorf("litefs: TXID %q: want 16 hex digits", truncate(s))
	}
	v, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("litefs: TXID %q: want 16 hex digits", truncate(s))
	}
	return TXID(v), nil
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// ErrNoPosition reports a database whose <db>-pos file does not exist: it
// is not in a LiteFS mount, or LiteFS has not created it yet.
var ErrNoPosition = errors.New("litefs: no position file")

// posSize is the length of <db>-pos: "%016x/%016x\n".
const posSize = 34

// parsePos parses the contents of <db>-pos: TXID, '/', checksum, newline.
func parsePos(b []byte) (TXID, error) {
	if len(b) != posSize || b[16] != '/' || b[33] != '\n' {
		return 0, fmt.Errorf("litefs: position %q: want %%016x/%%016x and a newline", truncate(string(b)))
	}
	id, err := ParseTXID(string(b[:16]))
	if err != nil {
		return 0, err
	}
	if _, err := strconv.ParseUint(string(b[17:33]), 16, 64); err != nil {
		return 0, fmt.Errorf("litefs: position %q: bad checksum", truncate(string(b)))
	}
	return id, nil
}

// readPos reads the TXID from the position file at path.
func readPos(path string) (TXID, error) {
	if path == "" {
		return 0, ErrNoPosition
	}
	var buf [posSize + 1]byte
	n, exists, err := readSmall(path, buf[:])
	if err != nil {
		return 0, fmt.Errorf("litefs: %w", err)
	}
	if !exists {
		return 0, ErrNoPosition
	}
	return parsePos(buf[:n])
}

// CurrentTXID returns the TXID of the last transaction applied to db's
// database on this node, from LiteFS's <db>-pos file: one read of the mount
// (on LiteFS, one pread of a file the driver keeps open: about 90 µs here).
// It takes no connection from db's pool. It returns [ErrNoPosition] outside
// LiteFS.
func CurrentTXID(ctx context.Context, db *sql.DB) (TXID, error) {
	ctr, err := connectorOf(db)
	if err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	w := ctr.watcher()
	if w == nil {
		return 0, ErrNoPosition
	}
	id, err := w.pos.read()
	if err == nil {
		w.advance(id)
	}
	return id, err
}

// TXIDHint returns the last TXID of db's database that LiteFS's event
// stream has reported on this node, reading no file and taking no connection
// from db's pool; ok is false when the driver follows no live, trusted
// stream for it (see [WithLiteFSAPI]). The stream may trail the node by the
// events in flight, and is checked against <db>-pos only every few hundred
// milliseconds, so the hint can tell that a replica is most likely behind a
// transaction, for middleware to send a request that may write to the
// primary at once, but never that it has caught up: that takes
// [CurrentTXID] or [WaitTXID].
func TXIDHint(db *sql.DB) (id TXID, ok bool) {
	ctr, err := connectorOf(db)
	if err != nil {
		return 0, false
	}
	w := ctr.watcher()
	if w == nil || w.pos == nil || !w.txLive.Load() || w.trusted() == nil {
		return 0, false
	}
	return TXID(w.streamTX.Load()), true
}

// WaitTXID waits until db's database on this node has applied transaction
// want, and returns the TXID reached. It takes no connection from db's pool
// and reads no file itself: the waiters of a database share one source of
// its position, LiteFS's event stream when it is live (see [WithLiteFSAPI])
// or else one reader of <db>-pos every 2 ms while anyone waits. It returns
// [ErrTooManyWaiters] when [WithMaxWaiters] calls already wait, the error
// reading <db>-pos ([ErrNoPosition] outside LiteFS), and context.Cause(ctx)
// when ctx ends first.
func WaitTXID(ctx context.Context, db *sql.DB, want TXID) (TXID, error) {
	ctr, err := connectorOf(db)
	if err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, context.Cause(ctx)
	}
	w := ctr.watcher()
	if w == nil {
		return 0, ErrNoPosition
	}
	return w.wait(ctx, want)
}

// TXID returns the TXID of the last commit to the database last committed
// to with this tracker's context, or a later one (see [Tracker.TXIDOf] for
// one database among several); ok is false when no write committed or
// the database has no position file. It reads <db>-pos once (on LiteFS one
// pread of a file kept open), unless [Tracker.PrefetchTXID] let every commit
// begin that read in its commit hook and those reads tell the TXID
// (prefetch.go).
//
// It does not take the TXID from LiteFS's event stream alone because the
// stream cannot say which transaction was this commit: its event is sent
// during the commit but may arrive after the caller moves on, behind an
// earlier transaction's, and a position that old would break
// read-your-writes.
func (t *Tracker) TXID() (id TXID, ok bool, err error) {
	if t == nil || !t.committed.Load() {
		return 0, false, nil
	}
	t.mu.Lock()
	d := t.last
	var reads []*txidRead
	var unread bool
	if d != nil {
		reads, unread = d.reads, d.unread
	}
	t.mu.Unlock()
	if d == nil {
		return 0, false, nil
	}
	return txidOf(d.pos, reads, unread)
}

// TXIDOf is [Tracker.TXID] for db's database: the TXID of the last commit
// made to it with this tracker's context, or a later one; ok is false when
// none was made (through any *sql.DB of the same file), or db is not on a
// LiteFS mount. Middleware that compares the TXID with one database's
// position (httpbridge's Config.DB) asks for that database: a request may
// write others too, whose TXIDs count on their own.
func (t *Tracker) TXIDOf(db *sql.DB) (id TXID, ok bool, err error) {
	if t == nil || !t.committed.Load() {
		return 0, false, nil
	}
	ctr, err := connectorOf(db)
	if err != nil {
		return 0, false, err
	}
	w := ctr.watcher()
	if w == nil || w.pos == nil {
		return 0, false, nil
	}
	key := ctr.holdKey(w.pos.path)
	t.mu.Lock()
	d, unsure := t.find(key), t.unsure
	var reads []*txidRead
	var unread bool
	if d != nil {
		reads, unread = d.reads, d.unread
	}
	t.mu.Unlock()
	switch {
	case unsure:
		return txidOf(w.pos, nil, true) // committed to it, maybe: read it
	case d != nil:
		return txidOf(d.pos, reads, unread)
	}
	return 0, false, nil
}

// txidOf returns the TXID that reads tell, or else the one pos holds.
func txidOf(pos *posFile, reads []*txidRead, unread bool) (TXID, bool, error) {
	if id, ok := prefetched(reads, unread); ok {
		return id, true, nil
	}
	id, err := pos.read()
	if errors.Is(err, ErrNoPosition) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	return id, true, nil
}

// withConn runs fn on a litefs connection of db.
func withConn(ctx context.Context, db *sql.DB, fn func(*Conn) error) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		c, ok := dc.(*Conn)
		if !ok {
			return fmt.Errorf("litefs: %T is not a litefs connection", dc)
		}
		return fn(c)
	})
}
