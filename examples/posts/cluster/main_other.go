//go:build !linux

// Command cluster runs the posts app on two LiteFS nodes; LiteFS needs
// Linux, so elsewhere it only says so.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "cluster: LiteFS runs on Linux only (FUSE); run this on a Linux machine or VM")
	os.Exit(3)
}
