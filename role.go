package litefs

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
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
	checks      atomic.Uint64 // mount lookups made, for tests of the read path
}

func newProber(dir string, log *slog.Logger) *prober {
	return &prober{
		dir:         dir,
		primaryPath: filepath.Join(dir, primaryFile),
		lagPath:     filepath.Join(dir, lagFile),
		log:         log,
	}
}

// check returns nil when this node may write, a *NotPrimaryError when a
// primary elsewhere is known, and an error matching ErrNoPrimary otherwise.
// It touches the mount (one or two stats), so it runs for writes only.
//
// A missing .primary is not proof of primacy under LiteFS (a replica without
// a primary has none either), so a LiteFS mount (.lag present) also needs
// .lag stamped no earlier than this check began: LiteFS stamps it with the
// current time on the primary, and with the last heartbeat or the Unix
// epoch elsewhere. A plain directory (no .lag) is a single primary.
func (p *prober) check() error {
	if p == nil {
		return nil
	}
	p.checks.Add(1)
	start := time.Now()
	exists, _, err := statMtime(p.primaryPath)
	if err != nil {
		return p.noPrimary("cannot stat "+primaryFile, err)
	}
	if exists {
		return p.replica()
	}
	exists, mtime, err := statMtime(p.lagPath)
	switch {
	case err != nil:
		return p.noPrimary("cannot stat "+lagFile, err)
	case !exists:
		return nil
	case !mtime.Before(start.Add(-clockSlack)):
		return nil
	default:
		return p.noPrimary("LiteFS reports no primary", nil)
	}
}

// replica reads .primary and returns the refusal it implies.
func (p *prober) replica() error {
	// O_NONBLOCK: a FIFO planted as .primary must not hang every write.
	f, err := os.OpenFile(p.primaryPath, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		// Gone since the stat: the primary was lost or this node took over;
		// either way, not a write to let through without a fresh look.
		return p.noPrimary(primaryFile+" vanished during the check", nil)
	}
	if err != nil {
		return p.noPrimary("cannot open "+primaryFile, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return p.noPrimary(primaryFile+" is not a regular file", err)
	}
	var buf [maxPrimaryID + 3]byte // room for CR, LF and one byte too many
	n, err := io.ReadFull(f, buf[:])
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return p.noPrimary("cannot read "+primaryFile, err)
	}
	id, ok := parsePrimaryID(buf[:n])
	if !ok {
		p.log.Warn("litefs: invalid primary ID; refusing writes", "file", p.primaryPath,
			"bytes", n, "start", strconv.Quote(string(buf[:min(n, 32)])))
		return p.noPrimary(primaryFile+" holds no valid hostname", nil)
	}
	return &NotPrimaryError{PrimaryID: id}
}

func (p *prober) noPrimary(reason string, err error) error {
	return &noPrimaryError{reason: reason, err: err, probe: p}
}

// parsePrimaryID returns the hostname in the contents of .primary, trimmed of
// surrounding ASCII white space, if it is a hostname-like token.
func parsePrimaryID(b []byte) (string, bool) {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	if len(b) == 0 || len(b) > maxPrimaryID {
		return "", false
	}
	for _, c := range b {
		if !isIDByte(c) {
			return "", false
		}
	}
	return string(b), true
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

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
	delay := time.Millisecond
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return "", context.Cause(ctx)
		case <-t.C:
		}
		err := nope.probe.check()
		if err == nil {
			return "", nil
		}
		if errors.As(err, &np) {
			return np.PrimaryID, nil
		}
		t.Reset(delay)
		delay = min(2*delay, 50*time.Millisecond)
	}
}
