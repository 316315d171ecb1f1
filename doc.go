// Package litefs is a database/sql driver for SQLite databases replicated by
// [LiteFS]. It wraps [github.com/mattn/go-sqlite3] and knows which node it
// runs on: on the primary it behaves as go-sqlite3; on a replica it refuses
// every write before the write touches the database or takes a lock, with an
// error that names the primary, so the request can be sent there (package
// httpbridge does that with Fly.io's fly-replay).
//
// # Opening
//
// Importing the package registers the driver "litefs". Its DSNs are
// go-sqlite3's: a path or a file: URI, with go-sqlite3's parameters.
//
//	db, err := sql.Open("litefs", "/litefs/app.db?_journal_mode=WAL&_busy_timeout=5000")
//
// sql.Open reports a malformed DSN at once. The driver reads go-sqlite3's
// _txlock (see Transactions) and _query_only (see Limits), and two
// parameters of its own that go-sqlite3 ignores: _litefs_api (see below)
// and _forward_writes=1 (see [WithForwardWrites]). For options a DSN cannot
// carry (the mount directory, a go-sqlite3 driver with a ConnectHook or
// extensions, a logger) use [NewConnector] with sql.OpenDB. db.Close closes
// the Connector too, which stops its event stream. sqlx works unchanged:
// the package registers the bind type, so sqlx.BindType("litefs") is
// sqlx.QUESTION, as for "sqlite3".
//
// An in-memory or temporary database (":memory:", "file::memory:", "", or a
// URI that SQLite opens in memory) is not replicated: it is always writable
// unless [WithMountDir] names a mount to take the role from. What SQLite
// opened decides, not the DSN's text: go-sqlite3 ignores mode=memory on a
// plain path, and SQLite reads the last of several modes in a URI.
//
// The go-sqlite3 connection beneath is reachable through (*sql.Conn).Raw and
// [Conn.SQLite]; statements run on it directly bypass the driver's checks.
//
// # How the role is detected
//
// The driver reads the files LiteFS shows in its mount directory, by default
// the directory of the database file:
//
//   - .primary exists: this node is a replica of the primary it names (its
//     hostname; on Fly.io the machine ID). Contents that are not a hostname-
//     like token (letters, digits, '-', '_', '.', at most 255 bytes, after
//     trimming white space) refuse writes with [ErrNoPrimary] and are logged.
//   - .primary and .lag are both absent: the directory is not a LiteFS mount,
//     so a plain local file works as a single primary with no setup.
//   - .primary is absent but .lag exists: LiteFS, with no primary elsewhere.
//     That alone does not prove this node is primary (a replica that lost its
//     primary looks the same), so the driver also requires .lag to be stamped
//     no earlier than the check began: LiteFS stamps it with the current time
//     on the primary, and with the last heartbeat or the Unix epoch elsewhere.
//     Otherwise writes are refused with [ErrNoPrimary].
//
// Without the event stream below, the role is read from these files for
// every statement that may write (an open of .primary, plus a stat of .lag
// on a primary), so a role change is seen by the very next write. Reads
// never touch the mount; opening a connection reads the role once.
//
// On a plain directory (not a FUSE mount: a local file, a test's
// litefstest.Mount) a connection remembers the role it read, as a single
// primary or as a replica of a valid .primary, and a write checks it with
// no system call, on Linux: the process keeps one inotify watch of the
// directory, shared by all its connections, which reports .primary or .lag
// being created, removed, renamed or rewritten (closed after writing), and
// the role is read again after any such report. A report is read by a
// goroutine the kernel wakes, so a change made by other means (another
// process, os.WriteFile in a test) is seen by writes that start once that
// goroutine has run, normally a few microseconds later, even in the
// goroutine that made the change: a test that writes .primary by hand
// must wait for the refusal (litefstest.WaitFor). The setters of
// litefstest.Mount wait for the report themselves, so the statement after
// m.SetReplica is refused, with no window. A directory
// with .lag is read at every write (its freshness is a timestamp, not an
// entry). If the watch cannot be made (not Linux, inotify limits reached)
// one stat of the directory stands in for the files once the directory
// has been unchanged for two seconds, since creating, replacing or removing
// an entry changes its mtime; a directory moved, removed or unmounted under
// its watch is read at every write. A LiteFS mount never uses either.
//
// The process's watches share one inotify instance, which also follows the
// mount table: a mount over the directory (LiteFS mounting after the
// application opened its database) or an unmount under it (umount -l, a
// container's teardown) makes no inotify event, yet the path then names
// another directory, while a connection's database file is still the one
// beneath the mount, or detached. Such a connection refuses every write
// (with the [*NotPrimaryError] the new directory's .primary names, or
// [ErrNoPrimary]), and database/sql drops it from the pool when it is next
// returned there (it reports itself invalid); a new connection opens the
// file the path shows. A
// directory that changes while SQLite opens the file is caught too, by
// comparing it before the open and after, but for a mount and its unmount
// both within one open. Without inotify the directory is looked at through
// the path at each write, which shows the same.
//
// Limits of the plain-directory cache: inotify reports .primary rewritten in
// place only when it is written through its name in this directory; written
// through a hard link elsewhere, the change is not seen, and a refusal may
// name the previous primary until an entry of the directory changes. A write
// is never admitted this way: a remembered replica becomes writable only
// when .primary is removed, which is an entry change. Nor does inotify see
// what another host changes on a network or shared file system (NFS, CIFS,
// 9p, virtiofs): on a file system not known by statfs to be local (ext2-4,
// xfs, btrfs, tmpfs, ramfs, overlayfs, f2fs, zfs, bcachefs) every write
// reads the files, with nothing remembered. A change above the directory (a
// parent renamed, a symbolic link on its path repointed) makes no event on
// it: the process looks at each watched path every 250 ms, so such a change
// reaches writes and commits within that time (at once for litefstest's
// setters).
//
// Once a connection of a [Connector] has found its database on a LiteFS
// (FUSE) mount, a connection that finds a plain directory there instead
// refuses writes with [ErrNoPrimary]: LiteFS has gone, and writing the file
// beneath the mount would fork the database.
//
// # The event stream, and what a role check costs
//
// On a LiteFS mount every look at a file is a round trip through FUSE to
// the LiteFS process: measured on a two-node cluster here, about 50 µs for
// the open of an absent .primary, 50-100 µs for a stat of .lag, 410-510 µs
// to read .primary, against about 450 µs for a whole single-row UPDATE. So
// the connections of a [Connector] (one *sql.DB) share one source of the
// role instead: LiteFS's event stream (GET /events on its HTTP API), which
// reports the role when it connects and each lease change as it happens.
// While the driver trusts the stream, a write checks the role from memory,
// with no file read and no system call.
//
// The API's address comes from [WithLiteFSAPI], else the DSN parameter
// _litefs_api ("host:port", ":port" for loopback, an http URL, or "off"),
// else [DefaultLiteFSAPI] (LiteFS's own default, on loopback), which is
// used only for a database on a FUSE mount. The driver trusts a stream only
// once its first event agrees with the mount files, and checks it again
// every 250 ms ([WithRoleCheckInterval]): if the files say another role,
// if the stream reports a transaction this node has not applied, or if it
// has not reported by then the position read at the previous check (it
// stalled), the stream is dropped and reconnected, and until a new one is
// verified every write reads the mount files, as above: the driver fails
// closed. A stream of another node on the same machine is found out as soon
// as that node's role or position differs from this one's; two replicas in
// step look alike, so give nodes that share a machine their own addresses.
//
// A role change therefore reaches writes within a millisecond or so through
// the stream, and within 250 ms (the next check) when the stream is stalled,
// broken, or another node's. In that window LiteFS itself is the backstop: a
// write that reaches a replica is refused by LiteFS before it changes
// anything (below), and a write that meets LiteFS stopping fails; the
// driver then rereads the mount files, returns a refusal rather than
// SQLite's error, and drops the stream that said otherwise. One thing no
// driver can turn into a refusal: SQLite maps the WAL index of a database on
// a LiteFS mount into memory, so a statement running inside SQLite while
// LiteFS exits dies of SIGBUS. Run the app as LiteFS's exec child (the exec
// section of litefs.yml): on a signal LiteFS passes it to the app and waits
// for it to exit before shutting down.
// # What counts as a write
//
// SQLite decides. The driver asks it through sqlite3_stmt_readonly the first
// time a connection sees a SQL string, and remembers the verdict for that
// string (see [WithClassCacheSize]). That covers INSERT, UPDATE, DELETE,
// REPLACE and upserts, writes inside WITH, RETURNING through Query, DDL,
// VACUUM, ANALYZE and REINDEX. The driver corrects SQLite where its verdict
// is known to be wrong for this purpose: EXPLAIN is a read, and:
//
//   - PRAGMA statements (and EXPLAIN of one) are decided from the pragma's
//     name, never by compiling them: SQLite applies many pragmas while it
//     compiles them. Reading a pragma, and setting one that changes only the
//     connection (foreign_keys, recursive_triggers, cache_size, busy_timeout,
//     writable_schema, ...), is a read; setting one that writes the file or
//     holds its lock (user_version, journal_mode, even to the mode in force,
//     locking_mode, ...), PRAGMA optimize, wal_checkpoint and
//     incremental_vacuum, and any pragma the driver does not know, are
//     writes. PRAGMA query_only = x is refused everywhere: the driver
//     manages it.
//   - A table-valued pragma function that writes (pragma_optimize(...),
//     also behind a view) is a write. SQLite compiles every other statement
//     under an authorizer that sees it, and that denies any pragma setting
//     meanwhile.
//   - A statement that calls a function SQLite does not build in (one a
//     ConnectHook or an extension registered), ATTACH and DETACH may write
//     through the connection: they are treated like the strings below, so
//     each run reads the role, as a write does.
//   - A database attached from another directory (the mount, attached to an
//     in-memory or local main database; another mount) brings that
//     directory's role: once it is attached, every write on the connection,
//     to any of its databases, reads the roles of the main database's
//     directory and of each such directory, and is refused if any is a
//     replica's. On a replica, ATTACH of anything but an in-memory database
//     or a file that exists already (a parameter, an expression, a new file)
//     is a write: query_only does not stop ATTACH creating the file.
//   - VACUUM INTO a file outside the mount writes nothing LiteFS
//     replicates: it is allowed on a replica, the usual way to take a
//     backup there. A target inside the mount, a file: URI, a parameter or
//     an expression (whose target the driver cannot see), or a directory
//     that does not exist makes it a write.
//
// Some strings may or may not write, and only running them tells: several
// statements in one string (go-sqlite3 runs them all, in Exec and in Query),
// CREATE ... IF NOT EXISTS and DROP ... IF EXISTS. On a replica these run
// under SQLite's PRAGMA query_only, which refuses the first statement that
// would write before it takes a lock, and under an authorizer that denies
// what query_only lets through (a change of journal mode, a checkpoint); the
// refusal comes back as a [*NotPrimaryError] (or [ErrNoPrimary]), even if
// the node has been promoted meanwhile. The driver first reads the schema,
// so "CREATE TABLE IF NOT EXISTS" at start-up succeeds on a replica once the
// primary's table has arrived.
//
// A refused statement leaves the connection as it found it: query_only on,
// no transaction that the refused string began (BEGIN; ...; COMMIT or
// SAVEPOINT s; ... in one string is rolled back), and the connection
// settings and attached databases its earlier statements changed put back
// (PRAGMA foreign_keys = OFF; ALTER TABLE ... in a migration), in the schema
// each names (PRAGMA aux.synchronous = 0); case_sensitive_like, which SQLite
// cannot read back, goes back to the DSN's _case_sensitive_like (default
// off). On a replica a string of several statements that may write and
// that DETACHes a database is refused before it runs: the database could
// only be attached again by file name, without its URI parameters. A
// transaction begun through database/sql is left to its owner, but the
// savepoints a refused string opened in it are rolled back and released; a
// string that also ends or begins a transaction or a savepoint there
// (RELEASE, ROLLBACK, COMMIT, BEGIN) is refused on a replica before it runs.
//
// A write SQLite cannot prepare on a replica, because the replica's schema
// trails the primary's after a migration ("no such table", "has no column
// named", "already exists"), is a refusal wrapping SQLite's error, so the
// request goes to the primary, which has the new schema. The driver cannot
// ask SQLite about a statement it cannot prepare, so it guesses from the
// first keyword (INSERT, UPDATE, DELETE, REPLACE, CREATE, DROP, ALTER,
// PRAGMA, ...; for WITH, the keyword of its main statement). A read that
// fails to prepare gets SQLite's error, on any node: the driver cannot tell
// a schema that lags from a query that is wrong.
//
// A connection that has found its node a replica stays under query_only, so
// a statement SQLite misjudges as a read cannot write there either.
//
// A prepared statement keeps the verdict on its (first) statement and checks
// the role each time it runs, so one prepared on the primary is refused
// after a demotion. Preparing a PRAGMA that writes checks the role first.
//
// If a write still reaches LiteFS on a replica (it raced a demotion), LiteFS
// refuses it: SQLITE_IOERR_WRITE with EACCES in WAL mode,
// SQLITE_READONLY_DIRECTORY in rollback-journal mode. A write that meets
// LiteFS shutting down fails with SQLITE_PROTOCOL, SQLITE_BUSY or another
// SQLITE_IOERR. After each of those the driver rereads the role from the
// mount files and, when this node may not write, returns the same refusal
// errors instead of "disk I/O error". Opening a database that a replica does
// not have yet fails the same way, and the refusal is reported to the
// [Tracker] of the context that asked for the connection.
//
// # Transactions
//
// BeginTx with sql.TxOptions{ReadOnly: true} issues a plain BEGIN, whatever
// the DSN's _txlock, and runs under query_only: it works on a replica, and a
// write in it fails with [ErrReadOnlyTx]. Otherwise, when _txlock=immediate
// or exclusive takes the write lock at BEGIN, a replica refuses at BeginTx;
// with the default deferred BEGIN it refuses at the first write. Outside
// write forwarding (see Writes outside a request), no write lock is ever
// taken on a replica: an open write transaction there would stall
// replication, since applying a transaction needs that lock.
//
// An open read transaction stalls it too: LiteFS cannot apply a transaction
// while a reader holds an older snapshot (a held ReadOnly transaction
// stopped replication to its replica for as long as it stayed open). Keep
// read transactions on a replica short, and close Rows promptly.
//
// # Errors
//
// Every refusal matches [ErrNotPrimary] with errors.Is, through database/sql,
// sqlx and fmt.Errorf("%w"). When the primary is known, errors.As finds a
// [*NotPrimaryError] with its PrimaryID; when it is not, the error matches
// [ErrNoPrimary], and [WaitPrimary] waits for one. A refusal is never
// driver.ErrBadConn, so database/sql does not retry it.
//
// # Requests
//
// A [Tracker] in the context passed to ExecContext, QueryContext or BeginTx
// hears the first refusal and whether a write committed (for a query that
// writes, when its rows end; for a transaction begun without one, such as
// db.Begin's, the Tracker its statements ran for). net/http middleware
// attaches one per request, so a handler that swallows the error still gets
// its request replayed. [CheckPrimary] asks before a side effect that must
// not happen on a replica.
//
// # Read-your-writes
//
// LiteFS numbers transactions; [CurrentTXID] reads the last one applied on
// this node and [WaitTXID] waits for one. After a request that committed a
// write, [Tracker.TXID] gives the TXID to hand the client, so that a later
// read on a replica can wait until the replica has caught up. None of them
// takes a connection from the pool.
//
// [WaitTXID] reads no file itself: the waiters of a database share the
// event stream's transaction events when it is trusted, or else one reader
// of <db>-pos every 2 ms while anyone waits, so waiting costs the node the
// same however many requests wait. At most [WithMaxWaiters] calls wait at
// once (default [DefaultMaxWaiters]); more get [ErrTooManyWaiters] at once.
//
// [CurrentTXID] reads <db>-pos, which the driver keeps open on a LiteFS
// mount: one pread, about 90 µs on an idle cluster here against 510 µs to
// open and read it afresh, but 300-500 µs at the median right after a
// commit, while LiteFS ships it to the replicas (or, on a replica, applies
// it). [TXIDHint] gives the stream's position with no I/O: it may trail the
// node, so it can show a replica behind, never caught up.
//
// [Tracker.TXID] reads <db>-pos once after the commits it heard, unless
// [Tracker.PrefetchTXID] was called (httpbridge calls it): each commit then
// begins that read in SQLite's commit hook, while its connection holds the
// write lock and before LiteFS sees the commit, so that the read runs while
// SQLite writes the transaction. It returns the previous TXID or a later
// one, so one more is this commit's TXID or later, never an earlier one;
// and that TXID exists once the stream has reported a higher one than the
// read, which TXID waits for up to 100 µs (the commit's event is sent
// before the commit returns). Otherwise it reads the file after the
// commit: the read may have been of this very commit, or the commit may
// have written no page (an UPDATE that matched nothing, or set a row to the
// value it held), which makes no LiteFS transaction although SQLite calls
// the commit hook. On the test cluster that made a write and its TXID
// 1.01-1.08× a raw write, against 1.09-1.17× for a read after it. The
// stream cannot stand in for the read alone: a commit's event may arrive
// after the commit returns, behind an earlier transaction's, and handing
// the client that earlier TXID would break read-your-writes.
//
// # Migration tools
//
// Run migrations on the primary only: at start-up, ask [CheckPrimary] (or
// [NodeStatus]) and skip them on a replica, which receives the new schema
// through LiteFS. Tools that run every migration in a transaction of their
// own (goose, GORM's AutoMigrate) get a refusal that matches [ErrNotPrimary]
// on a replica. golang-migrate wraps errors in its database.Error, which has
// no Unwrap, so errors.Is(err, ErrNotPrimary) is false through it; and it
// leaves a transaction open on its connection for each refused call, which
// on real LiteFS stalls replication and blocks the unmount until its
// *sql.DB is closed. With golang-migrate, check the role first, and close
// its instance (m.Close) when it returns an error.
//
// # Run the app as LiteFS's exec child
//
// Start the app from LiteFS's configuration (exec: in litefs.yml), not
// beside it. SQLite maps each database's -shm file into the app's memory;
// when LiteFS exits, its mount is detached and the next access to that map
// kills the app with SIGBUS, whatever the app was doing. As LiteFS's child
// the app is stopped by LiteFS before it unmounts, dies with it if it
// crashes, and is started again with it, so no app ever runs on a mount
// that is gone. Tests that open databases in a mount of litefstest close
// them before the cluster stops (litefstest waits for that, and says which
// files are still open).
//
// # Writes outside a request
//
// A refused write inside an HTTP request is best replayed on the primary
// (package httpbridge): the replica does no work and the primary never
// waits. Code with no request to replay (a background job, a queue
// consumer, a WebSocket or gRPC handler, a CLI command, a migration) has
// three other ways:
//
//   - [WithHalt] runs a function under LiteFS's HALT lock (its write
//     forwarding): the function's writes run on this node, and LiteFS sends
//     each transaction to the primary before the commit returns. Only writes
//     made with the function's context go through; the rest of the process
//     is refused as before, so a request served meanwhile is still replayed.
//   - [WithForwardWrites] (DSN parameter _forward_writes=1) makes a handle
//     forward every write by itself: an autocommit write takes the lock for
//     its duration, and a transaction that is not read-only takes it at
//     BeginTx and keeps it to Commit or Rollback. Reads never take it. Use
//     it for a second handle, for code that passes no context (a migration
//     tool such as golang-migrate) or for a job runner's rare writes.
//   - [CheckPrimary] lets a job run only on the primary (or wherever the
//     lock is not worth its cost): check, and skip the job on a replica.
//
// Migrations: run goose's UpContext inside WithHalt, on any node and on
// several at once: each node catches up with the primary when it gets the
// lock, so goose sees what another node applied and applies each migration
// once.
//
//	err := litefs.WithHalt(ctx, db, func(ctx context.Context) error {
//		return goose.UpContext(ctx, db, "migrations")
//	})
//
// golang-migrate takes no context: give it a handle opened with
// _forward_writes=1. Each of its migrations then commits under the lock,
// but its version check runs before it takes the lock, so run it from one
// node at a time.
//
// The cost, measured on a real two-node cluster on loopback (2 cores
// loaded by other work, load average 8; single-row INSERT; medians of
// three interleaved rounds): 3.9 ms on the primary; 14.6 ms from a replica
// taking the lock per write with WithHalt, 13.7 ms with WithForwardWrites
// (2.6 to 4.9 times the primary in each round); 5.6 ms per write with the
// lock held across 100 writes (1.0 to 1.9 times); for comparison, an HTTP
// request refused on the replica and replayed on the primary through
// litefstest.FlyProxy took 6.2 ms, against 4.8 ms for the same request sent
// to the primary. Runs under heavier load gave the same ratios.
// Taking the lock costs LiteFS a round trip to the primary, which
// checkpoints, and the replica's catching up with it.
//
// LiteFS's own caveats: write forwarding is experimental in LiteFS v0.5,
// and v0.5.14 has a deadlock: when a transaction the primary committed
// reaches a replica after the primary granted that replica's request for
// the lock, the replica stops applying transactions until LiteFS restarts
// (its stream processor waits for a lock it holds), and every later
// request for the lock there fails after 10 s. In this package's tests a
// primary writing continuously, or a burst of primary writes just before,
// hit it about one run in three. So the driver asks for the lock only once
// the replica has caught up: its <db>-pos is stamped before the last
// heartbeat in .lag, which the primary sends (every second) only when it
// has nothing more to stream, or nothing has arrived since this process
// last released the lock. After a primary write that costs up to a second;
// while the primary writes without pause, the wait lasts until the context
// ends (a [*HaltError], HaltTimeout). This narrows the race (a primary
// commit between its heartbeat and the grant is still exposed) but does
// not close it: use write forwarding where the primary writes little (a
// migration at deploy time, a nightly job), or run the job on the primary.
// While a replica holds the lock the primary's own writes wait for it (a
// write measured here took 336 ms under a 300 ms hold), so keep each hold
// to one job step or one migration and do no slow work under it. LiteFS waits 10 s
// for the primary to halt and then refuses the lock; the primary drops a
// halt 30 to 35 s after granting it, so writes under a hold older than
// [MaxHaltHold] (25 s) fail with [ErrHaltExpired] rather than reach a
// primary that has stopped waiting for them. Holds are serialized per
// database in the process; a nested WithHalt with the context of an
// enclosing one reuses its lock.
//
// Releasing the lock: LiteFS releases it only once every transaction open
// on this replica has ended, read transactions and open Rows of any
// handle included. Until then the primary stays halted (up to LiteFS's
// halt expiry, about 30 s), its writes wait and may fail with SQLite's
// "locking protocol" error; so keep reads on the node short while it
// forwards. When fn returns, WithHalt ends what fn left open with its
// context first: it rolls back a transaction (the *sql.Tx's Commit then
// fails with a [*HaltError], HaltReleased, and its Rollback returns nil)
// and closes write Rows (INSERT ... RETURNING; SQLite commits the
// statement, under the lock still). Read Rows and read-only transactions
// are not closed for the caller. WithHalt waits for LiteFS's release at
// most 1 s, then returns fn's result and logs a warning naming the cause
// (a transaction still open on this node); the release goes on in the
// background, and the next WithHalt on the database waits for it under
// its own context. The end of a WithForwardWrites statement or
// transaction waits the same way.
//
// A write that could not be forwarded fails with a [*HaltError] that names
// why (no primary known, the lock not granted in time, LiteFS refused it,
// the hold expired or was released, LiteFS could not send the commit) and
// matches [ErrNotPrimary], so httpbridge replays a request that meets one.
//
// # Limits
//
//   - A replica cannot write temporary tables: SQLite counts them as writes
//     and query_only refuses them too.
//   - The driver sets a commit hook, replacing one a ConnectHook set, on
//     every connection made with a ConnectHook as it opens, and on others
//     when they first run for a [Tracker]; and an authorizer while it
//     compiles a new SQL string and while a may-write string runs,
//     replacing one a ConnectHook set.
//   - A verdict is kept per SQL string and connection: a view that the
//     primary redefines later (to call pragma_optimize, say) keeps the verdict
//     its old definition had on a connection that has seen the string. A
//     connection under query_only still cannot write through it, and every
//     connection of a handle puts itself under query_only at its next
//     statement, reads included, once the handle has seen the node turn into
//     a replica: through LiteFS's event stream, or any write's role check.
//     Until then (no event stream, no write since the demotion) a connection
//     opened on the primary may run such a read with query_only off; reads
//     never look at the mount.
//   - A statement that calls a function registered by a ConnectHook reads the
//     role on every run; on a replica, a write that function makes through
//     the connection fails with SQLite's error, not a refusal.
//   - go-sqlite3 runs the DSN's own pragmas (_journal_mode, ...) when it
//     opens a connection, before the driver sees it; choose them to match the
//     cluster's database. A change of journal mode writes the database (on
//     a replica: rewritten under a temporary mount, an open that fails on
//     LiteFS), so [NewConnector] refuses a _journal_mode (or _journal) other
//     than WAL for a database in a mount: a FUSE mount, a directory with
//     .primary or .lag, or the one [WithMountDir] names. A mount that shows
//     neither file when the Connector is made (a single primary's plain
//     directory) is not caught. Other set-up pragmas (_auto_vacuum,
//     _locking_mode) are not checked: leave them unset on a mount.
//   - PRAGMA query_only belongs to the driver; a DSN with _query_only=1 is
//     left alone and stays read-only.
//   - TxOptions.Isolation is ignored, as go-sqlite3 does: SQLite
//     transactions are serializable.
//   - Write forwarding needs Linux (OFD locks), as LiteFS does.
//
// [LiteFS]: https://fly.io/docs/litefs/
package litefs
