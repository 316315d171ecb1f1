//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	// examples/posts/testdata/artifacts, which git ignores.
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

// artifactPath returns where to write the artifact name, creating its
// directory.
func artifactPath(t *testing.T, name string) string {
	t.Helper()
	dir := os.Getenv(envArtifacts)
	if dir == "" {
		dir = filepath.Join("..", "testdata", "artifacts")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, name)
}

// TestBrowserPostOnReplica drives headless Chromium through the cluster as
// a user would: it opens the form on the replica (through the proxy pinned
// to node-b), types a post, clicks Publish, and lands on the list, served by
// the replica, which shows the flash message and the new post. The POST was
// refused on the replica and replayed on the primary; the __txid cookie the
// primary set made the replica wait for the post before serving the list.
func TestBrowserPostOnReplica(t *testing.T) {
	bin := findBrowser(t)
	c := startCluster(t)
	b := startBrowser(t, bin)
	ctx := t.Context()
	page, err := b.newTab(ctx)
	if err != nil {
		t.Fatal(err)
	}
	base := c.URL("node-b")

	if err := page.navigate(ctx, base+"posts/create"); err != nil {
		t.Fatal(err)
	}
	page.waitUntil(t, "the form", `document.readyState === "complete" && !!document.querySelector("form button")`)
	var footer string
	if err := page.eval(ctx, `document.querySelector("footer").innerText`, &footer); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(footer, "node-b") {
		t.Fatalf("the form was served by %q, want node-b", footer)
	}

	title := "Hello from the replica, " + time.Now().Format("15:04:05.000")
	if err := page.typeInto(ctx, "#title", title); err != nil {
		t.Fatal(err)
	}
	if err := page.typeInto(ctx, "#body", "Typed on node-b, stored on node-a.\nSecond line."); err != nil {
		t.Fatal(err)
	}
	shot(t, page, "browser-form-on-replica.png")
	if err := page.click(ctx, "form button"); err != nil {
		t.Fatal(err)
	}

	// The POST's redirect lands on /posts, through the proxy pinned to the
	// replica; the flash cookie the primary set is shown there.
	page.waitUntil(t, "the list after the redirect",
		`location.pathname === "/posts" && document.readyState === "complete" && !!document.querySelector(".flash")`)
	hasPost := fmt.Sprintf(`[...document.querySelectorAll(".post h2")].some(h => h.textContent === %s)`, jsString(title))
	var shown bool
	if err := page.eval(ctx, hasPost, &shown); err != nil {
		t.Fatal(err)
	}
	if !shown {
		t.Error("the list does not show the new post: the replica served it before applying the write")
	}
	var list struct{ Flash, Footer, URL string }
	err = page.eval(ctx, `({Flash: document.querySelector(".flash")?.innerText ?? "", Footer: document.querySelector("footer").innerText, URL: location.href})`, &list)
	if err != nil {
		t.Fatal(err)
	}
	if list.URL != base+"posts" {
		t.Errorf("landed on %s, want %sposts", list.URL, base)
	}
	if !strings.Contains(list.Footer, "node-b") {
		t.Errorf("the list was served by %q, want node-b", list.Footer)
	}
	if list.Flash != "Post created." {
		t.Errorf("flash message %q, want %q", list.Flash, "Post created.")
	}
	path := shot(t, page, "browser-list-after-replayed-post.png")
	t.Logf("screenshot of the list: %s", path)

	// One replay: the POST. The list was not replayed: the replica waited
	// for the post instead.
	replays := c.Proxy("node-b").Replays()
	if len(replays) != 1 || replays[0].Method != "POST" || replays[0].From != "node-b" || replays[0].To != "node-a" {
		t.Errorf("replays %+v, want the POST from node-b to node-a", replays)
	}
}

// shot writes a screenshot of the page as an artifact and returns its path.
func shot(t *testing.T, page *tab, name string) string {
	t.Helper()
	png, err := page.screenshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) || len(png) < 1000 {
		t.Fatalf("screenshot of %d bytes is not a PNG of a page", len(png))
	}
	path := artifactPath(t, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
