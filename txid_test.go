package litefs

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs/litefstest"
)

func TestParseTXID(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want TXID
		ok   bool
	}{
		{in: "0000000000000003", want: 3, ok: true},
		{in: "00000000000000ff", want: 255, ok: true},
		{in: "00000000000000FF", want: 255, ok: true},
		{in: "ffffffffffffffff", want: 1<<64 - 1, ok: true},
		{in: ""},
		{in: "3"},
		{in: "000000000000000g"},
		{in: "+000000000000003"},
		{in: "00000000000000003"},
		{in: strings.Repeat("f", 1000)},
	} {
		got, err := ParseTXID(tc.in)
		assert.Equal(t, tc.want, got, "ParseTXID(%q)", truncate(tc.in))
		if !tc.ok {
			if assert.Error(t, err, "ParseTXID(%q)", truncate(tc.in)) {
				assert.LessOrEqual(t, len(err.Error()), 100, "ParseTXID(%q): error too long", truncate(tc.in))
			}
			continue
		}
		assert.NoError(t, err, "ParseTXID(%q)", tc.in)
	}
	assert.Equal(t, "000000000000002a", TXID(0x2a).String())
}

func TestParsePos(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want TXID
		ok   bool
	}{
		{in: "0000000000000003/a2fc350ac7362d33\n", want: 3, ok: true},
		{in: "0000000000000000/0000000000000000\n", want: 0, ok: true},
		{in: "0000000000000003/a2fc350ac7362d33"},
		{in: "0000000000000003-a2fc350ac7362d33\n"},
		{in: "0000000000000003/a2fc350ac7362d3z\n"},
		{in: ""},
		{in: "\n"},
	} {
		got, err := parsePos([]byte(tc.in))
		assert.Equal(t, tc.want, got, "parsePos(%q)", tc.in)
		if tc.ok {
			assert.NoError(t, err, "parsePos(%q)", tc.in)
		} else {
			assert.Error(t, err, "parsePos(%q)", tc.in)
		}
	}
}

func FuzzParsePos(f *testing.F) {
	f.Add([]byte("0000000000000003/a2fc350ac7362d33\n"))
	f.Add([]byte("zzzzzzzzzzzzzzzz/zzzzzzzzzzzzzzzz\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := parsePos(b)
		if err != nil {
			return
		}
		assert.Equal(t, strings.ToLower(string(b[:16])), id.String(), "parsed %q", b)
	})
}

func TestCurrentAndWaitTXID(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	db := openDB(t, m, "")
	_, err := CurrentTXID(t.Context(), db)
	require.ErrorIs(t, err, ErrNoPosition, "without -pos")
	m.SetTXID(7)
	got, err := CurrentTXID(t.Context(), db)
	require.NoError(t, err)
	require.Equal(t, TXID(7), got)
	got, err = WaitTXID(t.Context(), db, 5)
	require.NoError(t, err, "already reached")
	require.Equal(t, TXID(7), got, "already reached")

	done := make(chan error, 1)
	go func() {
		got, err := WaitTXID(t.Context(), db, 9)
		if err == nil && got < 9 {
			err = errors.New("returned before reaching 9: " + got.String())
		}
		done <- err
	}()
	m.SetTXID(8)
	m.SetTXID(9)
	require.NoError(t, <-done)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = WaitTXID(ctx, db, 100)
	assert.ErrorIs(t, err, context.Canceled, "canceled")
	require.NoError(t, os.WriteFile(m.PosPath(), []byte("garbage"), 0o644))
	_, err = WaitTXID(t.Context(), db, 100)
	if assert.Error(t, err, "garbage -pos") {
		assert.NotErrorIs(t, err, ErrNoPosition, "garbage -pos: want a parse error")
	}
}

func TestTrackerTXID(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	db := openDB(t, m, "")
	m.SetTXID(41)
	tr := &Tracker{}
	ctx := WithTracker(t.Context(), tr)
	_, ok, err := tr.TXID()
	require.NoError(t, err, "before any write")
	require.False(t, ok, "before any write")
	_, err = db.ExecContext(ctx, "INSERT INTO t(v) VALUES ('x')")
	require.NoError(t, err)
	m.SetTXID(42) // what LiteFS would show after that commit
	id, ok, err := tr.TXID()
	assert.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, TXID(42), id)
}
