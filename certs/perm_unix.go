//go:build unix

package certs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// CheckKeyPerm returns an error, saying how to fix it, when users other
// than its owner may read or write the private key file (the file a
// symlink points to, so a Kubernetes Secret mounted with defaultMode 0400
// or 0600 passes).
func CheckKeyPerm(file string) error {
	fi, err := os.Stat(file)
	if err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	var what string
	switch perm := fi.Mode().Perm(); {
	case perm&0o044 != 0:
		what = "readable"
	case perm&0o022 != 0:
		what = "writable"
	default:
		return nil
	}
	return fmt.Errorf("certs: %s is %s by others (mode %04o); run: chmod 600 %s", file, what, fi.Mode().Perm(), file)
}

// CheckDirPerm returns an error, saying how to fix it, when users other
// than its owner may write in dir (after symlinks), and so replace the
// files in it. A dir that does not exist yet passes.
func CheckDirPerm(dir string) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	if perm := fi.Mode().Perm(); fi.IsDir() && perm&0o022 != 0 {
		return fmt.Errorf("certs: %s is writable by others (mode %04o); run: chmod 700 %s", dir, perm, dir)
	}
	return nil
}
