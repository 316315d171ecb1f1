//go:build linux

package litefstest

import (
	"os"
	"path/filepath"
	"strconv"
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

func TestParseStat(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in       string
		wantComm string
		wantPgid int
		wantOK   bool
	}{
		{in: "1234 (litefs) S 1 1234 1234 0 -1 4194560 ...", wantComm: "litefs", wantPgid: 1234, wantOK: true},
		{in: "7 (a b) c) R 1 99 7", wantComm: "a b) c", wantPgid: 99, wantOK: true},
		{in: "7 (x) R 1", wantOK: false},
		{in: "7 x R 1 99", wantOK: false},
		{in: "7 )x( R 1 99", wantOK: false},
		{in: "7 (x) R 1 nine", wantComm: "x", wantOK: false},
		{in: "", wantOK: false},
	} {
		comm, pgid, ok := parseStat(tc.in)
		assert.Equal(t, tc.wantOK, ok, "parseStat(%q)", tc.in)
		if tc.wantOK {
			assert.Equal(t, tc.wantComm, comm, "parseStat(%q): comm", tc.in)
			assert.Equal(t, tc.wantPgid, pgid, "parseStat(%q): pgid", tc.in)
		}
	}
}

func FuzzParseStat(f *testing.F) {
	for _, s := range []string{"1234 (litefs) S 1 1234 1234 0", "7 (a b) c) R 1 99 7", "7 )x( R 1 99", "", "(", ")"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		comm, pgid, ok := parseStat(s)
		if !ok {
			return
		}
		require.Contains(t, s, "("+comm+")", "parseStat(%q): comm %q is not between the parentheses", s, comm)
		require.Contains(t, s, strconv.Itoa(pgid), "parseStat(%q): pgid %d is not in the input", s, pgid)
	})
}
