package main

import (
	"context"
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

// listLimit bounds the posts shown on the list page.
const listLimit = 100

// postStore reads and writes posts. Every method takes the request's
// context: under httpbridge it carries the Tracker that hears of a write
// refused on a replica.
type postStore struct {
	db *sqlx.DB
}

// List returns the newest posts first, at most listLimit of them.
func (s postStore) List(ctx context.Context) ([]post, error) {
	var posts []post
	err := s.db.SelectContext(ctx, &posts,
		`SELECT id, title, body, created_at FROM posts ORDER BY id DESC LIMIT ?`, listLimit)
	return posts, err
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
