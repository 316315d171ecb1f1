package litefs

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Role is what a node is to a database, as [NodeStatus] reports it.
type Role uint8

const (
	// RoleNotLiteFS: the database is not on a LiteFS mount (a local file, or
	// in memory); this node is its only writer.
	RoleNotLiteFS Role = iota + 1
	// RolePrimary: this node holds LiteFS's lease and takes writes.
	RolePrimary
	// RoleReplica: another node, Status.PrimaryID, is the primary.
	RoleReplica
	// RoleNoPrimary: LiteFS knows no primary (disconnected, electing), or
	// the role could not be read; writes are refused.
	RoleNoPrimary
)

// String returns "not-litefs", "primary", "replica" or "no-primary".
func (r Role) String() string {
	switch r {
	case RoleNotLiteFS:
		return "not-litefs"
	case RolePrimary:
		return "primary"
	case RoleReplica:
		return "replica"
	case RoleNoPrimary:
		return "no-primary"
	}
	return "Role(" + strconv.Itoa(int(r)) + ")"
}

// MarshalText returns r.String(), so that JSON shows the role by name.
func (r Role) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// Status is this node's state for one database at a glance, as
// [NodeStatus] reads it.
type Status struct {
	Role      Role      `json:"role"`
	PrimaryID string    `json:"primary,omitempty"` // the primary, when Role is RoleReplica
	Reason    string    `json:"reason,omitempty"`  // why, when Role is RoleNoPrimary
	RoleAt    time.Time `json:"roleAt"`            // when the role was read

	TXID      TXID      `json:"txid"`      // the last transaction applied here, when TXIDKnown
	TXIDKnown bool      `json:"txidKnown"` // false outside LiteFS, or when <db>-pos could not be read
	TXIDAt    time.Time `json:"txidAt"`

	// Lag is the replication lag LiteFS reports in .lag: the time since the
	// last heartbeat from the primary (0 on the primary).
	Lag      time.Duration `json:"lag"`
	LagKnown bool          `json:"lagKnown"` // false outside LiteFS, or when .lag could not be read
	LagAt    time.Time     `json:"lagAt"`

	// Source says where the role and TXID came from: SourceEvents or
	// SourceMount.
	Source string `json:"source"`
}

// Values of Status.Source.
const (
	// SourceEvents: LiteFS's event stream, which the driver follows and
	// trusts while it agrees with the mount files (see [WithLiteFSAPI]).
	// The TXID is then the last one the stream reported, which may trail
	// a commit that has just returned by the stream's delivery time.
	SourceEvents = "events"
	// SourceMount: the files in the mount directory, read for this call.
	SourceMount = "mount"
)

// NodeStatus reports this node's state for db's database: its role, the TXID
// it has reached and the replication lag LiteFS reports. db must have been
// opened with the litefs driver. It never touches the database and takes no
// connection from db's pool, so a health check can call it while the pool is
// exhausted. While the driver follows LiteFS's event stream, the role and
// TXID come from memory and it reads one file (.lag); otherwise it reads
// .primary, .lag and <db>-pos.
func NodeStatus(ctx context.Context, db *sql.DB) (Status, error) {
	ctr, err := connectorOf(db)
	if err != nil {
		return Status{}, err
	}
	if err := ctx.Err(); err != nil {
		return Status{}, err
	}
	return ctr.status(), nil
}

// status reads the node's state from the shared source, or the mount files.
func (c *Connector) status() Status {
	now := time.Now()
	st := Status{Role: RoleNotLiteFS, RoleAt: now, TXIDAt: now, LagAt: now, Source: SourceMount}
	w := c.watcher()
	if w == nil {
		return st
	}
	if role := w.trusted(); role != nil && w.txLive.Load() {
		st.Source = SourceEvents
		st.Role, st.PrimaryID = RolePrimary, ""
		if !role.primary {
			st.Role, st.PrimaryID = RoleReplica, role.primaryID
		}
		st.TXID, st.TXIDKnown = TXID(w.txid.Load()), w.pos != nil
	} else {
		c.mountStatus(w, &st)
	}
	var buf [32]byte
	if n, exists, err := readSmall(w.probe.lagPath, buf[:]); err == nil && exists {
		if lag, ok := parseLag(buf[:n]); ok {
			st.Lag, st.LagKnown = lag, true
		}
	}
	st.LagAt = time.Now()
	return st
}

// mountStatus fills st's role and TXID from the mount files.
func (c *Connector) mountStatus(w *watcher, st *Status) {
	// A prober of its own: whether the directory is a LiteFS mount is
	// decided afresh, in case LiteFS mounted after the watcher was made.
	p := newProber(w.probe.dir, c.cfg.log, &c.sawLiteFS)
	defer p.close()
	err := p.checkMount()
	st.RoleAt = time.Now()
	var np *NotPrimaryError
	var nope *noPrimaryError
	switch {
	case err == nil && !p.liteFS:
		st.Role = RoleNotLiteFS
	case err == nil:
		st.Role = RolePrimary
	case errors.As(err, &np):
		st.Role, st.PrimaryID = RoleReplica, np.PrimaryID
	case errors.As(err, &nope):
		st.Role, st.Reason = RoleNoPrimary, nope.reason
	default:
		st.Role, st.Reason = RoleNoPrimary, err.Error()
	}
	if id, err := w.pos.read(); err == nil {
		st.TXID, st.TXIDKnown = id, true
		w.advance(id)
	}
	st.TXIDAt = time.Now()
}

// parseLag parses .lag: a sign and milliseconds ("+000000000\n").
func parseLag(b []byte) (time.Duration, bool) {
	s := strings.TrimSpace(string(b))
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil || ms < 0 {
		return 0, false
	}
	return time.Duration(ms) * time.Millisecond, true
}

// ErrTooManyWaiters is returned by [WaitTXID] when more callers are already
// waiting on this node than it allows; middleware should send the request to
// the primary at once rather than queue it.
var ErrTooManyWaiters = errors.New("litefs: too many waiters for a transaction")
