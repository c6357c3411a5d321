package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// Let's Encrypt's directories.
const (
	LetsEncryptURL        = "https://acme-v02.api.letsencrypt.org/directory"
	LetsEncryptStagingURL = "https://acme-staging-v02.api.letsencrypt.org/directory"
)

// ACMEOptions configures ACME. Zero fields take the defaults in comments.
type ACMEOptions struct {
	Hosts        []string       // DNS names to get certificates for; others are refused
	CacheDir     string         // account key and certificates (0700 dir, 0600 files)
	DirectoryURL string         // LetsEncryptURL
	Email        string         // contact address; none
	CARoots      *x509.CertPool // roots trusted for the directory's HTTPS; system roots
	RenewBefore  time.Duration  // autocert's default (a third of the lifetime, at most 30 days)
	EABKeyID     string         // External Account Binding key ID; none
	EABKey       []byte         // External Account Binding HMAC key
	Logger       *slog.Logger   // discards when nil
	MinBackoff   time.Duration  // 1 minute: first wait after a failure, doubling
	MaxBackoff   time.Duration  // 1 hour
}

// ACME obtains and renews certificates with autocert, wrapped to issue at
// start-up, back off per host after failures, log why a challenge failed,
// and log every issued and renewed certificate.
type ACME struct {
	mu sync.Mutex // guards the fields of every hostState but its mu
	m  *autocert.Manager
	// obtain is m.GetCertificate; tests replace it to script failures.
	obtain func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	hosts  map[string]*hostState
	logger *slog.Logger
	// seenAuthz holds the failed challenges already logged, guarded by mu.
	seenAuthz map[string]bool
	min       time.Duration // backoff after the first failure
	max       time.Duration // longest backoff
	renew     time.Duration // RenewBefore
}

// hostState is one host's issuance state.
type hostState struct {
	name string
	mu   sync.Mutex // held while an attempt runs, so attempts never overlap
	// Guarded by ACME.mu:
	ready    bool      // a certificate has been obtained or loaded
	failures int       // consecutive failed attempts
	next     time.Time // no attempt before this after a failure
	lastErr  error
	lastLog  time.Time         // last "no certificate yet" log line
	leaf     *x509.Certificate // the certificate in service
	stats    HostStats
}

// HostStats counts one host's ACME events since start.
type HostStats struct {
	Host        string
	Ready       bool              // a certificate is in service
	Leaf        *x509.Certificate // the certificate in service, or nil
	Issued      int               // certificates issued (the first, or after a restart without cache)
	Renewed     int               // certificates renewed
	Failures    int               // failed attempts to obtain a first certificate
	LastFailure time.Time         // zero if none
	LastError   error
}

// Stats returns every host's counts, in no particular order.
func (a *ACME) Stats() []HostStats {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]HostStats, 0, len(a.hosts))
	for _, st := range a.hosts {
		s := st.stats
		s.Host, s.Ready, s.Leaf, s.LastError = st.name, st.ready, st.leaf, st.lastErr
		out = append(out, s)
	}
	return out
}

// NewACME returns an ACME source for opts; call Run to issue in the
// background.
func NewACME(opts ACMEOptions) (*ACME, error) {
	if len(opts.Hosts) == 0 {
		return nil, errors.New("certs: acme needs at least one host")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.DirectoryURL == "" {
		opts.DirectoryURL = LetsEncryptURL
	}
	a := &ACME{hosts: map[string]*hostState{}, seenAuthz: map[string]bool{}, logger: opts.Logger, min: opts.MinBackoff, max: opts.MaxBackoff, renew: opts.RenewBefore}
	if a.min <= 0 {
		a.min = time.Minute
	}
	if a.max <= 0 {
		a.max = time.Hour
	}
	for _, h := range opts.Hosts {
		h = strings.ToLower(strings.TrimSuffix(h, "."))
		a.hosts[h] = &hostState{name: h}
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if opts.CARoots != nil {
		transport.TLSClientConfig = &tls.Config{RootCAs: opts.CARoots}
	}
	a.m = &autocert.Manager{
		Prompt:      autocert.AcceptTOS,
		HostPolicy:  a.hostPolicy,
		Cache:       observedCache{Cache: autocert.DirCache(opts.CacheDir), put: a.certStored},
		RenewBefore: opts.RenewBefore,
		Email:       opts.Email,
		Client: &acme.Client{
			DirectoryURL: opts.DirectoryURL,
			HTTPClient:   &http.Client{Transport: challengeObserver{base: transport, failed: a.challengeFailed}, Timeout: time.Minute},
			UserAgent:    "httpsd",
		},
	}
	a.obtain = a.m.GetCertificate
	if opts.EABKeyID != "" {
		a.m.ExternalAccountBinding = &acme.ExternalAccountBinding{KID: opts.EABKeyID, Key: opts.EABKey}
	}
	return a, nil
}

func (a *ACME) hostPolicy(_ context.Context, host string) error {
	if _, ok := a.hosts[strings.ToLower(host)]; !ok {
		return fmt.Errorf("certs: acme: host %q is not in hosts", host)
	}
	return nil
}

// GetCertificate answers TLS handshakes: ACME tls-alpn-01 challenges, and
// the certificate of a configured host. It prefers ECDSA P-256 whenever the
// client can verify it. While a host without a certificate is backing off
// after a failure, its handshakes fail at once instead of calling the CA.
func (a *ACME) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == acme.ALPNProto {
		return a.m.GetCertificate(hello)
	}
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	st, ok := a.hosts[name]
	if !ok {
		return nil, fmt.Errorf("certs: acme: no certificate for %q: not in hosts", hello.ServerName)
	}
	hello = preferECDSA(hello)
	a.mu.Lock()
	ready := st.ready
	a.mu.Unlock()
	if ready {
		return a.obtain(hello)
	}
	return a.attempt(st, hello)
}

// HTTPHandler answers ACME http-01 challenges on the plain-HTTP listener
// and passes every other request to fallback. Unlike autocert's own, it
// checks the host policy against the Host without its port.
func (a *ACME) HTTPHandler(fallback http.Handler) http.Handler {
	h := a.m.HTTPHandler(fallback)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/.well-known/acme-challenge/") {
			r2 := r.Clone(r.Context())
			r2.Host = strings.ToLower(strings.TrimSuffix(hostOnly(r.Host), "."))
			r = r2
		}
		h.ServeHTTP(w, r)
	})
}

// Run obtains a certificate for every host in the background, from the
// cache or the CA, retrying failures with exponential backoff, then
// watches renewals, until ctx is done. Renewing is autocert's work: it
// starts ahead of expiry, retries every 30 to 60 minutes, and keeps the old
// certificate in service while renewal fails; Run logs when it is overdue.
func (a *ACME) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, st := range a.hosts {
		wg.Go(func() {
			retry(ctx, a.min, a.max, func() (bool, time.Time) {
				_, err := a.attempt(st, ecdsaHello(st.name))
				a.mu.Lock()
				defer a.mu.Unlock()
				return err == nil, st.next
			})
			a.watchRenewal(ctx, st)
		})
	}
	wg.Wait()
}

// watchRenewal logs, once an hour, while st's certificate is past the
// time autocert should have renewed it (plus two hours of grace).
func (a *ACME) watchRenewal(ctx context.Context, st *hostState) {
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

// attempt gets the certificate for st through autocert, unless st is
// backing off, and records the outcome.
func (a *ACME) attempt(st *hostState, hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	a.mu.Lock()
	ready, next, lastErr := st.ready, st.next, st.lastErr
	now := time.Now()
	if !ready && now.Before(next) {
		logIt := now.Sub(st.lastLog) >= time.Minute
		if logIt {
			st.lastLog = now
		}
		a.mu.Unlock()
		err := fmt.Errorf("certs: acme: no certificate for %s yet; next attempt at %s; last error: %v",
			st.name, next.Format(time.RFC3339), lastErr)
		if logIt {
			a.logger.Warn("acme: handshake refused, no certificate yet", "host", st.name,
				"next_attempt", next.Format(time.RFC3339), "last_error", lastErr)
		}
		return nil, err
	}
	a.mu.Unlock()

	cert, err := a.obtain(hello)
	a.mu.Lock()
	defer a.mu.Unlock()
	if err == nil {
		if !st.ready {
			a.logger.Info("acme: certificate ready", "host", st.name, "not_after", cert.Leaf.NotAfter.UTC().Format(time.RFC3339),
				"renewal_due", renewalDue(cert.Leaf, a.renew).UTC().Format(time.RFC3339))
			st.leaf = cert.Leaf
		}
		st.ready, st.failures, st.lastErr = true, 0, nil
		return cert, nil
	}
	wait := backoff(a.min, a.max, st.failures)
	st.failures++
	st.stats.Failures++
	st.stats.LastFailure = time.Now()
	st.next, st.lastErr = time.Now().Add(wait), err
	a.logger.Error("acme: certificate failed", "host", st.name, "err", err,
		"attempt", st.failures, "next_attempt_in", wait.String())
	return nil, err
}

// preferECDSA returns hello, or a copy that autocert reads as ECDSA-capable
// when the client can verify an ECDSA P-256 certificate. autocert looks for
// TLS 1.2 ECDSA suites and P-256 among the key-exchange groups, so it would
// hand RSA to TLS 1.3-only clients and to clients offering only X25519
// (golang/go#50522), though their signature algorithms allow ECDSA.
func preferECDSA(hello *tls.ClientHelloInfo) *tls.ClientHelloInfo {
	if !offersTLS13(hello) || !offersScheme(hello, tls.ECDSAWithP256AndSHA256) {
		return hello
	}
	h := *hello
	h.CipherSuites = append(append([]uint16(nil), hello.CipherSuites...), tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)
	h.SupportedCurves = append(append([]tls.CurveID(nil), hello.SupportedCurves...), tls.CurveP256)
	return &h
}

func offersTLS13(hello *tls.ClientHelloInfo) bool {
	for _, v := range hello.SupportedVersions {
		if v == tls.VersionTLS13 {
			return true
		}
	}
	return false
}

func offersScheme(hello *tls.ClientHelloInfo, s tls.SignatureScheme) bool {
	for _, v := range hello.SignatureSchemes {
		if v == s {
			return true
		}
	}
	return false
}

// ecdsaHello is the hello Run uses to obtain a host's ECDSA certificate.
func ecdsaHello(host string) *tls.ClientHelloInfo {
	return &tls.ClientHelloInfo{
		ServerName:        host,
		SupportedVersions: []uint16{tls.VersionTLS13, tls.VersionTLS12},
		SignatureSchemes:  []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256},
		SupportedCurves:   []tls.CurveID{tls.CurveP256},
		CipherSuites:      []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
	}
}
