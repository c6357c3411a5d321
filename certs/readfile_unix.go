//go:build unix

package certs

import (
	"os"
	"syscall"
)

// openFlags opens without waiting for a writer, should the file be a
// named pipe; ReadFile refuses it once open.
const openFlags = os.O_RDONLY | syscall.O_NONBLOCK
