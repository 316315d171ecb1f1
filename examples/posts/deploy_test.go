package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/litefs-sql/litefs/litefstest"
)

// buildApp builds the app into a new temporary directory and returns the
// binary's path.
func buildApp(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "posts")
	cmd := exec.CommandContext(t.Context(), "go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestDeployConfig mounts deploy/litefs.yml, the file the image runs, with
// the real litefs binary, with a static lease instead of Consul and local
// directories, and checks that the app it starts serves requests. As root,
// the app runs as nobody, as it runs as an unprivileged user in the image:
// that needs fuse.allow-other.
func TestDeployConfig(t *testing.T) {
	t.Parallel()
	bin := buildApp(t)
	dir := t.TempDir()
	mnt, data := filepath.Join(dir, "litefs"), filepath.Join(dir, "data")
	litefsAddr, appAddr := freeAddr(t), freeAddr(t)

	execCmd := shellQuote(bin)
	if setpriv, err := exec.LookPath("setpriv"); err == nil && os.Geteuid() == 0 {
		// nobody must reach the binary and the mount through the test's
		// temporary directories, which only their owner may enter.
		for _, d := range []string{filepath.Dir(bin), filepath.Dir(filepath.Dir(bin)), dir} {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		execCmd = shellQuote(setpriv) + " --reuid=nobody --regid=nogroup --clear-groups " + execCmd
	}
	env := []string{
		"LITEFS_DIR=" + mnt,
		"LITEFS_DATA_DIR=" + data,
		"LITEFS_HTTP_ADDR=" + litefsAddr,
		"LITEFS_LEASE_TYPE=static",
		"LITEFS_HOSTNAME=node-a",
		"LITEFS_ADVERTISE_URL=http://" + litefsAddr,
		"FLY_REGION=local", "PRIMARY_REGION=local", // the candidate
		"LITEFS_EXEC=" + execCmd,
		// The app's own configuration, as fly.toml sets it.
		"LISTEN_ADDR=" + appAddr,
		"DATABASE_PATH=" + filepath.Join(mnt, "posts.db"),
		"FLY_MACHINE_ID=node-a",
		"LOG_LEVEL=debug",
	}
	p := litefstest.StartLiteFS(t, filepath.Join("deploy", "litefs.yml"), env)
	base := "http://" + appAddr

	var health map[string]string
	litefstest.WaitFor(t, func() error {
		select {
		case <-p.Done(): // the app exited, and LiteFS with it
			t.Fatalf("LiteFS exited (%v) before the app answered", p.ExitErr())
		default:
		}
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("healthz: %s", resp.Status)
		}
		return json.NewDecoder(resp.Body).Decode(&health)
	})
	if health["role"] != "primary" || health["instance"] != "node-a" || health["txid"] == "" {
		t.Errorf("health %v, want node-a, primary, with a TXID", health)
	}

	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequestWithContext(t.Context(), "POST", base+"/posts/store",
		strings.NewReader(url.Values{"title": {"Stored through LiteFS"}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("store: %s, want 303", resp.Status)
	}
	resp, err = client.Get(base + "/posts")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "Stored through LiteFS") {
		t.Errorf("the list does not show the new post:\n%s", body)
	}

	// LiteFS passes SIGINT to the app, which shuts down, then unmounts.
	if err := p.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if log := p.Log(); !strings.Contains(log, "msg=stopped") {
		t.Errorf("the app did not shut down gracefully:\n%s", log)
	}
}

// TestEntrypoint runs deploy/entrypoint.sh with a stand-in for litefs that
// prints what it was given.
func TestEntrypoint(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("entrypoint.sh is a POSIX shell script")
	}
	t.Parallel()
	bin := t.TempDir()
	fake := "#!/bin/sh\necho \"args=$*\"\necho \"hostname=$LITEFS_HOSTNAME\"\necho \"advertise=$LITEFS_ADVERTISE_URL\"\n"
	if err := os.WriteFile(filepath.Join(bin, "litefs"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	fly := []string{"LITEFS_LEASE_TYPE=consul", "LITEFS_HTTP_ADDR=:20202", "FLY_MACHINE_ID=148e21ea7e5089",
		"FLY_APP_NAME=posts-litefs", "FLY_CONSUL_URL=https://:token@consul-fra.fly-shared.net/posts-litefs-xyz/"}
	tests := []struct {
		name    string
		env     []string
		want    []string // lines of output
		wantErr string
	}{
		{"Fly.io", fly, []string{
			"args=mount -config /etc/litefs.yml",
			"hostname=148e21ea7e5089",
			"advertise=http://148e21ea7e5089.vm.posts-litefs.internal:20202",
		}, ""},
		{"values given win", append(fly, "LITEFS_HOSTNAME=h", "LITEFS_ADVERTISE_URL=http://h:1", "LITEFS_CONFIG=/x.yml"), []string{
			"args=mount -config /x.yml", "hostname=h", "advertise=http://h:1",
		}, ""},
		{"static lease needs nothing", []string{"LITEFS_LEASE_TYPE=static"}, []string{"hostname=", "advertise="}, ""},
		{"consul off Fly.io", []string{"LITEFS_LEASE_TYPE=consul"}, nil, "FLY_MACHINE_ID: is not set"},
		{"consul not attached", fly[:4], nil, "FLY_CONSUL_URL: is not set: run fly consul attach"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), "/bin/sh", filepath.Join("deploy", "entrypoint.sh"))
			cmd.Env = append([]string{"PATH=" + bin + ":/usr/bin:/bin"}, tc.env...)
			out, err := cmd.CombinedOutput()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(string(out), tc.wantErr) {
					t.Fatalf("err %v, output %q; want a failure saying %q", err, out, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			for _, line := range tc.want {
				if !strings.Contains("\n"+string(out), "\n"+line+"\n") {
					t.Errorf("output has no line %q:\n%s", line, out)
				}
			}
		})
	}
}

// shellQuote quotes s for the shell-like parser LiteFS splits exec: with.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
