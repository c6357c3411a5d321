package server

import (
	"context"
	"math"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// gate caps the requests served at once; a request beyond the cap waits up
// to the queue timeout for a slot.
type gate struct {
	slots   chan struct{}
	timeout time.Duration
}

// newGate returns nil (no cap) when max is 0 or less.
func newGate(max int, timeout time.Duration) *gate {
	if max <= 0 {
		return nil
	}
	return &gate{slots: make(chan struct{}, max), timeout: timeout}
}

// acquire takes a slot, waiting up to the queue timeout, and reports
// whether it got one; release must follow a true.
func (g *gate) acquire(ctx context.Context) bool {
	select {
	case g.slots <- struct{}{}:
		return true
	default:
	}
	if g.timeout <= 0 {
		return false
	}
	t := time.NewTimer(g.timeout)
	defer t.Stop()
	select {
	case g.slots <- struct{}{}:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

func (g *gate) release() { <-g.slots }

// ipRates is a token bucket per client address (per /64 for IPv6). Idle
// buckets, which would be full again, are dropped every sweepEvery, so
// memory follows the clients of the last minutes, not all ever seen.
type ipRates struct {
	limit rate.Limit
	burst int
	idle  time.Duration // a bucket unused this long is full: dropping it loses nothing

	mu        sync.Mutex
	buckets   map[netip.Addr]*bucket
	lastSweep time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

const sweepEvery = 10 * time.Second

// newIPRates returns nil (no limit) when perSecond is 0 or less. A zero
// burst means max(1, perSecond).
func newIPRates(perSecond float64, burst int) *ipRates {
	if perSecond <= 0 {
		return nil
	}
	if burst <= 0 {
		burst = max(1, int(math.Ceil(perSecond)))
	}
	idle := time.Duration(float64(burst) / perSecond * float64(time.Second))
	return &ipRates{limit: rate.Limit(perSecond), burst: burst, idle: min(max(idle, time.Second), time.Hour),
		buckets: map[netip.Addr]*bucket{}}
}

// allow takes a token for ip; when none is left it returns false and how
// long until one is.
func (r *ipRates) allow(ip netip.Addr, now time.Time) (bool, time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.Sub(r.lastSweep) >= sweepEvery {
		r.sweep(now)
	}
	b := r.buckets[ip]
	if b == nil {
		b = &bucket{lim: rate.NewLimiter(r.limit, r.burst)}
		r.buckets[ip] = b
	}
	b.seen = now
	res := b.lim.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, d
	}
	return true, 0
}

func (r *ipRates) sweep(now time.Time) {
	r.lastSweep = now
	for ip, b := range r.buckets {
		if now.Sub(b.seen) > r.idle {
			delete(r.buckets, ip)
		}
	}
}

// size returns the number of buckets held.
func (r *ipRates) size() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.buckets)
}

// clientKey is the address rate limits and connection caps count by: the
// IP of remote (IP:PORT or an IP), or its /64 for IPv6, where one client
// usually holds a whole /64.
func clientKey(remote string) netip.Addr {
	ip := clientAddr(remote)
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.Addr()
	}
	return ip
}

// clientAddr returns the address of remote ("ip:port", or an address
// alone), IPv4-mapped addresses unmapped; the zero Addr if it is neither.
// Membership and loopback tests use it; counting uses clientKey.
func clientAddr(remote string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap()
	}
	if a, err := netip.ParseAddr(remote); err == nil { // from X-Forwarded-For
		return a.Unmap()
	}
	return netip.Addr{}
}

// retryAfter formats d as whole seconds, at least 1.
func retryAfter(d time.Duration) string {
	return strconv.Itoa(max(1, int(math.Ceil(d.Seconds()))))
}

// ipSlots caps the requests in flight per client address (per /64 for
// IPv6), so that one client cannot take every slot of the gate; a request
// beyond its client's cap waits up to the queue timeout for one of that
// client's requests to finish.
type ipSlots struct {
	max     int
	timeout time.Duration

	mu      sync.Mutex
	clients map[netip.Addr]*ipSlot
}

// ipSlot is one client's slots; refs counts its holders and waiters.
type ipSlot struct {
	sem  chan struct{}
	refs int
}

// newIPSlots returns nil (no cap) when max is 0 or less.
func newIPSlots(max int, timeout time.Duration) *ipSlots {
	if max <= 0 {
		return nil
	}
	return &ipSlots{max: max, timeout: timeout, clients: map[netip.Addr]*ipSlot{}}
}

// acquire takes one of ip's slots, waiting up to the queue timeout, and
// returns it, or nil when none came free; release must follow a non-nil.
func (p *ipSlots) acquire(ctx context.Context, ip netip.Addr) *ipSlot {
	p.mu.Lock()
	c := p.clients[ip]
	if c == nil {
		c = &ipSlot{sem: make(chan struct{}, p.max)}
		p.clients[ip] = c
	}
	c.refs++
	p.mu.Unlock()
	select {
	case c.sem <- struct{}{}:
		return c
	default:
	}
	if p.timeout > 0 {
		t := time.NewTimer(p.timeout)
		defer t.Stop()
		select {
		case c.sem <- struct{}{}:
			return c
		case <-t.C:
		case <-ctx.Done():
		}
	}
	p.drop(ip, c)
	return nil
}

func (p *ipSlots) release(ip netip.Addr, c *ipSlot) {
	<-c.sem
	p.drop(ip, c)
}

func (p *ipSlots) drop(ip netip.Addr, c *ipSlot) {
	p.mu.Lock()
	if c.refs--; c.refs == 0 {
		delete(p.clients, ip)
	}
	p.mu.Unlock()
}

// size returns the number of clients with requests in flight or waiting.
func (p *ipSlots) size() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.clients)
}

// same reports whether p and q cap alike, so that a reload may keep p.
func (p *ipSlots) same(q *ipSlots) bool {
	return p == nil && q == nil || p != nil && q != nil && p.max == q.max && p.timeout == q.timeout
}

func (r *ipRates) same(q *ipRates) bool {
	return r == nil && q == nil || r != nil && q != nil && r.limit == q.limit && r.burst == q.burst
}

// counter caps a count without waiting. A nil counter has no cap.
type counter struct {
	n   atomic.Int64
	max int64
}

// newCounter returns nil (no cap) when max is 0 or less.
func newCounter(max int) *counter {
	if max <= 0 {
		return nil
	}
	return &counter{max: int64(max)}
}

// tryAcquire counts one more unless the cap is reached.
func (c *counter) tryAcquire() bool {
	if c == nil {
		return true
	}
	if c.n.Add(1) > c.max {
		c.n.Add(-1)
		return false
	}
	return true
}

func (c *counter) release() {
	if c != nil {
		c.n.Add(-1)
	}
}

// count returns the count (0 for no cap: then nothing is counted).
func (c *counter) count() int64 {
	if c == nil {
		return 0
	}
	return c.n.Load()
}
