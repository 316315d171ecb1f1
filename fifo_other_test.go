//go:build !unix

package litefs

import "errors"

func mkfifo(string) error { return errors.New("no FIFOs on this system") }
