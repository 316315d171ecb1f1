package integration

import (
	"context"
	"database/sql"
	"testing"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	"entgo.io/ent/dialect/sql/schema"
	"entgo.io/ent/schema/field"
)

// entTables are ent's schema of posts and tags, written by hand as ent's
// code generator would write it (no generated client is needed to
// migrate).
func entTables() []*schema.Table {
	table := func(name, col string) *schema.Table {
		id := &schema.Column{Name: "id", Type: field.TypeInt, Increment: true}
		return &schema.Table{
			Name:       name,
			Columns:    []*schema.Column{id, {Name: col, Type: field.TypeString}},
			PrimaryKey: []*schema.Column{id},
		}
	}
	return []*schema.Table{table("posts", "title"), table("tags", "name")}
}

// TestEnt runs ent's schema migration (Atlas, ent's default engine) and an
// insert through ent's SQL driver over a litefs *sql.DB. ent refuses a
// SQLite connection without foreign keys: hence _fk=1.
func TestEnt(t *testing.T) {
	testTool(t, tool{
		params: "&_fk=1",
		up: func(ctx context.Context, db *sql.DB, n int) error {
			m, err := schema.NewMigrate(entsql.OpenDB(dialect.SQLite, db))
			if err != nil {
				return err
			}
			return m.Create(ctx, entTables()[:n]...)
		},
		write: func(ctx context.Context, db *sql.DB) error {
			drv := entsql.OpenDB(dialect.SQLite, db)
			q, args := entsql.Dialect(dialect.SQLite).Insert("posts").Columns("title").Values("by ent").Query()
			return drv.Exec(ctx, q, args, nil)
		},
		refusal: refused,
	})
}
