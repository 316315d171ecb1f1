package litefstest_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs/litefstest"
)

// These tests set environment variables, so they cannot run in parallel.

func TestLiteFSBinary(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "litefs")
	require.NoError(t, os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755))
	plain := filepath.Join(dir, "plain")
	require.NoError(t, os.WriteFile(plain, nil, 0o644))
	empty := t.TempDir()
	for _, tc := range []struct {
		name      string
		bin, path string // $LITEFS_BIN, $PATH
		require   string // $LITEFS_REQUIRE
		want      string // the path returned, or the start of the fatal message ("SKIP: ..." for a skip)
	}{
		{name: "LITEFS_BIN", bin: exe, path: empty, want: exe},
		{name: "LITEFS_BIN missing", bin: filepath.Join(dir, "nope"), path: empty, want: "litefstest: LITEFS_BIN: stat "},
		{name: "LITEFS_BIN not executable", bin: plain, path: empty, want: "litefstest: LITEFS_BIN: " + plain + " is not an executable file"},
		{name: "PATH", path: dir, want: exe},
		{name: "cannot build: skip", path: empty, want: "SKIP: litefstest: no litefs binary"},
		{name: "cannot build: required", path: empty, require: "1", want: "litefstest: no litefs binary"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(litefstest.EnvBinary, tc.bin)
			t.Setenv("PATH", tc.path)
			t.Setenv(litefstest.EnvRequire, tc.require)
			t.Setenv("XDG_CACHE_HOME", t.TempDir())
			var got string
			msg := fatalOf(t, func(tb testing.TB) { got = litefstest.LiteFSBinary(tb) })
			if msg != "" {
				got = msg
			}
			assert.True(t, strings.HasPrefix(got, tc.want), "got %q, want %q…", got, tc.want)
			if tc.require == "1" {
				assert.Contains(t, got, "LITEFS_REQUIRE=1")
			}
		})
	}
}

// TestClusterNeedsFUSE hides fusermount3: StartCluster skips, or fails
// when LITEFS_REQUIRE=1.
func TestClusterNeedsFUSE(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	for _, tc := range []struct {
		require string
		want    string
	}{
		{require: "", want: "SKIP: litefstest: LiteFS needs "},
		{require: "1", want: "litefstest: LiteFS needs "},
	} {
		t.Setenv(litefstest.EnvRequire, tc.require)
		for name, start := range map[string]func(testing.TB){
			"StartCluster": func(tb testing.TB) { litefstest.StartCluster(tb, 1) },
			"StartLiteFS":  func(tb testing.TB) { litefstest.StartLiteFS(tb, "litefs.yml", nil) },
		} {
			msg := fatalOf(t, start)
			assert.True(t, strings.HasPrefix(msg, tc.want), "%s with %s=%q: got %q, want %q…", name, litefstest.EnvRequire, tc.require, msg, tc.want)
			assert.Equal(t, tc.require == "1", strings.Contains(msg, "LITEFS_REQUIRE=1"), "%s with %s=%q: %q names it", name, litefstest.EnvRequire, tc.require, msg)
		}
	}
}

func TestWaitFor(t *testing.T) {
	t.Parallel()
	calls := 0
	litefstest.WaitFor(t, func() error {
		if calls++; calls < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	assert.Equal(t, 3, calls, "cond calls")
}
