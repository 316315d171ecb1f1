package main

import (
	"context"
	"database/sql"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/litefs-sql/litefs"
	"github.com/litefs-sql/litefs/litefstest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// logNotifier returns a logger that writes to the test's output and sends
// each message to the returned channel, dropping them when it is full.
func logNotifier(t *testing.T) (*slog.Logger, <-chan string) {
	t.Helper()
	ch := make(chan string, 64)
	h := &notifyHandler{Handler: slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}), ch: ch}
	return slog.New(h), ch
}

// notifyHandler is a slog.Handler that also sends each message to ch.
type notifyHandler struct {
	slog.Handler
	ch chan<- string
}

func (h *notifyHandler) Handle(ctx context.Context, r slog.Record) error {
	select {
	case h.ch <- r.Message:
	default:
	}
	return h.Handler.Handle(ctx, r)
}

func (h *notifyHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &notifyHandler{Handler: h.Handler.WithAttrs(attrs), ch: h.ch}
}

func (h *notifyHandler) WithGroup(name string) slog.Handler {
	return &notifyHandler{Handler: h.Handler.WithGroup(name), ch: h.ch}
}

// waitMessage waits until the logger of logNotifier logs msg, failing the
// test if done (migrate's result) comes first.
func waitMessage(t *testing.T, ch <-chan string, done <-chan error, msg string) {
	t.Helper()
	timer := time.NewTimer(litefstest.DefaultWaitTimeout)
	defer timer.Stop()
	for {
		select {
		case got := <-ch:
			if got == msg {
				return
			}
		case err := <-done:
			require.FailNow(t, "migrate returned before logging "+msg, "%v", err)
		case <-timer.C:
			require.FailNow(t, "nothing logged in time", "no %q logged within %v", msg, litefstest.DefaultWaitTimeout)
		}
	}
}

// openTestDB opens the database at path with the app's DSN; the cleanup
// closes it before the test's LiteFS nodes stop, so that they can unmount.
func openTestDB(t *testing.T, path string) *sqlx.DB {
	t.Helper()
	db, err := sqlx.Open(litefs.DriverName, config{DatabasePath: path}.DSN())
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

// migrateAsync runs migrate in a goroutine and returns its result channel.
func migrateAsync(t *testing.T, db *sqlx.DB, path string, wait time.Duration, log *slog.Logger) <-chan error {
	done := make(chan error, 1)
	go func() { done <- migrate(t.Context(), db, wait, log) }()
	return done
}

// receive returns migrate's result, failing the test if it takes too long.
func receive(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(litefstest.DefaultWaitTimeout):
		require.FailNow(t, "migrate did not return")
		return nil
	}
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	t.Run("primary creates the schema, twice", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "posts.db")
		db := openTestDB(t, path)
		log, _ := logNotifier(t)
		for range 2 {
			require.NoError(t, migrate(t.Context(), db, time.Second, log))
		}
	})

	// A replica whose primary has not created the table yet: migrate waits,
	// and returns once the table has arrived (here written behind the
	// driver's back, as LiteFS would).
	t.Run("replica waits for the primary", func(t *testing.T) {
		t.Parallel()
		m := litefstest.NewMount(t)
		m.SetReplica("node-a")
		db := openTestDB(t, m.DBPath())
		log, msgs := logNotifier(t)
		done := migrateAsync(t, db, m.DBPath(), time.Minute, log)
		waitMessage(t, msgs, done, "waiting for the primary to create the schema")

		raw, err := sql.Open("sqlite3", m.DSN())
		require.NoError(t, err)
		defer raw.Close()
		for _, stmt := range schema {
			_, err := raw.ExecContext(t.Context(), stmt)
			require.NoError(t, err)
		}
		require.NoError(t, receive(t, done), "migrate")
	})

	t.Run("replica gives up after the wait", func(t *testing.T) {
		t.Parallel()
		m := litefstest.NewMount(t)
		m.SetReplica("node-a")
		db := openTestDB(t, m.DBPath())
		log, _ := logNotifier(t)
		err := receive(t, migrateAsync(t, db, m.DBPath(), 300*time.Millisecond, log))
		require.ErrorIs(t, err, errSchemaWait, "migrate")
		assert.ErrorContains(t, err, `writes go to "node-a"`, "the error does not tell the last refusal")
	})

	t.Run("other errors end at once", func(t *testing.T) {
		t.Parallel()
		path := t.TempDir() // a directory: SQLite cannot open it
		db := openTestDB(t, path)
		log, _ := logNotifier(t)
		start := time.Now()
		err := receive(t, migrateAsync(t, db, path, time.Hour, log))
		require.Error(t, err, "migrate: want an open error")
		require.NotErrorIs(t, err, errSchemaWait, "migrate: want an open error")
		require.NotErrorIs(t, err, litefs.ErrNotPrimary, "migrate: want an open error")
		assert.LessOrEqual(t, time.Since(start), schemaRetryMin, "migrate took long to fail: it retried")
	})
}

// TestMigrateRealReplica starts the app's migration on a real LiteFS replica
// before the primary has even created the database file, which a replica
// cannot create: migrate waits until the primary's schema arrives.
func TestMigrateRealReplica(t *testing.T) {
	t.Parallel()
	c := litefstest.StartCluster(t, 2)
	replicaPath := filepath.Join(c.Replicas()[0].MountDir(), "posts.db")
	replica := openTestDB(t, replicaPath)
	log, msgs := logNotifier(t)
	done := migrateAsync(t, replica, replicaPath, time.Minute, log)
	waitMessage(t, msgs, done, "waiting for the primary to create the schema")

	primaryPath := filepath.Join(c.Primary().MountDir(), "posts.db")
	primary := openTestDB(t, primaryPath)
	require.NoError(t, migrate(t.Context(), primary, time.Second, log), "migrate on the primary")
	require.NoError(t, receive(t, done), "migrate on the replica")
	// The replica reads the schema it waited for; it cannot write to it.
	var n int
	require.NoError(t, replica.GetContext(t.Context(), &n, `SELECT count(*) FROM posts`))
	_, err := postStore{db: replica}.Create(t.Context(), "t", "", time.Now())
	var np *litefs.NotPrimaryError
	if assert.ErrorAs(t, err, &np, "insert on the replica") {
		assert.Equal(t, c.Primary().Hostname(), np.PrimaryID, "the refusal names the primary")
	}
}
