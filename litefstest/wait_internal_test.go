package litefstest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestWaitUntil(t *testing.T) {
	t.Parallel()
	t.Run("succeeds", func(t *testing.T) {
		t.Parallel()
		calls := 0
		err := waitUntil(t.Context(), time.Minute, func() error {
			if calls++; calls < 5 {
				return errors.New("not yet")
			}
			return nil
		})
		if err != nil || calls != 5 {
			t.Errorf("got %v after %d calls, want nil after 5", err, calls)
		}
	})
	t.Run("times out", func(t *testing.T) {
		t.Parallel()
		start := time.Now()
		err := waitUntil(t.Context(), 30*time.Millisecond, func() error { return errors.New("still cold") })
		if err == nil || !strings.Contains(err.Error(), "still waiting after 30ms: still cold") {
			t.Errorf("got %v, want a timeout naming the last error", err)
		}
		if d := time.Since(start); d < 30*time.Millisecond {
			t.Errorf("gave up after %v, before the timeout", d)
		}
	})
	t.Run("stops", func(t *testing.T) {
		t.Parallel()
		calls := 0
		boom := errors.New("exited")
		err := waitUntil(t.Context(), time.Minute, func() error { calls++; return errStop{boom} })
		if err != boom || calls != 1 {
			t.Errorf("got %v after %d calls, want %v after 1", err, calls, boom)
		}
	})
	t.Run("canceled", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		calls := 0
		err := waitUntil(ctx, time.Minute, func() error {
			if calls++; calls == 3 {
				cancel()
			}
			return errors.New("waiting")
		})
		if err == nil || !strings.Contains(err.Error(), "stopped waiting (context canceled): waiting") {
			t.Errorf("got %v, want a cancellation naming the last error", err)
		}
	})
}
