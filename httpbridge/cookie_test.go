package httpbridge

import (
	"net/http"
	"strings"
	"testing"

	"github.com/litefs-sql/litefs"
	"github.com/stretchr/testify/assert"
)

func TestCookieTXID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		lines  []string
		want   litefs.TXID
		wantOK bool
	}{
		{name: "none", lines: nil, want: 0, wantOK: false},
		{name: "empty", lines: []string{""}, want: 0, wantOK: false},
		{name: "alone", lines: []string{"__txid=0000000000000005"}, want: 5, wantOK: true},
		{name: "among others", lines: []string{"a=1; __txid=00000000000000ff; b=2"}, want: 255, wantOK: true},
		{name: "upper-case hex", lines: []string{"__txid=00000000000000FF"}, want: 255, wantOK: true},
		{name: "quoted", lines: []string{`__txid="0000000000000005"`}, want: 5, wantOK: true},
		{name: "spaces around", lines: []string{" \t__txid = 0000000000000005 \t"}, want: 0, wantOK: false}, // net/http keeps the space before the value
		{name: "space around the name", lines: []string{" __txid =0000000000000005 "}, want: 5, wantOK: true},
		{name: "largest of several", lines: []string{"__txid=0000000000000007; __txid=0000000000000009", "__txid=0000000000000008"}, want: 9, wantOK: true},
		{name: "valid beside invalid", lines: []string{"__txid=junk; __txid=0000000000000002"}, want: 2, wantOK: true},
		{name: "largest TXID", lines: []string{"__txid=ffffffffffffffff"}, want: 1<<64 - 1, wantOK: true},
		{name: "another name", lines: []string{"txid=0000000000000005"}, want: 0, wantOK: false},
		{name: "no equals sign", lines: []string{"__txid"}, want: 0, wantOK: false},
		{name: "name inside a value", lines: []string{"a=__txid=0000000000000005"}, want: 0, wantOK: false},
		{name: "name inside a longer name", lines: []string{"x__txid=0000000000000005; __txid_=0000000000000006"}, want: 0, wantOK: false},
		{name: "after empty cookies", lines: []string{";; \t;__txid=0000000000000005;"}, want: 5, wantOK: true},
		{name: "trailing space", lines: []string{"__txid=0000000000000005 \t; a=b"}, want: 5, wantOK: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := http.Header{}
			if tc.lines != nil {
				h["Cookie"] = tc.lines
			}
			got, ok := cookieTXID(h, "__txid")
			assert.Equal(t, tc.want, got, "TXID")
			assert.Equal(t, tc.wantOK, ok, "found")
		})
	}
}

func TestCookieTXIDAllocs(t *testing.T) {
	h := http.Header{"Cookie": {"theme=dark; session=abcdef; __txid=0000000000000005; other=\"q\""}}
	assert.Zero(t, testing.AllocsPerRun(100, func() { cookieTXID(h, "__txid") }), "allocations")
}

// forgedCookies is a Cookie header of about 1 MB of invalid TXID cookies:
// wrong lengths, and the right length with a non-hex digit.
var forgedCookies = strings.Repeat("__txid=zzzzzzzzzzzzzzzz; __txid=7fff; __txid=000000000000000g; ", 1<<20/64)

// TestCookieTXIDInvalidAllocs: invalid values cost no allocation, so a
// forged header costs one scan of it.
func TestCookieTXIDInvalidAllocs(t *testing.T) {
	h := http.Header{"Cookie": {forgedCookies}}
	allocs := testing.AllocsPerRun(5, func() {
		_, ok := cookieTXID(h, "__txid")
		assert.False(t, ok)
	})
	assert.Zero(t, allocs)
}

// FuzzCookieTXID checks cookieTXID against net/http's cookie parsing, on
// Cookie headers of one or more lines (split at '\n').
func FuzzCookieTXID(f *testing.F) {
	for _, s := range []string{
		"",
		"__txid=0000000000000005",
		"a=1; __txid=00000000000000ff; b=2",
		`__txid="00000000000000FF"`,
		"__txid=0000000000000007\n__txid=0000000000000009",
		" __txid =0000000000000005 ",
		"__txid=0x00000000000005",
		";;=;",
		"a=__txid=0000000000000005",
		"x__txid=0000000000000005; __txid_=0000000000000006",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		lines := strings.Split(s, "\n")
		h := http.Header{"Cookie": lines}
		got, ok := cookieTXID(h, "__txid")

		n := 0
		for _, l := range lines {
			n += strings.Count(l, ";") + 1
		}
		if n > 3000 {
			return // net/http gives up on this many cookies
		}
		var want litefs.TXID
		var wantOK bool
		for _, c := range (&http.Request{Header: h}).Cookies() {
			if c.Name != "__txid" {
				continue
			}
			if id, err := litefs.ParseTXID(c.Value); err == nil && (!wantOK || id > want) {
				want, wantOK = id, true
			}
		}
		assert.Equal(t, want, got, "cookieTXID(%q)", lines)
		assert.Equal(t, wantOK, ok, "cookieTXID(%q) found", lines)
	})
}

// BenchmarkCookieTXID measures the Cookie header scan of every request when
// read-your-writes is on: without the header, and with a few cookies.
func BenchmarkCookieTXID(b *testing.B) {
	for _, bc := range []struct {
		name string
		h    http.Header
	}{
		{"none", http.Header{"Accept": {"*/*"}}},
		{"three", http.Header{"Cookie": {"theme=dark; session=0123456789abcdef0123456789abcdef; __txid=0000000000000005"}}},
		{"forged-1MB", http.Header{"Cookie": {forgedCookies}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				cookieTXID(bc.h, "__txid")
			}
		})
	}
}
