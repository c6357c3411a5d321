package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/crypto/acme/autocert"
)

// tokenTTL is how long challenge data stays in Redis if nobody deletes
// it: an order that needs longer has failed anyway.
const tokenTTL = time.Hour

// Cache is an autocert.Cache in Redis, so that every replica reads the
// same account key and certificates and answers any challenge. Entries
// other than challenge data are also written to Local, a read-through
// copy: when Redis does not answer, Get reads Local, so a replica that
// starts while Redis is down serves the certificates it had; a write that
// Redis missed is made again once it answers.
type Cache struct {
	s     *Store
	local autocert.Cache // nil: no local copy
}

var _ autocert.Cache = (*Cache)(nil)

// Cache returns the Store's autocert.Cache, copying entries to local
// (such as an autocert.DirCache) unless it is nil.
func (s *Store) Cache(local autocert.Cache) *Cache {
	return &Cache{s: s, local: local}
}

// isToken reports whether an autocert cache key holds challenge data:
// a tls-alpn-01 certificate ("+token") or an http-01 response ("+http-01").
func isToken(name string) bool {
	return strings.HasSuffix(name, "+token") || strings.HasSuffix(name, "+http-01")
}

func (c *Cache) key(name string) string { return c.s.prefix + "acme:" + name }

// Get returns the entry from Redis, else, when Redis lacks it or does
// not answer, the local copy. An entry only the local copy has is
// written back to Redis (unless another replica has written one since).
func (c *Cache) Get(ctx context.Context, name string) ([]byte, error) {
	rctx, cancel := c.s.ctx(ctx)
	data, err := c.s.rdb.Get(rctx, c.key(name)).Bytes()
	cancel()
	c.s.observe(err)
	switch {
	case err == nil:
		if !isToken(name) && c.local != nil {
			if old, lerr := c.local.Get(ctx, name); lerr != nil || !bytes.Equal(old, data) {
				c.local.Put(ctx, name, data) // best effort: Redis has it
			}
		}
		return data, nil
	case isToken(name) && errors.Is(err, redis.Nil):
		return nil, autocert.ErrCacheMiss
	case isToken(name):
		return nil, fmt.Errorf("cluster: get %s: %w", name, err)
	case c.local == nil && errors.Is(err, redis.Nil):
		return nil, autocert.ErrCacheMiss
	case c.local == nil:
		return nil, fmt.Errorf("cluster: get %s: %w", name, err)
	}
	data, lerr := c.local.Get(ctx, name)
	switch {
	case lerr == nil && errors.Is(err, redis.Nil):
		rctx, cancel := c.s.ctx(ctx)
		c.s.observe(c.s.rdb.SetNX(rctx, c.key(name), data, 0).Err())
		cancel()
		return data, nil
	case lerr == nil:
		return data, nil
	case errors.Is(err, redis.Nil):
		return nil, lerr // ErrCacheMiss, or why the copy cannot be read
	}
	// Redis down and no copy: not a miss, which would start an order.
	return nil, fmt.Errorf("cluster: get %s: %w", name, err)
}

// Put writes the entry to the local copy, then to Redis; challenge data
// goes to Redis only, expiring after an hour. When Redis misses the
// write, it is made again once Redis answers, and Put returns the error.
func (c *Cache) Put(ctx context.Context, name string, data []byte) error {
	token := isToken(name)
	if !token && c.local != nil {
		if err := c.local.Put(ctx, name, data); err != nil {
			return fmt.Errorf("cluster: local copy of %s: %w", name, err)
		}
	}
	ttl := time.Duration(0)
	if token {
		ttl = tokenTTL
	}
	rctx, cancel := c.s.ctx(ctx)
	err := c.s.observe(c.s.rdb.Set(rctx, c.key(name), data, ttl).Err())
	cancel()
	if err != nil {
		if !token && c.local != nil {
			c.s.mu.Lock()
			c.s.pending[name] = c
			c.s.mu.Unlock()
		}
		return fmt.Errorf("cluster: put %s: %w", name, err)
	}
	return nil
}

// Delete removes the entry from Redis and the local copy.
func (c *Cache) Delete(ctx context.Context, name string) error {
	if !isToken(name) && c.local != nil {
		c.local.Delete(ctx, name)
	}
	rctx, cancel := c.s.ctx(ctx)
	defer cancel()
	if err := c.s.observe(c.s.rdb.Del(rctx, c.key(name)).Err()); err != nil {
		return fmt.Errorf("cluster: delete %s: %w", name, err)
	}
	return nil
}

// flushPending writes to Redis the entries whose write it missed, from
// the local copy.
func (s *Store) flushPending(ctx context.Context) {
	s.mu.Lock()
	pending := maps.Clone(s.pending)
	s.mu.Unlock()
	for name, c := range pending {
		data, err := c.local.Get(ctx, name)
		if err == nil {
			rctx, cancel := s.ctx(ctx)
			err = s.observe(s.rdb.Set(rctx, c.key(name), data, 0).Err())
			cancel()
			if err != nil {
				return // still down: keep the rest for later
			}
			s.logger.Info("cluster: wrote to storage what it missed while down", "key", name)
		}
		s.mu.Lock()
		delete(s.pending, name)
		s.mu.Unlock()
	}
}
