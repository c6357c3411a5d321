package main

import (
	"context"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/httpsd/httpsd/internal/redistest"
)

// replicaSet is httpsd replicas sharing one Redis (a real redis-server
// with a password), against one Pebble whose validation reaches them
// through vaProxy.
type replicaSet struct {
	redis  *redistest.Server
	pebble *pebble
	va     *vaProxy
	setups []*acmeSetup
	vars   map[string]string

	mu   sync.Mutex // guards runs, which vaProxy reads, and unlogged
	runs []*running
	// unlogged counts the orders of replicas whose log is not in runs (a
	// child process's).
	unlogged int
}

// startReplicas starts n replicas at the same moment, each with its own
// data_dir, sharing Redis with a 3-second order lock; extra lines go in
// tls.acme, validity is Pebble's certificate lifetime in seconds (0: 90
// days).
func startReplicas(t *testing.T, n int, validity uint64, hook func(*http.Request), extra ...string) *replicaSet {
	t.Helper()
	rs := &replicaSet{redis: redistest.Start(t, "scripts/testdeps.sh")}
	rs.va = startVAProxy(t, rs)
	for range n {
		rs.setups = append(rs.setups, newACMESetup(t))
	}
	rs.pebble = startPebbleWith(t, freePort(t), rs.va.port, pebbleOptions{validity: validity, hook: func(r *http.Request) {
		if hook != nil {
			hook(r)
		}
		rs.awaitOrderLog(r)
	}})
	rs.vars = map[string]string{"HTTPSD_TLS_ACME_STORAGE_PASSWORD": rs.redis.Password}
	for _, s := range rs.setups {
		s.write(t, rs.pebble.directory, rs.pebble.apiRoots,
			append([]string{fmt.Sprintf("storage: {url: %q, lock_ttl: 3s}", rs.redis.URL(0))}, extra...)...)
	}
	for _, s := range rs.setups { // at once: each issues as soon as it serves
		r := launchRun(t, rs.vars, "-config", s.config)
		rs.mu.Lock()
		rs.runs = append(rs.runs, r)
		rs.mu.Unlock()
	}
	for _, r := range rs.runs {
		r.waitServing(t)
	}
	return rs
}

// https is replica i's HTTPS address.
func (rs *replicaSet) https(i int) string { return "127.0.0.1:" + strconv.Itoa(rs.setups[i].httpsPort) }

// ordering lists the replicas that logged taking the lock to order.
func (rs *replicaSet) ordering() []int {
	rs.mu.Lock()
	runs := rs.runs
	rs.mu.Unlock()
	var out []int
	for i, r := range runs {
		if r.logs.find("acme: ordering certificate") != nil {
			out = append(out, i)
		}
	}
	return out
}

// lastOrderer is the replica that logged taking the lock to order last,
// -1 if none has.
func (rs *replicaSet) lastOrderer() int {
	rs.mu.Lock()
	runs := rs.runs
	rs.mu.Unlock()
	last, when := -1, ""
	for i, r := range runs {
		for _, line := range strings.Split(r.logs.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil && strings.HasPrefix(fmt.Sprint(m["msg"]), "acme: ordering certificate") {
				if t := fmt.Sprint(m["time"]); t > when { // RFC 3339 in UTC: ordered as text
					last, when = i, t
				}
			}
		}
	}
	return last
}

// awaitOrderLog holds a challenge response to the CA until the orderer's
// "ordering" line is in its log (written in batches), so that vaProxy
// knows which replica not to send the validation to.
func (rs *replicaSet) awaitOrderLog(r *http.Request) {
	if r.Method != "POST" || !strings.HasPrefix(r.URL.Path, "/chalZ/") {
		return
	}
	eventually(2*time.Second, func() bool {
		rs.mu.Lock()
		runs, n := rs.runs, rs.unlogged
		rs.mu.Unlock()
		for _, r := range runs {
			n += countLogs(r, "acme: ordering certificate")
		}
		return int64(n) >= rs.pebble.orders.Load()
	})
}

// waitAll waits until every replica in which (all when nil) logged msg.
func (rs *replicaSet) waitAll(t *testing.T, msg string, timeout time.Duration, which ...int) {
	t.Helper()
	if which == nil {
		for i := range rs.runs {
			which = append(which, i)
		}
	}
	for _, i := range which {
		waitLog(t, rs.runs[i], msg, timeout)
	}
}

// vaProxy is the one port Pebble's validation dials: it forwards each
// connection to a replica that is not ordering, so that the challenge
// data must come from Redis.
type vaProxy struct {
	port int
	mu   sync.Mutex
	to   []int // the replica each connection went to
	dead map[int]bool
}

func startVAProxy(t *testing.T, rs *replicaSet) *vaProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	p := &vaProxy{port: ln.Addr().(*net.TCPAddr).Port, dead: map[int]bool{}}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.forward(c, rs)
		}
	}()
	return p
}

func (p *vaProxy) forward(c net.Conn, rs *replicaSet) {
	defer c.Close()
	orderer := rs.lastOrderer()
	p.mu.Lock()
	target := -1
	for i := range rs.setups {
		if (i != orderer || len(rs.setups) == 1) && !p.dead[i] { // one replica alone answers its own
			target = i
			break
		}
	}
	p.to = append(p.to, target)
	p.mu.Unlock()
	if target < 0 {
		return
	}
	up, err := net.Dial("tcp", rs.https(target))
	if err != nil {
		return
	}
	defer up.Close()
	go io.Copy(up, c)
	io.Copy(c, up)
}

func (p *vaProxy) routes() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]int(nil), p.to...)
}

// tlsLeaf returns the certificate addr serves for acmeHost, verified
// against p's root.
func tlsLeaf(addr string, p *pebble) (*x509.Certificate, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{ServerName: acmeHost, RootCAs: rootPool(p.root)})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0], nil
}

// countLogs counts r's JSON log lines whose msg starts with msg.
func countLogs(r *running, msg string) int {
	n := 0
	for _, line := range strings.Split(r.logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && strings.HasPrefix(fmt.Sprint(m["msg"]), msg) {
			n++
		}
	}
	return n
}

// issueOnce starts n replicas with an empty cache and returns them once
// each has its certificate, with the time that took from the start;
// Pebble must have had one new order from them all.
func issueOnce(t *testing.T, n int) (*replicaSet, time.Duration) {
	t.Helper()
	start := time.Now()
	rs := startReplicas(t, n, 0, nil)
	rs.waitAll(t, "acme: certificate ready", 30*time.Second)
	ready := time.Since(start)
	if got := rs.pebble.orders.Load(); got != 1 {
		t.Errorf("Pebble got %d new orders from %d replica(s), want 1", got, n)
	}
	return rs, ready
}

// TestReplicasOneOrder starts three replicas at once with an empty cache:
// one new order in all, the same certificate on each, and validation
// answered by a replica that did not order.
func TestReplicasOneOrder(t *testing.T) {
	rs, ready := issueOnce(t, 3)
	first := getHello(t, rs.https(0), rs.pebble.root, nil)
	for i := 1; i < 3; i++ {
		if got := getHello(t, rs.https(i), rs.pebble.root, nil); !got.Equal(first) {
			t.Errorf("replica %d serves serial %v, replica 0 serial %v: want the same certificate", i, got.SerialNumber, first.SerialNumber)
		}
	}
	orderers, routes := rs.ordering(), rs.va.routes()
	if len(orderers) != 1 || len(routes) == 0 {
		t.Fatalf("replicas ordering %v, validation connections to %v; want one orderer and a validation", orderers, routes)
	}
	for _, to := range routes {
		if to == orderers[0] || to < 0 {
			t.Errorf("a validation connection went to replica %d; the orderer is %d", to, orderers[0])
		}
	}
	for i, r := range rs.runs {
		if m := r.logs.find("acme: challenge failed"); m != nil {
			t.Errorf("replica %d: %v", i, m)
		}
	}
	t.Logf("3 replicas ready %v after start; %d new order(s), by replica %d; CA's validation answered by replica(s) %v from Redis",
		ready.Round(time.Millisecond), rs.pebble.orders.Load(), orderers[0], routes)

	t.Run("one replica alone, for the time to a first certificate", func(t *testing.T) {
		_, alone := issueOnce(t, 1)
		t.Logf("first certificate: 1 replica ready %v after start, 3 replicas %v (%.2fx)",
			alone.Round(time.Millisecond), ready.Round(time.Millisecond), ready.Seconds()/alone.Seconds())
	})

	t.Run("RSA on demand: one order, then from Redis", func(t *testing.T) {
		before := rs.pebble.orders.Load()
		rsaOnly := &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}}
		var leaves []*x509.Certificate
		for _, i := range []int{(orderers[0] + 1) % 3, (orderers[0] + 2) % 3, orderers[0]} {
			leaves = append(leaves, getHello(t, rs.https(i), rs.pebble.root, rsaOnly))
		}
		for i, l := range leaves {
			if _, ok := l.PublicKey.(*rsa.PublicKey); !ok || !l.Equal(leaves[0]) {
				t.Errorf("RSA-only client, replica %d: a %T certificate, the same as the first: %v", i, l.PublicKey, l.Equal(leaves[0]))
			}
		}
		if n := rs.pebble.orders.Load() - before; n != 1 {
			t.Errorf("%d new orders for the RSA certificate asked of three replicas, want 1", n)
		}
	})
}

// TestReplicasHolderKilled stops the replica holding the lock while the
// CA holds its new order: another replica issues within the lock's expiry
// plus one order.
func TestReplicasHolderKilled(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	held := make(chan struct{})
	hook := func(r *http.Request) {
		if r.Method == "POST" && r.URL.Path == newOrderPath {
			once.Do(func() {
				close(held)
				<-release // the first order hangs until the test lets it go
			})
		}
	}
	defer once.Do(func() {})
	rs := startReplicas(t, 3, 0, hook)
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	select {
	case <-held:
	case <-time.After(30 * time.Second):
		t.Fatal("no order reached the CA")
	}
	var holder int
	waitUntil(t, 10*time.Second, "a replica says it orders", func() bool {
		o := rs.ordering()
		if len(o) == 1 {
			holder = o[0]
		}
		return len(o) == 1
	})
	rs.va.mu.Lock()
	rs.va.dead[holder] = true
	rs.va.mu.Unlock()
	killed := time.Now()
	rs.runs[holder].stop(t)
	if v := rs.redis.Client(0).Get(context.Background(), "httpsd:lock:acme:test.example").Val(); v != "" {
		t.Errorf("the stopped holder left its lock (%q): a clean stop releases it", v)
	}
	close(release)
	var others []int
	for i := range rs.runs {
		if i != holder {
			others = append(others, i)
		}
	}
	rs.waitAll(t, "acme: certificate ready", 30*time.Second, others...)
	took := time.Since(killed)
	const lockTTL, oneOrder = 3 * time.Second, 15 * time.Second
	if took > lockTTL+oneOrder {
		t.Errorf("issued %v after the holder stopped, want within the lock expiry %v plus one order (%v)", took, lockTTL, oneOrder)
	}
	if n := rs.pebble.orders.Load(); n != 2 {
		t.Errorf("Pebble got %d new orders, want 2: the stopped holder's and one more", n)
	}
	a, b := getHello(t, rs.https(others[0]), rs.pebble.root, nil), getHello(t, rs.https(others[1]), rs.pebble.root, nil)
	if !a.Equal(b) {
		t.Errorf("the two replicas left serve different certificates (serials %v, %v)", a.SerialNumber, b.SerialNumber)
	}
	t.Logf("holder replica %d stopped mid-order; replica(s) %v issued %v later; %d new orders in all",
		holder, others, took.Round(time.Millisecond), rs.pebble.orders.Load())
}

// grepLogs returns r's log lines whose msg starts with one of prefixes.
func grepLogs(r *running, prefixes ...string) string {
	var out []string
	for _, line := range strings.Split(r.logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		for _, p := range prefixes {
			if strings.HasPrefix(fmt.Sprint(m["msg"]), p) {
				out = append(out, line)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}
