package litefs

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestVacuums(t *testing.T) {
	t.Parallel()
	tests := []struct {
		query string
		want  bool
	}{
		{"VACUUM", true},
		{"vacuum main", true},
		{`VACUUM "main"`, true},
		{"/* c */ VACUUM", true},
		{"-- c\nVACUUM;", true},
		{"SELECT 1; VACUUM", true},
		{"VACUUM; SELECT 1", true},
		{"INSERT INTO t VALUES (1); VACUUM", true},
		{"VACUUM INTO '/tmp/copy.db'", false},
		{"VACUUM main INTO '/tmp/copy.db'", false},
		{`VACUUM "main" INTO ?`, false},
		{"VACUUM INTO 'a'; VACUUM", true},
		{"SELECT 'VACUUM'", false},
		{"SELECT vacuum FROM t", false},
		{"INSERT INTO vacuum VALUES (1)", false},
		{"", false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, vacuums(tt.query), "vacuums(%q)", tt.query)
	}
}

func TestMayCommit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		query string
		want  bool
	}{
		{"COMMIT", true},
		{"commit transaction", true},
		{"END", true},
		{"/* c */ RELEASE sp", true},
		{"ROLLBACK", false},
		{"SELECT 1", false},
		{"SELECT 'COMMIT'", false},
		{"", false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, mayCommit(tt.query), "mayCommit(%q)", tt.query)
	}
}
