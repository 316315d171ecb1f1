package main

import (
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/litefs-sql/litefs"
)

// maxFormBody bounds a form post: room for the longest valid post, fully
// percent-encoded, and well under fly-replay's 1 MB body limit.
const maxFormBody = 256 << 10

// app holds what the handlers share.
type app struct {
	cfg   config
	db    *sqlx.DB
	posts postStore
	pages map[string]*template.Template
	log   *slog.Logger
	now   func() time.Time
}

// pageData is what every page template gets.
type pageData struct {
	Title    string
	Flash    string
	Instance string
	Region   string
	Posts    []listRow // list
	Older    int64     // list: the "before" of the next page, 0 if none
	Paged    bool      // list: not the first page
	Post     post      // post
	Form     postForm  // form
	Message  string    // error
	Checkins []checkin // nodes
}

func (a *app) home(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, "/posts", http.StatusFound)
}

// list shows one page of posts, newest first, each cut to an excerpt:
// ?before=<id> starts the page after that post. Pages are keyed by ID, not
// numbered, so that new posts do not shift them.
func (a *app) list(w http.ResponseWriter, r *http.Request) {
	var before int64
	if s := r.URL.Query().Get("before"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			a.errorPage(w, r, http.StatusBadRequest, "This page of the list does not exist.")
			return
		}
		before = n
	}
	rows, err := a.posts.List(r.Context(), before, pageSize+1)
	if err != nil {
		a.serverError(w, r, "list posts", err)
		return
	}
	data := pageData{Title: "Posts", Flash: takeFlash(w, r), Paged: before != 0}
	if len(rows) > pageSize {
		rows = rows[:pageSize]
		data.Older = rows[pageSize-1].ID
	}
	data.Posts = rows
	a.render(w, r, http.StatusOK, "list", data)
}

// show shows one post, whole.
func (a *app) show(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		a.errorPage(w, r, http.StatusNotFound, "There is no such post.")
		return
	}
	p, err := a.posts.Get(r.Context(), id)
	switch {
	case errors.Is(err, errNoPost):
		a.errorPage(w, r, http.StatusNotFound, "There is no such post.")
	case err != nil:
		a.serverError(w, r, "get post", err)
	default:
		a.render(w, r, http.StatusOK, "post", pageData{Title: p.Title, Post: p})
	}
}

func (a *app) create(w http.ResponseWriter, r *http.Request) {
	a.render(w, r, http.StatusOK, "form", pageData{Title: "New post"})
}

// store validates the form and inserts the post. On a replica the INSERT is
// refused and this handler answers 500 like for any failed write; the
// bridge around it hears of the refusal and replaces that answer with a
// fly-replay to the primary, which runs this handler again.
func (a *app) store(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	if err := r.ParseForm(); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			a.errorPage(w, r, http.StatusRequestEntityTooLarge, "The post is too large.")
			return
		}
		a.errorPage(w, r, http.StatusBadRequest, "The form could not be read.")
		return
	}
	form := newPostForm(r.PostForm)
	if !form.validate() {
		a.render(w, r, http.StatusUnprocessableEntity, "form", pageData{Title: "New post", Form: form})
		return
	}
	id, err := a.posts.Create(r.Context(), form.Title, form.Body, a.now())
	if err != nil {
		a.serverError(w, r, "create post", err)
		return
	}
	a.log.DebugContext(r.Context(), "post created", "id", id)
	setFlash(w, r, "created")
	http.Redirect(w, r, "/posts", http.StatusSeeOther)
}

func (a *app) errorPage(w http.ResponseWriter, r *http.Request, status int, msg string) {
	a.render(w, r, status, "error", pageData{Title: http.StatusText(status), Message: msg})
}

// serverError answers 500. A write refused on a replica is expected (the
// bridge replays the request), so it is not logged as an error.
func (a *app) serverError(w http.ResponseWriter, r *http.Request, what string, err error) {
	level := slog.LevelError
	if errors.Is(err, litefs.ErrNotPrimary) {
		level = slog.LevelDebug
	}
	a.log.Log(r.Context(), level, what, "err", err)
	a.errorPage(w, r, http.StatusInternalServerError, "Something went wrong. Please try again.")
}

// forbidden answers a request that CrossOriginProtection rejected.
func (a *app) forbidden(w http.ResponseWriter, r *http.Request) {
	a.log.WarnContext(r.Context(), "cross-origin request rejected",
		"method", r.Method, "path", capped(r.URL.Path), "origin", capped(r.Header.Get("Origin")),
		"sec_fetch_site", capped(r.Header.Get("Sec-Fetch-Site")))
	a.errorPage(w, r, http.StatusForbidden, "This form was sent from another site, so it was refused.")
}
