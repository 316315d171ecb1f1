package litefstest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// The LiteFS release the helpers run and build.
const (
	LiteFSVersion = "v0.5.14"
	LiteFSPackage = "github.com/superfly/litefs/cmd/litefs"
)

// buildTimeout bounds building LiteFS, which downloads its modules on a
// fresh machine (about 25 s with a warm network).
const buildTimeout = 10 * time.Minute

// LiteFSBinary returns the path of the litefs binary found or built by
// [FindLiteFS]. A build says so on standard error first, as the test would
// otherwise seem to hang for half a minute. If no binary can be found or
// built, the test is skipped, or fails when LITEFS_REQUIRE=1; an invalid
// $LITEFS_BIN always fails it.
func LiteFSBinary(tb testing.TB) string {
	tb.Helper()
	path, err := FindLiteFS(tb.Context(), os.Stderr)
	if errors.Is(err, errBadEnvBinary) {
		tb.Fatalf("litefstest: %v", err)
	}
	if err != nil {
		skipOrFail(tb, "no litefs binary (set %s, or put litefs on PATH): %v", EnvBinary, err)
	}
	return path
}

var errBadEnvBinary = errors.New(EnvBinary) // set, but not to an executable file

// FindLiteFS returns the path of the litefs binary: $LITEFS_BIN if set, else
// "litefs" on PATH, else one built with "go install" into the user's cache
// directory (<cache>/litefs-sql/litefs-v0.5.14/litefs), once per machine,
// which may take half a minute: it says so on progress first, if not nil.
// Programs use it to run LiteFS the way the tests do.
func FindLiteFS(ctx context.Context, progress io.Writer) (string, error) {
	if path := os.Getenv(EnvBinary); path != "" {
		if err := checkExecutable(path); err != nil {
			return "", fmt.Errorf("%w: %v", errBadEnvBinary, err)
		}
		return path, nil
	}
	if path, err := exec.LookPath("litefs"); err == nil {
		return path, nil
	}
	dir, err := cacheDir()
	if err != nil {
		return "", err
	}
	if progress == nil || checkExecutable(filepath.Join(dir, "litefs")) == nil {
		return buildLiteFS(ctx, dir)
	}
	fmt.Fprintf(progress, "litefstest: building LiteFS %s into %s (once per machine; about 30 s)...\n", LiteFSVersion, dir)
	start := time.Now()
	path, err := buildLiteFS(ctx, dir)
	if err == nil {
		fmt.Fprintf(progress, "litefstest: LiteFS ready in %v\n", time.Since(start).Round(time.Second))
	}
	return path, err
}

// cacheDir returns the directory that holds the litefs binary built by
// LiteFSBinary.
func cacheDir() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory for the litefs build: %w", err)
	}
	return filepath.Join(base, "litefs-sql", "litefs-"+LiteFSVersion), nil
}

// buildLiteFS returns dir/litefs, building it first if it is missing. A lock
// file serializes builds by concurrent test processes (go test runs one per
// package), and the binary appears by rename, never half-written.
func buildLiteFS(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "litefs")
	if checkExecutable(bin) == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, buildTimeout)
	defer cancel()
	unlock, err := lockFile(ctx, filepath.Join(dir, ".lock"))
	if err != nil {
		return "", fmt.Errorf("lock %s: %w", dir, err)
	}
	defer unlock()
	if checkExecutable(bin) == nil {
		return bin, nil // built by another process while this one waited
	}
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("cannot build litefs: %w", err)
	}
	cmd := exec.CommandContext(ctx, goTool, "install", LiteFSPackage+"@"+LiteFSVersion)
	// Run outside any module, for the host, whatever the test's environment
	// sets for its own build.
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOFLAGS=", "GOOS=", "GOARCH=", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install %s@%s: %v\n%s", LiteFSPackage, LiteFSVersion, err, out)
	}
	if err := os.Rename(filepath.Join(tmp, "litefs"), bin); err != nil {
		return "", err
	}
	return bin, nil
}

func checkExecutable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return errors.New(path + " is not an executable file")
	}
	return nil
}
