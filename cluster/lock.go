package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrLocked is TryLock's error when another holder has the lock.
var ErrLocked = errors.New("cluster: lock held by another replica")

// The lock is a key set with SET NX PX and a random token; only the holder
// of the token extends or deletes it, checked and done in one step.
var (
	extendScript  = redis.NewScript(`if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("pexpire", KEYS[1], ARGV[2]) else return 0 end`)
	releaseScript = redis.NewScript(`if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) else return 0 end`)
)

// Lease is a lock held: it is extended in the background until Release,
// or until it is lost (another replica took it after it expired, or
// Redis did not answer for as long as its expiry).
type Lease struct {
	s     *Store
	key   string
	token string
	ttl   time.Duration
	lost  chan struct{}
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
}

// TryLock takes the lock on name for ttl, without waiting, and keeps it
// alive (extending it every third of ttl) until the Lease is released. It
// returns ErrLocked when another holder has it, or why Redis could not be
// asked.
func (s *Store) TryLock(ctx context.Context, name string, ttl time.Duration) (*Lease, error) {
	b := make([]byte, 16)
	rand.Read(b)
	l := &Lease{s: s, key: s.prefix + "lock:" + name, token: hex.EncodeToString(b), ttl: ttl,
		lost: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	rctx, cancel := s.ctx(ctx)
	ok, err := s.rdb.SetNX(rctx, l.key, l.token, ttl).Result()
	cancel()
	if s.observe(err) != nil {
		return nil, fmt.Errorf("cluster: lock %s: %w", name, err)
	}
	if !ok {
		return nil, ErrLocked
	}
	go l.keepAlive()
	return l, nil
}

// Lost is closed when the lock is lost before Release: the holder must
// stop what the lock guards.
func (l *Lease) Lost() <-chan struct{} { return l.lost }

// keepAlive extends the lock every third of its expiry until stopped, and
// closes lost when an extension finds another token, or when none has
// gone through for the whole expiry.
func (l *Lease) keepAlive() {
	defer close(l.done)
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		ctx, cancel := l.s.ctx(context.Background())
		n, err := extendScript.Run(ctx, l.s.rdb, []string{l.key}, l.token, l.ttl.Milliseconds()).Int()
		cancel()
		l.s.observe(err)
		switch {
		case err == nil && n == 1:
			last = time.Now()
			continue
		case err == nil || time.Since(last) >= l.ttl:
			close(l.lost)
			return
		}
	}
}

// Release stops extending the lock and deletes it if this Lease still
// holds it. Calling it again does nothing.
func (l *Lease) Release(ctx context.Context) error {
	var err error
	l.once.Do(func() {
		close(l.stop)
		<-l.done
		rctx, cancel := l.s.ctx(ctx)
		defer cancel()
		err = l.s.observe(releaseScript.Run(rctx, l.s.rdb, []string{l.key}, l.token).Err())
		if err != nil {
			err = fmt.Errorf("cluster: release %s: %w", l.key, err)
		}
	})
	return err
}
