package litefs

import (
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs/litefstest"
)

// An over-long .primary fails closed whatever surrounds the ID: a read cut
// at the buffer's end must not be trimmed into a valid one.
func TestOverLongPrimaryFailsClosed(t *testing.T) {
	t.Parallel()
	id255 := strings.Repeat("a", 255)
	for _, tc := range []struct {
		name    string
		content string
		want    string // the primary named; "" for ErrNoPrimary
	}{
		{name: "255 bytes, CR LF", content: id255 + "\r\n", want: id255},
		{name: "padded, within the limit", content: "  node-a \t\n", want: "node-a"},
		{name: "leading spaces push it over", content: "   " + id255 + "b\n"},
		{name: "trailing spaces push it over", content: id255 + "   \n"},
		{name: "spaces then a short ID", content: strings.Repeat(" ", 300) + "a\n"},
		{name: "a short ID then spaces", content: "a" + strings.Repeat(" ", 300)},
		{name: "newlines", content: strings.Repeat("\n", 258) + "a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := litefstest.NewMount(t)
			m.WritePrimaryFile([]byte(tc.content))
			p := newProber(m.Dir(), discard, new(atomic.Bool))
			defer p.close()
			err := p.check()
			if tc.want == "" {
				assert.ErrorIs(t, err, ErrNoPrimary)
				return
			}
			var np *NotPrimaryError
			require.ErrorAs(t, err, &np)
			assert.Equal(t, tc.want, np.PrimaryID)
		})
	}
}

// A plain directory unchanged for a while remembers a replica's role as it
// does a primary's: one fstat per write, until the directory changes.
func TestDirectoryRememberedAsReplica(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	m.SetReplica("node-a")
	backdateDir(t, m)
	p := newProber(m.Dir(), discard, new(atomic.Bool))
	defer p.close()
	if p.dirfd.Load() < 0 {
		t.Skip("no directory cache on this platform")
	}
	for i, want := range []uint64{1, 0, 0} {
		before := p.lookups.Load()
		var np *NotPrimaryError
		require.ErrorAs(t, p.check(), &np, "write %d", i)
		assert.Equal(t, "node-a", np.PrimaryID)
		assert.Equal(t, want, p.lookups.Load()-before, "lookups for write %d", i)
	}
	m.SetReplica("node-b")
	var np *NotPrimaryError
	require.ErrorAs(t, p.check(), &np)
	assert.Equal(t, "node-b", np.PrimaryID, "a replaced .primary is read again")
	m.SetPrimary()
	assert.NoError(t, p.check(), "a removed .primary is seen")
}

// backdateDir makes the mount directory look unchanged for an hour, as one
// in service is, which lets the driver check a plain directory with one
// fstat.
func backdateDir(tb testing.TB, m *litefstest.Mount) {
	tb.Helper()
	old := time.Now().Add(-time.Hour)
	require.NoError(tb, os.Chtimes(m.Dir(), old, old))
}
