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
		{"none", nil, 0, false},
		{"empty", []string{""}, 0, false},
		{"alone", []string{"__txid=0000000000000005"}, 5, true},
		{"among others", []string{"a=1; __txid=00000000000000ff; b=2"}, 255, true},
		{"upper-case hex", []string{"__txid=00000000000000FF"}, 255, true},
		{"quoted", []string{`__txid="0000000000000005"`}, 5, true},
		{"spaces around", []string{" \t__txid = 0000000000000005 \t"}, 0, false}, // net/http keeps the space before the value
		{"space around the name", []string{" __txid =0000000000000005 "}, 5, true},
		{"largest of several", []string{"__txid=0000000000000007; __txid=0000000000000009", "__txid=0000000000000008"}, 9, true},
		{"valid beside invalid", []string{"__txid=junk; __txid=0000000000000002"}, 2, true},
		{"largest TXID", []string{"__txid=ffffffffffffffff"}, 1<<64 - 1, true},
		{"another name", []string{"txid=0000000000000005"}, 0, false},
		{"no equals sign", []string{"__txid"}, 0, false},
		{"name inside a value", []string{"a=__txid=0000000000000005"}, 0, false},
		{"name inside a longer name", []string{"x__txid=0000000000000005; __txid_=0000000000000006"}, 0, false},
		{"after empty cookies", []string{";; \t;__txid=0000000000000005;"}, 5, true},
		{"trailing space", []string{"__txid=0000000000000005 \t; a=b"}, 5, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := http.Header{}
			if tc.lines != nil {
				h["Cookie"] = tc.lines
			}
			got, ok := cookieTXID(h, "__txid")
			if got != tc.want || ok != tc.wantOK {
				t.Errorf("got %v, %v, want %v, %v", got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func TestCookieTXIDAllocs(t *testing.T) {
	h := http.Header{"Cookie": {"theme=dark; session=abcdef; __txid=0000000000000005; other=\"q\""}}
	if n := testing.AllocsPerRun(100, func() { cookieTXID(h, "__txid") }); n != 0 {
		t.Errorf("allocations: got %v, want 0", n)
	}
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
		if got != want || ok != wantOK {
			t.Errorf("cookieTXID(%q): got %v, %v, want %v, %v", lines, got, ok, want, wantOK)
		}
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
