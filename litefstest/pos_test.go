package litefstest_test

import (
	"strings"
	"testing"

	"github.com/litefs-sql/litefs/litefstest"
)

func TestParsePos(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in      string
		want    litefstest.Pos
		wantErr string
	}{
		{"0000000000000003/a2fc350ac7362d33\n", litefstest.Pos{TXID: 3, Checksum: 0xa2fc350ac7362d33}, ""},
		{"0000000000000003/a2fc350ac7362d33", litefstest.Pos{TXID: 3, Checksum: 0xa2fc350ac7362d33}, ""},
		{"FFFFFFFFFFFFFFFF/0000000000000000\n", litefstest.Pos{TXID: 1<<64 - 1}, ""},
		{"", litefstest.Pos{}, "want 16 hex digits"},
		{"\n", litefstest.Pos{}, "want 16 hex digits"},
		{"3/a2fc350ac7362d33\n", litefstest.Pos{}, "want 16 hex digits"},
		{"0000000000000003-a2fc350ac7362d33\n", litefstest.Pos{}, "want 16 hex digits"},
		{"0000000000000003/a2fc350ac7362d33\n\n", litefstest.Pos{}, "want 16 hex digits"},
		{"0000000000000003/a2fc350ac7362d33\r\n", litefstest.Pos{}, "want 16 hex digits"},
		{" 000000000000003/a2fc350ac7362d33\n", litefstest.Pos{}, "not hexadecimal"},
		{"+000000000000003/a2fc350ac7362d33\n", litefstest.Pos{}, "not hexadecimal"},
		{"0x00000000000003/a2fc350ac7362d33\n", litefstest.Pos{}, "not hexadecimal"},
		{"000000000000000g/a2fc350ac7362d33\n", litefstest.Pos{}, "not hexadecimal"},
	} {
		got, err := litefstest.ParsePos([]byte(tc.in))
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.HasPrefix(err.Error(), "litefstest: ") {
				t.Errorf("ParsePos(%q): got %+v, %v; want an error containing %q", tc.in, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParsePos(%q): got %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestPosString(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		pos  litefstest.Pos
		want string
	}{
		{litefstest.Pos{}, "0000000000000000/0000000000000000"},
		{litefstest.Pos{TXID: 3, Checksum: 0xa2fc350ac7362d33}, "0000000000000003/a2fc350ac7362d33"},
		{litefstest.Pos{TXID: 1<<64 - 1, Checksum: 1}, "ffffffffffffffff/0000000000000001"},
	} {
		if got := tc.pos.String(); got != tc.want {
			t.Errorf("%+v: got %q, want %q", tc.pos, got, tc.want)
		}
	}
}

func FuzzParsePos(f *testing.F) {
	for _, s := range []string{
		"0000000000000003/a2fc350ac7362d33\n", "0000000000000003/a2fc350ac7362d33", "", "/", "\n",
		"ffffffffffffffff/FFFFFFFFFFFFFFFF\n", "000000000000000g/a2fc350ac7362d33\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		pos, err := litefstest.ParsePos(b)
		if err != nil {
			if pos != (litefstest.Pos{}) || !strings.HasPrefix(err.Error(), "litefstest: invalid position") {
				t.Fatalf("ParsePos(%q): got %+v, %v", b, pos, err)
			}
			return
		}
		if n := len(b); n != 33 && !(n == 34 && b[33] == '\n') {
			t.Fatalf("ParsePos(%q) accepted %d bytes", b, n)
		}
		again, err := litefstest.ParsePos([]byte(pos.String() + "\n"))
		if err != nil || again != pos {
			t.Fatalf("round trip of %+v: got %+v, %v", pos, again, err)
		}
		if !strings.EqualFold(pos.String(), strings.TrimSuffix(string(b), "\n")) {
			t.Fatalf("ParsePos(%q) = %v, which formats differently", b, pos)
		}
	})
}
