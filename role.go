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

	// On a directory that is not a LiteFS mount (a local file, a test),
	// dirfd is held open so that a write costs one fstat of it while it is
	// unchanged since its role was last read: creating, removing or
	// replacing .primary or .lag changes the directory's mtime. known is
	// that mtime and the role then found, or nil. LiteFS's own root keeps
	// no such mtime.
	dirfd atomic.Int64 // -1 when not held
	known atomic.Pointer[dirRole]

	// liteFS is set when dir is a FUSE mount. sawLiteFS is shared by the
	// connections of one Connector and set once any of them found one: a
	// plain directory after that means LiteFS has gone (it crashed and
	// unmounted, or has not mounted yet), and writing the file under it
	// would fork the database.
	liteFS    bool
	sawLiteFS *atomic.Bool

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
// timestamp granularity of common file systems (ext3: 1 s).
const dirMtimeSlack = 2 * time.Second

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
	if p.liteFS {
		sawLiteFS.Store(true)
	} else {
		p.dirfd.Store(int64(openDir(dir)))
	}
	return p
}

// close releases the directory held open, if any.
func (p *prober) close() {
	if p == nil {
		return
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
	if st := p.watch.trusted(); st != nil && (p.liteFS || !p.sawLiteFS.Load()) {
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
// of .primary, and a stat of .lag when .primary is absent; on a plain
// directory unchanged for a while, one fstat of it), so it runs for writes
// only.
//
// A missing .primary is not proof of primacy under LiteFS (a replica without
// a primary has none either), so a LiteFS mount (.lag present) also needs
// .lag stamped no earlier than this check began: LiteFS stamps it with the
// current time on the primary, and with the last heartbeat or the Unix
// epoch elsewhere. A plain directory (no .lag) is a single primary; a
// LiteFS mount without .lag is LiteFS gone, and refuses.
func (p *prober) checkMount() error {
	p.checks.Add(1)
	if !p.liteFS && p.sawLiteFS.Load() {
		return p.noPrimary("the LiteFS mount is gone from "+p.dir, nil)
	}
	var dirMtime int64
	if fd := p.dirfd.Load(); fd >= 0 {
		if m, ok := fdMtime(int(fd)); ok {
			if k := p.known.Load(); k != nil && m == k.mtime {
				return k.verdict()
			}
			dirMtime = m
		}
	}
	start := time.Now()
	plain, err := p.lookup(start)
	var np *NotPrimaryError
	switch {
	case dirMtime == 0 || dirMtime >= start.Add(-dirMtimeSlack).UnixNano():
		p.known.Store(nil) // changed too recently for its mtime to show the next change
	case err == nil && plain:
		p.known.Store(&dirRole{mtime: dirMtime})
	case errors.As(err, &np) && np.Err == nil:
		p.known.Store(&dirRole{mtime: dirMtime, primaryID: np.PrimaryID})
	default:
		// .lag's freshness is a timestamp, not a directory entry: a
		// directory with it is read at every write.
		p.known.Store(nil)
	}
	return err
}

// dirRole is the role a plain directory showed while its mtime was mtime:
// the single primary, or a replica of primaryID.
type dirRole struct {
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
