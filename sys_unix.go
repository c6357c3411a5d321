//go:build unix

package main

import "syscall"

// canWrite reports whether this process may create files in dir.
func canWrite(dir string) error {
	return syscall.Access(dir, 2 /* W_OK */)
}

// raiseFileLimit raises the soft limit on open files to the hard limit
// (Go does so at start on Linux and macOS, not on every Unix) and returns
// the limit; 0 if it cannot be read.
func raiseFileLimit() uint64 {
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) != nil {
		return 0
	}
	if lim.Cur < lim.Max {
		raised := lim
		raised.Cur = lim.Max
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised) == nil {
			lim = raised
		}
	}
	return uint64(lim.Cur)
}
