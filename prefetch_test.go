package litefs

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
)

// doneRead is a read begun in a commit hook that has returned id (or err)
// after the stream had reported stream, on a watcher whose stream is now at
// now.
func doneRead(w *watcher, stream, id TXID, err error) *txidRead {
	rd := &txidRead{w: w, stream: stream, id: id, err: err, done: make(chan struct{})}
	close(rd.done)
	return rd
}

func TestPrefetchedTXID(t *testing.T) {
	t.Parallel()
	errRead := errors.New("read failed")
	tests := []struct {
		name   string
		now    TXID // the stream's TXID when TXID is asked
		reads  [][3]TXID
		err    error
		unread bool
		want   TXID
		ok     bool
	}{
		// {stream when the read began, id read}: id == stream proves id was
		// the last commit before this one.
		{name: "stream caught up when the hook ran", now: 10, reads: [][3]TXID{{9, 9}}, want: 10, ok: true},
		{name: "stream behind, has since passed the read", now: 11, reads: [][3]TXID{{7, 9}}, want: 10, ok: true},
		// id may be this commit's own TXID (read after LiteFS took it): id+1
		// could be a transaction still to come.
		{name: "stream behind, not past the read", now: 9, reads: [][3]TXID{{7, 9}}},
		{name: "stream at the read only", now: 10, reads: [][3]TXID{{7, 10}}},
		{name: "read failed", now: 10, reads: [][3]TXID{{9, 9}}, err: errRead},
		{name: "largest of several commits", now: 20, reads: [][3]TXID{{9, 9}, {14, 14}, {11, 11}}, want: 15, ok: true},
		{name: "one of several cannot tell", now: 14, reads: [][3]TXID{{9, 9}, {12, 14}}},
		{name: "a commit began no read", now: 10, reads: [][3]TXID{{9, 9}}, unread: true},
		{name: "no reads", now: 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := &watcher{}
			w.streamTX.Store(uint64(tt.now))
			var reads []*txidRead
			for _, r := range tt.reads {
				reads = append(reads, doneRead(w, r[0], r[1], tt.err))
			}
			got, ok := prefetched(reads, tt.unread)
			assert.Equal(t, tt.ok, ok)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestTrackerKeepsReadsOfOneDatabase(t *testing.T) {
	t.Parallel()
	w := &watcher{}
	w.streamTX.Store(100)
	a, b := newPosFile("a-pos", false), newPosFile("b-pos", false)

	tr := &Tracker{}
	tr.reportCommit(a, doneRead(w, 4, 4, nil))
	tr.reportCommit(b, doneRead(w, 7, 7, nil))
	assert.Same(t, b, tr.pos)
	assert.Len(t, tr.reads, 1, "a read of another database's commit was kept")
	assert.False(t, tr.unread)

	tr.reportCommit(b, nil)
	assert.True(t, tr.unread, "a commit with no read must make TXID read the file")

	tr = &Tracker{}
	for i := range maxTXIDReads + 1 {
		tr.reportCommit(a, doneRead(w, TXID(i), TXID(i), nil))
	}
	assert.Len(t, tr.reads, maxTXIDReads)
	assert.True(t, tr.unread, "reads past the bound must make TXID read the file")
}

func TestPrefetchNeedsTrackerAndLiveStream(t *testing.T) {
	t.Parallel()
	w := &watcher{}
	live := &watcher{}
	live.txLive.Store(true)
	live.role.Store(&roleState{primary: true})
	asked := &Tracker{}
	asked.PrefetchTXID()
	kept := newPosFile("db-pos", true)
	tests := []struct {
		name string
		c    *Conn
		t    *Tracker
		want bool
	}{
		{name: "asked, LiteFS, live stream", c: &Conn{probe: &prober{watch: live}, pos: kept}, t: asked, want: true},
		{name: "no tracker", c: &Conn{probe: &prober{watch: live}, pos: kept}},
		{name: "tracker that did not ask", c: &Conn{probe: &prober{watch: live}, pos: kept}, t: &Tracker{}},
		{name: "not a LiteFS mount", c: &Conn{probe: &prober{watch: live}, pos: newPosFile("db-pos", false)}, t: asked},
		{name: "stream not live", c: &Conn{probe: &prober{watch: w}, pos: kept}, t: asked},
		{name: "no source", c: &Conn{probe: &prober{}, pos: kept}, t: asked},
		{name: "in memory", c: &Conn{}, t: asked},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, tt.c.prefetchFor(tt.t), tt.name)
	}
}
