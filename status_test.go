package litefs

import (
	"context"
	"database/sql"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs/litefstest"
)

func TestNodeStatus(t *testing.T) {
	for _, tc := range []struct {
		name      string
		set       func(m *litefstest.Mount)
		role      Role
		primary   string
		lagKnown  bool
		txidKnown bool
	}{
		{name: "plain directory", set: func(m *litefstest.Mount) {}, role: RoleNotLiteFS},
		{name: "replica", set: func(m *litefstest.Mount) { m.SetReplica("node-a"); m.SetTXID(7) },
			role: RoleReplica, primary: "node-a", txidKnown: true},
		{name: "no primary", set: func(m *litefstest.Mount) { m.SetNoPrimary() },
			role: RoleNoPrimary, lagKnown: true},
		// A LiteFS primary stamps .lag at each look, which a temp directory
		// cannot; the real-cluster tests cover it.
		{name: "stale lag", set: func(m *litefstest.Mount) {
			m.WriteLagFile([]byte("+000001500\n"), time.Now().Add(-time.Hour))
		}, role: RoleNoPrimary, lagKnown: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := litefstest.NewMount(t)
			db := openDB(t, m, "")
			tc.set(m)
			// Hold the only connection: NodeStatus must not need one.
			db.SetMaxOpenConns(1)
			conn, err := db.Conn(context.Background())
			require.NoError(t, err)
			defer conn.Close()

			st, err := NodeStatus(context.Background(), db)
			require.NoError(t, err)
			assert.Equal(t, tc.role, st.Role)
			assert.Equal(t, tc.primary, st.PrimaryID)
			assert.Equal(t, tc.lagKnown, st.LagKnown)
			assert.Equal(t, tc.txidKnown, st.TXIDKnown)
			assert.Equal(t, SourceMount, st.Source)
			if tc.txidKnown {
				assert.Equal(t, TXID(7), st.TXID)
			}
			b, err := json.Marshal(st)
			require.NoError(t, err)
			assert.Contains(t, string(b), `"role":"`+tc.role.String()+`"`)
		})
	}
}

func TestNodeStatusNeedsTheLitefsDriver(t *testing.T) {
	db, err := sql.Open("sqlite3", ":memory:")
	require.NoError(t, err)
	defer db.Close()
	_, err = NodeStatus(context.Background(), db)
	assert.ErrorContains(t, err, "not the litefs driver")
	_, err = NodeStatus(context.Background(), nil)
	assert.Error(t, err)
}

// While the driver trusts LiteFS's event stream, NodeStatus answers from it.
func TestNodeStatusFromEvents(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	m.SetTXID(7)
	f := newFakeLiteFS(t, initReplicaA)
	db, c := openFollowing(t, m, f)
	m.SetReplica("node-a")
	eventually(t, trustedAs(c, "node-a"), "the stream is trusted")
	m.SetTXID(8) // as LiteFS applies a transaction, then reports it
	f.tx(8)
	eventually(t, func() bool { return c.watcher().txid.Load() == 8 }, "the tx event arrives")
	st, err := NodeStatus(t.Context(), db)
	require.NoError(t, err)
	assert.Equal(t, SourceEvents, st.Source)
	assert.Equal(t, RoleReplica, st.Role)
	assert.Equal(t, "node-a", st.PrimaryID)
	assert.True(t, st.TXIDKnown)
	assert.Equal(t, TXID(8), st.TXID)
}
