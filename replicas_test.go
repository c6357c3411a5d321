package main

import (
	"context"
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
	"sync/atomic"
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

	mu   sync.Mutex // guards runs, which vaProxy reads
	runs []*running
}

// startReplicas starts n replicas at the same moment, each with its own
// data_dir, sharing Redis with a 2-second order lock; extra lines go in
// tls.acme, validity is Pebble's certificate lifetime in seconds (0: 90
// days).
func startReplicas(t *testing.T, n int, validity uint64, hook func(*http.Request), extra ...string) *replicaSet {
	t.Helper()
	rs := &replicaSet{redis: redistest.Start(t, "scripts/testdeps.sh")}
	rs.va = startVAProxy(t, rs)
	for range n {
		rs.setups = append(rs.setups, newACMESetup(t))
	}
	rs.pebble = startPebbleWith(t, freePort(t), rs.va.port, pebbleOptions{validity: validity, hook: hook})
	rs.vars = map[string]string{"HTTPSD_TLS_ACME_STORAGE_PASSWORD": rs.redis.Password}
	for _, s := range rs.setups {
		s.write(t, rs.pebble.directory, rs.pebble.apiRoots,
			append([]string{fmt.Sprintf("storage: {url: %q, lock_ttl: 2s}", rs.redis.URL(0))}, extra...)...)
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
		if i != orderer && !p.dead[i] {
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

// TestReplicasOneOrder starts three replicas at once with an empty cache:
// one new order in all, the same certificate on each, and validation
// answered by a replica that did not order.
func TestReplicasOneOrder(t *testing.T) {
	start := time.Now()
	rs := startReplicas(t, 3, 0, nil)
	rs.waitAll(t, "acme: certificate ready", 30*time.Second)
	ready := time.Since(start)
	if n := rs.pebble.orders.Load(); n != 1 {
		t.Errorf("Pebble got %d new orders from three replicas, want 1", n)
	}
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
	const lockTTL, oneOrder = 2 * time.Second, 15 * time.Second
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

// TestReplicasRenewal has Pebble issue 15-second certificates, renewed 10
// seconds before they end, to three replicas: one new order per renewal.
func TestReplicasRenewal(t *testing.T) {
	rs := startReplicas(t, 3, 15, nil, "renew_before: 10s")
	rs.waitAll(t, "acme: certificate ready", 30*time.Second)
	orders := []int64{rs.pebble.orders.Load()}
	serial := getHello(t, rs.https(0), rs.pebble.root, nil).SerialNumber
	for renewal := 1; renewal <= 2; renewal++ {
		old := serial
		waitUntil(t, 20*time.Second, fmt.Sprintf("renewal %d served by every replica", renewal), func() bool {
			for i := range rs.runs {
				c, err := tlsLeaf(rs.https(i), rs.pebble)
				if err != nil || c.SerialNumber.Cmp(old) == 0 {
					return false
				}
				serial = c.SerialNumber
			}
			return true
		})
		for i := range rs.runs {
			if c, _ := tlsLeaf(rs.https(i), rs.pebble); c == nil || c.SerialNumber.Cmp(serial) != 0 {
				t.Errorf("renewal %d: replica %d serves another certificate than the others", renewal, i)
			}
		}
		orders = append(orders, rs.pebble.orders.Load())
	}
	var per []int64
	for i := 1; i < len(orders); i++ {
		per = append(per, orders[i]-orders[i-1])
	}
	if orders[0] != 1 || per[0] != 1 || per[1] != 1 {
		t.Errorf("new orders: %d at issuance, then %v per renewal; want 1, then 1 per renewal", orders[0], per)
	}
	t.Logf("3 replicas, 15s certificates: %d new order at issuance, %v per renewal", orders[0], per)
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

// TestReplicasHolderCrashed kills (SIGKILL) a replica process holding the
// lock while the CA holds its new order: its lock is never released, and
// another replica issues once it expires, within the expiry plus one order.
func TestReplicasHolderCrashed(t *testing.T) {
	release, held := make(chan struct{}), make(chan struct{})
	var once sync.Once
	hook := func(r *http.Request) {
		if r.Method == "POST" && r.URL.Path == newOrderPath {
			once.Do(func() {
				close(held)
				<-release
			})
		}
	}
	defer once.Do(func() {})
	rs := &replicaSet{redis: redistest.Start(t, "scripts/testdeps.sh")}
	rs.va = startVAProxy(t, rs)
	rs.va.dead[0] = true
	for range 3 {
		rs.setups = append(rs.setups, newACMESetup(t))
	}
	rs.pebble = startPebbleWith(t, freePort(t), rs.va.port, pebbleOptions{hook: hook})
	rs.vars = map[string]string{"HTTPSD_TLS_ACME_STORAGE_PASSWORD": rs.redis.Password}
	for _, s := range rs.setups {
		s.write(t, rs.pebble.directory, rs.pebble.apiRoots, fmt.Sprintf("storage: {url: %q, lock_ttl: 2s}", rs.redis.URL(0)))
	}
	child := startProcess(t, "", rs.vars, nil, "-config", rs.setups[0].config)
	child.waitServing(t)
	select {
	case <-held:
	case <-time.After(30 * time.Second):
		close(release)
		t.Fatalf("the child's order never reached the CA:\n%s", child.log())
	}
	rs.runs = []*running{{logs: &syncLog{}}} // the child, whose log is in a file
	for _, s := range rs.setups[1:] {
		r := startRun(t, rs.vars, "-config", s.config)
		rs.mu.Lock()
		rs.runs = append(rs.runs, r)
		rs.mu.Unlock()
	}
	child.cmd.Process.Kill()
	killed := time.Now()
	<-child.exited
	child.exited <- nil
	close(release)
	rs.waitAll(t, "acme: certificate ready", 30*time.Second, 1, 2)
	took := time.Since(killed)
	const lockTTL, oneOrder = 2 * time.Second, 15 * time.Second
	if took < lockTTL/2 || took > lockTTL+oneOrder {
		t.Errorf("issued %v after the holder was killed, want after its lock expired (%v, extended every %v) and within one order (%v) more",
			took, lockTTL, lockTTL/3, oneOrder)
	}
	if n := rs.pebble.orders.Load(); n != 2 {
		t.Errorf("Pebble got %d new orders, want 2: the killed holder's and one more", n)
	}
	t.Logf("holder process killed mid-order (SIGKILL, lock left behind, expiry %v); the others issued %v later; %d new orders in all",
		lockTTL, took.Round(time.Millisecond), rs.pebble.orders.Load())
}

// TestReplicasRedisOutage stops Redis under load and starts it again:
// no request for the name already issued fails, the outage shows in
// httpsd_cluster_storage_up and /readyz, the renewal due meanwhile waits
// and happens once Redis is back, and Redis still has the shared state.
func TestReplicasRedisOutage(t *testing.T) {
	rs := startReplicas(t, 2, 30, nil, "renew_before: 22s") // renewal due 8s after issuance
	rs.waitAll(t, "acme: certificate ready", 30*time.Second)
	first := getHello(t, rs.https(0), rs.pebble.root, nil)

	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var load sync.WaitGroup
	for g := range 2 {
		load.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				client := clientFor(rootPool(rs.pebble.root), rs.https((g+i)%2))
				client.Transport.(*http.Transport).DisableKeepAlives = true // a handshake each time
				resp, err := client.Get("https://" + acmeHost + "/hello/world")
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						err = fmt.Errorf("status %s", resp.Status)
					}
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				} else {
					ok.Add(1)
				}
			}
		})
	}
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		load.Wait()
	}()
	storageUp := func(want string) func() bool {
		return func() bool {
			for _, r := range rs.runs {
				if !strings.Contains(scrape(t, r.admin), "httpsd_cluster_storage_up "+want+"\n") {
					return false
				}
			}
			return true
		}
	}

	before := ok.Load()
	rs.redis.Stop()
	down := time.Now()
	waitUntil(t, 10*time.Second, "httpsd_cluster_storage_up 0 on every replica", storageUp("0"))
	if code, body := adminGet(t, rs.runs[0].admin, "/readyz"); code != 200 || !strings.Contains(body, "warning: cluster storage redis://") {
		t.Errorf("GET /readyz with Redis down = %d %q, want 200 with a warning naming the storage", code, body)
	}
	waitUntil(t, 20*time.Second, "a replica says its renewal waits for the storage", func() bool {
		return rs.runs[0].logs.find("acme: issuance waits for the cluster storage") != nil ||
			rs.runs[1].logs.find("acme: issuance waits for the cluster storage") != nil
	})
	during := ok.Load() - before
	rs.redis.Restart()
	outage := time.Since(down)
	waitUntil(t, 10*time.Second, "httpsd_cluster_storage_up 1 on every replica", storageUp("1"))
	if !eventually(20*time.Second, func() bool {
		for i := range rs.runs {
			if c, err := tlsLeaf(rs.https(i), rs.pebble); err != nil || c.Equal(first) {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("the renewal is not served by both replicas 20s after Redis is back:\n%s\n%s", grepLogs(rs.runs[0], "acme", "cluster"), grepLogs(rs.runs[1], "acme", "cluster"))
	}
	close(stop)
	load.Wait()
	if n := failed.Load(); n != 0 {
		t.Errorf("%d of %d requests failed (first: %v), want none", n, n+ok.Load(), firstErr.Load())
	}
	if n := rs.pebble.orders.Load(); n != 2 {
		t.Errorf("Pebble got %d new orders, want 2: the issuance and one renewal", n)
	}
	rdb := rs.redis.Client(0)
	for _, key := range []string{"httpsd:acme:acme_account+key", "httpsd:acme:" + acmeHost} {
		if rdb.Exists(context.Background(), key).Val() != 1 {
			t.Errorf("Redis lost %s", key)
		}
	}
	t.Logf("Redis down %v under load: %d requests (each a new handshake), %d during the outage, %d failed; renewal done once it was back; %d orders",
		outage.Round(time.Millisecond), ok.Load()+failed.Load(), during, failed.Load(), rs.pebble.orders.Load())
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
