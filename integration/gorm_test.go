package integration

import (
	"context"
	"database/sql"
	"testing"

	"github.com/stretchr/testify/assert"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/litefs-sql/litefs"
	"github.com/litefs-sql/litefs/litefstest"
)

// gormPost and gormTag are GORM's models of posts and tags.
type gormPost struct {
	ID    int64
	Title string `gorm:"not null"`
}

type gormTag struct {
	ID   int64
	Name string `gorm:"not null"`
}

func (gormPost) TableName() string { return "posts" }
func (gormTag) TableName() string  { return "tags" }

// TestGORM runs GORM's AutoMigrate and Create through the driver, with
// GORM's SQLite dialector over a litefs *sql.DB.
func TestGORM(t *testing.T) {
	testTool(t, tool{
		up: func(ctx context.Context, db *sql.DB, n int) error {
			g, err := openGORM(db)
			if err != nil {
				return err
			}
			models := []any{&gormPost{}, &gormTag{}}
			return g.WithContext(ctx).AutoMigrate(models[:n]...)
		},
		write: func(ctx context.Context, db *sql.DB) error {
			g, err := openGORM(db)
			if err != nil {
				return err
			}
			return g.WithContext(ctx).Create(&gormPost{Title: "by GORM"}).Error
		},
		refusal: refused,
	})
}

// TestGORMDriverName opens the database through GORM with the driver's
// name, as an app that does not build its own *sql.DB would.
func TestGORMDriverName(t *testing.T) {
	m := litefstest.NewMount(t) // a plain directory: a single primary
	g, err := gorm.Open(sqlite.New(sqlite.Config{DriverName: litefs.DriverName, DSN: m.DSN()}),
		&gorm.Config{Logger: logger.Discard})
	if !assert.NoError(t, err) {
		return
	}
	db, err := g.DB()
	if !assert.NoError(t, err) {
		return
	}
	defer db.Close()
	assert.IsType(t, &litefs.Driver{}, db.Driver())
	assert.NoError(t, g.AutoMigrate(&gormPost{}))
	assert.NoError(t, g.Create(&gormPost{Title: "by name"}).Error)
}

// openGORM returns GORM over db, silent.
func openGORM(db *sql.DB) (*gorm.DB, error) {
	return gorm.Open(sqlite.New(sqlite.Config{Conn: db}), &gorm.Config{Logger: logger.Discard})
}
