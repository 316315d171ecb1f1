package dirwatch

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReleaseRacingAcquireOfTheSameDirectory: an Acquire of a directory
// racing the Release of its last reference must get a watch: inotify_add_watch
// on an inode the instance still watches returns the existing descriptor,
// which must be free by then, or the driver would fall back to the mtime
// check (a stat per write) for that connection's life. Another directory's
// watch keeps the hub alive, so both use one instance.
func TestReleaseRacingAcquireOfTheSameDirectory(t *testing.T) {
	keep := acquire(t, t.TempDir())
	_ = keep
	dir := t.TempDir()
	const goroutines, rounds = 4, 2000
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				w, err := Acquire(dir)
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					continue
				}
				w.Release()
			}
		}()
	}
	wg.Wait()
	assert.Zero(t, len(errs), "Acquires of a watchable directory that failed, of %d; first: %v",
		goroutines*rounds, first(errs))
	w, err := Acquire(dir)
	require.NoError(t, err)
	w.Release()
}

func first(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return errs[0]
}
