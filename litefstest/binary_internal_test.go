package litefstest

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// fakeGo puts a "go" command on PATH that records its calls in the returned
// log file and installs a script as $GOBIN/litefs once the file gate exists
// (or fails with $FAKE_GO_FAIL).
func fakeGo(t *testing.T) (log, gate string) {
	t.Helper()
	dir := t.TempDir()
	log, gate = filepath.Join(dir, "calls"), filepath.Join(dir, "gate")
	script := `#!/bin/sh
echo "$* GOBIN=${GOBIN:+set} GOFLAGS=$GOFLAGS GOWORK=$GOWORK" >> "$FAKE_GO_LOG"
if [ -n "$FAKE_GO_FAIL" ]; then echo "$FAKE_GO_FAIL" >&2; exit 1; fi
while [ ! -e "$FAKE_GO_GATE" ]; do sleep 0.01; done
printf '#!/bin/sh\necho fake litefs\n' > "$GOBIN/litefs"
chmod +x "$GOBIN/litefs"
`
	if err := os.WriteFile(filepath.Join(dir, "go"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("FAKE_GO_LOG", log)
	t.Setenv("FAKE_GO_GATE", gate)
	t.Setenv("GOFLAGS", "-mod=vendor")
	return log, gate
}

func calls(t *testing.T, log string) []string {
	t.Helper()
	b, err := os.ReadFile(log)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// TestBuildLiteFSOnce builds from four goroutines at once: one build runs,
// all get its binary.
func TestBuildLiteFSOnce(t *testing.T) {
	log, gate := fakeGo(t)
	cache := filepath.Join(t.TempDir(), "cache")
	var started, done sync.WaitGroup
	paths := make([]string, 4)
	errs := make([]error, 4)
	for i := range paths {
		started.Add(1)
		done.Go(func() {
			started.Done()
			paths[i], errs[i] = buildLiteFS(t.Context(), cache)
		})
	}
	started.Wait()
	if err := waitUntil(t.Context(), DefaultWaitTimeout, func() error {
		if len(calls(t, log)) == 0 {
			return os.ErrNotExist
		}
		return nil
	}); err != nil {
		t.Fatalf("no build started: %v", err)
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	done.Wait()
	want := filepath.Join(cache, "litefs")
	for i := range paths {
		if paths[i] != want || errs[i] != nil {
			t.Errorf("build %d: got %q, %v; want %q", i, paths[i], errs[i], want)
		}
	}
	got := calls(t, log)
	if len(got) != 1 || got[0] != "install "+LiteFSPackage+"@"+LiteFSVersion+" GOBIN=set GOFLAGS= GOWORK=off" {
		t.Errorf("go ran %q, want one clean go install", got)
	}
	if out, err := os.ReadFile(want); err != nil || !strings.Contains(string(out), "fake litefs") {
		t.Errorf("binary: %q, %v", out, err)
	}
	entries, _ := os.ReadDir(cache)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "build-") {
			t.Errorf("build directory %s left behind", e.Name())
		}
	}
}

func TestBuildLiteFSFails(t *testing.T) {
	_, _ = fakeGo(t)
	t.Setenv("FAKE_GO_FAIL", "go: no network")
	cache := filepath.Join(t.TempDir(), "cache")
	_, err := buildLiteFS(t.Context(), cache)
	if err == nil || !strings.Contains(err.Error(), "go: no network") || !strings.Contains(err.Error(), LiteFSVersion) {
		t.Errorf("got %v, want the go command's output", err)
	}
	if _, err := os.Stat(filepath.Join(cache, "litefs")); !os.IsNotExist(err) {
		t.Errorf("a binary exists after a failed build: %v", err)
	}
}
