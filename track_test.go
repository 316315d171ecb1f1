package litefs

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs/litefstest"
)

func TestTrackerContext(t *testing.T) {
	t.Parallel()
	type otherKey struct{}
	parent, cancel := context.WithCancelCause(context.WithValue(context.Background(), otherKey{}, "v"))
	ctx := &TrackerContext{Context: parent}
	assert.Same(t, &ctx.Tracker, TrackerFrom(ctx), "TrackerFrom")
	assert.Equal(t, "v", ctx.Value(otherKey{}), "parent value")
	assert.Nil(t, ctx.Value([]int{1}), "an uncomparable key must not panic")
	child, stop := context.WithCancel(ctx)
	defer stop()
	cause := errors.New("client gone")
	cancel(cause)
	<-child.Done()
	assert.Equal(t, cause, context.Cause(child), "cause through a TrackerContext")
	assert.Nil(t, TrackerFrom(context.Background()), "TrackerFrom found a Tracker in a bare context")
}

func TestTrackerReportRefusal(t *testing.T) {
	t.Parallel()
	tr := &Tracker{}
	require.NoError(t, tr.Refusal(), "a new Tracker has a refusal")
	tr.ReportRefusal(errors.New("not a refusal"))
	require.NoError(t, tr.Refusal(), "recorded an error that is not a refusal")
	first := &NotPrimaryError{PrimaryID: "node-a"}
	tr.ReportRefusal(first)
	tr.ReportRefusal(&NotPrimaryError{PrimaryID: "node-b"})
	require.Same(t, first, tr.Refusal(), "want the first refusal")
	var nilTracker *Tracker
	nilTracker.ReportRefusal(first) // must not panic
	assert.NoError(t, nilTracker.Refusal(), "a nil Tracker reports a refusal")
	assert.False(t, nilTracker.Committed(), "a nil Tracker reports a commit")
}

func TestErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		err       error
		notPrim   bool
		noPrimary bool
		msg       string
	}{
		{name: "id only", err: &NotPrimaryError{PrimaryID: "node-a"}, notPrim: true, msg: `litefs: not the primary; writes go to "node-a"`},
		{name: "empty", err: &NotPrimaryError{}, notPrim: true, msg: "litefs: not the primary"},
		{name: "wrapped", err: errors.Join(errors.New("ctx"), &NotPrimaryError{PrimaryID: "x"}), notPrim: true},
		{name: "no primary", err: &noPrimaryError{reason: "LiteFS reports no primary"}, notPrim: true, noPrimary: true, msg: "litefs: no primary known: LiteFS reports no primary"},
		{name: "sentinel", err: ErrNoPrimary, notPrim: true, noPrimary: true, msg: "litefs: no primary known"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tc.notPrim, errors.Is(tc.err, ErrNotPrimary), "Is(ErrNotPrimary)")
			assert.Equal(t, tc.noPrimary, errors.Is(tc.err, ErrNoPrimary), "Is(ErrNoPrimary)")
			if tc.msg != "" {
				assert.EqualError(t, tc.err, tc.msg)
			}
		})
	}
}

// TestCommitHookOnlyForTrackers: a connection registers its commit hook the
// first time it runs for a Tracker, and the Tracker then hears the commit
// of that statement, or of a transaction begun for it.
func TestCommitHookOnlyForTrackers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		run  func(ctx context.Context, conn *sql.Conn) error
	}{
		{name: "statement", run: func(ctx context.Context, conn *sql.Conn) error {
			_, err := conn.ExecContext(ctx, "INSERT INTO hooked VALUES (2)")
			return err
		}},
		{name: "transaction begun for the tracker", run: func(ctx context.Context, conn *sql.Conn) error {
			tx, err := conn.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(context.Background(), "INSERT INTO hooked VALUES (3)"); err != nil {
				return err
			}
			return tx.Commit()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, c := pinConn(t, openDB(t, litefstest.NewMount(t), ""))
			_, err := conn.ExecContext(context.Background(), "CREATE TABLE hooked(x)")
			require.NoError(t, err)
			require.False(t, c.hooked, "a connection that never ran for a Tracker registered the commit hook")
			tr := &Tracker{}
			require.NoError(t, tt.run(WithTracker(context.Background(), tr), conn))
			assert.True(t, tr.Committed(), "the tracker did not hear the commit")
			assert.True(t, c.hooked)
		})
	}
}
