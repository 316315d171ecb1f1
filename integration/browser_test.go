//go:build linux

package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs/litefstest"
)

// Environment of the browser test.
const (
	// envBrowser names the browser binary; by default the first of
	// browserNames found on PATH.
	envBrowser = "BROWSER_BIN"
	// envBrowserRequire set to "1" (or LITEFS_REQUIRE=1) makes a missing
	// browser fail the test instead of skipping it.
	envBrowserRequire = "BROWSER_REQUIRE"
	// envArtifacts is the directory screenshots are written to; by default
	// integration/testdata/artifacts, which git ignores.
	envArtifacts = "ARTIFACTS_DIR"
)

var browserNames = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome"}

// findBrowser returns the browser binary, or skips the test (fails it when
// a browser is required).
func findBrowser(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv(envBrowser); bin != "" {
		return bin
	}
	for _, name := range browserNames {
		if bin, err := exec.LookPath(name); err == nil {
			return bin
		}
	}
	msg := fmt.Sprintf("no Chromium or Chrome on PATH (Debian: apt-get install chromium; or set %s)", envBrowser)
	if os.Getenv(envBrowserRequire) == "1" || os.Getenv(litefstest.EnvRequire) == "1" {
		t.Fatalf("%s, and %s=1 or %s=1", msg, envBrowserRequire, litefstest.EnvRequire)
	}
	t.Skip(msg)
	return ""
}

// startBrowser starts headless Chromium from bin, driven by chromedp over
// a pipe, and returns a tab's context; the browser stops when the test
// ends.
func startBrowser(t *testing.T, bin string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.NoSandbox, // the sandbox refuses to run as root
		chromedp.WindowSize(1000, 760),
		chromedp.UserDataDir(t.TempDir()),
		// This test's machine may have no network.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("hide-scrollbars", true),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.WithoutCancel(t.Context()), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(cancelTimeout)
	require.NoError(t, chromedp.Do(ctx), "start %s", bin)
	return ctx
}

// TestBrowserPostOnReplica drives headless Chromium through the example's
// local cluster as a user would: it opens the form on the replica (through
// the proxy pinned to node-b), types a post, clicks Publish, and lands on the
// list, served by the replica, which shows the flash message and the new
// post. The POST was refused on the replica and replayed on the primary; the
// __txid cookie the primary set made the replica wait for the post before
// serving the list.
func TestBrowserPostOnReplica(t *testing.T) {
	bin := findBrowser(t)
	c := startPostsCluster(t)
	ctx := startBrowser(t, bin)
	base := c.URL("node-b")

	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(base+"posts/create"),
		chromedp.WaitVisible(chromedp.CSS("form button")),
	))
	footer, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("footer")))
	require.NoError(t, err)
	require.Contains(t, footer, "node-b", "the form's server")

	title := "Hello from the replica, " + time.Now().Format("15:04:05.000")
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS("#title"), title),
		chromedp.SendKeys(chromedp.CSS("#body"), "Typed on node-b, stored on node-a.\nSecond line."),
	))
	shot(t, ctx, "browser-form-on-replica.png")

	// The POST's redirect lands on /posts, through the proxy pinned to the
	// replica; the flash cookie the primary set is shown there.
	_, err = chromedp.Run(ctx, chromedp.WaitEvent(page.LoadEventFired, nil,
		chromedp.Click(chromedp.CSS("form button"))))
	require.NoError(t, err, "the page loaded after Publish")
	_, err = chromedp.Run(ctx, chromedp.Poll[chromedp.Void](
		`location.pathname === "/posts" && document.readyState === "complete" && !!document.querySelector(".flash")`))
	require.NoError(t, err, "the list after the redirect")
	list, err := chromedp.Run(ctx, chromedp.Evaluate[struct{ Flash, Footer, URL string }](
		`({Flash: document.querySelector(".flash")?.innerText ?? "", Footer: document.querySelector("footer").innerText, URL: location.href})`))
	require.NoError(t, err)
	hasPost := fmt.Sprintf(`[...document.querySelectorAll(".post h2")].some(h => h.textContent === %s)`, jsString(title))
	shown, err := chromedp.Run(ctx, chromedp.Evaluate[bool](hasPost))
	require.NoError(t, err)
	assert.True(t, shown, "the list does not show the new post: the replica served it before applying the write")
	assert.Equal(t, base+"posts", list.URL, "where the redirect landed")
	assert.Contains(t, list.Footer, "node-b", "the list's server")
	assert.Equal(t, "Post created.", list.Flash)
	t.Logf("screenshot of the list: %s", shot(t, ctx, "browser-list-after-replayed-post.png"))

	// One replay: the POST. The list was not replayed: the replica waited
	// for the post instead. The command reports replays every 100 ms.
	want := "POST /posts/store from node-b to node-a: replayed"
	litefstest.WaitFor(t, func() error {
		if len(c.Replays()) == 0 {
			return fmt.Errorf("no replay reported")
		}
		return nil
	})
	assert.Equal(t, []string{want}, c.Replays())
}

// shot writes a screenshot of the page as an artifact and returns its path.
func shot(t *testing.T, ctx context.Context, name string) string {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	require.NoError(t, err)
	require.True(t, bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) && len(png) >= 1000,
		"a screenshot of %d bytes is not a PNG of a page", len(png))
	path := artifactPath(t, name)
	require.NoError(t, os.WriteFile(path, png, 0o644))
	return path
}

// artifactPath returns where to write the artifact name, creating its
// directory.
func artifactPath(t *testing.T, name string) string {
	t.Helper()
	dir := os.Getenv(envArtifacts)
	if dir == "" {
		dir = filepath.Join("testdata", "artifacts")
	}
	dir, err := filepath.Abs(dir)
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return filepath.Join(dir, name)
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
