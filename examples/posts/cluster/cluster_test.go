//go:build linux

package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/litefs-sql/litefs/litefstest"
)

// startCluster starts a cluster on free ports in a temporary directory and
// stops it when the test ends. Where LiteFS cannot run, the test is skipped,
// or fails if LITEFS_REQUIRE=1.
func startCluster(t *testing.T) *cluster {
	t.Helper()
	requireFUSE(t)
	bin := litefstest.LiteFSBinary(t)
	c, err := start(t.Context(), options{LiteFS: bin, Dir: t.TempDir(), Output: t.Output()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
		for _, n := range c.nodes {
			if mounted(n.mountDir()) {
				t.Errorf("%s is still mounted", n.mountDir())
			}
		}
	})
	return c
}

// requireFUSE skips the test where LiteFS cannot run, or fails it if
// LITEFS_REQUIRE=1.
func requireFUSE(t *testing.T) {
	t.Helper()
	if err := checkFUSE(); err != nil {
		if os.Getenv(litefstest.EnvRequire) == "1" {
			t.Fatalf("%v (and %s=1)", err, litefstest.EnvRequire)
		}
		t.Skip(err)
	}
}

// newClient returns a client with a cookie jar that does not follow
// redirects, so that each hop can be checked.
func newClient(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{
		Jar:           jar,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func get(t *testing.T, client *http.Client, url string) (*http.Response, string) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// TestReplicaWriteIsReplayed posts through the proxy pinned to the
// replica: the replica refuses the INSERT, answers fly-replay, the proxy
// replays the POST on the primary, and the replica shows the post at once
// (read-your-writes).
func TestReplicaWriteIsReplayed(t *testing.T) {
	c := startCluster(t)
	client := newClient(t)
	base := c.URL("node-b")

	resp, body := get(t, client, base+"posts/create")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Served by <code>node-b</code>") {
		t.Fatalf("form: %s, want 200 from node-b:\n%s", resp.Status, body)
	}

	title := fmt.Sprintf("Written on a replica at %s", time.Now().Format(time.RFC3339Nano))
	resp, err := client.PostForm(base+"posts/store", url.Values{"title": {title}, "body": {"Replayed on the primary."}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/posts" {
		t.Fatalf("store: %s to %q, want 303 to /posts", resp.Status, resp.Header.Get("Location"))
	}
	replays := c.Proxy("node-b").Replays()
	if len(replays) != 1 {
		t.Fatalf("replays %+v, want one", replays)
	}
	if r := replays[0]; r.Method != "POST" || r.Path != "/posts/store" || r.From != "node-b" || r.To != "node-a" || r.Err != "" {
		t.Errorf("replay %+v, want POST /posts/store from node-b to node-a", r)
	}

	// The redirect lands on the replica again. The primary's response set
	// the flash cookie and the __txid cookie, so the replica shows the
	// message and, having waited for that transaction, the post.
	if txid := findCookie(client, base, "__txid"); txid == "" {
		t.Error("the primary set no __txid cookie")
	}
	resp, body = get(t, client, base+"posts")
	for _, want := range []string{"Post created.", title, "Served by <code>node-b</code>"} {
		if !strings.Contains(body, want) {
			t.Errorf("list: %s, does not contain %q:\n%s", resp.Status, want, body)
		}
	}

	resp, body = get(t, client, base+"healthz")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"role":"replica","primary":"node-a"`) {
		t.Errorf("health: %s %s, want node-b as a replica of node-a", resp.Status, body)
	}
}

// findCookie returns the value of the cookie the client holds for url.
func findCookie(client *http.Client, rawURL, name string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return ""
	}
	for _, c := range client.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// TestCommand runs the command as a user would, with go build, then stops
// it with SIGINT as Ctrl-C does, and checks that it unmounted everything.
func TestCommand(t *testing.T) {
	requireFUSE(t)
	litefs := litefstest.LiteFSBinary(t)
	bin := filepath.Join(t.TempDir(), "cluster")
	if out, err := exec.CommandContext(t.Context(), "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dir := t.TempDir()
	cmd := exec.Command(bin, "-port", "0", "-quiet", "-dir", dir, "-litefs", litefs)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	exited := false
	t.Cleanup(func() {
		if !exited {
			cmd.Process.Kill()
			<-done
		}
	})

	// Read what it prints until it says it is up, then keep draining.
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		done <- cmd.Wait()
	}()
	var printed strings.Builder
	urls := map[string]string{}
	urlLine := regexp.MustCompile(`^\s+(http://127\.0\.0\.1:\d+/)\s+(any instance|node-a only|node-b only)`)
	deadline := time.After(2 * time.Minute)
wait:
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				err := <-done
				exited = true
				t.Fatalf("the command exited (%v) before it was up:\n%s", err, printed.String())
			}
			printed.WriteString(line + "\n")
			if m := urlLine.FindStringSubmatch(line); m != nil {
				urls[m[2]] = m[1]
			}
			if strings.HasPrefix(line, "Press Ctrl-C") {
				break wait
			}
		case <-deadline:
			t.Fatalf("the command is not up after 2 minutes:\n%s", printed.String())
		}
	}
	go func() {
		for range lines { // the progress it prints from now on
		}
	}()
	if len(urls) != 3 {
		t.Fatalf("printed URLs %v, want 3:\n%s", urls, printed.String())
	}
	client := newClient(t)
	for what, u := range urls {
		if resp, body := get(t, client, u+"posts"); resp.StatusCode != http.StatusOK {
			t.Errorf("%s: GET %sposts: %s\n%s", what, u, resp.Status, body)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		exited = true
		if err != nil {
			t.Errorf("the command exited with %v, want 0", err)
		}
	case <-time.After(2 * stopTimeout):
		t.Fatal("the command did not exit after SIGINT")
	}
	for _, name := range []string{"node-a", "node-b"} {
		if mnt := filepath.Join(dir, name, "mnt"); mounted(mnt) {
			t.Errorf("%s is still mounted", mnt)
		}
	}
}
