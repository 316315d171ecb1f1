package main

import (
	"fmt"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits of a post, in characters; the schema's CHECK constraints agree.
const (
	maxTitle = 200
	maxBody  = 10_000
)

// postForm is the create form: what the user typed, and what is wrong with
// it, so that the form can be shown again with the input kept.
type postForm struct {
	Title  string
	Body   string
	Errors map[string]string // by field name
}

// newPostForm reads the form fields. The title is trimmed: a title of
// spaces is no title. The body is kept as typed, except that line ends
// (browsers send CR LF) become LF.
func newPostForm(v url.Values) postForm {
	return postForm{
		Title: strings.TrimSpace(v.Get("title")),
		Body:  strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(v.Get("body")),
	}
}

// validate fills f.Errors and reports whether the form is valid. Bytes that
// are not UTF-8 are reported, then replaced with U+FFFD, so that the form
// can be shown again as valid text.
func (f *postForm) validate() bool {
	defer func() {
		// What is shown again is cut to the limit: escaped, text past it
		// could make the page pass maxPage and turn a 422 into a 500.
		f.Title = cutRunes(strings.ToValidUTF8(f.Title, "\uFFFD"), maxTitle)
		f.Body = cutRunes(strings.ToValidUTF8(f.Body, "\uFFFD"), maxBody)
	}()
	f.Errors = map[string]string{}
	titleHidden, bodyHidden := hidden(f.Title), hidden(f.Body)
	switch n := utf8.RuneCountInString(f.Title); {
	case !utf8.ValidString(f.Title) || strings.ContainsFunc(f.Title, unicode.IsControl):
		f.Errors["title"] = "The title is not valid text."
	case titleHidden != "":
		f.Errors["title"] = "The title contains an invisible or text-direction character (" + titleHidden + "), which is not allowed."
	case n > 0 && !hasVisible(f.Title):
		f.Errors["title"] = "The title has no visible character."
	case n == 0:
		f.Errors["title"] = "A title is required."
	case n > maxTitle:
		f.Errors["title"] = fmt.Sprintf("The title is %d characters long; the limit is %d. Only its first %d are shown.", n, maxTitle, maxTitle)
	}
	switch n := utf8.RuneCountInString(f.Body); {
	case !utf8.ValidString(f.Body) || strings.ContainsFunc(f.Body, isControlInText):
		f.Errors["body"] = "The text is not valid text."
	case bodyHidden != "":
		f.Errors["body"] = "The text contains an invisible or text-direction character (" + bodyHidden + "), which is not allowed."
	case strings.ContainsFunc(f.Body, joins) && !hasVisible(f.Body):
		f.Errors["body"] = "The text has no visible character."
	case n > maxBody:
		f.Errors["body"] = fmt.Sprintf("The text is %d characters long; the limit is %d. Only its first %d are shown.", n, maxBody, maxBody)
	}
	return len(f.Errors) == 0
}

// isControlInText reports whether r is a control character other than a
// tab or a line end. Control characters are refused: besides being
// invisible, a NUL ends the text for SQLite's length(), which the schema's
// CHECKs use.
func isControlInText(r rune) bool {
	return unicode.IsControl(r) && r != '\t' && r != '\n'
}

// hidden returns, as "U+XXXX", the first character of s that is invisible
// or changes the direction of the text around it, or "" if there is none.
// Such characters let a post look like something else than it is: U+202E
// shows "gnp.exe" as "exe.png", U+200B splits a word invisibly. They are
// Unicode's format characters (Cf, which holds every bidi control), the
// default-ignorable fillers (U+3164 and the like), the braille blank U+2800
// and the Mongolian free variation selectors, which render as nothing
// outside Mongolian and are not needed in a post. ZERO WIDTH NON-JOINER and
// JOINER and the other variation selectors are allowed (see joins): Persian,
// Indic scripts and emoji sequences need them.
func hidden(s string) string {
	for _, r := range s {
		if r == '\u200C' || r == '\u200D' {
			continue
		}
		if r == '\u2800' || (r >= '\u180B' && r <= '\u180F') ||
			unicode.In(r, unicode.Cf, unicode.Bidi_Control, unicode.Other_Default_Ignorable_Code_Point) {
			return fmt.Sprintf("U+%04X", r)
		}
	}
	return ""
}

// joins reports whether r is one of the invisible characters hidden allows
// because they shape the character before or after them: ZWNJ, ZWJ and the
// variation selectors. Alone they show nothing, so a text made only of them
// (and spaces) is refused by hasVisible.
func joins(r rune) bool {
	return r == '\u200C' || r == '\u200D' || unicode.Is(unicode.Variation_Selector, r)
}

// hasVisible reports whether s has a character that shows: one that is
// neither a space nor a joiner or variation selector. It assumes hidden(s)
// is "", so that no other invisible character is left.
func hasVisible(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsSpace(r) && !joins(r) })
}

// cutRunes returns the first n characters of s.
func cutRunes(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}
