package litefstest

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go"), []byte(script), 0o755))
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
	require.NoError(t, err)
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
	err := waitUntil(t.Context(), DefaultWaitTimeout, func() error {
		if len(calls(t, log)) == 0 {
			return os.ErrNotExist
		}
		return nil
	})
	require.NoError(t, err, "no build started")
	require.NoError(t, os.WriteFile(gate, nil, 0o644))
	done.Wait()
	want := filepath.Join(cache, "litefs")
	for i := range paths {
		assert.NoError(t, errs[i], "build %d", i)
		assert.Equal(t, want, paths[i], "build %d", i)
	}
	assert.Equal(t, []string{"install " + LiteFSPackage + "@" + LiteFSVersion + " GOBIN=set GOFLAGS= GOWORK=off"},
		calls(t, log), "want one clean go install")
	out, err := os.ReadFile(want)
	assert.NoError(t, err)
	assert.Contains(t, string(out), "fake litefs")
	entries, _ := os.ReadDir(cache)
	for _, e := range entries {
		assert.False(t, strings.HasPrefix(e.Name(), "build-"), "build directory %s left behind", e.Name())
	}
}

// TestFindLiteFSSaysItBuilds checks that a build, and only a build, is
// announced on the progress writer, with the time it took.
func TestFindLiteFSSaysItBuilds(t *testing.T) {
	_, gate := fakeGo(t)
	require.NoError(t, os.WriteFile(gate, nil, 0o644))
	t.Setenv(EnvBinary, "")
	// The fake go, and the shell tools its script runs; no litefs.
	t.Setenv("PATH", strings.Split(os.Getenv("PATH"), string(os.PathListSeparator))[0]+":/usr/bin:/bin")
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	var progress bytes.Buffer
	path, err := FindLiteFS(t.Context(), &progress)
	require.NoError(t, err)
	assert.Contains(t, progress.String(), "litefstest: building LiteFS "+LiteFSVersion+" into "+filepath.Dir(path))
	assert.Contains(t, progress.String(), "litefstest: LiteFS ready in ")

	progress.Reset()
	again, err := FindLiteFS(t.Context(), &progress)
	require.NoError(t, err)
	assert.Equal(t, path, again)
	assert.Empty(t, progress.String(), "nothing to build the second time")
}

func TestBuildLiteFSFails(t *testing.T) {
	_, _ = fakeGo(t)
	t.Setenv("FAKE_GO_FAIL", "go: no network")
	cache := filepath.Join(t.TempDir(), "cache")
	_, err := buildLiteFS(t.Context(), cache)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "go: no network", "the go command's output")
	assert.Contains(t, err.Error(), LiteFSVersion)
	_, err = os.Stat(filepath.Join(cache, "litefs"))
	assert.ErrorIs(t, err, os.ErrNotExist, "a binary exists after a failed build")
}
