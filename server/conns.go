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
// reached it makes room by closing the connections that have been idle
// longest (keep-alive connections between requests, HTTP/2 connections
// without streams), as nginx does, and then the oldest that have not
// brought a request in a second (silent connections, stalled handshakes,
// which cost an attacker nothing); only when neither exists is a new
// connection refused. Connections that have not brought a request yet are
// also capped per client address (freshPerIP), and a few connections from
// loopback (the health probe, a local admin) get in above the cap.
type connTracker struct {
	max      atomic.Int64 // 0 or less: no cap
	maxPerIP atomic.Int64 // 0 or less: no cap
	refused  func(reason string)
	now      func() time.Time

	mu         sync.Mutex
	n          int
	perIP      map[netip.Addr]int
	freshPerIP map[netip.Addr]int
	idle       connList // idle connections, oldest first
	fresh      connList // connections without a request yet, oldest first
}

// Tracker limits besides max and maxPerIP.
const (
	drainBatch      = 32          // connections closed at once to make room
	freshPerIP      = 64          // connections without a request yet, per client address
	freshGrace      = time.Second // a new connection's time to bring a request before it may be evicted
	loopbackReserve = 8           // connections from 127.0.0.1 or ::1 allowed above max
	// trackedConn states and lists.
	stateFresh, stateIdle, stateBusy, stateClosed = 1, 2, 3, 4
	listNone, listIdle, listFr                    = 0, 1, 2
)

func newConnTracker(refused func(reason string)) *connTracker {
	return &connTracker{refused: refused, now: time.Now, perIP: map[netip.Addr]int{}, freshPerIP: map[netip.Addr]int{},
		idle: connList{id: listIdle}, fresh: connList{id: listFr}}
}

// admit counts c in, or closes it and returns nil when a cap refuses it.
func (t *connTracker) admit(c net.Conn) *trackedConn {
	return t.admitAs(c, clientKey(c.RemoteAddr().String()), true)
}

// local reports whether c comes from 127.0.0.1 or ::1, where the health
// probe comes from: such connections may use loopbackReserve above max.
func local(c net.Conn) bool {
	a := clientAddr(c.RemoteAddr().String())
	return a == netip.AddrFrom4([4]byte{127, 0, 0, 1}) || a == netip.IPv6Loopback()
}

// admitAs counts c in as the client key. Without perClient, the per-client
// caps wait for rekey (c comes from a proxy that names its client in a
// PROXY protocol header); without a valid key (a unix socket's peer) they
// do not apply.
func (t *connTracker) admitAs(c net.Conn, key netip.Addr, perClient bool) *trackedConn {
	perClient = perClient && key.IsValid()
	max, perIP := t.max.Load(), t.maxPerIP.Load()
	now := t.now()
	t.mu.Lock()
	reason := ""
	var victims []*trackedConn
	switch {
	case perClient && perIP > 0 && int64(t.perIP[key]) >= perIP:
		reason = "conn_per_ip"
	case perClient && t.freshPerIP[key] >= freshPerIP:
		reason = "conn_per_ip"
	case max > 0 && int64(t.n) >= max && !(int64(t.n) < max+loopbackReserve && local(c)):
		victims = t.idle.take(drainBatch, time.Time{})
		if len(victims) == 0 {
			victims = t.fresh.take(drainBatch, now.Add(-freshGrace))
		}
		if len(victims) == 0 {
			reason = "max_conns"
		}
	}
	if reason != "" {
		t.mu.Unlock()
		c.Close()
		t.refused(reason)
		return nil
	}
	for _, v := range victims {
		t.delist(v) // release, at Close, counts it out
	}
	t.n++
	tc := &trackedConn{Conn: c, t: t, since: now, state: stateFresh}
	if perClient {
		tc.key = key
		t.perIP[key]++
		t.freshPerIP[key]++
	}
	t.fresh.push(tc)
	t.mu.Unlock()
	for _, v := range victims {
		v.Close()
	}
	return tc
}

// rekey counts c, admitted without its client, as client key from now on,
// and reports whether the per-client caps let it in (if not, it is left
// for its caller to close).
func (t *connTracker) rekey(c *trackedConn, key netip.Addr) bool {
	perIP := t.maxPerIP.Load()
	t.mu.Lock()
	defer t.mu.Unlock()
	if c.state == stateClosed {
		return false
	}
	if !key.IsValid() {
		return true
	}
	if perIP > 0 && int64(t.perIP[key]) >= perIP ||
		c.state == stateFresh && t.freshPerIP[key] >= freshPerIP {
		return false
	}
	c.key = key
	t.perIP[key]++
	if c.state == stateFresh {
		t.freshPerIP[key]++
	}
	return true
}

// drainIdle closes up to n of the longest idle connections and returns how
// many it closed; the accept loop calls it when the process runs out of
// file descriptors.
func (t *connTracker) drainIdle(n int) int {
	t.mu.Lock()
	victims := t.idle.take(n, time.Time{})
	for _, v := range victims {
		t.delist(v)
	}
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

// delist takes c off its list; t.mu is held.
func (t *connTracker) delist(c *trackedConn) {
	switch c.list {
	case listIdle:
		t.idle.remove(c)
	case listFr:
		t.fresh.remove(c)
	}
}

// unlist takes c off its list and out of the per-address count of fresh
// connections; t.mu is held.
func (t *connTracker) unlist(c *trackedConn) {
	t.delist(c)
	if c.state == stateFresh && c.key.IsValid() {
		if t.freshPerIP[c.key]--; t.freshPerIP[c.key] <= 0 {
			delete(t.freshPerIP, c.key)
		}
	}
}

func (t *connTracker) release(c *trackedConn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c.state == stateClosed {
		return
	}
	t.unlist(c)
	c.state = stateClosed
	t.n--
	if !c.key.IsValid() {
		return
	}
	if t.perIP[c.key]--; t.perIP[c.key] <= 0 {
		delete(t.perIP, c.key)
	}
}

// setState records that c is idle or busy (it has brought a request).
func (t *connTracker) setState(c *trackedConn, state int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c.state == stateClosed {
		return
	}
	t.unlist(c)
	c.state, c.since = state, t.now()
	if state == stateIdle {
		t.idle.push(c)
	}
}

// connState is an http.Server.ConnState hook keeping the lists.
func (t *connTracker) connState(c net.Conn, state http.ConnState) {
	tc := trackedOf(c)
	if tc == nil || tc.t != t {
		return
	}
	switch state {
	case http.StateIdle:
		t.setState(tc, stateIdle)
	case http.StateActive, http.StateHijacked:
		t.setState(tc, stateBusy)
	}
}

// trackedConn is an accepted connection counted by a connTracker until
// its first Close.
type trackedConn struct {
	net.Conn
	t   *connTracker
	key netip.Addr // the client address the per-IP caps count by; invalid until rekey

	// Guarded by t.mu:
	state      int       // stateFresh, stateIdle, stateBusy, stateClosed
	since      time.Time // when it entered its state
	list       int       // the list it is on
	prev, next *trackedConn
}

func (c *trackedConn) Close() error {
	c.t.release(c)
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

// connList is a list of connections in the order they entered it.
type connList struct {
	head, tail *trackedConn
	id         int // listIdle or listFr
}

func (l *connList) push(c *trackedConn) {
	c.prev, c.next, c.list = l.tail, nil, l.id
	if l.tail != nil {
		l.tail.next = c
	} else {
		l.head = c
	}
	l.tail = c
}

func (l *connList) remove(c *trackedConn) {
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
	c.prev, c.next, c.list = nil, nil, listNone
}

// take returns up to n connections from the front of the list that
// entered it before the zero time or before, leaving them on it.
func (l *connList) take(n int, before time.Time) []*trackedConn {
	var out []*trackedConn
	for c := l.head; c != nil && len(out) < n; c = c.next {
		if !before.IsZero() && !c.since.Before(before) {
			break
		}
		out = append(out, c)
	}
	return out
}
