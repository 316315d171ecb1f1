package litefstest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
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
		assert.NoError(t, err)
		assert.Equal(t, 5, calls)
	})
	t.Run("times out", func(t *testing.T) {
		t.Parallel()
		start := time.Now()
		err := waitUntil(t.Context(), 30*time.Millisecond, func() error { return errors.New("still cold") })
		assert.ErrorContains(t, err, "still waiting after 30ms: still cold", "a timeout naming the last error")
		assert.GreaterOrEqual(t, time.Since(start), 30*time.Millisecond, "gave up before the timeout")
	})
	t.Run("stops", func(t *testing.T) {
		t.Parallel()
		calls := 0
		boom := errors.New("exited")
		err := waitUntil(t.Context(), time.Minute, func() error { calls++; return errStop{boom} })
		assert.Equal(t, boom, err, "the error itself, unwrapped")
		assert.Equal(t, 1, calls)
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
		assert.ErrorContains(t, err, "stopped waiting (context canceled): waiting", "a cancellation naming the last error")
	})
}
