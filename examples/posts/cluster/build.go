//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/litefs-sql/litefs/litefstest"
)

// appPackage is the import path of the posts app.
const appPackage = "github.com/litefs-sql/litefs/examples/posts"

// sourceDir returns the directory of the app's source, which holds
// deploy/litefs.yml. The go command finds it from the working directory,
// which must be inside the module (the repository root, say).
func sourceDir(ctx context.Context) (string, error) {
	out, err := goCommand(ctx, "list", "-f", "{{.Dir}}", appPackage)
	if err != nil {
		return "", fmt.Errorf("find the app's source (run this from the repository): %w", err)
	}
	return strings.TrimSpace(out), nil
}

// buildApp builds the app into bin.
func buildApp(ctx context.Context, bin string) error {
	if _, err := goCommand(ctx, "build", "-o", bin, appPackage); err != nil {
		return fmt.Errorf("build the app: %w", err)
	}
	return nil
}

// goCommand runs the go command and returns its standard output.
func goCommand(ctx context.Context, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.String(), nil
}

// findLiteFS returns litefs from PATH, else the binary litefstest builds
// into the user's cache directory, building it there first if needed, so
// that the tests and the cluster share one build.
func findLiteFS(ctx context.Context, progress io.Writer) (string, error) {
	if path, err := exec.LookPath("litefs"); err == nil {
		return path, nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no litefs on PATH and no cache directory to build one in: %w", err)
	}
	dir := filepath.Join(cache, "litefs-sql", "litefs-"+litefstest.LiteFSVersion)
	bin := filepath.Join(dir, "litefs")
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() {
		return bin, nil
	}
	fmt.Fprintf(progress, "building LiteFS %s into %s (once; about 30 s)…\n", litefstest.LiteFSVersion, dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.CommandContext(ctx, "go", "install", litefstest.LiteFSPackage+"@"+litefstest.LiteFSVersion)
	cmd.Dir = tmp // outside any module
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOFLAGS=", "GOOS=", "GOARCH=", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install %s@%s: %v\n%s", litefstest.LiteFSPackage, litefstest.LiteFSVersion, err, out)
	}
	// A rename, so that a concurrent reader never sees half a binary.
	if err := os.Rename(filepath.Join(tmp, "litefs"), bin); err != nil {
		return "", err
	}
	return bin, nil
}

// checkFUSE returns an error matching errNoFUSE unless this machine can
// mount FUSE file systems as LiteFS does.
func checkFUSE() error {
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("%w: %v (LiteFS needs Linux with FUSE; in a container, --device /dev/fuse --cap-add SYS_ADMIN)", errNoFUSE, err)
	}
	f.Close()
	if _, err := exec.LookPath("fusermount3"); err != nil {
		return fmt.Errorf("%w: no fusermount3: install the fuse3 package (apt-get install fuse3)", errNoFUSE)
	}
	return nil
}
