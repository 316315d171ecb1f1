package main

import (
	"bytes"
	"compress/gzip"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// maxPage bounds the HTML of one page. The largest pages the app makes are
// about 46 KB (a page of the list of posts made of '<', each written as
// "&lt;") and 42 KB (one such post); past the bound the render fails with a
// 500, so that a bug cannot make one request hold megabytes.
const maxPage = 256 << 10

// minGzip is the size under which a page is sent uncompressed: gzip's own
// framing would eat most of the gain.
const minGzip = 1 << 10

// errPageTooLarge ends a render that went over maxPage.
var errPageTooLarge = errors.New("page over " + strconv.Itoa(maxPage) + " bytes")

// Buffers and gzip writers are reused between requests. A gzip writer holds
// about 800 KB of compression state, so it is taken only while compressing
// into a buffer, never while a slow client reads: what a response holds
// while it is sent is its bytes, at most maxPage.
var (
	pagePool = sync.Pool{New: func() any { return new(bytes.Buffer) }}
	gzipPool = sync.Pool{New: func() any { return gzip.NewWriter(nil) }}
)

// boundedWriter appends to buf and fails once buf would exceed max bytes.
type boundedWriter struct {
	buf *bytes.Buffer
	max int
}

func (b boundedWriter) Write(p []byte) (int, error) {
	if b.buf.Len()+len(p) > b.max {
		return 0, errPageTooLarge
	}
	return b.buf.Write(p)
}

// render executes a page into a bounded buffer first, so that a template
// error becomes a clean 500 rather than half a page, then sends it, gzipped
// if the client accepts it. Nothing is written before the page is whole,
// so the bridge can still replace the response after a refused write.
func (a *app) render(w http.ResponseWriter, r *http.Request, status int, page string, data pageData) {
	data.Instance, data.Region = a.cfg.InstanceID, a.cfg.Region
	html := getBuffer()
	defer putBuffer(html)
	if err := a.pages[page].ExecuteTemplate(boundedWriter{html, maxPage}, "layout", data); err != nil {
		a.log.ErrorContext(r.Context(), "render", "page", page, "err", err)
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Add("Vary", "Accept-Encoding")
	body := html
	if html.Len() >= minGzip && acceptsGzip(r.Header.Values("Accept-Encoding")) {
		gz := getBuffer()
		defer putBuffer(gz)
		compress(gz, html.Bytes())
		h.Set("Content-Encoding", "gzip")
		body = gz
	}
	h.Set("Content-Length", strconv.Itoa(body.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(body.Bytes())
}

// compress writes the gzip of p to dst.
func compress(dst *bytes.Buffer, p []byte) {
	zw := gzipPool.Get().(*gzip.Writer)
	zw.Reset(dst)
	_, _ = zw.Write(p) // a bytes.Buffer does not fail
	_ = zw.Close()
	zw.Reset(nil)
	gzipPool.Put(zw)
}

func getBuffer() *bytes.Buffer { return pagePool.Get().(*bytes.Buffer) }

// putBuffer returns buf to the pool, unless a page made it grow past what
// any page needs.
func putBuffer(buf *bytes.Buffer) {
	if buf.Cap() > 2*maxPage {
		return
	}
	buf.Reset()
	pagePool.Put(buf)
}

// acceptsGzip reports whether Accept-Encoding header values accept gzip:
// "gzip" (or "x-gzip", or "*") listed without q=0. As RFC 9110 12.5.3 says,
// a coding named explicitly wins over "*": "gzip;q=0, *" refuses gzip. A
// value it cannot read counts as not accepting it: the page then goes
// uncompressed.
func acceptsGzip(values []string) bool {
	named, star := false, false
	for _, v := range values {
		for item := range strings.SplitSeq(v, ",") {
			coding, params, _ := strings.Cut(item, ";")
			switch strings.ToLower(strings.TrimSpace(coding)) {
			case "gzip", "x-gzip":
				if !qualityNonZero(params) {
					return false // an explicit refusal wins over all else
				}
				named = true
			case "*":
				star = star || qualityNonZero(params)
			}
		}
	}
	return named || star
}

// qualityNonZero reports whether the parameters of an Accept-Encoding item
// (after its first ';') leave it acceptable: no q, or a q above 0.
func qualityNonZero(params string) bool {
	for p := range strings.SplitSeq(params, ";") {
		name, value, ok := strings.Cut(p, "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(name), "q") {
			continue
		}
		q, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		return err == nil && q > 0 && q <= 1
	}
	return true
}
