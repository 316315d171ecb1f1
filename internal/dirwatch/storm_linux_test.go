package dirwatch

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestAcquireReleaseStorm: goroutines acquire and release watches of a few
// directories, change their role files and Sync, while the hub comes and
// goes; -race checks the registry, the hub and the watches, and every
// watch ends released with no hub left behind.
func TestAcquireReleaseStorm(t *testing.T) {
	dirs := make([]string, 4)
	for i := range dirs {
		dirs[i] = t.TempDir()
	}
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 300 {
				dir := dirs[(g+i)%len(dirs)]
				w, err := Acquire(dir)
				if !assert.NoError(t, err, "see TestReleaseRacingAcquireOfTheSameDirectory") {
					continue
				}
				if i%7 == 0 {
					_ = os.WriteFile(filepath.Join(dir, ".primary"), []byte("a\n"), 0o644)
					Sync(dir)
				}
				_ = w.Gen()
				w.Release()
			}
		}()
	}
	wg.Wait()
	regMu.Lock()
	defer regMu.Unlock()
	assert.Nil(t, current, "a hub outlives every watch")
	assert.Empty(t, watches, "watches left registered")
}
