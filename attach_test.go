package litefs

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// asciiLower lowers ASCII letters only, byte for byte.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func mentionsAttachReference(q string) bool {
	l := asciiLower(q)
	return strings.Contains(l, "attach") || strings.Contains(l, "detach")
}

func TestMentionsAttach(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		query string
		want  bool
	}{
		{query: "ATTACH 'x.db' AS x", want: true},
		{query: "detach x", want: true},
		{query: "SELECT 1; DeTaCh x", want: true},
		{query: "INSERT INTO t(v) VALUES ('attached')", want: true}, // a false positive costs a PRAGMA
		{query: "UPDATE t SET v = ? WHERE a = ?", want: false},
		{query: "tach", want: false},
		{query: "xtach", want: false},
		{query: "ATTAC", want: false},
		{query: "", want: false},
		{query: "\xd4ACH attach", want: true},
	} {
		assert.Equal(t, tc.want, mentionsAttach(tc.query), "%q", tc.query)
		assert.Equal(t, mentionsAttachReference(tc.query), mentionsAttach(tc.query), "%q against the reference", tc.query)
	}
}

func FuzzMentionsAttach(f *testing.F) {
	for _, s := range []string{"ATTACH 'a' AS b", "detach b", "atTach", "de\x00tach", "\xc4\xb0attach"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		assert.Equal(t, mentionsAttachReference(q), mentionsAttach(q), "%q", q)
	})
}
