package httpbridge

import (
	"database/sql"
	"net/http"

	"github.com/litefs-sql/litefs"
)

// RequirePrimary returns nil when this node may write to db, else the
// refusal a write would get, which it reports to the bridge through the
// request's Tracker. A handler calls it before a side effect that must happen
// once and only on the primary (sending mail, charging a card), and on a
// refusal returns without writing a body: the bridge then sends the request
// to the primary. Errors that are not refusals (db is closed, not a litefs
// database) are returned as they are, for the handler to answer.
func RequirePrimary(r *http.Request, db *sql.DB) error {
	return litefs.CheckPrimary(r.Context(), db)
}
