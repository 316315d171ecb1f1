package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/litefs-sql/litefs"
)

// schema creates the tables. Every statement must be a no-op when its
// object exists: each instance runs them all at start-up, and on a replica
// the driver lets a statement through only if it writes nothing.
var schema = []string{
	`CREATE TABLE IF NOT EXISTS posts (
		id         INTEGER PRIMARY KEY,
		title      TEXT NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
		body       TEXT NOT NULL CHECK (length(body) <= 10000),
		created_at DATETIME NOT NULL
	)`,
}

// Bounds of the pause between two attempts at the schema on a replica.
const (
	schemaRetryMin = 100 * time.Millisecond
	schemaRetryMax = 5 * time.Second
)

// errSchemaWait ends a replica's wait for the schema.
var errSchemaWait = errors.New("the primary did not create the schema in time")

// migrate creates the schema. The primary creates it; a replica cannot
// write, so there the statements succeed only once the primary's schema has
// reached it. Until then a replica waits, retrying with backoff, up to wait:
// a replica that started first must not crash-loop. On a replica every error
// is retried (the database file itself may not have arrived yet); on the
// primary an error ends migrate at once.
func migrate(ctx context.Context, db *sqlx.DB, path string, wait time.Duration, log *slog.Logger) error {
	ctx, cancel := context.WithTimeoutCause(ctx, wait, errSchemaWait)
	defer cancel()
	start := time.Now()
	delay := schemaRetryMin
	for attempt := 1; ; attempt++ {
		err := applySchema(ctx, db)
		if err == nil {
			if attempt > 1 {
				log.Info("schema ready", "waited", time.Since(start).Round(time.Millisecond))
			}
			return nil
		}
		if !errors.Is(err, litefs.ErrNotPrimary) && !onReplica(ctx, path) {
			return fmt.Errorf("create schema: %w", err)
		}
		log.Info("waiting for the primary to create the schema", "attempt", attempt, "retry_in", delay, "reason", err)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("create schema: %w after %v (last error: %v)",
				context.Cause(ctx), time.Since(start).Round(time.Millisecond), err)
		case <-t.C:
		}
		delay = min(2*delay, schemaRetryMax)
	}
}

// applySchema runs the schema statements in order, on one connection.
//
// It reads the schema first. A connection caches the schema, and SQLite
// checks that cache only when a statement starts a transaction; on a
// replica, query_only refuses "CREATE TABLE IF NOT EXISTS" before that
// check, so a connection that saw the database before the primary's
// schema arrived would be refused forever.
func applySchema(ctx context.Context, db *sqlx.DB) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	var n int
	if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema`).Scan(&n); err != nil {
		return err
	}
	for _, stmt := range schema {
		if _, err := conn.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	return nil
}

// onReplica reports whether the driver would refuse writes to the database
// at path: this node is a replica, or knows no primary. It needs no open
// database, since a replica that started before the primary created the
// database cannot open it: SQLite fails to create the file in the replica's
// read-only mount before the driver can tell a refusal apart.
func onReplica(ctx context.Context, path string) bool {
	c, err := litefs.NewConnector(":memory:", litefs.WithMountDir(filepath.Dir(path)))
	if err != nil {
		return false
	}
	db := sql.OpenDB(c)
	defer db.Close()
	return errors.Is(litefs.CheckPrimary(ctx, db), litefs.ErrNotPrimary)
}
