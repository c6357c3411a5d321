package certs

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/acme/autocert"
)

// Replicas that share a cache order each certificate once: an order runs
// only under a lock (ACMEOptions.TryLock) named after the certificate's
// host name, after the cache was read again under that lock.
//
// autocert cannot give that guarantee by itself. Its renewal timers (one
// per certificate a Manager holds) call the CA directly: domainRenewal.do
// reads the cache, then orders when what it read is due, with nothing to
// hook in between, and every replica's timer fires within the same jitter
// (a tenth of the renewal window, at most an hour) — at once, at start-up,
// for a certificate already due. So with a shared cache each replica
// still orders its own renewal whenever the timers fire within one order
// of each other. Measured with three Managers sharing one Redis cache
// against Pebble (12-second certificates renewed 8 seconds before they
// end): 5 new orders for the first certificate asked for at once (two of
// the three concurrent orders failed validation, since autocert caches
// the tls-alpn-01 certificate per name and each overwrote another's),
// then 18 orders in 8 renewals. With the lock: 1, then 1 per renewal.
//
// So with TryLock, httpsd's own Manager never orders (its client refuses
// every request; it answers challenges from the shared cache), and each
// order, first issuance or renewal, runs in a one-shot Manager made for
// it, whose client is closed once it returns. autocert arms a renewal
// timer in that Manager too; when it fires, its requests are refused at
// once without reaching the CA.

// sharedState is ACME's state with TryLock.
type sharedState struct {
	tryLock  func(ctx context.Context, name string) (Lease, bool, error)
	cache    autocert.Cache // the shared cache, observed
	wait     time.Duration
	poll     time.Duration
	observer http.RoundTripper
	opts     ACMEOptions
	http01   atomic.Bool // HTTPHandler was called: orders may use http-01

	ctx    context.Context // done once Run ends: orders stop
	cancel context.CancelFunc

	mu      sync.Mutex
	lastLog time.Time // last "waiting for the storage" line
}

func newShared(opts ACMEOptions, observer http.RoundTripper) *sharedState {
	s := &sharedState{tryLock: opts.TryLock, wait: opts.LockWait, poll: opts.Poll, observer: observer, opts: opts}
	if s.wait <= 0 {
		s.wait = 6 * time.Minute
	}
	if s.poll <= 0 {
		s.poll = time.Second
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

func (s *sharedState) stop() { s.cancel() }

// waitError is why a replica gave up waiting: the lock's storage did not
// answer, or another replica held the lock the whole time. It is not the
// CA's doing, so it does not lengthen the backoff.
type waitError struct{ err error }

func (e *waitError) Error() string { return e.err.Error() }
func (e *waitError) Unwrap() error { return e.err }

// obtainShared returns st's certificate from the shared cache, or orders
// it while holding the lock; with renew, only one not yet due for renewal
// will do. Meanwhile another replica's certificate is taken as soon as it
// appears in the cache, and the lock is tried every Poll (every Poll
// doubling to 10s while its storage does not answer), for at most
// LockWait.
func (a *ACME) obtainShared(st *keyState, hello *tls.ClientHelloInfo, renew bool) (*tls.Certificate, error) {
	s := a.shared
	ctx, cancel := context.WithTimeout(s.ctx, s.wait)
	defer cancel()
	key := st.name
	if st.kind == "RSA" {
		key += "+rsa"
	}
	wait, logged := s.poll, false
	var why error
	for {
		if cert := a.cached(ctx, key, st, renew); cert != nil {
			return cert, nil
		}
		// One lock per name, not per key type: autocert caches the
		// tls-alpn-01 certificate per name, so an RSA and an ECDSA order
		// for one name at once would overwrite each other's.
		lease, held, err := s.tryLock(ctx, st.name)
		switch {
		case err != nil:
			why = fmt.Errorf("the cluster storage does not answer: %w", err)
			a.storageWait(st, err)
			wait = min(2*wait, 10*time.Second)
		case held:
			return a.orderHeld(ctx, key, st, hello, renew, lease)
		default:
			why = errors.New("another replica held the lock and stored no certificate")
			wait = s.poll
			if !logged {
				logged = true
				a.logger.Info("acme: another replica is ordering this certificate; waiting for it", "host", st.name, "key", st.kind)
			}
		}
		if !sleep(ctx, wait) {
			if s.ctx.Err() != nil {
				return nil, fmt.Errorf("certs: acme: %s certificate for %s: stopped", st.kind, st.name)
			}
			return nil, &waitError{fmt.Errorf("certs: acme: %s certificate for %s: waited %v: %w", st.kind, st.name, s.wait, why)}
		}
	}
}

// storageWait says, at most once a minute, that issuance waits for the
// cluster storage.
func (a *ACME) storageWait(st *keyState, err error) {
	s := a.shared
	s.mu.Lock()
	logIt := time.Since(s.lastLog) >= time.Minute
	if logIt {
		s.lastLog = time.Now()
	}
	s.mu.Unlock()
	if logIt {
		a.logger.Warn("acme: issuance waits for the cluster storage; certificates held stay in service",
			"host", st.name, "key", st.kind, "err", err)
	}
}

// cached returns the certificate stored under key if it is valid for st
// now (and, with renew, not yet due for renewal), else nil.
func (a *ACME) cached(ctx context.Context, key string, st *keyState, renew bool) *tls.Certificate {
	data, err := a.shared.cache.Get(ctx, key)
	if err != nil {
		return nil
	}
	cert, err := tls.X509KeyPair(data, data)
	if err != nil {
		return nil
	}
	leaf, now := cert.Leaf, time.Now()
	if now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) || leaf.VerifyHostname(st.name) != nil ||
		!strings.HasPrefix(keyType(leaf), st.kind) {
		return nil
	}
	if renew && !now.Before(renewalDue(leaf, a.renew)) {
		return nil
	}
	return &cert
}

// orderHeld orders st's certificate while lease holds the lock, unless
// the cache has one now, and makes sure it reaches the shared cache before
// the lock is released.
func (a *ACME) orderHeld(ctx context.Context, key string, st *keyState, hello *tls.ClientHelloInfo, renew bool, lease Lease) (*tls.Certificate, error) {
	defer lease.Release()
	if cert := a.cached(ctx, key, st, renew); cert != nil {
		return cert, nil
	}
	a.logger.Info("acme: ordering certificate; this replica holds the lock", "host", st.name, "key", st.kind, "renewal", renew)
	m, view, closeM := a.oneShot(key)
	defer closeM()
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-lease.Lost:
			a.logger.Warn("acme: lost the order lock (the cluster storage did not answer); stopping the order", "host", st.name)
			closeM()
		case <-ctx.Done():
			closeM()
		case <-done:
		}
	}()
	if err := a.ensureAccount(ctx); err != nil {
		return nil, err
	}
	cert, err := m.GetCertificate(hello)
	if err != nil {
		return nil, err
	}
	// autocert ignores a failed write: the other replicas must read it
	// before the lock goes, else one would order again.
	for data, err := view.stored(); err != nil; err = a.shared.cache.Put(ctx, key, data) {
		if !sleep(ctx, a.shared.poll) {
			break
		}
	}
	return cert, nil
}

// renewShared renews st's certificate when it is due, under the lock
// (taking another replica's renewal from the cache instead when there is
// one), retrying failures with backoff, until ctx is done. The current
// certificate stays in service meanwhile.
func (a *ACME) renewShared(ctx context.Context, st *keyState) {
	hello := ecdsaHello(st.name)
	if st.kind == "RSA" {
		hello = &tls.ClientHelloInfo{ServerName: st.name} // no ECDSA suite: autocert picks RSA
	}
	for {
		a.mu.Lock()
		leaf := st.leaf
		a.mu.Unlock()
		if leaf == nil { // stopped before the first certificate
			return
		}
		if !sleep(ctx, max(time.Until(renewalDue(leaf, a.renew)), a.shared.poll)) {
			return
		}
		failures := 0
		retry(ctx, a.min, a.max, func() (bool, time.Time) {
			a.attempts.Add(1)
			cert, err := a.obtainShared(st, hello, true)
			a.attempts.Add(-1)
			a.mu.Lock()
			defer a.mu.Unlock()
			if err == nil {
				if !cert.Leaf.Equal(st.leaf) && st.leaf == leaf {
					a.logger.Info("acme: certificate renewed by another replica, taken from the shared cache", "host", st.name,
						"key", st.kind, "not_after", cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
				}
				st.cert, st.leaf = cert, cert.Leaf
				return true, time.Time{}
			}
			wait := a.min
			var we *waitError
			if !errors.As(err, &we) {
				wait = backoff(a.min, a.max, failures)
				failures++
				st.stats.Failures++
				st.stats.LastFailure = time.Now()
			}
			a.logger.Error("acme: renewal failed; the current certificate stays in service", "host", st.name, "key", st.kind,
				"err", err, "not_after", leaf.NotAfter.UTC().Format(time.RFC3339), "next_attempt_in", wait.String())
			return false, time.Now().Add(wait)
		})
	}
}
