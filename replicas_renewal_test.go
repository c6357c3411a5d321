package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/httpsd/httpsd/internal/redistest"
)

// TestReplicasRenewal has Pebble issue 20-second certificates, renewed 14
// seconds before they end, to three replicas: one new order per renewal.
// The 5 seconds between an issuance and the next renewal leave the
// replicas time to pick a certificate up from Redis before it is due.
func TestReplicasRenewal(t *testing.T) {
	rs := startReplicas(t, 3, 20, nil, "renew_before: 14s")
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
	t.Logf("3 replicas, 20s certificates: %d new order at issuance, %v per renewal", orders[0], per)
}

// TestReplicasRedisOutage stops Redis under load and starts it again:
// no request for the name already issued fails, the outage shows in
// httpsd_cluster_storage_up and /readyz, the renewal due meanwhile waits
// and happens once Redis is back, and Redis still has the shared state.
func TestReplicasRedisOutage(t *testing.T) {
	rs := startReplicas(t, 2, 30, nil, "renew_before: 24s") // renewal due 5s after issuance
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

// TestCheckOnlineStorage: check -online probes the storage and says what
// is wrong with it.
func TestCheckOnlineStorage(t *testing.T) {
	redis := redistest.Start(t, "scripts/testdeps.sh")
	p := startPebble(t, freePort(t), freePort(t), 0)
	pwFile := filepath.Join(t.TempDir(), "redis-password")
	os.WriteFile(pwFile, []byte(redis.Password+"\n"), 0o600)
	tests := []struct {
		name    string
		storage string
		vars    map[string]string
		code    int
		want    string
	}{
		{"ok, password from the env", fmt.Sprintf("storage: %s", redis.URL(0)),
			map[string]string{"HTTPSD_TLS_ACME_STORAGE_PASSWORD": redis.Password}, 0,
			"ok   storage " + redis.URL(0) + ": reachable, authenticated, probe key written, read and deleted"},
		{"ok, password from a file", fmt.Sprintf("storage: {url: %s, password_file: %s}", redis.URL(0), pwFile), nil, 0,
			"ok   storage " + redis.URL(0)},
		{"wrong password", fmt.Sprintf("storage: %s", redis.URL(0)),
			map[string]string{"HTTPSD_TLS_ACME_STORAGE_PASSWORD": "wrong"}, 1,
			"hint: Redis refused the credentials: set HTTPSD_TLS_ACME_STORAGE_PASSWORD or tls.acme.storage.password_file"},
		{"nothing listens", fmt.Sprintf("storage: redis://127.0.0.1:%d/0", freePort(t)), nil, 1,
			"connection refused; hint: nothing listens there: check the URL and that Redis is running"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newACMESetup(t).write(t, p.directory, p.apiRoots, tt.storage)
			code, out, errOut := runCmd(t, tt.vars, "check", "-online", "-resolver", p.dns, "-config", s.config)
			if code != tt.code || !strings.Contains(out, tt.want) {
				t.Errorf("check -online = exit %d\n%s%s\nwant exit %d and %q", code, out, errOut, tt.code, tt.want)
			}
		})
	}
	keys, _ := redis.Client(0).Keys(t.Context(), "httpsd:probe:*").Result()
	if len(keys) != 0 {
		t.Errorf("probe keys left in Redis: %v", keys)
	}
}
