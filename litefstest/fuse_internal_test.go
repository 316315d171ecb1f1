package litefstest

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestUnescapeMountPath(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{in: "/tmp/a", want: "/tmp/a"},
		{in: `/tmp/a\040b`, want: "/tmp/a b"},
		{in: `/tmp/tab\011nl\012bs\134`, want: "/tmp/tab\tnl\nbs\\"},
		{in: `/tmp/\400`, want: `/tmp/\400`}, // not a byte: kept
		{in: `/tmp/\08`, want: `/tmp/\08`},
		{in: `/tmp/\04`, want: `/tmp/\04`},
		{in: `\`, want: `\`},
		{in: `\\040`, want: `\ `},
	} {
		assert.Equal(t, tc.want, unescapeMountPath(tc.in), "unescapeMountPath(%q)", tc.in)
	}
}

func FuzzUnescapeMountPath(f *testing.F) {
	for _, s := range []string{"/a", `/a\040b`, `\`, `\0`, `\00`, `\377`, `\777`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := unescapeMountPath(s)
		require.LessOrEqual(t, len(got), len(s), "unescapeMountPath(%q) = %q, longer than its input", s, got)
		if !strings.Contains(s, `\`) {
			require.Equal(t, s, got, "unescapeMountPath(%q): want it unchanged", s)
		}
	})
}

func TestMountedUnder(t *testing.T) {
	t.Parallel()
	got, err := mountedUnder("/proc")
	require.NoError(t, err)
	assert.Contains(t, got, "/proc", "mountedUnder(/proc)")
	got, err = mountedUnder(t.TempDir())
	assert.NoError(t, err)
	assert.Empty(t, got, "mountedUnder(a new temp dir)")
}

func TestMountDirFromLog(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		log  string
		want string
	}{
		{log: "level=INFO msg=\"LiteFS mounted to: /tmp/x/mnt\"\nlevel=INFO msg=\"http server listening\"\n", want: "/tmp/x/mnt"},
		{log: `{"level":"INFO","msg":"LiteFS mounted to: /litefs"}` + "\n", want: "/litefs"},
		{log: "LiteFS mounted to: /a/b/../c\n", want: "/a/c"},
		{log: "LiteFS mounted to: relative\n", want: "/cwd/relative"},
		{log: "nothing here\n", want: ""},
		{log: "LiteFS mounted to: ", want: ""},
		{log: "LiteFS mounted to: /partial", want: ""},
		{log: "LiteFS mounted to: \n", want: ""},
	} {
		got, ok := mountDirFromLog(tc.log, "/cwd")
		assert.Equal(t, tc.want, got, "mountDirFromLog(%q)", tc.log)
		assert.Equal(t, tc.want != "", ok, "mountDirFromLog(%q): found", tc.log)
	}
}

func TestLogFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "litefs.log")
	log, f, err := createLog(path)
	require.NoError(t, err)
	chunk := strings.Repeat("x", 1<<20-1) + "\n"
	for range 9 {
		f.Write([]byte(chunk))
	}
	f.Write([]byte("last line\n"))
	f.Close()
	s := log.String()
	assert.True(t, strings.HasPrefix(s, "[") && strings.Contains(s, "earlier bytes left out; all in "+path+"]") && strings.HasSuffix(s, "last line\n"),
		"log of %d bytes starts %.60q, ends %q", len(s), s, s[len(s)-20:])
	assert.LessOrEqual(t, len(s), maxLog+200, "log size: want at most about %d", maxLog)
}
