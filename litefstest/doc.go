// Package litefstest helps test code that runs on LiteFS: the litefs
// driver, net/http middleware that answers fly-replay, and apps built on
// them. It offers three tools, from the cheapest to the most real.
//
// # Temporary mounts
//
// [NewMount] returns a [Mount]: a temporary directory with the files LiteFS
// shows next to a database, written by hand, so that role detection can be
// driven in any test, without FUSE:
//
//   - [Mount.SetPrimary]: no .primary, no .lag. A plain directory, which
//     the driver treats as a single primary.
//   - [Mount.SetReplica]: .primary holds the primary's ID and a newline,
//     as on a LiteFS replica connected to its primary.
//   - [Mount.SetNoPrimary]: no .primary, and a .lag stamped with the Unix
//     epoch, as on a LiteFS node that lost its primary or has not synced.
//   - [Mount.WritePrimaryFile] and [Mount.WriteLagFile]: any contents and
//     times, for odd cases.
//   - [Mount.SetTXID] and [Mount.SetPos]: the <db>-pos position file.
//
// Files are replaced atomically, so a reader racing a change sees the old
// file or the new one. The driver remembers a plain directory's role until
// its inotify watch reports a change; the setters wait for that report, so
// the statement after m.SetReplica(...) is refused. A role file changed by
// other means (os.WriteFile) is seen a few microseconds later: wait for it
// with [WaitFor]. [Mount.DSN] opens <dir>/app.db with go-sqlite3 in WAL
// mode; [DSN] does the same for any path.
//
// # Real LiteFS
//
// [StartCluster] starts n real LiteFS nodes on 127.0.0.1 with a static
// lease: node-0 is the primary, the others replicate it. Create the database
// on the primary (open [Node.DSN] there and write), then wait for the
// replicas with [Cluster.WaitReplicated] or [Node.WaitTXID]. A cluster of two
// starts in well under a second. [StartLiteFS] runs one node from a config
// file of your own, such as an example app's litefs.yml with ${VAR} paths and
// an exec: command. [WaitFor] waits for any condition with a deadline.
//
// LiteFS needs Linux, /dev/fuse and fusermount3 (Debian package fuse3); the
// helpers skip the test where one is missing, or fail it when the
// environment sets LITEFS_REQUIRE=1, as CI should. The litefs binary is
// $LITEFS_BIN, else litefs on PATH, else LiteFS v0.5.14 built once with
// "go install" into the user's cache directory, which takes about half a
// minute and says so on standard error (see [LiteFSBinary]).
//
// Nodes stop when the test ends: first the kit waits (up to
// [DefaultCloseTimeout]) until no other process, the test's own database
// handles above all, holds a file of the mount open or mapped, because
// LiteFS exiting under a SQLite connection that maps the database's -shm
// file kills that process with SIGBUS; files still open then are named in
// the test's failure. Close every database you open in a mount before the
// test ends: with defer, or with a t.Cleanup registered after StartCluster
// (cleanups run last-registered first). Then each node gets SIGINT, so
// LiteFS stops its app and unmounts; a node that does not exit within
// [DefaultStopTimeout] is killed with its app, which fails the test, and
// a mount left behind is detached lazily (and fails the test if files in it
// are still open).
//
// LiteFS writes its output, and its app's, to a file ([Process.LogPath]),
// printed when the test fails. A file, not a pipe: if the test process dies
// (Ctrl-C on go test, a closed terminal, kill -9, SIGTERM, go test
// -timeout's panic), the kernel sends its nodes SIGINT, and LiteFS must
// still be able to log while it stops its app and unmounts; with a pipe
// whose reader is gone it would die of SIGPIPE at its next line.
//
// What holds when the test process dies: its nodes get SIGINT, and a node
// whose mount no process uses unmounts it. But when the test had databases
// open in a mount, LiteFS's unmount can fail with EBUSY (the dying
// process's files and mappings are not all released yet) and the mount is
// left behind; none of the test's cleanups run, so nothing detaches it.
// The mount is a directory named mnt under the test's temporary directory
// (its line in /proc/mounts starts with litefs); detach it with
// fusermount3 -u -z <dir>. The kit never unmounts a mount it did not start.
//
// # Fly.io's replay
//
// [FlyProxy] stands in for Fly.io's proxy in front of several app
// instances: it forwards each request to an instance and, when the response
// carries a fly-replay header, drops that response and sends the request
// again where the header says, with a Fly-Replay-Src header. Instance IDs
// are meant to be LiteFS hostnames, so that what a replica reads in .primary
// is a valid instance=. [FlyProxy.Replays] records every replay, so a test
// can assert that a POST went to the primary exactly once. Where Fly.io
// documents no behaviour, the proxy picks a clear one:
//
//   - a replay to an unknown or unreachable instance: 502, or with
//     fallback=, back to the sender with Fly-Replay-Failed
//     "instance=<target>;reason=<unknown_instance|unreachable|timeout|no_instance>"
//     (Fly.io documents the header but not its contents); a target that
//     took the connection and then failed gets no fallback: 502;
//   - a replay of a request whose body exceeded 1 MB: 413;
//   - more than [DefaultMaxReplays] replays of one request, or a replay of
//     a request that came back from a failed replay: 502.
//
// [ParseReplayHeader], [ParseReplaySrc] and [ParsePos] parse the headers and
// the position file, for tests that check what an app sends or sees.
package litefstest
