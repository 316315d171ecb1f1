package httpbridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/litefs-sql/litefs"
)

// Status is the JSON body [Bridge.StatusHandler] serves: this node's state
// for Config.DB, as litefs.NodeStatus reads it (its fields appear at the top
// level: role, primary, reason, txid, lag...), whether it is fit to serve,
// and the bridge's counts since it was made.
//
//	{"ok":true,"role":"replica","primary":"node-a","roleAt":"2026-01-02T15:04:05.999Z",
//	 "txid":1234,"txidKnown":true,"txidAt":"...","lag":2000000,"lagKnown":true,"lagAt":"...",
//	 "maxLag":10000000000,"counts":{"behind":0,"loop":0,"no primary":0,"partly committed":0,
//	 "refused":12,"replay failed":0,"too large":0,"too late":0}}
//
// Durations (lag, maxLag) are in nanoseconds, times in RFC 3339. counts has
// one key per [Reason], named by Reason.String. reason is one of a fixed
// set of sentences, without the paths or OS errors litefs.NodeStatus may
// give: the status is meant for health checks, which anyone may reach.
type Status struct {
	// OK is false when the response's status is 503: Problem says why.
	OK      bool   `json:"ok"`
	Problem string `json:"problem,omitempty"`
	litefs.Status
	// MaxLag is Config.MaxLag, the lag over which OK is false.
	MaxLag time.Duration `json:"maxLag"`
	// Counts is [Bridge.Count] for each Reason, by name.
	Counts map[string]uint64 `json:"counts"`
}

// errNoDB is the problem of a status handler with nothing to report on.
var errNoDB = errors.New("httpbridge: StatusHandler needs Config.DB")

// StatusHandler returns an http.Handler serving this node's [Status] as
// JSON, for operators and health checks. It answers 200 when the node can
// serve: it is the primary, or a replica whose replication lag is at most
// Config.MaxLag, or a database outside LiteFS. It answers 503 Service
// Unavailable when no primary is known, the lag is over Config.MaxLag, or the
// state cannot be read; the body says why. Like LiteFS's /litefs/health,
// it suits Fly's HTTP health checks:
//
//	[[http_service.checks]]
//	  path = "/healthz"
//
// It reads LiteFS's files in the mount and takes no connection from
// Config.DB's pool, so it answers while the pool is exhausted. Without
// Config.DB it answers 500. Responses are not cached.
func (b *Bridge) StatusHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st, code := b.status(r.Context())
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(code)
		if r.Method != http.MethodHead {
			json.NewEncoder(w).Encode(st)
		}
	})
}

// status reads the node's state and judges it, returning the HTTP status
// that goes with it.
func (b *Bridge) status(ctx context.Context) (Status, int) {
	st := Status{MaxLag: b.cfg.MaxLag, Counts: make(map[string]uint64, numReasons-1)}
	for _, reason := range Reasons() {
		st.Counts[reason.String()] = b.Count(reason)
	}
	if b.cfg.DB == nil {
		st.Problem = errNoDB.Error()
		return st, http.StatusInternalServerError
	}
	node, err := litefs.NodeStatus(ctx, b.cfg.DB)
	if err != nil {
		st.Problem = "httpbridge: cannot read this node's state: " + err.Error()
		return st, http.StatusServiceUnavailable
	}
	node.Reason = publicReason(node.Reason)
	st.Status = node
	st.Problem = problem(node, b.cfg.MaxLag)
	st.OK = st.Problem == ""
	if !st.OK {
		return st, http.StatusServiceUnavailable
	}
	return st, http.StatusOK
}

// problem returns why a node in state st cannot serve, or "".
func problem(st litefs.Status, maxLag time.Duration) string {
	switch {
	case st.Role == litefs.RoleNoPrimary:
		return "no primary is known: " + st.Reason
	case st.LagKnown && maxLag >= 0 && st.Lag > maxLag:
		return fmt.Sprintf("replication lag %v is over %v", st.Lag, maxLag)
	}
	return ""
}

// publicReasons are the reasons litefs.NodeStatus gives for a node with no
// primary, as StatusHandler shows them: each reason that starts with one is
// cut to it. The rest (the mount's path, an OS error naming a file) stays
// in the node's logs: the status is served to anyone who can reach it.
var publicReasons = []string{
	"LiteFS reports no primary",
	"LiteFS refused the write: this node no longer takes writes",
	"the LiteFS mount is gone",
	"LiteFS is gone",
	".primary holds no valid hostname",
	"cannot read .primary",
	"cannot stat .lag",
}

// publicReason returns reason as StatusHandler shows it: one of
// publicReasons, or a fixed sentence for a reason it does not know.
func publicReason(reason string) string {
	if reason == "" {
		return ""
	}
	for _, p := range publicReasons {
		if strings.HasPrefix(reason, p) {
			return p
		}
	}
	return "the node's state could not be read"
}
