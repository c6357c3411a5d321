//go:build !unix

package server

// openFlags are added when Files opens a file; none here (see
// files_unix.go).
const openFlags = 0
