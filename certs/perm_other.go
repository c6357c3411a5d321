//go:build !unix

package certs

// CheckKeyPerm checks nothing where files have no unix permissions.
func CheckKeyPerm(string) error { return nil }

// CheckDirPerm checks nothing where files have no unix permissions.
func CheckDirPerm(string) error { return nil }
