package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/litefs-sql/litefs/litefstest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readFile returns the text of the file at path, relative to this package.
func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}

// TestDeployKit checks what the Fly.io kit promises without Fly.io: fly
// deploy -c needs no other flag, the image has the LiteFS the tests run,
// the app listens on all interfaces there, and the build context leaves out
// what the image does not need.
func TestDeployKit(t *testing.T) {
	t.Parallel()
	fly := readFile(t, filepath.Join("deploy", "fly.toml"))
	build := regexp.MustCompile(`(?m)^\[build\]\n(?:\s*#.*\n)*\s*dockerfile = "([^"]+)"`).FindStringSubmatch(fly)
	if assert.NotNil(t, build, "fly.toml has no [build] dockerfile") {
		// flyctl resolves it relative to fly.toml.
		assert.FileExists(t, filepath.Join("deploy", build[1]))
	}
	assert.Regexp(t, `(?m)^\[env\](\n\s+.*)*\n\s+LISTEN_ADDR = ":8080"`, fly, "fly.toml: the app must listen on all interfaces")
	assert.Regexp(t, `(?m)^\s+internal_port = 8080$`, fly)

	docker := readFile(t, filepath.Join("deploy", "Dockerfile"))
	version := strings.TrimPrefix(litefstest.LiteFSVersion, "v")
	assert.Contains(t, docker, "COPY --from=flyio/litefs:"+version+" ", "the image's LiteFS is not the tested one, pinned")
	assert.Contains(t, docker, "LISTEN_ADDR=:8080")

	var ignore []string
	for line := range strings.Lines(readFile(t, filepath.Join("..", "..", ".dockerignore"))) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			ignore = append(ignore, line)
		}
	}
	for _, p := range []string{".git", "**/*.test", "**/testdata/artifacts", "data", "**/*.db"} {
		assert.Contains(t, ignore, p, ".dockerignore")
	}
	for _, p := range []string{"go.mod", "go.sum", "*.go", "examples", "httpbridge"} {
		assert.NotContains(t, ignore, p, ".dockerignore leaves out what the build needs")
	}
}

// quickstartRE finds the Go program of the root README's Quickstart.
var quickstartRE = regexp.MustCompile("(?s)## Quickstart\n.*?```go\n(.*?)```")

// TestReadmeQuickstart builds the root README's quickstart program, as a
// reader would copy it, so that it cannot rot; and checks the advice it
// gives.
func TestReadmeQuickstart(t *testing.T) {
	t.Parallel()
	readme := readFile(t, filepath.Join("..", "..", "README.md"))
	m := quickstartRE.FindStringSubmatch(readme)
	require.NotNil(t, m, "no Go program under ## Quickstart")
	src := m[1]
	assert.Contains(t, readme, "go get github.com/litefs-sql/litefs\n")
	assert.Contains(t, src, "errors.Is(err, litefs.ErrNotPrimary)")
	assert.NotContains(t, src, "err.Error()", "the sample sends error text to clients")
	for _, route := range regexp.MustCompile(`http\.Redirect\(w, r, "([^"]+)"`).FindAllStringSubmatch(src, -1) {
		assert.Contains(t, src, `HandleFunc("GET `+route[1]+`"`, "the sample redirects to a route it does not define")
	}

	dir := t.TempDir()
	main := filepath.Join(dir, "main.go")
	require.NoError(t, os.WriteFile(main, []byte(src), 0o644))
	// Files named on the command line build in the current module.
	out, err := exec.CommandContext(t.Context(), "go", "vet", main).CombinedOutput()
	require.NoError(t, err, "go vet of the quickstart:\n%s", out)
	out, err = exec.CommandContext(t.Context(), "go", "build", "-o", filepath.Join(dir, "quickstart"), main).CombinedOutput()
	require.NoError(t, err, "go build of the quickstart:\n%s", out)
}
