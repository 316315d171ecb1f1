package litefs

import (
	"context"
	"errors"
	"testing"
)

func TestTrackerContext(t *testing.T) {
	t.Parallel()
	type otherKey struct{}
	parent, cancel := context.WithCancelCause(context.WithValue(context.Background(), otherKey{}, "v"))
	ctx := &TrackerContext{Context: parent}
	if got := TrackerFrom(ctx); got != &ctx.Tracker {
		t.Errorf("TrackerFrom: got %p, want %p", got, &ctx.Tracker)
	}
	if got, want := ctx.Value(otherKey{}), "v"; got != want {
		t.Errorf("parent value: got %v, want %v", got, want)
	}
	if got := ctx.Value([]int{1}); got != nil { // an uncomparable key must not panic
		t.Errorf("unknown key: got %v, want nil", got)
	}
	child, stop := context.WithCancel(ctx)
	defer stop()
	cause := errors.New("client gone")
	cancel(cause)
	<-child.Done()
	if got := context.Cause(child); got != cause {
		t.Errorf("cause through a TrackerContext: got %v, want %v", got, cause)
	}
	if TrackerFrom(context.Background()) != nil {
		t.Error("TrackerFrom found a Tracker in a bare context")
	}
}

func TestTrackerReportRefusal(t *testing.T) {
	t.Parallel()
	tr := &Tracker{}
	if tr.Refusal() != nil {
		t.Fatal("a new Tracker has a refusal")
	}
	tr.ReportRefusal(errors.New("not a refusal"))
	if tr.Refusal() != nil {
		t.Fatal("recorded an error that is not a refusal")
	}
	first := &NotPrimaryError{PrimaryID: "node-a"}
	tr.ReportRefusal(first)
	tr.ReportRefusal(&NotPrimaryError{PrimaryID: "node-b"})
	if tr.Refusal() != first {
		t.Fatalf("got %v, want the first refusal", tr.Refusal())
	}
	var nilTracker *Tracker
	nilTracker.ReportRefusal(first) // must not panic
	if nilTracker.Refusal() != nil || nilTracker.Committed() {
		t.Fatal("a nil Tracker reports something")
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		err       error
		notPrim   bool
		noPrimary bool
		msg       string
	}{
		{"id only", &NotPrimaryError{PrimaryID: "node-a"}, true, false, `litefs: not the primary; writes go to "node-a"`},
		{"empty", &NotPrimaryError{}, true, false, "litefs: not the primary"},
		{"wrapped", errors.Join(errors.New("ctx"), &NotPrimaryError{PrimaryID: "x"}), true, false, ""},
		{"no primary", &noPrimaryError{reason: "LiteFS reports no primary"}, true, true, "litefs: no primary known: LiteFS reports no primary"},
		{"sentinel", ErrNoPrimary, true, true, "litefs: no primary known"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := errors.Is(tc.err, ErrNotPrimary); got != tc.notPrim {
				t.Errorf("Is(ErrNotPrimary) = %v, want %v", got, tc.notPrim)
			}
			if got := errors.Is(tc.err, ErrNoPrimary); got != tc.noPrimary {
				t.Errorf("Is(ErrNoPrimary) = %v, want %v", got, tc.noPrimary)
			}
			if tc.msg != "" && tc.err.Error() != tc.msg {
				t.Errorf("Error() = %q, want %q", tc.err.Error(), tc.msg)
			}
		})
	}
}
