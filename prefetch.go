package litefs

// Reading a commit's TXID off the caller's path.
//
// Right after a commit, LiteFS is busy sending it to the replicas, and a
// read of <db>-pos waits behind that work (290 µs at the median on a
// loaded two-node cluster here, against 0.4 µs for the commit's event to
// arrive on the event stream). But the stream cannot say which event is
// this commit's: it may still carry earlier ones. So the read starts
// earlier, in the commit hook, where the connection holds the database's
// write lock and LiteFS has not yet seen the commit, and runs while SQLite
// writes the transaction:
//
//   - every earlier commit completed before the lock was granted, so the
//     read returns their TXID C or, if LiteFS serves it after this commit,
//     a later one: id ≥ C, and id+1 is this commit's TXID (C+1) or later,
//     never an earlier one;
//   - id+1 exists (is not a transaction still to come) once the event
//     stream has reported a TXID above id, which the commit's event, sent
//     before the commit returns, has mostly done by the time the TXID is
//     asked for. It need not exist: a commit that wrote no page (an UPDATE
//     that matched nothing or set a row to what it held, BEGIN IMMEDIATE;
//     COMMIT, a write to a temporary table) makes no LiteFS transaction,
//     though SQLite calls the commit hook for it.
//
// Otherwise [Tracker.TXID] reads <db>-pos at once, as it always did: that
// answer is this commit's TXID or later, and exists. It does not wait for
// the stream: a sleep that short is rounded up to a millisecond when the
// process is otherwise idle, three times what the read costs.

// maxTXIDReads bounds the reads one Tracker begins: a request that commits
// more often than that gets one read after its commits instead.
const maxTXIDReads = 8

// txidRead is a read of <db>-pos begun in a commit hook.
type txidRead struct {
	w    *watcher
	done chan struct{}
	id   TXID  // set before done is closed
	err  error // set before done is closed
}

// startTXIDRead begins reading pos for a commit whose hook is running.
func startTXIDRead(pos *posFile, w *watcher) *txidRead {
	rd := &txidRead{w: w, done: make(chan struct{})}
	go func() {
		rd.id, rd.err = pos.read()
		close(rd.done)
	}()
	return rd
}

// txid returns the commit's TXID or a later one that exists, and false when
// the read cannot tell (see above).
func (rd *txidRead) txid() (TXID, bool) {
	<-rd.done
	if rd.err == nil && TXID(rd.w.streamTX.Load()) > rd.id {
		rd.w.prefetchHits.Add(1)
		return rd.id + 1, true
	}
	rd.w.prefetchMisses.Add(1)
	return 0, false
}

// prefetchFor reports whether a run that may commit for t should begin
// reading its TXID in the commit hook: t asked for it (see
// [Tracker.PrefetchTXID]) and will use the read (it has begun fewer than
// maxTXIDReads, and every commit it heard began one), the database is on a
// LiteFS mount whose event stream is live, and no HALT lock (WithHalt's, or
// one a handle that forwards its writes took) forwards the write.
func (c *Conn) prefetchFor(t *Tracker) bool {
	h := &c.halt
	if t == nil || !t.prefetch.Load() || c.probe == nil || c.pos == nil || !c.pos.keep ||
		h.engaged != nil || h.tx != nil || h.stmt != nil || h.admitted || t.saturated(h.key) {
		return false
	}
	w := c.probe.watch
	return w != nil && w.txLive.Load() && w.trusted() != nil
}

// prefetched returns the largest TXID that the reads tell, when every
// commit began one (unread is false) and each tells its commit's TXID.
func prefetched(reads []*txidRead, unread bool) (TXID, bool) {
	if unread || len(reads) == 0 {
		return 0, false
	}
	var last TXID
	for _, rd := range reads {
		id, ok := rd.txid()
		if !ok {
			return 0, false
		}
		last = max(last, id)
	}
	return last, true
}
