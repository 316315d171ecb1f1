//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
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

// checkFUSE returns an error matching errNoFUSE unless this machine can
// mount FUSE file systems as LiteFS does.
func checkFUSE() error {
	if err := litefstest.CheckFUSE(); err != nil {
		return fmt.Errorf("%w: %v", errNoFUSE, err)
	}
	return nil
}
