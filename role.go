package litefs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/litefs-sql/litefs/internal/dirwatch"
)

// Names of the files LiteFS shows in its mount directory.
const (
	primaryFile = ".primary" // on a connected replica: the primary's hostname
	lagFile     = ".lag"     // always, under LiteFS; stamped with the current time on the primary
)

const (
	// maxPrimaryID is the longest primary ID accepted (a hostname's limit).
	maxPrimaryID = 255
	// clockSlack absorbs a small backward step of the wall clock between
	// starting a check and LiteFS stamping .lag on the primary.
	clockSlack = 10 * time.Millisecond
)

// prober reads this node's role from a mount directory. It is immutable and
// safe for concurrent use; a nil prober (in-memory database) is always primary.
type prober struct {
	dir         string
	primaryPath string
	lagPath     string
	log         *slog.Logger

	// On a plain directory (not a LiteFS mount: a local file, a test), a
	// prober that lives as long as a connection (remember) keeps in known
	// the role it last read, while nothing says .primary or .lag changed:
	// dirw's generation (an inotify watch shared by the process, see
	// internal/dirwatch), or where inotify is unavailable, the mtime of the
	// directory (creating, removing or replacing an entry changes it),
	// read through its path while it is held open as dirfd. LiteFS's own
	// root has neither: its probers read the files; nor has a directory on
	// a file system that is not local (dirwatch.ErrNotLocal).
	dirw  atomic.Pointer[dirwatch.Watch] // nil when not watched
	dirfd atomic.Int64                   // -1 when not held
	known atomic.Pointer[dirRole]

	// afterLookup, when set by a test, runs between reading the files and
	// caching what they said, to race a change against the read.
	afterLookup func()

	// liteFS is set when dir is a FUSE mount. sawLiteFS is shared by the
	// connections of one Connector and set once any of them found one: a
	// plain directory after that means LiteFS has gone (it crashed and
	// unmounted, or has not mounted yet), and writing the file under it
	// would fork the database.
	liteFS    bool
	sawLiteFS *atomic.Bool

	// On a plain directory, ident is the directory dir named when the
	// prober was made (identOK: it could be stat'ed). moved is set, for
	// good, once dir names another directory: something was mounted over
	// it (LiteFS mounting late) or unmounted from under it (umount -l), so
	// the connection's database file is one the path no longer shows, and
	// it must not be written. Mounts make no inotify event: mountSeen is
	// the dirwatch.MountGen under which dir was last found to be ident.
	ident     dirState
	identOK   bool
	moved     atomic.Bool
	mountSeen atomic.Uint64

	// watch is the Connector's shared source of the role (watcher.go);
	// while it trusts LiteFS's event stream, check reads no file. nil for
	// a prober of its own (a status look, a watcher's checks).
	watch *watcher

	// epoch is the Connector's record of demotions, which this prober's
	// checks feed; nil for a prober of its own.
	epoch *roleEpoch

	checks  atomic.Uint64 // role checks, for tests of the read path
	lookups atomic.Uint64 // checks that looked at .primary and .lag
}

// dirMtimeSlack is how long a directory must have been unchanged before its
// mtime is trusted to change with the next entry: longer than the coarsest
// timestamp granularity of common file systems (ext3: 1 s). Only the
// fallback without inotify needs it.
const dirMtimeSlack = 2 * time.Second

// newProber returns a prober of dir that reads the files at every check.
func newProber(dir string, log *slog.Logger, sawLiteFS *atomic.Bool) *prober {
	p := &prober{
		dir:         dir,
		primaryPath: filepath.Join(dir, primaryFile),
		lagPath:     filepath.Join(dir, lagFile),
		log:         log,
		liteFS:      isFUSE(dir),
		sawLiteFS:   sawLiteFS,
	}
	p.dirfd.Store(-1)
	p.ident, p.identOK = statDir(dir)
	if p.liteFS {
		sawLiteFS.Store(true)
	} else {
		p.mountSeen.Store(dirwatch.MountGen())
	}
	return p
}

// remember lets p, which lives as long as a connection, keep a plain
// directory's role between writes, until close. A one-off check does
// without: starting a watch costs more than reading the files once.
func (p *prober) remember() { p.rememberWith(dirwatch.Acquire) }

// rememberWith is remember with the watch's source, which tests replace to
// make inotify unavailable.
func (p *prober) rememberWith(acquire func(dir string) (*dirwatch.Watch, error)) {
	if p == nil || p.liteFS {
		return
	}
	w, err := acquire(p.dir)
	if err == nil {
		p.dirw.Store(w)
		// A mount since newProber, before the watch's process-wide
		// instance followed the mount table, is seen here.
		p.mountSeen.Store(dirwatch.MountGen())
		p.lookAgain()
		return
	}
	if errors.Is(err, dirwatch.ErrNotLocal) {
		// Another host may change the files unseen, and the mtime
		// through a network file system's attribute cache may be stale:
		// every write reads the files.
		p.log.Debug("litefs: the database's directory is not on a local file system; reading the role at every write",
			"dir", p.dir, "err", err)
		return
	}
	p.log.Debug("litefs: no inotify watch of the database's directory; checking its mtime instead",
		"dir", p.dir, "err", err)
	p.dirfd.Store(int64(openDir(p.dir)))
}

// close releases the watch or the directory held open, if any; later checks
// read the files.
func (p *prober) close() {
	if p == nil {
		return
	}
	if w := p.dirw.Swap(nil); w != nil {
		w.Release()
	}
	if fd := p.dirfd.Swap(-1); fd >= 0 {
		closeFD(int(fd))
	}
}

// check returns nil when this node may write, a *NotPrimaryError when a
// primary elsewhere is known, and an error matching ErrNoPrimary otherwise.
// While the Connector's watcher trusts LiteFS's event stream, the answer
// comes from memory; otherwise check reads the mount ([prober.checkMount]).
func (p *prober) check() error {
	if p == nil {
		return nil
	}
	var err error
	if st := p.watch.trusted(); st != nil && !p.remounted() && (p.liteFS || !p.sawLiteFS.Load()) {
		p.checks.Add(1)
		err = st.verdict()
	} else {
		err = p.checkMount()
	}
	p.epoch.saw(err != nil)
	return err
}

// roleEpoch tells the connections of a Connector that the node has been
// seen to turn into a replica, so that each puts itself under query_only at
// its next statement, reads included, with no look at the mount: a verdict
// cached as a read (a view the primary has since redefined) then cannot
// write either. Its zero value works; a nil roleEpoch records nothing.
//
// Invariant: gen grows by one each time a check finds this node refusing
// writes after the last check found it writable (or at the first check).
type roleEpoch struct {
	replica atomic.Bool
	gen     atomic.Uint64
}

// saw records the outcome of a role check: replica when writes are refused.
func (e *roleEpoch) saw(replica bool) {
	switch {
	case e == nil:
	case !replica:
		e.replica.Store(false)
	case e.replica.CompareAndSwap(false, true):
		e.gen.Add(1)
	}
}

// current returns the generation, 0 for a nil roleEpoch.
func (e *roleEpoch) current() uint64 {
	if e == nil {
		return 0
	}
	return e.gen.Load()
}

// recheck is check from the mount files alone, for a write that failed
// with failure in a way a replica's writes fail: if the event stream said
// otherwise, the stream is dropped until it agrees with the mount again.
// LiteFS denying the write outright (EACCES: "read only replica") is a
// refusal even while the files still say primary: LiteFS stops taking
// writes as it gives up the lease, before the files change.
func (p *prober) recheck(failure error) error {
	if p == nil {
		return nil
	}
	err := p.checkMount()
	if err == nil && p.liteFS && liteFSDenied(failure) {
		err = p.noPrimary("LiteFS refused the write: this node no longer takes writes", nil)
	}
	p.epoch.saw(err != nil)
	if st := p.watch.trusted(); st != nil && (st.verdict() == nil) != (err == nil) {
		p.watch.distrust(fmt.Sprintf("a write failed as on a replica; the mount says %s", mountSays(err)))
	}
	return err
}

// checkMount is check from the mount files. It touches the mount (an open
// of .primary, and a stat of .lag when .primary is absent), so it runs for
// writes only; on a plain directory whose role is remembered, it makes no
// system call until the role files change (or one stat of the directory,
// without inotify).
//
// A missing .primary is not proof of primacy under LiteFS (a replica without
// a primary has none either), so a LiteFS mount (.lag present) also needs
// .lag stamped no earlier than this check began: LiteFS stamps it with the
// current time on the primary, and with the last heartbeat or the Unix
// epoch elsewhere. A plain directory (no .lag) is a single primary; a
// LiteFS mount without .lag is LiteFS gone, and refuses.
func (p *prober) checkMount() error {
	p.checks.Add(1)
	if p.remounted() {
		return p.checkMoved()
	}
	if !p.liteFS && p.sawLiteFS.Load() {
		return p.noPrimary("the LiteFS mount is gone from "+p.dir, nil)
	}
	if w := p.dirw.Load(); w != nil {
		return p.checkWatched(w)
	}
	return p.checkByMtime()
}

// checkWatched is checkMount on a watched directory: the remembered role
// while the watch's generation is the one it was read under. The
// generation is loaded before the files are read, so a change during the
// read raises it past the one stored, and the next write reads again. A
// dead watch stores nothing: every write reads the files.
func (p *prober) checkWatched(w *dirwatch.Watch) error {
	gen := w.Gen()
	if k := p.known.Load(); k != nil && k.gen == gen && gen != dirwatch.Dead {
		return k.verdict()
	}
	if gen == dirwatch.Dead {
		// The directory may have been removed or renamed away, and
		// another made at its path: the open database is not there.
		if p.lookAgain(); p.moved.Load() {
			return p.checkMoved()
		}
	}
	plain, err := p.lookup(time.Now())
	if p.afterLookup != nil {
		p.afterLookup()
	}
	k := remembered(plain, err)
	if k != nil {
		if gen == dirwatch.Dead {
			k = nil
		} else {
			k.gen = gen
		}
	}
	p.known.Store(k)
	return err
}

// checkByMtime is checkMount without inotify: the remembered role while the
// directory's mtime is the one it was read under, once that mtime is older
// than dirMtimeSlack (a change within the timestamp's granularity may not
// move it).
//
// The mtime is read through the path, not the directory held open: a stat
// of the path also shows a mount over it or an unmount under it.
func (p *prober) checkByMtime() error {
	var dirMtime int64
	fd := p.dirfd.Load()
	if fd < 0 && !p.liteFS {
		// Not remembered (not a local file system, or inotify and the
		// mount table's watch unavailable): nothing else would see the
		// path lead elsewhere, and the files are read anyway.
		if p.lookAgain(); p.moved.Load() {
			return p.checkMoved()
		}
	}
	if fd >= 0 {
		st, ok := statDir(p.dir)
		if !ok && p.identOK {
			// Moved away or removed: the open file is not at the path.
			p.sawMoved()
			return p.checkMoved()
		}
		if ok {
			if !st.same(p.ident) && p.identOK {
				p.sawMoved()
				return p.checkMoved()
			}
			if k := p.known.Load(); k != nil && st.mtime == k.mtime {
				return k.verdict()
			}
			dirMtime = st.mtime
		}
	}
	start := time.Now()
	plain, err := p.lookup(start)
	k := remembered(plain, err)
	if dirMtime == 0 || dirMtime >= start.Add(-dirMtimeSlack).UnixNano() {
		k = nil // changed too recently for its mtime to show the next change
	}
	if k != nil {
		k.mtime = dirMtime
	}
	p.known.Store(k)
	return err
}

// remounted reports whether dir, a plain directory, now names another
// directory than the one p was made for. It looks again only after the
// mount table changed (dirwatch.MountGen); otherwise it costs two atomic
// loads. A LiteFS mount's prober is left to LiteFS's own rules.
func (p *prober) remounted() bool {
	if p.moved.Load() {
		return true // also on a LiteFS mount: set by openedIn
	}
	if p.liteFS {
		return false
	}
	if g := dirwatch.MountGen(); g != p.mountSeen.Load() {
		p.mountSeen.Store(g) // before the look: a later change raises it again
		p.lookAgain()
	}
	return p.moved.Load()
}

// openedIn records that dir, as stat'ed before the connection's database
// was opened, was before: if p's directory is dir and differs from it now,
// the directory changed while SQLite opened the file, which may be in
// either (LiteFS mounting over a plain directory, say), and the connection
// refuses its writes, whatever the directory is now.
func (p *prober) openedIn(dir string, before dirState, ok bool) {
	if p != nil && ok && p.identOK && p.dir == dir && !before.same(p.ident) {
		p.sawMoved()
	}
}

// movedNow is remounted, and for a dead watch (its directory removed or
// renamed) a look at the path: for a commit or the pool, where a write's
// own check may not have run since.
func (p *prober) movedNow() bool {
	if p == nil {
		return false
	}
	if p.remounted() {
		return true
	}
	if w := p.dirw.Load(); w != nil && w.Gen() == dirwatch.Dead {
		p.lookAgain()
	}
	return p.moved.Load()
}

// lookAgain sets moved if dir names another directory than ident.
func (p *prober) lookAgain() {
	if st, ok := statDir(p.dir); p.identOK && (!ok || !st.same(p.ident)) {
		p.sawMoved()
	}
}

// sawMoved records for good that dir names another directory. If it is a
// FUSE mount now, LiteFS has mounted over it: the Connector's other plain
// directory connections refuse too, and new ones follow LiteFS's rules.
func (p *prober) sawMoved() {
	if p.moved.Swap(true) {
		return
	}
	fuse := isFUSE(p.dir)
	if fuse {
		p.sawLiteFS.Store(true)
	}
	p.log.Warn("litefs: the database's directory was mounted over or unmounted since the connection opened; refusing its writes",
		"dir", p.dir, "fuse", fuse)
}

// checkMoved is checkMount once dir names another directory: the files at
// the path are read, so that a refusal names the primary they name, but a
// write is refused whatever they say: it would go to the file the path no
// longer shows.
func (p *prober) checkMoved() error {
	if _, err := p.lookup(time.Now()); err != nil {
		return err
	}
	return p.noPrimary(p.dir+" is another directory than the one this connection opened its database in "+
		"(mounted over, or unmounted); reopen the connection", nil)
}

// remembered returns the role lookup found, if it may be remembered: the
// single primary of a plain directory, or a replica of a valid primary ID.
// .lag's freshness is a timestamp, not a directory entry, so a directory
// with it is read at every write.
func remembered(plain bool, err error) *dirRole {
	var np *NotPrimaryError
	switch {
	case err == nil && plain:
		return &dirRole{}
	case errors.As(err, &np) && np.Err == nil:
		return &dirRole{primaryID: np.PrimaryID}
	}
	return nil
}

// dirRole is the role a plain directory showed under generation gen of its
// watch (or, without one, while its mtime was mtime): the single primary,
// or a replica of primaryID.
type dirRole struct {
	gen       uint64
	mtime     int64
	primaryID string // "" for primary
}

func (k *dirRole) verdict() error {
	if k.primaryID == "" {
		return nil
	}
	return &NotPrimaryError{PrimaryID: k.primaryID}
}

// lookup reads the role from .primary and .lag; plain reports that neither
// exists.
func (p *prober) lookup(start time.Time) (plain bool, err error) {
	p.lookups.Add(1)
	var buf [maxPrimaryFile + 1]byte // one byte too many shows an over-long file
	n, exists, err := readSmall(p.primaryPath, buf[:])
	if err != nil {
		return false, p.noPrimary("cannot read "+primaryFile, err)
	}
	if exists {
		id, ok := parsePrimaryID(buf[:n])
		if !ok {
			p.log.Warn("litefs: invalid primary ID; refusing writes", "file", p.primaryPath,
				"bytes", n, "start", strconv.Quote(string(buf[:min(n, 32)])))
			return false, p.noPrimary(primaryFile+" holds no valid hostname", nil)
		}
		return false, &NotPrimaryError{PrimaryID: id}
	}
	exists, mtime, err := statMtime(p.lagPath)
	switch {
	case err != nil:
		return false, p.noPrimary("cannot stat "+lagFile, err)
	case !exists && p.liteFS:
		return false, p.noPrimary("LiteFS is gone from "+p.dir, nil)
	case !exists:
		return true, nil
	}
	// The primary stamps .lag while the stat runs; a stamp from after the
	// stat came from another clock (a replica's last heartbeat, on the
	// primary's clock), so it proves nothing either.
	end := time.Now()
	if !mtime.Before(start.Add(-clockSlack)) && !mtime.After(end.Add(clockSlack)) {
		return false, nil
	}
	return false, p.noPrimary("LiteFS reports no primary", nil)
}

func (p *prober) noPrimary(reason string, err error) error {
	return &noPrimaryError{reason: reason, err: err, probe: p}
}

// maxPrimaryFile is the longest .primary accepted: an ID of maxPrimaryID
// bytes and CR LF. Longer content is refused whatever it holds, so that no
// padding can bring a truncated read under the ID's limit.
const maxPrimaryFile = maxPrimaryID + 2

// parsePrimaryID returns the hostname in the contents of .primary, trimmed of
// surrounding ASCII white space, if it is a valid primary ID and the
// content is at most maxPrimaryFile bytes.
func parsePrimaryID(b []byte) (string, bool) {
	if len(b) > maxPrimaryFile {
		return "", false
	}
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	if !ValidPrimaryID(string(b)) {
		return "", false
	}
	return string(b), true
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// ValidPrimaryID reports whether id is what the driver accepts as a primary
// ID: 1 to 255 letters, digits, '-', '_' and '.', a token safe to put in a
// header field or a host name.
func ValidPrimaryID(id string) bool {
	if id == "" || len(id) > maxPrimaryID {
		return false
	}
	for i := range len(id) {
		if !isIDByte(id[i]) {
			return false
		}
	}
	return true
}

func isIDByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '_' || c == '.'
}

// WaitPrimary waits until the node that produced refusal knows where writes
// go. It returns the primary's ID when a primary elsewhere is known, "" when
// this node has become the primary, and an error when ctx ends first or
// refusal is not an ErrNoPrimary refusal from this driver. It polls the mount
// with backoff (1 ms doubling to 50 ms).
func WaitPrimary(ctx context.Context, refusal error) (string, error) {
	var np *NotPrimaryError
	if errors.As(refusal, &np) && np.PrimaryID != "" {
		return np.PrimaryID, nil
	}
	var nope *noPrimaryError
	if !errors.As(refusal, &nope) || nope.probe == nil {
		return "", errors.New("litefs: WaitPrimary needs a refusal returned by the litefs driver")
	}
	var primary string
	err := poll(ctx, 50*time.Millisecond, func() (bool, error) {
		err := nope.probe.check()
		if err == nil {
			return true, nil // this node is the primary now
		}
		if errors.As(err, &np) {
			primary = np.PrimaryID
			return true, nil
		}
		return false, nil
	})
	return primary, err
}

var errNotRegular = errors.New("not a regular file")

// liteFSDenied reports whether err is LiteFS refusing a write on a node that
// does not hold the lease: EACCES on the WAL (SQLITE_IOERR_*), or on the
// journal's directory (SQLITE_READONLY_DIRECTORY).
func liteFSDenied(err error) bool {
	var se sqlite3.Error
	if !errors.As(err, &se) {
		return false
	}
	return se.Code == sqlite3.ErrIoErr && se.SystemErrno == syscall.EACCES ||
		se.ExtendedCode == sqlite3.ErrReadonly.Extend(6)
}

// liteFSMayHaveGone reports whether a write that failed with code may have
// met LiteFS stopping or demoting the node (seen here while LiteFS shut down
// under a writer: SQLITE_PROTOCOL, SQLITE_BUSY, then SQLITE_IOERR), so that
// the driver rechecks the role and refuses rather than pass on the error.
func liteFSMayHaveGone(code sqlite3.ErrNo) bool {
	switch code {
	case sqlite3.ErrIoErr, sqlite3.ErrBusy, sqlite3.ErrProtocol, sqlite3.ErrCantOpen, sqlite3.ErrReadonly:
		return true
	}
	return false
}

// dirState is what a stat of a directory's path shows: which directory it
// names (device and inode) and its mtime in ns.
type dirState struct {
	dev, ino uint64
	mtime    int64
}

// same reports whether s and o name one directory.
func (s dirState) same(o dirState) bool { return s.dev == o.dev && s.ino == o.ino }
