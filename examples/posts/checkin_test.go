package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCheckIn records check-ins on a primary (a plain file, where
// litefs.WithHalt runs the job directly) and lists them at /nodes.
func TestCheckIn(t *testing.T) {
	t.Parallel()
	a := newPrimaryApp(t)
	at := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	require.NoError(t, checkIn(t.Context(), a.db, "node-a", func() time.Time { return at }))
	require.NoError(t, checkIn(t.Context(), a.db, "node-b", func() time.Time { return at.Add(time.Second) }))
	// A second check-in replaces the first.
	require.NoError(t, checkIn(t.Context(), a.db, "node-a", func() time.Time { return at.Add(2 * time.Second) }))

	var n int
	require.NoError(t, a.db.Get(&n, `SELECT count(*) FROM checkins`))
	assert.Equal(t, 2, n, "one row per instance")

	resp, body := a.do(t, request{method: "GET", path: "/nodes"})
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, body, "<code>node-a</code>")
	assert.Contains(t, body, "2 Jan 2026, 15:04:07 UTC", "node-a's latest check-in")
	assert.Less(t, strings.Index(body, "node-a"), strings.Index(body, "node-b"), "newest first")
}
