//go:build !linux

package litefs

import "errors"

// LiteFS runs on Linux only; elsewhere the HALT lock cannot be taken.
type lockFile struct{}

var errHaltUnsupported = errors.New("the HALT lock needs Linux (OFD locks)")

func openLockFile(string) (*lockFile, error) { return nil, errHaltUnsupported }
func (*lockFile) lock() error                { return errHaltUnsupported }
func (*lockFile) abort()                     {}
func (*lockFile) unlock() error              { return nil }
func (*lockFile) close()                     {}
