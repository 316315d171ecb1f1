package litefs

import (
	"sync"
	"testing"
	"time"
)

// keepWriting runs write(0), write(1), ... on a goroutine of its own, a
// millisecond apart (the machine is shared), until the returned stop is
// called, which waits for it; an error fails t and ends the writer.
func keepWriting(t *testing.T, write func(i int) error) (stop func()) {
	t.Helper()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			if err := write(i); err != nil {
				t.Errorf("background writer: %v", err)
				return
			}
			time.Sleep(time.Millisecond) // pacing, not synchronization
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}
