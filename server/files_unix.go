//go:build unix

package server

import "syscall"

// openFlags are added when Files opens a file: O_NONBLOCK, so that opening
// a FIFO under the root returns at once (to be refused) instead of waiting
// for a writer. It changes nothing for regular files and directories.
const openFlags = syscall.O_NONBLOCK
