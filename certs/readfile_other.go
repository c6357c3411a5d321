//go:build !unix

package certs

import "os"

// openFlags is plain O_RDONLY where there is no O_NONBLOCK for files.
const openFlags = os.O_RDONLY
