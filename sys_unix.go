//go:build unix

package main

import "syscall"

// canWrite reports whether this process may create files in dir.
func canWrite(dir string) error {
	return syscall.Access(dir, 2 /* W_OK */)
}
