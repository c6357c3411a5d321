package main

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/httpsd/httpsd/internal/redistest"
)

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
	rs.pebble = startPebbleWith(t, freePort(t), rs.va.port, pebbleOptions{hook: func(r *http.Request) {
		hook(r)
		rs.awaitOrderLog(r)
	}})
	rs.vars = map[string]string{"HTTPSD_TLS_ACME_STORAGE_PASSWORD": rs.redis.Password}
	for _, s := range rs.setups {
		s.write(t, rs.pebble.directory, rs.pebble.apiRoots, fmt.Sprintf("storage: {url: %q, lock_ttl: 3s}", rs.redis.URL(0)))
	}
	child := startProcess(t, "", rs.vars, nil, "-config", rs.setups[0].config)
	child.waitServing(t)
	select {
	case <-held:
	case <-time.After(30 * time.Second):
		close(release)
		t.Fatalf("the child's order never reached the CA:\n%s", child.log())
	}
	rs.mu.Lock()
	rs.runs = []*running{{logs: &syncLog{}}} // the child, whose log is in a file
	rs.unlogged = 1                          // its order
	rs.mu.Unlock()
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
	const lockTTL, oneOrder = 3 * time.Second, 15 * time.Second
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
