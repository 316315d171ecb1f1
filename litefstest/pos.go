package litefstest

import (
	"fmt"
	"os"
)

// Pos is a database's replication position as LiteFS shows it in the
// <db>-pos file: the ID of the last transaction applied and the database
// checksum after it.
type Pos struct {
	TXID     uint64
	Checksum uint64
}

// posLen is the length of a position without its newline: 16 hex digits, a
// slash and 16 hex digits.
const posLen = 16 + 1 + 16

// String formats pos as LiteFS does, without the trailing newline:
// "0000000000000003/a2fc350ac7362d33".
func (pos Pos) String() string {
	return fmt.Sprintf("%016x/%016x", pos.TXID, pos.Checksum)
}

// ParsePos parses the contents of a <db>-pos file: 16 hex digits, '/', 16
// hex digits and an optional newline. Anything else is an error.
func ParsePos(b []byte) (Pos, error) {
	s := b
	if n := len(s); n > 0 && s[n-1] == '\n' {
		s = s[:n-1]
	}
	if len(s) != posLen || s[16] != '/' {
		return Pos{}, fmt.Errorf("litefstest: invalid position %q: want 16 hex digits, '/', 16 hex digits", truncate(b))
	}
	txid, ok1 := parseHex16(s[:16])
	sum, ok2 := parseHex16(s[17:])
	if !ok1 || !ok2 {
		return Pos{}, fmt.Errorf("litefstest: invalid position %q: not hexadecimal", truncate(b))
	}
	return Pos{TXID: txid, Checksum: sum}, nil
}

// ReadPos reads and parses the position file at path (a database path plus
// "-pos").
func ReadPos(path string) (Pos, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Pos{}, err
	}
	pos, err := ParsePos(b)
	if err != nil {
		return Pos{}, fmt.Errorf("%s: %w", path, err)
	}
	return pos, nil
}

func parseHex16(b []byte) (uint64, bool) {
	var v uint64
	for _, c := range b {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		v = v<<4 | uint64(d)
	}
	return v, true
}

// truncate shortens b for an error message.
func truncate(b []byte) string {
	const limit = 64
	if len(b) > limit {
		return string(b[:limit]) + "..."
	}
	return string(b)
}
