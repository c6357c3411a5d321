package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/acme/autocert"

	"github.com/httpsd/httpsd/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// newStore starts a redis-server and returns a Store on it.
func newStore(t *testing.T) (*Store, *redistest.Server) {
	t.Helper()
	srv := redistest.Start(t, "../scripts/testdeps.sh")
	return storeFor(t, srv, srv.Password), srv
}

func storeFor(t *testing.T, srv *redistest.Server, password string) *Store {
	t.Helper()
	s, err := New(Options{URL: srv.URL(0), Password: password, Timeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// eventually polls cond every 10ms until it holds or timeout passes.
func eventually(timeout time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(timeout); ; time.Sleep(10 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

func TestCache(t *testing.T) {
	s, srv := newStore(t)
	ctx := context.Background()
	local := autocert.DirCache(t.TempDir())
	c := s.Cache(local)
	other := s.Cache(autocert.DirCache(t.TempDir())) // another replica
	rdb := srv.Client(0)

	if _, err := c.Get(ctx, "a.example"); err != autocert.ErrCacheMiss {
		t.Fatalf("Get of a missing entry = %v, want ErrCacheMiss", err)
	}
	cert := []byte("-----BEGIN EC PRIVATE KEY-----\nkey and chain\n")
	if err := c.Put(ctx, "a.example", cert); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		cache autocert.Cache
		key   string
		want  []byte
	}{
		{"in Redis under the prefix", nil, "httpsd:acme:a.example", cert},
		{"in the local copy", local, "a.example", cert},
		{"another replica reads it", other, "a.example", cert},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []byte
			var err error
			if tt.cache == nil {
				got, err = rdb.Get(ctx, tt.key).Bytes()
			} else {
				got, err = tt.cache.Get(ctx, tt.key)
			}
			if err != nil || !bytes.Equal(got, tt.want) {
				t.Errorf("Get(%s) = %q, %v; want %q", tt.key, got, err, tt.want)
			}
		})
	}

	t.Run("challenge data expires and stays out of the local copy", func(t *testing.T) {
		for _, key := range []string{"a.example+token", "tok123+http-01"} {
			if err := c.Put(ctx, key, []byte("challenge")); err != nil {
				t.Fatal(err)
			}
			if ttl := rdb.TTL(ctx, "httpsd:acme:"+key).Val(); ttl <= 0 || ttl > time.Hour {
				t.Errorf("TTL of %s = %v, want at most an hour", key, ttl)
			}
			if _, err := local.Get(ctx, key); err != autocert.ErrCacheMiss {
				t.Errorf("local copy of %s: %v, want none", key, err)
			}
			if got, err := other.Get(ctx, key); err != nil || string(got) != "challenge" {
				t.Errorf("other replica Get(%s) = %q, %v", key, got, err)
			}
			if err := other.Delete(ctx, key); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Get(ctx, key); err != autocert.ErrCacheMiss {
				t.Errorf("Get(%s) after Delete = %v, want ErrCacheMiss", key, err)
			}
		}
	})

	t.Run("an entry only the local copy has is written back", func(t *testing.T) {
		rdb.Del(ctx, "httpsd:acme:a.example") // Redis restarted empty
		if got, err := c.Get(ctx, "a.example"); err != nil || !bytes.Equal(got, cert) {
			t.Fatalf("Get with Redis empty = %q, %v; want the local copy", got, err)
		}
		if got := rdb.Get(ctx, "httpsd:acme:a.example").Val(); got != string(cert) {
			t.Errorf("Redis after the read = %q, want the local copy written back", got)
		}
	})

	t.Run("Redis down: reads from the local copy, writes made once it is back", func(t *testing.T) {
		srv.Stop()
		start := time.Now()
		got, err := c.Get(ctx, "a.example")
		if err != nil || !bytes.Equal(got, cert) {
			t.Errorf("Get with Redis down = %q, %v; want the local copy", got, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("Get with Redis down took %v, want it bounded by the timeout", d)
		}
		if _, err := other.Get(ctx, "b.example"); err == nil || err == autocert.ErrCacheMiss {
			t.Errorf("Get of an entry nobody has, Redis down = %v, want an error that is not a miss", err)
		}
		if st := s.Status(); st.Up || st.Err == nil {
			t.Errorf("Status with Redis down = %+v, want down with the reason", st)
		}
		renewed := []byte("renewed")
		if err := c.Put(ctx, "a.example", renewed); err == nil {
			t.Error("Put with Redis down = nil, want the error")
		}
		srv.Restart()
		runCtx, stop := context.WithCancel(ctx)
		defer stop()
		go s.Run(runCtx, 50*time.Millisecond)
		if !eventually(10*time.Second, func() bool { return rdb.Get(ctx, "httpsd:acme:a.example").Val() == "renewed" }) {
			t.Errorf("the write missed while Redis was down was not made once it was back: %q %+v", rdb.Get(ctx, "httpsd:acme:a.example").Val(), s.Status())
		}
		if !s.Status().Up {
			t.Error("Status after Redis is back: down")
		}
	})
}

func TestLock(t *testing.T) {
	s, srv := newStore(t)
	other := storeFor(t, srv, srv.Password) // another replica
	ctx := context.Background()
	const ttl = 3 * time.Second // extended every second, each try bounded by the 500ms timeout: two may fail in a row

	a, err := s.TryLock(ctx, "a.example", ttl)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("exclusive", func(t *testing.T) {
		if _, err := other.TryLock(ctx, "a.example", ttl); !errors.Is(err, ErrLocked) {
			t.Errorf("second TryLock = %v, want ErrLocked", err)
		}
		b, err := other.TryLock(ctx, "b.example", ttl)
		if err != nil {
			t.Errorf("TryLock of another name = %v", err)
		} else {
			b.Release(ctx)
		}
	})
	t.Run("extended while held", func(t *testing.T) {
		start := time.Now()
		for time.Since(start) < 2*ttl { // polls the lock for two expiries
			if _, err := other.TryLock(ctx, "a.example", ttl); !errors.Is(err, ErrLocked) {
				t.Fatalf("TryLock %v after the first = %v, want ErrLocked: the holder extends it", time.Since(start), err)
			}
			time.Sleep(ttl / 6)
		}
	})
	t.Run("only the owner releases", func(t *testing.T) {
		fake := &Lease{s: other, key: "httpsd:lock:a.example", token: "not-the-token",
			stop: make(chan struct{}), done: make(chan struct{})}
		close(fake.done)
		fake.Release(ctx)
		if _, err := other.TryLock(ctx, "a.example", ttl); !errors.Is(err, ErrLocked) {
			t.Errorf("after a release by another token, TryLock = %v, want ErrLocked", err)
		}
		if err := a.Release(ctx); err != nil {
			t.Fatal(err)
		}
		b, err := other.TryLock(ctx, "a.example", ttl)
		if err != nil {
			t.Fatalf("TryLock after the owner released = %v", err)
		}
		b.Release(ctx)
	})
	t.Run("expires when the holder stops extending", func(t *testing.T) {
		rdb := srv.Client(0)
		rdb.Set(ctx, "httpsd:lock:c.example", "crashed-holder", ttl) // a holder that died
		start := time.Now()
		var l *Lease
		if !eventually(10*time.Second, func() bool {
			l, err = other.TryLock(ctx, "c.example", ttl)
			return err == nil
		}) {
			t.Fatalf("TryLock after the holder died = %v", err)
		}
		if d := time.Since(start); d < ttl/2 || d > ttl+time.Second {
			t.Errorf("taken %v after the holder died, want about the expiry %v", d, ttl)
		}
		t.Logf("lock of a dead holder taken over after %v (expiry %v)", time.Since(start).Round(time.Millisecond), ttl)
		l.Release(ctx)
	})
	t.Run("lost when another took it over", func(t *testing.T) {
		l, err := s.TryLock(ctx, "d.example", ttl)
		if err != nil {
			t.Fatal(err)
		}
		srv.Client(0).Set(ctx, "httpsd:lock:d.example", "usurper", ttl)
		select {
		case <-l.Lost():
		case <-time.After(5 * time.Second):
			t.Fatal("Lost not closed after another holder took the lock")
		}
		l.Release(ctx)
		if got := srv.Client(0).Get(ctx, "httpsd:lock:d.example").Val(); got != "usurper" {
			t.Errorf("release by the old holder deleted the new holder's lock (value %q)", got)
		}
	})
}

func TestTickets(t *testing.T) {
	s, srv := newStore(t)
	ctx := context.Background()
	secret := bytes.Repeat([]byte{7}, 32)
	applied := make([]chan [][32]byte, 3)
	var replicas []*Tickets
	for i := range applied {
		applied[i] = make(chan [][32]byte, 10)
		store := s
		if i > 0 {
			store = storeFor(t, srv, srv.Password)
		}
		tk, err := store.Tickets(TicketOptions{Secret: secret, Rotate: time.Hour, Poll: 50 * time.Millisecond,
			Apply: func(keys [][32]byte) { applied[i] <- keys }})
		if err != nil {
			t.Fatal(err)
		}
		replicas = append(replicas, tk)
	}
	var first [][32]byte
	for i, tk := range replicas {
		if err := tk.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		got := <-applied[i]
		if i == 0 {
			first = got
		} else if fmt.Sprint(got) != fmt.Sprint(first) {
			t.Errorf("replica %d applied other keys than replica 0", i)
		}
	}
	if len(first) != 1 {
		t.Fatalf("applied %d keys, want 1", len(first))
	}

	t.Run("encrypted at rest", func(t *testing.T) {
		stored, err := srv.Client(0).Get(ctx, replicas[0].RedisKey()).Bytes()
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(stored, first[0][:]) || bytes.Contains(stored, []byte(fmt.Sprint(first[0][:]))) {
			t.Errorf("the stored value contains the key in clear")
		}
		wrong, _ := s.Tickets(TicketOptions{Secret: bytes.Repeat([]byte{8}, 32), Apply: func([][32]byte) {}})
		wrong.key = replicas[0].key
		if _, err := wrong.open(stored); err == nil {
			t.Error("the keys decrypt with another secret")
		}
		if keys, err := replicas[0].open(stored); err != nil || keys[0].Key != first[0] {
			t.Errorf("decrypt with the secret = %v, %v", keys, err)
		}
		t.Logf("stored %d bytes under %s; no 32-byte key in clear", len(stored), replicas[0].RedisKey())
	})

	t.Run("another secret keeps apart", func(t *testing.T) {
		other, _ := s.Tickets(TicketOptions{Secret: bytes.Repeat([]byte{9}, 32), Apply: func([][32]byte) {}})
		if other.RedisKey() == replicas[0].RedisKey() {
			t.Errorf("two secrets share the Redis key %s", other.RedisKey())
		}
	})

	t.Run("rotation: a new key is decrypt-only until every replica has it", func(t *testing.T) {
		rdb := srv.Client(0)
		keys, _ := replicas[0].read(ctx)
		keys[0].Created = time.Now().Add(-2 * time.Hour) // due
		data, _ := replicas[0].seal(keys)
		rdb.Set(ctx, replicas[0].RedisKey(), data, 0)
		if err := replicas[1].Sync(ctx); err != nil {
			t.Fatal(err)
		}
		got := <-applied[1]
		if len(got) != 2 || got[0] != first[0] {
			t.Fatalf("right after rotation replica 1 applied %d keys, first %x; want 2, the old one first", len(got), got[0][:4])
		}
		runCtx, stop := context.WithCancel(ctx)
		defer stop()
		go replicas[2].Run(runCtx)
		deadline := time.After(10 * time.Second)
		for {
			select {
			case keys := <-applied[2]:
				if len(keys) == 2 && keys[0] != first[0] && keys[1] == first[0] {
					return
				}
			case <-deadline:
				t.Fatal("replica 2 never encrypted with the new key")
			}
		}
	})

	if _, err := s.Tickets(TicketOptions{Secret: []byte("short"), Apply: func([][32]byte) {}}); err == nil ||
		!strings.Contains(err.Error(), "at least 32") {
		t.Errorf("Tickets with a 5-byte secret = %v, want refused", err)
	}
}

func TestProbe(t *testing.T) {
	_, srv := newStore(t)
	tests := []struct {
		name     string
		url      string
		password string
		want     string // "" for success
	}{
		{"ok", srv.URL(0), srv.Password, ""},
		{"wrong password", srv.URL(0), "wrong", "cluster: authenticate to redis://" + srv.Addr},
		{"no password", srv.URL(0), "", "cluster: authenticate to"},
		{"nothing listens", "redis://127.0.0.1:1/0", "", "cluster: connect to redis://127.0.0.1:1/0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(Options{URL: tt.url, Password: tt.password})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			err = s.Probe(context.Background())
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Probe = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestMain(m *testing.M) {
	QuietRedisLog()
	os.Exit(m.Run())
}

// TestSlowRedis: while Redis is stuck (DEBUG SLEEP), every call returns
// within the timeout, Get from the local copy.
func TestSlowRedis(t *testing.T) {
	s, srv := newStore(t)
	ctx := context.Background()
	c := s.Cache(autocert.DirCache(t.TempDir()))
	if err := c.Put(ctx, "a.example", []byte("cert")); err != nil {
		t.Fatal(err)
	}
	stuck := make(chan error, 1)
	// Asleep long enough for both calls below to time out, whatever the load.
	sleeper := redis.NewClient(&redis.Options{Addr: srv.Addr, Password: srv.Password, DisableIdentity: true, ReadTimeout: 10 * time.Second})
	defer sleeper.Close()
	go func() { stuck <- sleeper.Do(ctx, "DEBUG", "SLEEP", "5").Err() }()
	probe := srv.Client(0)
	if !eventually(2*time.Second, func() bool { // until the server no longer answers
		pctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		return probe.Ping(pctx).Err() != nil
	}) {
		t.Fatalf("Redis still answers after DEBUG SLEEP: %v", <-stuck)
	}
	tests := []struct {
		name string
		call func() error
	}{
		{"Get falls back to the local copy", func() error {
			got, err := c.Get(ctx, "a.example")
			if err != nil || string(got) != "cert" {
				return fmt.Errorf("Get = %q, %v; want the local copy", got, err)
			}
			return nil
		}},
		{"TryLock fails", func() error {
			if _, err := s.TryLock(ctx, "a.example", time.Second); err == nil || errors.Is(err, ErrLocked) {
				return fmt.Errorf("TryLock = %v, want a timeout", err)
			}
			return nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			if err := tt.call(); err != nil {
				t.Error(err)
			}
			if d := time.Since(start); d > 1500*time.Millisecond {
				t.Errorf("took %v with Redis stuck, want about the 500ms timeout", d)
			}
		})
	}
	if err := <-stuck; err != nil {
		t.Errorf("DEBUG SLEEP: %v", err)
	}
}
