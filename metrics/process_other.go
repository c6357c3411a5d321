//go:build !unix

package metrics

import "time"

// cpuTime is not reported where getrusage does not exist.
func cpuTime() (time.Duration, bool) { return 0, false }

// maxFDs is not reported where there is no RLIMIT_NOFILE.
func maxFDs() (uint64, bool) { return 0, false }
