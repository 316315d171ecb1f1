package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	`CREATE TABLE IF NOT EXISTS checkins (
		instance TEXT PRIMARY KEY,
		posts    INTEGER NOT NULL,
		at       DATETIME NOT NULL
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
// reached it, and are refused until then (the driver also refuses opening a
// database the replica does not have yet). A replica waits, retrying with
// backoff, up to wait: one that started first must not crash-loop. Any
// other error ends migrate at once.
func migrate(ctx context.Context, db *sqlx.DB, wait time.Duration, log *slog.Logger) error {
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
		if !errors.Is(err, litefs.ErrNotPrimary) {
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

// applySchema runs the schema statements in order.
func applySchema(ctx context.Context, db *sqlx.DB) error {
	for _, stmt := range schema {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	return nil
}
