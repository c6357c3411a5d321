//go:build !unix

package main

// canWrite cannot tell ahead of time where there is no access(2); it
// lets the first write report the problem.
func canWrite(string) error { return nil }

// raiseFileLimit has no limit to raise here.
func raiseFileLimit() uint64 { return 0 }
