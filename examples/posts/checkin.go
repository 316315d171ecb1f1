package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/litefs-sql/litefs"
)

// A background job with no request to replay: every instance, primary or
// replica, records now and then that it is alive and how many posts it
// sees. On a replica the write goes through LiteFS's write forwarding
// (litefs.WithHalt); every node then shows every node's check-in at
// /nodes.

// defaultCheckinEvery is how often an instance checks in. LiteFS holds the
// primary's own writes while a replica holds the HALT lock, so a job like
// this one writes rarely and briefly.
const defaultCheckinEvery = time.Minute

// checkinTimeout bounds one check-in, the wait for the lock included.
const checkinTimeout = 15 * time.Second

// checkin is one instance's last check-in.
type checkin struct {
	Instance string    `db:"instance"`
	Posts    int64     `db:"posts"`
	At       time.Time `db:"at"`
}

// runCheckins checks in at once and then every interval until ctx ends.
// A check-in that fails is logged and tried again at the next tick.
func runCheckins(ctx context.Context, db *sqlx.DB, instance string, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := checkIn(ctx, db, instance, time.Now); err != nil && ctx.Err() == nil {
			log.Warn("check-in failed; trying again later", "err", err, "retry_in", every)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// checkIn records this instance's check-in, forwarding the write to the
// primary when this node is a replica.
func checkIn(ctx context.Context, db *sqlx.DB, instance string, now func() time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, checkinTimeout)
	defer cancel()
	return litefs.WithHalt(ctx, db.DB, func(ctx context.Context) error {
		_, err := db.ExecContext(ctx, `INSERT INTO checkins (instance, posts, at)
			VALUES (?, (SELECT count(*) FROM posts), ?)
			ON CONFLICT (instance) DO UPDATE SET posts = excluded.posts, at = excluded.at`,
			instance, now().UTC())
		if err != nil {
			return fmt.Errorf("check in: %w", err)
		}
		return nil
	})
}

// nodes lists the instances' check-ins, newest first.
func (a *app) nodes(w http.ResponseWriter, r *http.Request) {
	var rows []checkin
	err := a.db.SelectContext(r.Context(), &rows,
		`SELECT instance, posts, at FROM checkins ORDER BY at DESC, instance LIMIT 100`)
	if err != nil {
		a.serverError(w, r, "list check-ins", err)
		return
	}
	a.render(w, r, http.StatusOK, "nodes", pageData{Title: "Nodes", Checkins: rows})
}
