package server

import (
	"context"
	"math"
	"net"
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
	return &ipRates{limit: rate.Limit(perSecond), burst: burst, idle: max(idle, time.Second),
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
// IP, or its /64 for IPv6, where one client usually holds a whole /64.
func clientKey(remote string) netip.Addr {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return netip.Addr{}
	}
	ip := ap.Addr().Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.Addr()
	}
	return ip
}

// retryAfter formats d as whole seconds, at least 1.
func retryAfter(d time.Duration) string {
	return strconv.Itoa(max(1, int(math.Ceil(d.Seconds()))))
}

// perIPListener closes accepted connections beyond max per client address
// before anything is read from them (so before the TLS handshake).
type perIPListener struct {
	net.Listener
	max      *atomic.Int64 // 0 or less: no cap; read at every Accept
	rejected func()

	mu     sync.Mutex
	counts map[netip.Addr]int
}

func (l *perIPListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		max := l.max.Load()
		if max <= 0 {
			return c, nil
		}
		key := clientKey(c.RemoteAddr().String())
		l.mu.Lock()
		if int64(l.counts[key]) >= max {
			l.mu.Unlock()
			c.Close()
			l.rejected()
			continue
		}
		l.counts[key]++
		l.mu.Unlock()
		return &countedConn{Conn: c, release: func() { l.release(key) }}, nil
	}
}

func (l *perIPListener) release(key netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.counts[key]--; l.counts[key] <= 0 {
		delete(l.counts, key)
	}
}

// countedConn gives its slot back once, on the first Close.
type countedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *countedConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}
