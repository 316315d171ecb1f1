package integration

import (
	"context"
	"database/sql"
	"testing"
	"testing/fstest"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"github.com/uptrace/bun/migrate"
)

// bunMigrations are bun's SQL migrations; ".tx." runs each in a
// transaction.
var bunMigrations = fstest.MapFS{
	"20260101000001_posts.tx.up.sql":   {Data: []byte("CREATE TABLE posts(id INTEGER PRIMARY KEY, title TEXT NOT NULL);")},
	"20260101000001_posts.tx.down.sql": {Data: []byte("DROP TABLE posts;")},
	"20260101000002_tags.tx.up.sql":    {Data: []byte("CREATE TABLE tags(id INTEGER PRIMARY KEY, name TEXT NOT NULL);")},
	"20260101000002_tags.tx.down.sql":  {Data: []byte("DROP TABLE tags;")},
}

// bunPost is bun's model of posts.
type bunPost struct {
	bun.BaseModel `bun:"table:posts"`
	ID            int64 `bun:",pk,autoincrement"`
	Title         string
}

// TestBun runs bun's migrator (with its lock table) and an insert of a
// model through the driver, with bun's SQLite dialect over a litefs
// *sql.DB.
func TestBun(t *testing.T) {
	testTool(t, tool{
		up: func(ctx context.Context, db *sql.DB, n int) error {
			return bunMigrate(ctx, db, n)
		},
		write: func(ctx context.Context, db *sql.DB) error {
			_, err := bun.NewDB(db, sqlitedialect.New()).NewInsert().Model(&bunPost{Title: "by bun"}).Exec(ctx)
			return err
		},
		refusal: refused,
	})
}

// bunMigrate applies bun's first n migrations to db, as bun's documentation
// does: create its tables, take its lock, migrate, release the lock.
func bunMigrate(ctx context.Context, db *sql.DB, n int) (err error) {
	all := migrate.NewMigrations()
	if err := all.Discover(bunMigrations); err != nil {
		return err
	}
	ms := migrate.NewMigrations()
	for _, m := range all.Sorted()[:n] {
		ms.Add(m)
	}
	mg := migrate.NewMigrator(bun.NewDB(db, sqlitedialect.New()), ms)
	if err := mg.Init(ctx); err != nil {
		return err
	}
	if err := mg.Lock(ctx); err != nil {
		return err
	}
	defer func() {
		if uerr := mg.Unlock(ctx); err == nil {
			err = uerr
		}
	}()
	_, err = mg.Migrate(ctx)
	return err
}
