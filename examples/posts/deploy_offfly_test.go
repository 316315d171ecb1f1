package main

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs/litefstest"
)

// The off-Fly deploy kits: Docker Compose and Kubernetes. Neither Docker nor
// Kubernetes runs here, so these tests check what can be checked without
// them: the litefs.yml both use is mounted by the real litefs binary with
// each kit's variables, and the kit files are checked for their structure
// and for setting every variable LiteFS and the app read.

const (
	offFlyLiteFSConfig   = "deploy/compose/litefs.yml"
	offFlyComposeFile    = "deploy/compose/compose.yaml"
	offFlyKubernetesFile = "deploy/kubernetes/posts.yaml"
)

// offFlyKit is one kit's environment for each of its nodes, as its file
// sets it.
type offFlyKit struct {
	name  string
	nodes []map[string]string // node 0 is the primary
}

func offFlyReadKit(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	s := string(b)
	assert.NotContains(t, s, "\t", "%s: YAML is indented with spaces", path)
	return s
}

var (
	offFlyComposeEnv     = regexp.MustCompile(`^ {2,6}([A-Z][A-Z0-9_]*): (.*)$`)
	offFlyComposeService = regexp.MustCompile(`^  (node-[0-9]+):$`)
	offFlyKubeEnv        = regexp.MustCompile(`^ +- \{name: ([A-Z][A-Z0-9_]*), value: (.*)\}$`)
)

// offFlyComposeKit reads the environment of each node service of compose.yaml:
// the shared x-env block, then the service's own keys.
func offFlyComposeKit(t *testing.T) offFlyKit {
	t.Helper()
	shared := map[string]string{}
	var nodes []map[string]string
	var cur map[string]string
	section := ""
	for line := range strings.Lines(offFlyReadKit(t, offFlyComposeFile)) {
		line = strings.TrimRight(line, "\n")
		if m := offFlyComposeService.FindStringSubmatch(line); m != nil && section == "services:" {
			cur = maps.Clone(shared)
			nodes = append(nodes, cur)
			continue
		}
		if line != "" && !strings.HasPrefix(line, " ") && !strings.HasPrefix(line, "#") {
			section, cur = line, nil // a top-level key starts a section
		}
		m := offFlyComposeEnv.FindStringSubmatch(line)
		switch {
		case m == nil:
		case cur != nil:
			cur[m[1]] = offFlyUnquote(m[2])
		case nodes == nil:
			shared[m[1]] = offFlyUnquote(m[2])
		}
	}
	return offFlyKit{name: "compose", nodes: nodes}
}

// offFlyKubernetesKit reads the container's env of posts.yaml, once per pod of
// the StatefulSet, with NODE_NAME the pod's name and $(VAR) references
// expanded as the kubelet does.
func offFlyKubernetesKit(t *testing.T) offFlyKit {
	t.Helper()
	s := offFlyReadKit(t, offFlyKubernetesFile)
	env := map[string]string{}
	for line := range strings.Lines(s) {
		if m := offFlyKubeEnv.FindStringSubmatch(strings.TrimRight(line, "\n")); m != nil {
			env[m[1]] = offFlyUnquote(m[2])
		}
	}
	require.Contains(t, s, "replicas: 3")
	require.Contains(t, s, "fieldRef: {fieldPath: metadata.name}", "NODE_NAME is the pod's name")
	var nodes []map[string]string
	for _, pod := range []string{"posts-0", "posts-1", "posts-2"} {
		e := maps.Clone(env)
		e["NODE_NAME"] = pod
		for k, v := range e {
			e[k] = strings.ReplaceAll(v, "$(NODE_NAME)", pod)
		}
		nodes = append(nodes, e)
	}
	return offFlyKit{name: "kubernetes", nodes: nodes}
}

func offFlyUnquote(v string) string {
	v = strings.TrimSpace(v)
	if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"' || v[0] == '\'' && v[len(v)-1] == '\'') {
		return v[1 : len(v)-1]
	}
	return v
}

// offFlyLiteFSVars returns the variables litefs.yml reads, in ${VAR} and in
// ${A == B} expressions.
func offFlyLiteFSVars(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(offFlyLiteFSConfig)
	require.NoError(t, err)
	set := map[string]bool{}
	for _, m := range regexp.MustCompile(`\$\{\s*(\w+)\s*(?:(?:==|!=)\s*(\w+)\s*)?\}`).FindAllStringSubmatch(string(b), -1) {
		for _, v := range m[1:] {
			if v != "" {
				set[v] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(set))
}

func TestOffFlyKitsSetEveryVariable(t *testing.T) {
	t.Parallel()
	vars := offFlyLiteFSVars(t)
	require.Equal(t, []string{"LITEFS_DATA_DIR", "LITEFS_DIR", "LITEFS_EXEC", "LITEFS_HTTP_ADDR",
		"NODE_NAME", "PRIMARY_NAME", "PRIMARY_URL"}, vars)
	for _, kit := range []offFlyKit{offFlyComposeKit(t), offFlyKubernetesKit(t)} {
		t.Run(kit.name, func(t *testing.T) {
			require.Len(t, kit.nodes, 3)
			primary := kit.nodes[0]["NODE_NAME"]
			for i, env := range kit.nodes {
				for _, v := range vars {
					assert.NotEmpty(t, env[v], "node %d: %s is not set", i, v)
				}
				assert.Equal(t, primary, env["PRIMARY_NAME"], "node %d: every node names the same primary, node 0", i)
				assert.True(t, strings.HasPrefix(env["LITEFS_CONFIG"], "/etc/litefs-static"),
					"node %d: LITEFS_CONFIG %q is where the kit mounts litefs.yml", i, env["LITEFS_CONFIG"])
				u, err := url.Parse(env["PRIMARY_URL"])
				require.NoError(t, err)
				host := u.Hostname()
				assert.True(t, host == primary || strings.HasPrefix(host, primary+"."), "node %d: PRIMARY_URL %q does not name %s", i, u, primary)
				// The app's own configuration, as it would load it there.
				cfg, err := loadConfig(func(k string) string { return env[k] })
				require.NoError(t, err, "node %d", i)
				assert.Equal(t, env["NODE_NAME"], cfg.InstanceID, "node %d: the app's instance ID is its LiteFS name", i)
				assert.True(t, strings.HasPrefix(cfg.DatabasePath, env["LITEFS_DIR"]+"/"), "node %d: DATABASE_PATH is in the mount", i)
				replay, err := cfg.Forward.replayer(nil)
				require.NoError(t, err)
				assert.NotNil(t, replay, "node %d: the app forwards writes", i)
				assert.Contains(t, cfg.Forward.URL, "{primary}")
			}
		})
	}
}

// TestOffFlyKitStructure checks by hand what a YAML parser or kubectl would:
// the documents, kinds and the names that must match.
func TestOffFlyKitStructure(t *testing.T) {
	t.Parallel()
	docs := strings.Split(offFlyReadKit(t, offFlyKubernetesFile), "\n---\n")
	require.Len(t, docs, 3)
	for _, want := range []string{"kind: Service\n", "kind: Service\n", "kind: StatefulSet\n"} {
		found := false
		for _, d := range docs {
			found = found || strings.Contains(d, "\n"+want) && strings.Contains(d, "apiVersion: ")
		}
		assert.True(t, found, "no document with %s", want)
	}
	assert.Contains(t, docs[0], "name: posts\n")
	assert.Contains(t, docs[0], "clusterIP: None", "the pods' DNS names need a headless Service")
	assert.Contains(t, docs[2], "serviceName: posts\n", "the StatefulSet names the headless Service")
	assert.Contains(t, docs[2], `value: "http://{primary}.posts:8080"`, "FORWARD_URL reaches pods through the headless Service")

	compose := offFlyReadKit(t, offFlyComposeFile)
	for _, want := range []string{"services:\n", "  node-0:\n", "  node-1:\n", "  node-2:\n", "  lb:\n",
		"./litefs.yml:/etc/litefs-static.yml:ro", "./nginx.conf:/etc/nginx/conf.d/default.conf:ro", "devices: [/dev/fuse]"} {
		assert.Contains(t, compose, want)
	}
	nginx := offFlyReadKit(t, "deploy/compose/nginx.conf")
	for _, node := range []string{"node-0", "node-1", "node-2"} {
		assert.Contains(t, nginx, "server "+node+":8080;")
	}
	assert.Equal(t, strings.Count(nginx, "{"), strings.Count(nginx, "}"), "nginx.conf braces balance")
	assert.Contains(t, nginx, "proxy_buffering off;", "streams reach the client as flushed")
}

// TestOffFlyKitMounts mounts the kits' litefs.yml with the real litefs on
// three nodes, each running the app under exec: with its kit's variables
// (paths and addresses made local, and node names mapped to local addresses
// with FORWARD_PRIMARIES, since they do not resolve here), behind a
// round-robin litefstest.Balancer: a post sent through it to each node is
// stored once, on the primary, and every node then lists it.
func TestOffFlyKitMounts(t *testing.T) {
	t.Parallel()
	bin := buildApp(t)
	for _, kit := range []offFlyKit{offFlyComposeKit(t), offFlyKubernetesKit(t)} {
		t.Run(kit.name, func(t *testing.T) {
			dir := t.TempDir()
			var litefsAddr, appURL, names, primaries []string
			for i := range kit.nodes {
				litefsAddr = append(litefsAddr, freeAddr(t))
				appURL = append(appURL, "http://"+freeAddr(t))
				names = append(names, kit.nodes[i]["NODE_NAME"])
				primaries = append(primaries, names[i]+"="+appURL[i])
			}
			for i := range kit.nodes {
				mnt := filepath.Join(dir, names[i], "litefs")
				env := maps.Clone(kit.nodes[i])
				maps.Copy(env, map[string]string{
					"LITEFS_DIR":        mnt,
					"LITEFS_DATA_DIR":   filepath.Join(dir, names[i], "data"),
					"LITEFS_HTTP_ADDR":  litefsAddr[i],
					"PRIMARY_URL":       "http://" + litefsAddr[0],
					"LITEFS_EXEC":       shellQuote(bin),
					"LISTEN_ADDR":       strings.TrimPrefix(appURL[i], "http://"),
					"DATABASE_PATH":     filepath.Join(mnt, "posts.db"),
					"FORWARD_URL":       "",
					"FORWARD_PRIMARIES": strings.Join(primaries, ","),
				})
				var list []string
				for k, v := range env {
					list = append(list, k+"="+v)
				}
				offFlyWaitHealthy(t, litefstest.StartLiteFS(t, offFlyLiteFSConfig, list), appURL[i])
			}
			bal, err := litefstest.NewBalancer(appURL...)
			require.NoError(t, err)
			base := bal.Start(t)

			jar, err := cookiejar.New(nil)
			require.NoError(t, err)
			client := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			for i := range names {
				require.Equal(t, i, bal.Next())
				title := fmt.Sprintf("Sent to %s of %s", names[i], kit.name)
				res, err := client.PostForm(base+"/posts/store", url.Values{"title": {title}})
				require.NoError(t, err)
				res.Body.Close()
				assert.Equal(t, http.StatusSeeOther, res.StatusCode, "the primary's redirect")
			}
			for i := range names {
				res, err := client.Get(appURL[i] + "/posts")
				require.NoError(t, err)
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				for _, sent := range names {
					title := fmt.Sprintf("Sent to %s of %s", sent, kit.name)
					assert.Equal(t, 1, strings.Count(string(body), title), "%s lists %q once", names[i], title)
				}
			}
		})
	}
}

// offFlyWaitHealthy waits until the app LiteFS started answers /healthz.
func offFlyWaitHealthy(t *testing.T, p *litefstest.Process, base string) {
	t.Helper()
	litefstest.WaitFor(t, func() error {
		select {
		case <-p.Done():
			require.FailNowf(t, "LiteFS exited before the app answered", "%v:\n%s", p.ExitErr(), p.Log())
		default:
		}
		return healthy(base)
	})
}
