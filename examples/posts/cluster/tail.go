//go:build linux

package main

import (
	"errors"
	"io"
	"os"
	"sync"
	"time"
)

// tailInterval is how often a tail looks for new output.
const tailInterval = 50 * time.Millisecond

// tail copies what a process appends to its log file to a writer, as
// "tail -f" does, so that LiteFS writes to a file it can always write to
// and the user still sees its output.
type tail struct {
	quit     chan struct{} // closed by stop
	quitOnce sync.Once
	done     chan struct{} // closed when the copy has ended
}

// startTail copies the file at path to w until stop is called.
func startTail(path string, w io.Writer) *tail {
	t := &tail{quit: make(chan struct{}), done: make(chan struct{})}
	go t.run(path, w)
	return t
}

func (t *tail) run(path string, w io.Writer) {
	defer close(t.done)
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	tick := time.NewTicker(tailInterval)
	defer tick.Stop()
	for {
		_, err := io.Copy(w, f) // to the end of what is written so far
		if err != nil && !errors.Is(err, io.EOF) {
			return
		}
		select {
		case <-t.quit:
			_, _ = io.Copy(w, f)
			return
		case <-tick.C:
		}
	}
}

// stop copies what is left and ends the copy. It may be called on a nil
// tail, and more than once.
func (t *tail) stop() {
	if t == nil {
		return
	}
	t.quitOnce.Do(func() { close(t.quit) })
	<-t.done
}
