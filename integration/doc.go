// Package integration holds the tests of the litefs driver and bridge that
// need third-party code: migration tools and ORMs run through the driver
// (goose, golang-migrate, GORM, bun, ent), the example app driven by a real
// browser (chromedp), and the benchmark that sets the bridge against LiteFS's
// own proxy on a real cluster. It is a module of its own, so that a program
// importing the library downloads go-sqlite3 and sqlx and nothing else.
//
// Run it from this directory: go test ./... (see the repository's README).
package integration
