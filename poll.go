package litefs

import (
	"context"
	"time"
)

// poll calls try at once, then again after 1 ms, doubling the delay up to
// maxDelay, until try reports done or fails, or ctx ends (context.Cause).
func poll(ctx context.Context, maxDelay time.Duration, try func() (done bool, err error)) error {
	delay := time.Millisecond
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-t.C:
		}
		if done, err := try(); done || err != nil {
			return err
		}
		t.Reset(delay)
		delay = min(2*delay, maxDelay)
	}
}
