package certs

import (
	"context"
	"time"
)

// backoff is the wait after a failure that follows failures earlier
// consecutive ones: lo, doubling each time, at most hi.
func backoff(lo, hi time.Duration, failures int) time.Duration {
	d := lo
	for i := 0; i < failures && d < hi; i++ {
		d *= 2
	}
	return min(d, hi)
}

// retry calls attempt until it reports success or ctx is done. After a
// failure it waits until the time attempt returned (lo when that is not in
// the future).
func retry(ctx context.Context, lo, hi time.Duration, attempt func() (ok bool, next time.Time)) {
	for {
		ok, next := attempt()
		if ok {
			return
		}
		wait := time.Until(next)
		if wait <= 0 {
			wait = lo
		}
		if !sleep(ctx, wait) {
			return
		}
	}
}

// sleep waits for d and reports true, or false as soon as ctx is done.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
