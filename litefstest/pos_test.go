package litefstest_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs/litefstest"
)

func TestParsePos(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in      string
		want    litefstest.Pos
		wantErr string
	}{
		{in: "0000000000000003/a2fc350ac7362d33\n", want: litefstest.Pos{TXID: 3, Checksum: 0xa2fc350ac7362d33}},
		{in: "0000000000000003/a2fc350ac7362d33", want: litefstest.Pos{TXID: 3, Checksum: 0xa2fc350ac7362d33}},
		{in: "FFFFFFFFFFFFFFFF/0000000000000000\n", want: litefstest.Pos{TXID: 1<<64 - 1}},
		{in: "", wantErr: "want 16 hex digits"},
		{in: "\n", wantErr: "want 16 hex digits"},
		{in: "3/a2fc350ac7362d33\n", wantErr: "want 16 hex digits"},
		{in: "0000000000000003-a2fc350ac7362d33\n", wantErr: "want 16 hex digits"},
		{in: "0000000000000003/a2fc350ac7362d33\n\n", wantErr: "want 16 hex digits"},
		{in: "0000000000000003/a2fc350ac7362d33\r\n", wantErr: "want 16 hex digits"},
		{in: " 000000000000003/a2fc350ac7362d33\n", wantErr: "not hexadecimal"},
		{in: "+000000000000003/a2fc350ac7362d33\n", wantErr: "not hexadecimal"},
		{in: "0x00000000000003/a2fc350ac7362d33\n", wantErr: "not hexadecimal"},
		{in: "000000000000000g/a2fc350ac7362d33\n", wantErr: "not hexadecimal"},
	} {
		got, err := litefstest.ParsePos([]byte(tc.in))
		if tc.wantErr != "" {
			if assert.ErrorContains(t, err, tc.wantErr, "ParsePos(%q)", tc.in) {
				assert.True(t, strings.HasPrefix(err.Error(), "litefstest: "), "ParsePos(%q): error %q", tc.in, err)
			}
			continue
		}
		assert.NoError(t, err, "ParsePos(%q)", tc.in)
		assert.Equal(t, tc.want, got, "ParsePos(%q)", tc.in)
	}
}

func TestPosString(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		pos  litefstest.Pos
		want string
	}{
		{pos: litefstest.Pos{}, want: "0000000000000000/0000000000000000"},
		{pos: litefstest.Pos{TXID: 3, Checksum: 0xa2fc350ac7362d33}, want: "0000000000000003/a2fc350ac7362d33"},
		{pos: litefstest.Pos{TXID: 1<<64 - 1, Checksum: 1}, want: "ffffffffffffffff/0000000000000001"},
	} {
		assert.Equal(t, tc.want, tc.pos.String(), "%+v", tc.pos)
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
			require.Zero(t, pos, "ParsePos(%q) failed with %v", b, err)
			require.True(t, strings.HasPrefix(err.Error(), "litefstest: invalid position"), "ParsePos(%q): error %q", b, err)
			return
		}
		n := len(b)
		require.True(t, n == 33 || n == 34 && b[33] == '\n', "ParsePos(%q) accepted %d bytes", b, n)
		again, err := litefstest.ParsePos([]byte(pos.String() + "\n"))
		require.NoError(t, err, "round trip of %+v", pos)
		require.Equal(t, pos, again, "round trip")
		require.True(t, strings.EqualFold(pos.String(), strings.TrimSuffix(string(b), "\n")), "ParsePos(%q) = %v, which formats differently", b, pos)
	})
}
