package certs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// MaxFileSize is the largest file ReadFile reads: certificates, keys and
// configs are a few KiB.
const MaxFileSize = 1 << 20

// ReadFile reads name, following symlinks, like os.ReadFile, but refuses
// anything that is not a regular file (a directory, a device such as
// /dev/zero, a named pipe) or is larger than MaxFileSize, and never blocks:
// it opens without waiting (O_NONBLOCK where the platform has it, so a
// named pipe swapped in meanwhile does not hang it) and checks the file it
// opened. Its errors wrap an *fs.PathError naming the file.
func ReadFile(name string) ([]byte, error) {
	fail := func(err error) ([]byte, error) {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // name the file once
		}
		return nil, fmt.Errorf("certs: %w", &fs.PathError{Op: "read", Path: name, Err: err})
	}
	f, err := os.OpenFile(name, openFlags, 0)
	if err != nil {
		return fail(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fail(err)
	}
	if !fi.Mode().IsRegular() {
		return fail(fmt.Errorf("not a regular file (%s)", fileKind(fi.Mode())))
	}
	if fi.Size() > MaxFileSize {
		return fail(errors.New(tooLarge))
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return fail(err)
	}
	if len(data) > MaxFileSize { // it grew since Stat
		return fail(errors.New(tooLarge))
	}
	return data, nil
}

const tooLarge = "larger than 1 MiB" // MaxFileSize

// fileKind names the type of a file that is not regular.
func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeSymlink != 0:
		return "a symlink"
	}
	return "an irregular file"
}
