package main

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
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
	Posts    []post   // list
	Form     postForm // form
	Message  string   // error
}

func (a *app) home(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, "/posts", http.StatusFound)
}

func (a *app) list(w http.ResponseWriter, r *http.Request) {
	posts, err := a.posts.List(r.Context())
	if err != nil {
		a.serverError(w, r, "list posts", err)
		return
	}
	a.render(w, r, http.StatusOK, "list", pageData{Title: "Posts", Flash: takeFlash(w, r), Posts: posts})
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

// health describes this instance: it is served outside the bridge, since a
// health check must never be replayed to another machine.
func (a *app) health(w http.ResponseWriter, r *http.Request) {
	h := struct {
		Status   string `json:"status"`
		Instance string `json:"instance"`
		Role     string `json:"role"`              // primary or replica
		Primary  string `json:"primary,omitempty"` // on a replica: the primary, if known
		TXID     string `json:"txid,omitempty"`    // under LiteFS: the last transaction applied here
		Error    string `json:"error,omitempty"`
	}{Status: "ok", Instance: a.cfg.InstanceID, Role: "primary"}
	status := http.StatusOK

	switch err := litefs.CheckPrimary(r.Context(), a.db.DB); {
	case err == nil:
	case errors.Is(err, litefs.ErrNotPrimary):
		h.Role = "replica"
		if np, ok := errors.AsType[*litefs.NotPrimaryError](err); ok {
			h.Primary = np.PrimaryID
		}
	default:
		h.Status, h.Error, status = "error", err.Error(), http.StatusServiceUnavailable
	}
	if status == http.StatusOK {
		// One indexed read: the database opens and the schema is there.
		var one int
		err := a.db.QueryRowContext(r.Context(), `SELECT 1 FROM posts LIMIT 1`).Scan(&one)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			h.Status, h.Error, status = "error", err.Error(), http.StatusServiceUnavailable
		}
	}
	if id, err := litefs.CurrentTXID(r.Context(), a.db.DB); err == nil {
		h.TXID = id.String()
	}

	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(h)
}

// render executes a page into a buffer first, so that a template error
// becomes a clean 500 rather than half a page.
func (a *app) render(w http.ResponseWriter, r *http.Request, status int, page string, data pageData) {
	data.Instance, data.Region = a.cfg.InstanceID, a.cfg.Region
	var buf bytes.Buffer
	if err := a.pages[page].ExecuteTemplate(&buf, "layout", data); err != nil {
		a.log.ErrorContext(r.Context(), "render", "page", page, "err", err)
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
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
		"method", r.Method, "path", r.URL.Path, "origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"))
	a.errorPage(w, r, http.StatusForbidden, "This form was sent from another site, so it was refused.")
}
