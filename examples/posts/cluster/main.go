//go:build linux

// Command cluster runs the posts app as it runs on Fly.io, on one Linux
// machine: two real LiteFS nodes mounted from the app's own
// deploy/litefs.yml (with a static lease instead of Consul), the app started
// by each node's exec:, and in front of them a stand-in for Fly.io's proxy
// that follows fly-replay. Run it from the repository root:
//
//	go run ./examples/posts/cluster
//
// It prints the URLs to open and stops everything, unmounting, on Ctrl-C,
// SIGTERM, or SIGHUP (the terminal closed). If it is killed outright, the
// kernel sends each LiteFS SIGINT, and LiteFS still stops its app and
// unmounts.
// It needs Linux, /dev/fuse and fusermount3 (Debian package fuse3), and
// root or user_allow_other in /etc/fuse.conf.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	var opts options
	flag.IntVar(&opts.Port, "port", 8080, "first of three ports for the proxies (any instance, node-a only, node-b only); 0 picks free ports")
	flag.StringVar(&opts.Dir, "dir", "", "directory for the nodes' files, kept afterwards (default: a temporary directory, removed)")
	flag.StringVar(&opts.LiteFS, "litefs", os.Getenv("LITEFS_BIN"), "litefs binary (default: $LITEFS_BIN, litefs on PATH, or built once with go install)")
	flag.StringVar(&opts.App, "app", "", "posts binary (default: built from the source)")
	quiet := flag.Bool("quiet", false, "write the nodes' output to their log files only")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "cluster: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	opts.Output = os.Stdout
	if *quiet {
		opts.Output = io.Discard
	}
	opts.Progress = os.Stderr

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	if err := run(ctx, opts); err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		if errors.Is(err, errNoFUSE) {
			os.Exit(3)
		}
		os.Exit(1)
	}
}

// run starts the cluster, prints its URLs, and stops it when ctx ends.
func run(ctx context.Context, opts options) error {
	c, err := start(ctx, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(opts.Progress, `
The posts cluster is up: two LiteFS nodes with one app each, and a stand-in
for Fly.io's proxy in front.

  %s   any instance, in turn
  %s   node-a only: the primary
  %s   node-b only: a replica; a new post is replayed to node-a

Each node's app directly, with no proxy to follow fly-replay (node-b answers
a write with 409 and a fly-replay header):
%s
Node files and logs: %s
Press Ctrl-C to stop.

`, c.URL(""), c.URL("node-a"), c.URL("node-b"), c.directURLs(), c.Dir())
	go c.reportReplays(ctx, opts.Progress)
	<-ctx.Done()
	fmt.Fprintln(opts.Progress, "\nstopping…")
	if err := c.Stop(); err != nil {
		return err
	}
	fmt.Fprintln(opts.Progress, "stopped")
	return nil
}
