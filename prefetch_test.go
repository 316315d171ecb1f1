package litefs

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// doneRead is a read begun in a commit hook that has returned id (or err).
func doneRead(w *watcher, id TXID, err error) *txidRead {
	rd := &txidRead{w: w, id: id, err: err, done: make(chan struct{})}
	close(rd.done)
	return rd
}

func TestPrefetchedTXID(t *testing.T) {
	t.Parallel()
	errRead := errors.New("read failed")
	tests := []struct {
		name   string
		now    TXID   // the stream's TXID when TXID is asked
		ids    []TXID // what the reads begun in the commit hooks returned
		err    error
		unread bool
		want   TXID
		ok     bool
	}{
		{name: "the stream has passed the read", now: 10, ids: []TXID{9}, want: 10, ok: true},
		{name: "the stream far past the read", now: 30, ids: []TXID{9}, want: 10, ok: true},
		// The commit may have made no LiteFS transaction (it wrote no
		// page), or the read may be of this commit: id+1 may be to come.
		{name: "the stream at the read", now: 9, ids: []TXID{9}},
		{name: "the stream behind the read", now: 7, ids: []TXID{9}},
		{name: "read failed", now: 10, ids: []TXID{9}, err: errRead},
		{name: "largest of several commits", now: 20, ids: []TXID{9, 14, 11}, want: 15, ok: true},
		{name: "one of several cannot tell", now: 14, ids: []TXID{9, 14}},
		{name: "a commit began no read", now: 10, ids: []TXID{9}, unread: true},
		{name: "no reads", now: 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := &watcher{}
			w.streamTX.Store(uint64(tt.now))
			var reads []*txidRead
			for _, id := range tt.ids {
				reads = append(reads, doneRead(w, id, tt.err))
			}
			got, ok := prefetched(reads, tt.unread)
			assert.Equal(t, tt.ok, ok)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestTrackerKeepsReadsPerDatabase(t *testing.T) {
	t.Parallel()
	w := &watcher{}
	a, a2, b := newPosFile("a-pos", false), newPosFile("a-pos", false), newPosFile("b-pos", false)

	tr := &Tracker{}
	tr.reportCommit(a, "a", doneRead(w, 4, nil), false)
	tr.reportCommit(b, "b", doneRead(w, 7, nil), false)
	require.Len(t, tr.dbs, 2)
	assert.Same(t, tr.dbs[1], tr.last, "TXID is of the database last committed to")
	assert.Len(t, tr.dbs[0].reads, 1, "a's read was lost to b's commit")
	assert.False(t, tr.dbs[0].unread)

	tr.reportCommit(a2, "a", doneRead(w, 5, nil), false)
	assert.True(t, tr.dbs[0].unread, "commits through two pools of a file may be reported out of order: TXID must read the file")

	tr = &Tracker{}
	tr.reportCommit(a, "a", doneRead(w, 4, nil), false)
	tr.reportCommit(a, "a", nil, false)
	assert.True(t, tr.dbs[0].unread, "a commit with no read must make TXID read the file")
	assert.True(t, tr.saturated("a"))
	assert.False(t, tr.saturated("b"))

	tr = &Tracker{}
	for i := range maxTXIDReads {
		assert.False(t, tr.saturated("a"), "after %d reads", i)
		tr.reportCommit(a, "a", doneRead(w, TXID(i), nil), false)
	}
	assert.True(t, tr.saturated("a"), "reads past the bound would be begun")
	tr.reportCommit(a, "a", nil, false)
	assert.Len(t, tr.dbs[0].reads, maxTXIDReads)
	assert.True(t, tr.dbs[0].unread)

	tr = &Tracker{}
	for i := range maxTrackedDBs + 1 {
		tr.reportCommit(newPosFile("pos", false), string(rune('a'+i)), doneRead(w, 1, nil), false)
	}
	assert.Len(t, tr.dbs, maxTrackedDBs)
	assert.True(t, tr.unsure, "a database past the bound must make TXIDOf read the file")
	assert.True(t, tr.saturated("z"), "a database past the bound would begin a read")

	tr = &Tracker{}
	tr.reportCommit(a, "a", doneRead(w, 4, nil), true)
	assert.True(t, tr.unsure, "a commit on a connection with databases attached may have written them: TXIDOf must read the file")
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
