package certs

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// accountKeyName is where autocert caches the ACME account key.
const accountKeyName = "acme_account+key"

// ensureAccount makes the ACME account key if the shared cache has none,
// under a lock, so that replicas ordering different names at once do not
// each register an account.
func (a *ACME) ensureAccount(ctx context.Context) error {
	s := a.shared
	for {
		_, err := s.cache.Get(ctx, accountKeyName)
		if err != autocert.ErrCacheMiss {
			return err
		}
		lease, held, err := s.tryLock(ctx, accountKeyName)
		if err != nil {
			return err
		}
		if held {
			defer lease.Release()
			if _, err := s.cache.Get(ctx, accountKeyName); err != autocert.ErrCacheMiss {
				return err
			}
			key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				return err
			}
			der, err := x509.MarshalECPrivateKey(key)
			if err != nil {
				return err
			}
			return s.cache.Put(ctx, accountKeyName, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
		}
		if !sleep(ctx, s.poll) {
			return fmt.Errorf("certs: acme: waiting for the account key another replica makes: %w", ctx.Err())
		}
	}
}

// oneShot returns a Manager for one order of the certificate cached as
// key, sharing the cache (in which it cannot see that certificate, so
// that it orders), and a func that closes it: from then on its client and
// cache refuse everything.
func (a *ACME) oneShot(key string) (*autocert.Manager, *orderCache, func()) {
	s := a.shared
	ctx, cancel := context.WithCancel(s.ctx)
	view := &orderCache{Cache: s.cache, hide: key, closed: ctx}
	m := &autocert.Manager{
		Prompt:                 autocert.AcceptTOS,
		HostPolicy:             a.hostPolicy,
		Cache:                  view,
		RenewBefore:            s.opts.RenewBefore,
		Email:                  s.opts.Email,
		ExternalAccountBinding: a.m.ExternalAccountBinding,
		Client: &acme.Client{
			DirectoryURL: a.m.Client.DirectoryURL,
			HTTPClient:   &http.Client{Transport: closable{base: s.observer, closed: ctx}, Timeout: time.Minute},
			UserAgent:    "httpsd",
		},
	}
	if s.http01.Load() {
		m.HTTPHandler(nil) // only to enable http-01
	}
	return m, view, cancel
}

// orderCache is the shared cache as a one-shot Manager sees it: without
// the certificate it orders, and refusing everything once closed.
type orderCache struct {
	autocert.Cache
	hide   string
	closed context.Context

	mu     sync.Mutex
	data   []byte // what was stored under hide
	putErr error
}

var errOrderClosed = errors.New("certs: acme: order closed")

func (c *orderCache) Get(ctx context.Context, name string) ([]byte, error) {
	switch {
	case c.closed.Err() != nil:
		return nil, errOrderClosed
	case name == c.hide:
		return nil, autocert.ErrCacheMiss
	}
	return c.Cache.Get(ctx, name)
}

func (c *orderCache) Put(ctx context.Context, name string, data []byte) error {
	if c.closed.Err() != nil {
		return errOrderClosed
	}
	err := c.Cache.Put(ctx, name, data)
	if name == c.hide {
		c.mu.Lock()
		c.data, c.putErr = data, err
		c.mu.Unlock()
	}
	return err
}

func (c *orderCache) Delete(ctx context.Context, name string) error {
	if c.closed.Err() != nil {
		return errOrderClosed
	}
	return c.Cache.Delete(ctx, name)
}

// stored returns what was stored under hide, and the error writing it.
func (c *orderCache) stored() ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.data == nil {
		return nil, nil
	}
	return c.data, c.putErr
}

// closable is a one-shot Manager's transport: once closed it refuses new
// requests and cancels those running.
type closable struct {
	base   http.RoundTripper
	closed context.Context
}

func (c closable) RoundTrip(r *http.Request) (*http.Response, error) {
	if c.closed.Err() != nil {
		return nil, errOrderClosed
	}
	ctx, cancel := context.WithCancel(r.Context())
	stop := context.AfterFunc(c.closed, cancel)
	resp, err := c.base.RoundTrip(r.WithContext(ctx))
	if err != nil {
		stop()
		cancel()
	}
	return resp, err
}

// refuseAll is the client transport of the Manager that only answers
// challenges.
type refuseAll struct{}

func (refuseAll) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("certs: acme: this Manager does not order")
}
