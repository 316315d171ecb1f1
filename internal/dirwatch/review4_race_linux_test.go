package dirwatch

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReleaseRacingAcquireOfTheSameDirectory: Release of a directory's last
// reference drops regMu before it removes the watch descriptor under
// hub.mu. An Acquire of the same directory in that window finds no
// registered watch and asks the kernel for one: inotify_add_watch on an
// inode the instance already watches returns the existing descriptor,
// still in h.wds, and Acquire fails with errWDInUse (the "never" of add's
// comment). The driver then falls back to the mtime check (a stat per
// write) for that connection's life, though the directory is watchable.
// Another directory's watch keeps the hub alive, so both use one instance.
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
