package main

import (
	"database/sql"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/litefs-sql/litefs"
)

// health describes this instance: it is served outside the bridge, since a
// health check must never be replayed to another machine. What went wrong
// is logged, not shown: a database error names tables and paths, and the
// endpoint answers anyone. (newServer mounts it as one handler, so that a
// richer status handler can replace it.)
func (a *app) health(w http.ResponseWriter, r *http.Request) {
	h := struct {
		Status   string `json:"status"`
		Instance string `json:"instance"`
		Role     string `json:"role"`              // primary or replica
		Primary  string `json:"primary,omitempty"` // on a replica: the primary, if known
		TXID     string `json:"txid,omitempty"`    // under LiteFS: the last transaction applied here
		Error    string `json:"error,omitempty"`
	}{Status: "ok", Instance: a.cfg.InstanceID, Role: "primary"}
	status := http.StatusOK
	fail := func(what string, err error) {
		a.log.ErrorContext(r.Context(), "health check failed", "check", what, "err", err)
		h.Status, h.Error, status = "error", "the "+what+" check failed; see the log", http.StatusServiceUnavailable
	}

	switch err := litefs.CheckPrimary(r.Context(), a.db.DB); {
	case err == nil:
	case errors.Is(err, litefs.ErrNotPrimary):
		h.Role = "replica"
		if np, ok := errors.AsType[*litefs.NotPrimaryError](err); ok {
			h.Primary = np.PrimaryID
		}
	default:
		fail("role", err)
	}
	if status == http.StatusOK {
		// One indexed read: the database opens and the schema is there.
		var one int
		err := a.db.QueryRowContext(r.Context(), `SELECT 1 FROM posts LIMIT 1`).Scan(&one)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			fail("database", err)
		}
	}
	if id, err := litefs.CurrentTXID(r.Context(), a.db.DB); err == nil {
		h.TXID = id.String()
	}

	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(h)
}
