package httpbridge

import (
	"net/http"
	"strings"

	"github.com/litefs-sql/litefs"
)

// cookieTXID returns the largest TXID among the cookies called name in h's
// Cookie headers, read as net/http's Request.Cookies reads them, but without
// allocating: it looks for name itself rather than splitting every cookie.
// Cookies whose value is not 16 hex digits are skipped at no allocation, so a
// Cookie header full of forged values costs one scan.
func cookieTXID(h http.Header, name string) (litefs.TXID, bool) {
	var best litefs.TXID
	found := false
	for _, line := range h["Cookie"] {
		for from := 0; ; {
			i := strings.Index(line[from:], name)
			if i < 0 {
				break
			}
			i += from
			from = i + 1
			if !cookieStart(line, i) {
				continue
			}
			// net/http trims the cookie, cuts it at the first '=' and trims
			// the name; the value keeps its leading spaces.
			v := line[i+len(name):]
			for v != "" && isCookieSpace(v[0]) {
				v = v[1:]
			}
			if v == "" || v[0] != '=' {
				continue
			}
			v = v[1:]
			if end := strings.IndexByte(v, ';'); end >= 0 {
				v = v[:end]
			}
			for v != "" && isCookieSpace(v[len(v)-1]) {
				v = v[:len(v)-1]
			}
			if len(v) == 18 && v[0] == '"' && v[17] == '"' {
				v = v[1:17]
			}
			if !isTXIDText(v) {
				continue // checked here because ParseTXID's error allocates
			}
			if id, err := litefs.ParseTXID(v); err == nil && (!found || id > best) {
				best, found = id, true
			}
		}
	}
	return best, found
}

// cookieStart reports whether a cookie starts at line[i]: only white space
// lies between it and the line's start or the ';' before it.
func cookieStart(line string, i int) bool {
	for i--; i >= 0; i-- {
		if line[i] == ';' {
			return true
		}
		if !isCookieSpace(line[i]) {
			return false
		}
	}
	return true
}

// isCookieSpace reports whether c is white space as net/textproto's
// TrimString sees it, which net/http trims around cookies and their names.
func isCookieSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// isTXIDText reports whether s is 16 hex digits, the text ParseTXID accepts.
func isTXIDText(s string) bool {
	if len(s) != 16 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
