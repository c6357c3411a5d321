package server

import (
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// connTracker counts the open connections of one or more listeners: at
// most max in all and maxPerIP per client address. When the total is
// reached it closes the connections that have been idle longest (keep-
// alive connections between requests, HTTP/2 connections without
// streams), as nginx does, so that new clients are served; only when
// none is idle is a new connection refused.
type connTracker struct {
	max      atomic.Int64 // 0 or less: no cap
	maxPerIP atomic.Int64 // 0 or less: no cap
	refused  func(reason string)

	mu    sync.Mutex
	n     int
	perIP map[netip.Addr]int
	idle  idleList // oldest first
}

func newConnTracker(refused func(reason string)) *connTracker {
	return &connTracker{refused: refused, perIP: map[netip.Addr]int{}}
}

// drainBatch is how many idle connections are closed at once when the
// cap is reached, so that a burst of new clients does not close them one
// accept at a time.
const drainBatch = 32

// admit counts c in, or closes it and returns nil when a cap refuses it.
func (t *connTracker) admit(c net.Conn) *trackedConn {
	key := clientKey(c.RemoteAddr().String())
	max, perIP := t.max.Load(), t.maxPerIP.Load()
	t.mu.Lock()
	if perIP > 0 && int64(t.perIP[key]) >= perIP {
		t.mu.Unlock()
		c.Close()
		t.refused("conn_per_ip")
		return nil
	}
	var victims []*trackedConn
	if max > 0 && int64(t.n) >= max {
		victims = t.idle.oldest(drainBatch)
		if len(victims) == 0 {
			t.mu.Unlock()
			c.Close()
			t.refused("max_conns")
			return nil
		}
	}
	t.n++
	t.perIP[key]++
	tc := &trackedConn{Conn: c, t: t, key: key}
	t.mu.Unlock()
	for _, v := range victims {
		v.Close()
	}
	return tc
}

// drainIdle closes up to n of the longest idle connections and returns how
// many it closed; the accept loop calls it when the process runs out of
// file descriptors.
func (t *connTracker) drainIdle(n int) int {
	t.mu.Lock()
	victims := t.idle.oldest(n)
	t.mu.Unlock()
	for _, v := range victims {
		v.Close()
	}
	return len(victims)
}

// open returns the number of connections counted in.
func (t *connTracker) open() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n
}

func (t *connTracker) release(c *trackedConn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.idle.remove(c)
	t.n--
	if t.perIP[c.key]--; t.perIP[c.key] <= 0 {
		delete(t.perIP, c.key)
	}
}

// setIdle records whether c is idle, from http.Server's ConnState hook.
func (t *connTracker) setIdle(c *trackedConn, idle bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c.closed {
		return
	}
	t.idle.remove(c)
	if idle {
		c.idleSince = time.Now()
		t.idle.push(c)
	}
}

// connState is an http.Server.ConnState hook keeping the idle list.
func (t *connTracker) connState(c net.Conn, state http.ConnState) {
	tc := trackedOf(c)
	if tc == nil || tc.t != t {
		return
	}
	switch state {
	case http.StateIdle:
		t.setIdle(tc, true)
	case http.StateActive, http.StateHijacked:
		t.setIdle(tc, false)
	}
}

// trackedConn is an accepted connection counted by a connTracker until
// its first Close.
type trackedConn struct {
	net.Conn
	t   *connTracker
	key netip.Addr // the client address the per-IP cap counts by

	// Guarded by t.mu:
	closed     bool
	idleSince  time.Time
	prev, next *trackedConn // in t.idle while idle
	inIdle     bool
}

func (c *trackedConn) Close() error {
	c.t.mu.Lock()
	first := !c.closed
	c.closed = true
	c.t.mu.Unlock()
	if first {
		c.t.release(c)
	}
	return c.Conn.Close()
}

// trackedOf finds the trackedConn under the connections http.Server and
// the HTTP/2 server see.
func trackedOf(c net.Conn) *trackedConn {
	for {
		switch v := c.(type) {
		case *trackedConn:
			return v
		case interface{ NetConn() net.Conn }: // *tls.Conn, *h1Conn, *h2Conn
			c = v.NetConn()
		default:
			return nil
		}
	}
}

// idleList is a list of idle connections, oldest first.
type idleList struct {
	head, tail *trackedConn
	n          int
}

func (l *idleList) push(c *trackedConn) {
	c.prev, c.next, c.inIdle = l.tail, nil, true
	if l.tail != nil {
		l.tail.next = c
	} else {
		l.head = c
	}
	l.tail = c
	l.n++
}

func (l *idleList) remove(c *trackedConn) {
	if !c.inIdle {
		return
	}
	if c.prev != nil {
		c.prev.next = c.next
	} else {
		l.head = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	} else {
		l.tail = c.prev
	}
	c.prev, c.next, c.inIdle = nil, nil, false
	l.n--
}

// oldest takes up to n connections off the front of the list.
func (l *idleList) oldest(n int) []*trackedConn {
	var out []*trackedConn
	for l.head != nil && len(out) < n {
		c := l.head
		l.remove(c)
		out = append(out, c)
	}
	return out
}
