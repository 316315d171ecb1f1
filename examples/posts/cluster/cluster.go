//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/litefs-sql/litefs/litefstest"
)

// options configures a cluster.
type options struct {
	// Port is the first of three consecutive ports on 127.0.0.1 for the
	// proxies: to any instance, to node-a only, to node-b only. 0 picks
	// three free ports.
	Port int
	// Dir holds the nodes' files; "" means a new temporary directory,
	// removed by Stop.
	Dir string
	// LiteFS is the litefs binary; "" means find or build one.
	LiteFS string
	// App is the posts binary; "" means build it from the source.
	App string
	// Output receives the nodes' output (LiteFS's and the app's), each line
	// prefixed with the node's name; it is also kept in <node>/litefs.log.
	Output io.Writer
	// Progress receives what the cluster is doing.
	Progress io.Writer
}

// The nodes: node-a in the primary region is the primary (the only lease
// candidate), node-b a replica. The regions are labels, as on Fly.io.
var nodeSpecs = []struct{ name, region string }{
	{"node-a", "ams"},
	{"node-b", "sin"},
}

const primaryRegion = "ams"

// cluster is a running cluster; see start.
type cluster struct {
	dir     string
	tempDir bool
	nodes   []*node
	proxies []*proxy
}

// proxy is a FlyProxy served on a port of its own.
type proxy struct {
	target string // "" for any instance
	fly    *litefstest.FlyProxy
	srv    *http.Server
	url    string
}

// errNoFUSE reports a machine that cannot run LiteFS.
var errNoFUSE = errors.New("LiteFS cannot run here")

// start starts LiteFS on each node with the app's deploy/litefs.yml, waits
// until every app answers its health check, and starts the proxies. On
// error, what was started is stopped.
func start(ctx context.Context, opts options) (_ *cluster, err error) {
	if opts.Output == nil {
		opts.Output = io.Discard
	}
	if opts.Progress == nil {
		opts.Progress = io.Discard
	}
	if err := checkFUSE(); err != nil {
		return nil, err
	}
	src, err := sourceDir(ctx)
	if err != nil {
		return nil, err
	}
	c := &cluster{dir: opts.Dir}
	if c.dir == "" {
		if c.dir, err = os.MkdirTemp("", "posts-cluster-"); err != nil {
			return nil, err
		}
		c.tempDir = true
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, c.Stop())
		}
	}()
	// Take the proxies' ports first, so that a busy port fails fast.
	listeners, err := listenProxies(opts.Port)
	if err != nil {
		return c, err
	}
	defer func() {
		if err != nil {
			closeAll(listeners)
		}
	}()
	litefsBin, app, err := c.binaries(ctx, opts)
	if err != nil {
		return c, err
	}
	if err := c.startNodes(ctx, litefsBin, filepath.Join(src, "deploy", "litefs.yml"), app, opts); err != nil {
		return c, err
	}
	return c, c.startProxies(listeners)
}

// binaries returns the litefs binary and the app's, finding or building
// those opts does not name.
func (c *cluster) binaries(ctx context.Context, opts options) (litefsBin, app string, err error) {
	litefsBin = opts.LiteFS
	if litefsBin == "" {
		if litefsBin, err = litefstest.FindLiteFS(ctx, opts.Progress); err != nil {
			return "", "", err
		}
	}
	app = opts.App
	if app == "" {
		app = filepath.Join(c.dir, "posts")
		fmt.Fprintln(opts.Progress, "building the app…")
		if err := buildApp(ctx, app); err != nil {
			return "", "", err
		}
	}
	return litefsBin, app, nil
}

// startNodes starts the nodes one by one, the primary first, each joining
// the cluster before the next starts, and waits until every app answers.
func (c *cluster) startNodes(ctx context.Context, litefsBin, config, app string, opts options) error {
	var primary *node
	for _, spec := range nodeSpecs {
		n, err := newNode(spec.name, spec.region, filepath.Join(c.dir, spec.name))
		if err != nil {
			return err
		}
		if primary == nil {
			primary = n
		}
		fmt.Fprintf(opts.Progress, "starting %s (%s, %s)…\n", n.name, n.region, n.role(primary))
		c.nodes = append(c.nodes, n)
		if err := n.start(litefsBin, config, app, primary, opts.Output); err != nil {
			return err
		}
		if err := n.waitReady(ctx, primary); err != nil {
			return err
		}
	}
	for _, n := range c.nodes {
		if err := n.waitApp(ctx); err != nil {
			return err
		}
	}
	return nil
}

// startProxies serves a FlyProxy on each listener: to any instance, then
// to each node first. Each proxy's own region is its first instance's (the
// primary region's for the one that spreads requests), and each instance is
// in its node's region, as Fly.io would place them.
func (c *cluster) startProxies(listeners []net.Listener) error {
	instances, regions := map[string]string{}, map[string]string{}
	for _, n := range c.nodes {
		instances[n.name], regions[n.name] = n.appURL(), n.region
	}
	targets := []string{"", nodeSpecs[0].name, nodeSpecs[1].name}
	for i, l := range listeners {
		region := primaryRegion
		if targets[i] != "" {
			region = regions[targets[i]]
		}
		fly, err := litefstest.NewFlyProxy(litefstest.FlyProxyConfig{
			Instances: instances, Target: targets[i], Region: region, Regions: regions,
		})
		if err != nil {
			return err
		}
		p := &proxy{target: targets[i], fly: fly, url: "http://" + l.Addr().String() + "/"}
		p.srv = &http.Server{Handler: fly, ReadHeaderTimeout: 10 * time.Second}
		c.proxies = append(c.proxies, p)
		go p.srv.Serve(l)
	}
	return nil
}

func closeAll(listeners []net.Listener) {
	for _, l := range listeners {
		l.Close()
	}
}

// listenProxies listens on port, port+1 and port+2 of 127.0.0.1, or on
// three free ports if port is 0.
func listenProxies(port int) ([]net.Listener, error) {
	var ls []net.Listener
	for i := range 3 {
		addr := "127.0.0.1:0"
		if port != 0 {
			addr = "127.0.0.1:" + strconv.Itoa(port+i)
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			closeAll(ls)
			return nil, fmt.Errorf("%w (choose other ports with -port)", err)
		}
		ls = append(ls, l)
	}
	return ls, nil
}

// URL returns the URL of the proxy that sends requests to instance first,
// or to any instance if instance is "".
func (c *cluster) URL(instance string) string {
	for _, p := range c.proxies {
		if p.target == instance {
			return p.url
		}
	}
	return ""
}

// Proxy returns the FlyProxy that sends requests to instance first, or to
// any instance if instance is "".
func (c *cluster) Proxy(instance string) *litefstest.FlyProxy {
	for _, p := range c.proxies {
		if p.target == instance {
			return p.fly
		}
	}
	return nil
}

// directURLs lists each node's app URL, one line per node: its name,
// region and role.
func (c *cluster) directURLs() string {
	var b strings.Builder
	for _, n := range c.nodes {
		fmt.Fprintf(&b, "  %s/   %s (%s, %s)\n", n.appURL(), n.name, n.region, n.role(c.nodes[0]))
	}
	return b.String()
}

// Dir returns the directory holding the nodes' files.
func (c *cluster) Dir() string { return c.dir }

// Node returns the node named name, or nil.
func (c *cluster) Node(name string) *node {
	for _, n := range c.nodes {
		if n.name == name {
			return n
		}
	}
	return nil
}

// Stop stops the proxies, then the nodes, replicas first (each LiteFS
// stops its app, then unmounts), and removes a temporary directory.
func (c *cluster) Stop() error {
	var errs []error
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, p := range c.proxies {
		if p.srv != nil {
			if err := p.srv.Shutdown(ctx); err != nil {
				errs = append(errs, err)
			}
		}
	}
	var wg sync.WaitGroup
	stopErrs := make([]error, len(c.nodes))
	for i := len(c.nodes) - 1; i >= 1; i-- {
		wg.Go(func() { stopErrs[i] = c.nodes[i].stop() })
	}
	wg.Wait()
	if len(c.nodes) > 0 {
		stopErrs[0] = c.nodes[0].stop()
	}
	errs = append(errs, stopErrs...)
	if c.tempDir && c.dir != "" {
		if err := os.RemoveAll(c.dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// reportReplays prints each replay the proxies perform until ctx ends, so
// that the user sees writes move from a replica to the primary.
func (c *cluster) reportReplays(ctx context.Context, w io.Writer) {
	seen := make([]int, len(c.proxies))
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for i, p := range c.proxies {
			replays := p.fly.Replays()
			for _, r := range replays[seen[i]:] {
				msg := "replayed"
				if r.Err != "" {
					msg = "replay failed: " + r.Err
				}
				fmt.Fprintf(w, "fly-replay: %s %s from %s to %s: %s\n", r.Method, r.Path, r.From, r.To, msg)
			}
			seen[i] = len(replays)
		}
	}
}
