package litefstest_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/litefs-sql/litefs/litefstest"
)

// These tests set environment variables, so they cannot run in parallel.

func TestLiteFSBinary(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "litefs")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	for _, tc := range []struct {
		name      string
		bin, path string // $LITEFS_BIN, $PATH
		require   string // $LITEFS_REQUIRE
		want      string // the path returned, or the start of the fatal message ("SKIP: ..." for a skip)
	}{
		{"LITEFS_BIN", exe, empty, "", exe},
		{"LITEFS_BIN missing", filepath.Join(dir, "nope"), empty, "", "litefstest: LITEFS_BIN: stat "},
		{"LITEFS_BIN not executable", plain, empty, "", "litefstest: LITEFS_BIN: " + plain + " is not an executable file"},
		{"PATH", "", dir, "", exe},
		{"cannot build: skip", "", empty, "", "SKIP: litefstest: no litefs binary"},
		{"cannot build: required", "", empty, "1", "litefstest: no litefs binary"},
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
			if !strings.HasPrefix(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			if tc.require == "1" && !strings.Contains(got, "LITEFS_REQUIRE=1") {
				t.Errorf("got %q, want it to name LITEFS_REQUIRE=1", got)
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
		{"", "SKIP: litefstest: LiteFS needs "},
		{"1", "litefstest: LiteFS needs "},
	} {
		t.Setenv(litefstest.EnvRequire, tc.require)
		for name, start := range map[string]func(testing.TB){
			"StartCluster": func(tb testing.TB) { litefstest.StartCluster(tb, 1) },
			"StartLiteFS":  func(tb testing.TB) { litefstest.StartLiteFS(tb, "litefs.yml", nil) },
		} {
			msg := fatalOf(t, start)
			if !strings.HasPrefix(msg, tc.want) || (tc.require == "1") != strings.Contains(msg, "LITEFS_REQUIRE=1") {
				t.Errorf("%s with %s=%q: got %q, want %q…", name, litefstest.EnvRequire, tc.require, msg, tc.want)
			}
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
	if calls != 3 {
		t.Errorf("cond called %d times, want 3", calls)
	}
}
