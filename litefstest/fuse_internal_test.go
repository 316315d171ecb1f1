package litefstest

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestUnescapeMountPath(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"/tmp/a", "/tmp/a"},
		{`/tmp/a\040b`, "/tmp/a b"},
		{`/tmp/tab\011nl\012bs\134`, "/tmp/tab\tnl\nbs\\"},
		{`/tmp/\400`, `/tmp/\400`}, // not a byte: kept
		{`/tmp/\08`, `/tmp/\08`},
		{`/tmp/\04`, `/tmp/\04`},
		{`\`, `\`},
		{`\\040`, `\ `},
	} {
		if got := unescapeMountPath(tc.in); got != tc.want {
			t.Errorf("unescapeMountPath(%q): got %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzUnescapeMountPath(f *testing.F) {
	for _, s := range []string{"/a", `/a\040b`, `\`, `\0`, `\00`, `\377`, `\777`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := unescapeMountPath(s)
		if len(got) > len(s) {
			t.Fatalf("unescapeMountPath(%q) = %q, longer than its input", s, got)
		}
		if !strings.Contains(s, `\`) && got != s {
			t.Fatalf("unescapeMountPath(%q) = %q, want it unchanged", s, got)
		}
	})
}

func TestMountedUnder(t *testing.T) {
	t.Parallel()
	got, err := mountedUnder("/proc")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(got, "/proc") {
		t.Errorf("mountedUnder(/proc): got %q, want it to hold /proc", got)
	}
	if got, err := mountedUnder(t.TempDir()); err != nil || len(got) != 0 {
		t.Errorf("mountedUnder(a new temp dir): got %q, %v; want nothing", got, err)
	}
}

func TestMountDirFromLog(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		log  string
		want string
	}{
		{"level=INFO msg=\"LiteFS mounted to: /tmp/x/mnt\"\nlevel=INFO msg=\"http server listening\"\n", "/tmp/x/mnt"},
		{`{"level":"INFO","msg":"LiteFS mounted to: /litefs"}` + "\n", "/litefs"},
		{"LiteFS mounted to: /a/b/../c\n", "/a/c"},
		{"LiteFS mounted to: relative\n", "/cwd/relative"},
		{"nothing here\n", ""},
		{"LiteFS mounted to: ", ""},
		{"LiteFS mounted to: /partial", ""},
		{"LiteFS mounted to: \n", ""},
	} {
		got, ok := mountDirFromLog(tc.log, "/cwd")
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("mountDirFromLog(%q): got %q, %v; want %q", tc.log, got, ok, tc.want)
		}
	}
}

func TestLogFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "litefs.log")
	log, f, err := createLog(path)
	if err != nil {
		t.Fatal(err)
	}
	chunk := strings.Repeat("x", 1<<20-1) + "\n"
	for range 9 {
		f.Write([]byte(chunk))
	}
	f.Write([]byte("last line\n"))
	f.Close()
	s := log.String()
	if !strings.HasPrefix(s, "[") || !strings.Contains(s, "earlier bytes left out; all in "+path+"]") || !strings.HasSuffix(s, "last line\n") {
		t.Errorf("log of %d bytes starts %.60q, ends %q", len(s), s, s[len(s)-20:])
	}
	if len(s) > maxLog+200 {
		t.Errorf("log holds %d bytes, want at most about %d", len(s), maxLog)
	}
}
