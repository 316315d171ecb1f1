package main

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/jmoiron/sqlx"
)

// A post is one row of the posts table.
type post struct {
	ID        int64     `db:"id"`
	Title     string    `db:"title"`
	Body      string    `db:"body"`
	CreatedAt time.Time `db:"created_at"`
}

// pageSize is the number of posts on one page of the list.
const pageSize = 20

// excerptLen is the length, in characters, of a post's body on the list;
// the whole body is on the post's own page. With the title's limit, it
// bounds what one page of the list can hold, whatever the posts are.
const excerptLen = 300

// errNoPost is returned by Get when no post has the ID.
var errNoPost = errors.New("no such post")

// postStore reads and writes posts. Every method takes the request's
// context: under httpbridge it carries the Tracker that hears of a write
// refused on a replica.
type postStore struct {
	db *sqlx.DB
}

// listRow is a post on the list: the body is cut to excerptLen characters
// by SQLite, so that a page never reads more than it shows.
type listRow struct {
	post
	Cut bool `db:"cut"`
}

// List returns at most limit posts older than before (all posts if before
// is 0), newest first, with bodies cut to excerptLen characters.
func (s postStore) List(ctx context.Context, before int64, limit int) ([]listRow, error) {
	if before <= 0 {
		before = 1<<63 - 1
	}
	var rows []listRow
	err := s.db.SelectContext(ctx, &rows,
		`SELECT id, title, substr(body, 1, ?) AS body, length(body) > ? AS cut, created_at
		 FROM posts WHERE id < ? ORDER BY id DESC LIMIT ?`, excerptLen, excerptLen, before, limit)
	return rows, err
}

// Get returns the post with the ID, or errNoPost.
func (s postStore) Get(ctx context.Context, id int64) (post, error) {
	var p post
	err := s.db.GetContext(ctx, &p, `SELECT id, title, body, created_at FROM posts WHERE id = ?`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return p, errNoPost
	}
	return p, err
}

// Create stores a post and returns its ID. On a replica the driver refuses
// the INSERT before it takes a lock, with a *litefs.NotPrimaryError.
func (s postStore) Create(ctx context.Context, title, body string, now time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx,
		`INSERT INTO posts (title, body, created_at) VALUES (?, ?, ?)`, title, body, now.UTC())
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}
