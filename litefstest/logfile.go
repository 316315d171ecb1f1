package litefstest

import (
	"fmt"
	"io"
	"os"
)

// maxLog bounds the output read back from a log file; past it only the
// last maxLog bytes are read.
const maxLog = 8 << 20

// logFile is the file a LiteFS process writes its output (and its app's)
// to. It is a file, not a pipe, so that LiteFS outlives the test process:
// with a pipe, a LiteFS whose test process died would be killed by SIGPIPE
// at its next log line, before it tries to unmount. The kit reads it back from the
// path, so it has every line, even those written after a crash.
type logFile struct {
	path string
}

// createLog creates (or truncates) the log file at path and returns it with
// the file LiteFS's stdout and stderr are to be set to; the caller closes
// that file once the process has started.
func createLog(path string) (*logFile, *os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, err
	}
	return &logFile{path: path}, f, nil
}

// String returns the log, or its last maxLog bytes after a line saying how
// many were left out.
func (l *logFile) String() string {
	f, err := os.Open(l.path)
	if err != nil {
		return fmt.Sprintf("[cannot read %s: %v]\n", l.path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Sprintf("[cannot read %s: %v]\n", l.path, err)
	}
	skip := max(fi.Size()-maxLog, 0)
	if _, err := f.Seek(skip, io.SeekStart); err != nil {
		return fmt.Sprintf("[cannot read %s: %v]\n", l.path, err)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxLog))
	if err != nil {
		return fmt.Sprintf("[cannot read %s: %v]\n", l.path, err)
	}
	if skip > 0 {
		return fmt.Sprintf("[%d earlier bytes left out; all in %s]\n%s", skip, l.path, b)
	}
	return string(b)
}
