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
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// buildApp builds the app into a new temporary directory and returns the
// binary's path.
func buildApp(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "posts")
	cmd := exec.CommandContext(t.Context(), "go", "build", "-o", bin, ".")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build:\n%s", out)
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
			require.NoError(t, os.Chmod(d, 0o755))
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
			require.FailNow(t, "LiteFS exited before the app answered", "%v", p.ExitErr())
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
	assert.Equal(t, "primary", health["role"], "health %v", health)
	assert.Equal(t, "node-a", health["instance"], "health %v", health)
	assert.NotEmpty(t, health["txid"], "health %v", health)

	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequestWithContext(t.Context(), "POST", base+"/posts/store",
		strings.NewReader(url.Values{"title": {"Stored through LiteFS"}}.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, "store")
	resp, err = client.Get(base + "/posts")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Contains(t, string(body), "Stored through LiteFS", "the list does not show the new post")

	// LiteFS passes SIGINT to the app, which shuts down, then unmounts.
	require.NoError(t, p.Stop(), "stop")
	assert.Contains(t, p.Log(), "msg=stopped", "the app did not shut down gracefully")
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
	require.NoError(t, os.WriteFile(filepath.Join(bin, "litefs"), []byte(fake), 0o755))
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
				require.Error(t, err, "output %q", out)
				require.Contains(t, string(out), tc.wantErr)
				return
			}
			require.NoError(t, err, "%s", out)
			for _, line := range tc.want {
				assert.Contains(t, "\n"+string(out), "\n"+line+"\n", "output has no line %q", line)
			}
		})
	}
}

// shellQuote quotes s for the shell-like parser LiteFS splits exec: with.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
