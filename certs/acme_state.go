package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// keyState is the issuance state of one certificate: a host's ECDSA or
// RSA one.
type keyState struct {
	name string
	kind string        // "ECDSA" or "RSA"
	busy chan struct{} // holds a token while an attempt runs
	// readyc is closed once a certificate is in service.
	readyc chan struct{}

	// Guarded by ACME.mu:
	ready    bool      // a certificate has been obtained or loaded
	failures int       // consecutive failed attempts
	next     time.Time // no attempt before this after a failure
	lastErr  error
	lastLog  time.Time         // last "no certificate yet" log line
	leaf     *x509.Certificate // the certificate in service
	cert     *tls.Certificate  // the certificate in service, with ACMEOptions.TryLock
	stats    HostStats
}

func newKeyState(name, kind string) *keyState {
	return &keyState{name: name, kind: kind, busy: make(chan struct{}, 1), readyc: make(chan struct{})}
}

// attemptWait bounds how long a handshake waits for an attempt already
// running for the certificate it needs.
const attemptWait = 10 * time.Second

// HostStats counts one host's ACME events since start.
type HostStats struct {
	Host        string
	Ready       bool              // an ECDSA certificate is in service
	Leaf        *x509.Certificate // that certificate, or nil
	Issued      int               // certificates issued (ECDSA and RSA)
	Renewed     int               // certificates renewed
	Failures    int               // failed attempts to obtain a certificate
	LastFailure time.Time         // zero if none
	LastError   error
}

// Stats returns every host's counts, in no particular order.
func (a *ACME) Stats() []HostStats {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]HostStats, 0, len(a.hosts))
	for name := range a.hosts {
		st, rsa := a.states[name], a.states[name+"+rsa"]
		s := st.stats
		s.Host, s.Ready, s.Leaf, s.LastError = name, st.ready, st.leaf, st.lastErr
		s.Issued += rsa.stats.Issued
		s.Renewed += rsa.stats.Renewed
		s.Failures += rsa.stats.Failures
		if rsa.stats.LastFailure.After(s.LastFailure) {
			s.LastFailure = rsa.stats.LastFailure
		}
		out = append(out, s)
	}
	return out
}

// attempt gets st's certificate through autocert, unless st is backing
// off, and records the outcome. A second caller waits up to attemptWait
// for an attempt already running, then fails.
func (a *ACME) attempt(st *keyState, hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	select {
	case st.busy <- struct{}{}:
	default:
		t := time.NewTimer(attemptWait)
		defer t.Stop()
		select {
		case st.busy <- struct{}{}:
		case <-t.C:
			return nil, fmt.Errorf("certs: acme: %s certificate for %s is still being obtained", st.kind, st.name)
		}
	}
	defer func() { <-st.busy }()
	a.mu.Lock()
	ready, next, lastErr := st.ready, st.next, st.lastErr
	now := time.Now()
	if !ready && now.Before(next) {
		logIt := now.Sub(st.lastLog) >= time.Minute
		if logIt {
			st.lastLog = now
		}
		a.mu.Unlock()
		if logIt {
			a.logger.Warn("acme: handshake refused, no certificate yet", "host", st.name, "key", st.kind,
				"next_attempt", next.Format(time.RFC3339), "last_error", lastErr)
		}
		return nil, fmt.Errorf("certs: acme: no %s certificate for %s yet; next attempt at %s; last error: %v",
			st.kind, st.name, next.Format(time.RFC3339), lastErr)
	}
	a.mu.Unlock()

	a.attempts.Add(1)
	var cert *tls.Certificate
	var err error
	if a.shared != nil {
		cert, err = a.obtainShared(st, hello, false)
	} else {
		cert, err = a.obtain(hello)
	}
	a.attempts.Add(-1)
	a.mu.Lock()
	defer a.mu.Unlock()
	if err == nil {
		if !st.ready {
			a.logger.Info("acme: certificate ready", "host", st.name, "key", st.kind,
				"not_after", cert.Leaf.NotAfter.UTC().Format(time.RFC3339),
				"renewal_due", renewalDue(cert.Leaf, a.renew).UTC().Format(time.RFC3339))
			st.leaf = cert.Leaf
			close(st.readyc)
		}
		st.ready, st.failures, st.lastErr, st.cert = true, 0, nil, cert
		return cert, nil
	}
	wait := backoff(a.min, a.max, st.failures)
	var we *waitError
	if errors.As(err, &we) { // waited for the storage or another replica: no longer backoff
		wait = a.min
	} else {
		st.failures++
		st.stats.Failures++
		st.stats.LastFailure = time.Now()
	}
	err = a.explainEAB(err)
	st.next, st.lastErr = time.Now().Add(wait), err
	a.logger.Error("acme: certificate failed", "host", st.name, "key", st.kind, "err", err,
		"attempt", st.failures, "next_attempt_in", wait.String())
	return nil, err
}

// watchRenewal logs, once an hour, while st's certificate is past the
// time autocert should have renewed it (plus two hours of grace).
func (a *ACME) watchRenewal(ctx context.Context, st *keyState) {
	for {
		a.mu.Lock()
		leaf := st.leaf
		a.mu.Unlock()
		if leaf == nil {
			return
		}
		wait := time.Until(renewalDue(leaf, a.renew).Add(2 * time.Hour))
		if wait <= 0 {
			a.logger.Warn("acme: renewal overdue; the current certificate stays in service and autocert retries within the hour",
				"host", st.name, "not_after", leaf.NotAfter.UTC().Format(time.RFC3339),
				"days_left", int(time.Until(leaf.NotAfter).Hours()/24))
			wait = time.Hour
		}
		if !sleep(ctx, wait) {
			return
		}
	}
}

// renewalDue is when autocert starts renewing leaf: RenewBefore, or a
// third of the lifetime, at most 30 days, before it expires (plus up to an
// hour of jitter).
func renewalDue(leaf *x509.Certificate, renewBefore time.Duration) time.Time {
	threshold := min(leaf.NotAfter.Sub(leaf.NotBefore)/3, 30*24*time.Hour)
	if renewBefore > 0 {
		threshold = min(renewBefore, 30*24*time.Hour)
	}
	return leaf.NotAfter.Add(-threshold)
}
