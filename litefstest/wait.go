package litefstest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// DefaultWaitTimeout bounds [WaitFor] and the helpers built on it.
const DefaultWaitTimeout = 15 * time.Second

// WaitFor calls cond until it returns nil and fails the test with cond's
// last error if that does not happen within DefaultWaitTimeout or before the
// test's context ends. It polls with backoff, from 1 ms doubling to 50 ms.
// Call it from the test's goroutine.
func WaitFor(tb testing.TB, cond func() error) {
	tb.Helper()
	if err := waitUntil(tb.Context(), DefaultWaitTimeout, cond); err != nil {
		tb.Fatalf("litefstest: %v", err)
	}
}

// errStop wraps an error that waitUntil must return at once instead of
// polling again, such as the exit of the process being waited for.
type errStop struct{ err error }

func (e errStop) Error() string { return e.err.Error() }
func (e errStop) Unwrap() error { return e.err }

// waitUntil polls cond until it returns nil, returns an errStop, ctx ends, or
// timeout passes; the error then names cond's last error.
func waitUntil(ctx context.Context, timeout time.Duration, cond func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	delay := time.Millisecond
	timer := time.NewTimer(delay)
	defer timer.Stop()
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if stop := (errStop{}); errors.As(err, &stop) {
			return stop.err
		}
		timer.Reset(delay) // since Go 1.23, Reset needs no drained channel
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("still waiting after %v: %w", timeout, err)
			}
			return fmt.Errorf("stopped waiting (%v): %w", ctx.Err(), err)
		case <-timer.C:
		}
		delay = min(2*delay, 50*time.Millisecond)
	}
}
