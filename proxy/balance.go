package proxy

import (
	"slices"
	"sync/atomic"
	"time"
)

// roundRobin returns a picker that takes the usable upstreams in turn.
func (p *Proxy) roundRobin() func(tried []*upstream) *upstream {
	var next atomic.Uint64
	return func(tried []*upstream) *upstream {
		n := uint64(len(p.ups))
		start := next.Add(1) - 1
		now := time.Now()
		for i := range n {
			u := p.ups[(start+i)%n]
			if !slices.Contains(tried, u) && u.usable(now) {
				return u
			}
		}
		return nil
	}
}

// leastConn picks the usable upstream with the fewest requests in flight,
// the first in configured order on a tie.
func (p *Proxy) leastConn(tried []*upstream) *upstream {
	var best *upstream
	var bestN int64
	now := time.Now()
	for _, u := range p.ups {
		if slices.Contains(tried, u) || !u.usable(now) {
			continue
		}
		if n := u.inFlight.Load(); best == nil || n < bestN {
			best, bestN = u, n
		}
	}
	return best
}
