package main

import (
	"net/http"
	"time"
)

// The flash message is a short-lived cookie, so that it survives the
// redirect after a write whichever instance serves the next page: the
// primary sets it, a replica may show it. It holds a key, never text the
// client could choose to have shown.
const (
	flashCookie = "flash"
	flashMaxAge = time.Minute
)

// flashMessages are the messages a flash cookie may name.
var flashMessages = map[string]string{
	"created": "Post created.",
}

// setFlash asks the client to show the message named key on its next page.
// The response must not be stored by a cache, which would replay the
// cookie to others.
func setFlash(w http.ResponseWriter, r *http.Request, key string) {
	w.Header().Set("Cache-Control", "no-store")
	http.SetCookie(w, &http.Cookie{
		Name:     flashCookie,
		Value:    key,
		Path:     "/",
		MaxAge:   int(flashMaxAge / time.Second),
		HttpOnly: true,
		Secure:   isHTTPS(r),
		SameSite: http.SameSiteLaxMode,
	})
}

// takeFlash returns the flash message the request carries, if any, and
// clears the cookie so that it is shown once.
func takeFlash(w http.ResponseWriter, r *http.Request) string {
	c, err := r.Cookie(flashCookie)
	if err != nil {
		return ""
	}
	w.Header().Set("Cache-Control", "no-store") // the page shows the message once
	http.SetCookie(w, &http.Cookie{
		Name:     flashCookie,
		Path:     "/",
		MaxAge:   -1,
		HttpOnly: true,
		Secure:   isHTTPS(r),
		SameSite: http.SameSiteLaxMode,
	})
	return flashMessages[c.Value]
}

// isHTTPS reports whether the client reached the app over HTTPS. On Fly.io
// TLS ends at Fly's proxy, which says so in X-Forwarded-Proto.
func isHTTPS(r *http.Request) bool {
	return r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https"
}
