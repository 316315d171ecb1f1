//go:build linux

package litefstest

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestOpenUnder opens one file and maps another in a directory: openUnder
// finds both for this process, and neither when this process's group is
// left out.
func TestOpenUnder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	open := filepath.Join(dir, "open.db")
	mapped := filepath.Join(dir, "sub", "app.db-shm")
	require.NoError(t, os.MkdirAll(filepath.Dir(mapped), 0o755))
	require.NoError(t, os.WriteFile(open, []byte("x"), 0o644))
	require.NoError(t, os.WriteFile(mapped, make([]byte, 4096), 0o644))
	f, err := os.Open(open)
	require.NoError(t, err)
	defer f.Close()
	m, err := os.Open(mapped)
	require.NoError(t, err)
	mem, err := syscall.Mmap(int(m.Fd()), 0, 4096, syscall.PROT_READ, syscall.MAP_SHARED)
	require.NoError(t, err)
	defer syscall.Munmap(mem)
	require.NoError(t, m.Close()) // the map alone keeps it in use

	var mine []openFile
	for _, o := range openUnder(dir, -1) {
		if o.pid == os.Getpid() {
			mine = append(mine, o)
		}
	}
	comm, _, ok := procStat(os.Getpid())
	require.True(t, ok)
	assert.ElementsMatch(t, []openFile{
		{pid: os.Getpid(), comm: comm, path: open},
		{pid: os.Getpid(), comm: comm, path: mapped, mapped: true},
	}, mine)
	assert.Empty(t, openUnder(dir, syscall.Getpgrp()), "this process's group left out")
	assert.Empty(t, openUnder(filepath.Join(dir, "none"), -1))
}

// TestProcStat reads this process's own name and group.
func TestProcStat(t *testing.T) {
	t.Parallel()
	comm, pgid, ok := procStat(os.Getpid())
	require.True(t, ok)
	assert.Equal(t, syscall.Getpgrp(), pgid)
	assert.NotEmpty(t, comm)
	_, _, ok = procStat(-1)
	assert.False(t, ok, "no such process")
}
