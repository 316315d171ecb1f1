//go:build linux

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs/litefstest"
)

// TestTail appends to a log file while a tail copies it: lines written
// while it runs show up, prefixed, and stop copies the last ones.
func TestTail(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "litefs.log")
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	var out litefstest.SyncBuffer
	tl := startTail(path, &prefixWriter{prefix: "node-a │ ", w: &out})
	_, err = f.WriteString("first\n")
	require.NoError(t, err)
	litefstest.WaitFor(t, func() error {
		if !strings.Contains(out.String(), "node-a │ first\n") {
			return os.ErrNotExist
		}
		return nil
	})
	_, err = f.WriteString("second\nlast\n")
	require.NoError(t, err)
	tl.stop()
	tl.stop() // a second stop is harmless
	assert.Equal(t, "node-a │ first\nnode-a │ second\nnode-a │ last\n", out.String())
	var none *tail
	none.stop() // a node without output has no tail
}
