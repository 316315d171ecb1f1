package litefs

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/litefs-sql/litefs/litefstest"
)

func TestParseTXID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want TXID
		ok   bool
	}{
		{"0000000000000003", 3, true},
		{"00000000000000ff", 255, true},
		{"00000000000000FF", 255, true},
		{"ffffffffffffffff", 1<<64 - 1, true},
		{"", 0, false},
		{"3", 0, false},
		{"000000000000000g", 0, false},
		{"+000000000000003", 0, false},
		{"00000000000000003", 0, false},
		{strings.Repeat("f", 1000), 0, false},
	}
	for _, tc := range tests {
		got, err := ParseTXID(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseTXID(%q) = %v, %v; want %v, ok %v", truncate(tc.in), got, err, tc.want, tc.ok)
		}
		if err != nil && len(err.Error()) > 100 {
			t.Errorf("ParseTXID(%q): error too long: %d bytes", truncate(tc.in), len(err.Error()))
		}
	}
	if got := TXID(0x2a).String(); got != "000000000000002a" {
		t.Errorf("String() = %q, want 000000000000002a", got)
	}
}

func TestParsePos(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want TXID
		ok   bool
	}{
		{"0000000000000003/a2fc350ac7362d33\n", 3, true},
		{"0000000000000000/0000000000000000\n", 0, true},
		{"0000000000000003/a2fc350ac7362d33", 0, false},
		{"0000000000000003-a2fc350ac7362d33\n", 0, false},
		{"0000000000000003/a2fc350ac7362d3z\n", 0, false},
		{"", 0, false},
		{"\n", 0, false},
	}
	for _, tc := range tests {
		got, err := parsePos([]byte(tc.in))
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parsePos(%q) = %v, %v; want %v, ok %v", tc.in, got, err, tc.want, tc.ok)
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
		if got := []byte(id.String()); string(got) != strings.ToLower(string(b[:16])) {
			t.Fatalf("parsed %q as %v", b, id)
		}
	})
}

func TestCurrentAndWaitTXID(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	db := openDB(t, m, "")
	if _, err := CurrentTXID(t.Context(), db); !errors.Is(err, ErrNoPosition) {
		t.Fatalf("without -pos: got %v, want ErrNoPosition", err)
	}
	m.SetTXID(7)
	if got, err := CurrentTXID(t.Context(), db); got != 7 || err != nil {
		t.Fatalf("got %v, %v; want 7", got, err)
	}
	if got, err := WaitTXID(t.Context(), db, 5); got != 7 || err != nil {
		t.Fatalf("already reached: got %v, %v; want 7", got, err)
	}

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
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := WaitTXID(ctx, db, 100); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled: got %v, want context.Canceled", err)
	}
	if err := os.WriteFile(m.PosPath(), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := WaitTXID(t.Context(), db, 100); err == nil || errors.Is(err, ErrNoPosition) {
		t.Fatalf("garbage -pos: got %v, want a parse error", err)
	}
}

func TestTrackerTXID(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	db := openDB(t, m, "")
	m.SetTXID(41)
	tr := &Tracker{}
	ctx := WithTracker(t.Context(), tr)
	if _, ok, err := tr.TXID(); ok || err != nil {
		t.Fatalf("before any write: got ok=%v, %v", ok, err)
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO t(v) VALUES ('x')"); err != nil {
		t.Fatal(err)
	}
	m.SetTXID(42) // what LiteFS would show after that commit
	if id, ok, err := tr.TXID(); id != 42 || !ok || err != nil {
		t.Fatalf("got %v, %v, %v; want 42", id, ok, err)
	}
}
