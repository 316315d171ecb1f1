package integration

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/pressly/goose/v3"
	"github.com/stretchr/testify/require"
)

// gooseMigrations are goose's SQL migrations, by file name.
var gooseMigrations = map[string]string{
	"00001_posts.sql": `-- +goose Up
CREATE TABLE posts(id INTEGER PRIMARY KEY, title TEXT NOT NULL);
-- +goose Down
DROP TABLE posts;
`,
	"00002_tags.sql": `-- +goose Up
CREATE TABLE tags(id INTEGER PRIMARY KEY, name TEXT NOT NULL);
-- +goose Down
DROP TABLE tags;
`,
}

// gooseDialect sets goose's package-level dialect and logger once.
var gooseDialect = sync.OnceValue(func() error {
	goose.SetLogger(goose.NopLogger())
	return goose.SetDialect("sqlite3")
})

func TestGoose(t *testing.T) {
	require.NoError(t, gooseDialect())
	dir := t.TempDir()
	for name, text := range gooseMigrations {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644))
	}
	testTool(t, tool{
		up: func(ctx context.Context, db *sql.DB, n int) error {
			return goose.UpToContext(ctx, db, dir, int64(n))
		},
		refusal: refused,
	})
}
