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
	"sync/atomic"
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

	// Cache, when not nil, holds the account key, certificates and
	// challenge data instead of a DirCache in CacheDir: one that every
	// replica shares.
	Cache autocert.Cache
	// TryLock, when not nil, makes issuance and renewal one order per
	// certificate across the replicas sharing Cache: a replica orders only
	// while it holds the lock named after the certificate's host name;
	// the others wait for the certificate to appear in Cache. ACME then
	// renews certificates itself, under the lock, instead of leaving it
	// to autocert. Nil: autocert orders and renews on its own.
	TryLock func(ctx context.Context, name string) (lease Lease, held bool, err error)
	// LockWait bounds how long a replica waits for another replica's
	// order, or for the lock's storage to answer; 6 minutes (autocert
	// gives an order 5).
	LockWait time.Duration
	// Poll is how often a waiting replica looks for the certificate and
	// tries the lock; 1 second.
	Poll time.Duration
}

// Lease is a lock TryLock took: Lost is closed if it is lost before
// Release (it expired while the storage did not answer), and the holder
// then stops its order.
type Lease struct {
	Lost    <-chan struct{}
	Release func()
}

// ACME obtains and renews certificates with autocert, wrapped to issue at
// start-up, back off after failures, log why a challenge failed, and log
// every issued and renewed certificate.
type ACME struct {
	m *autocert.Manager
	// obtain is m.GetCertificate; tests replace it to script failures.
	obtain func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	hosts  map[string]bool
	// states holds the issuance state per autocert cache key: the host for
	// its ECDSA certificate, host+"+rsa" for RSA.
	states map[string]*keyState
	logger *slog.Logger
	min    time.Duration // backoff after the first failure
	max    time.Duration // longest backoff
	renew  time.Duration // RenewBefore
	// attempts counts attempts running, so that the CA's answers seen
	// outside them are known to come from autocert's own renewals.
	attempts atomic.Int64

	mu sync.Mutex // guards the keyStates' fields below their busy, and the fields below
	// seenAuthz holds the failed challenges already logged.
	seenAuthz map[string]bool
	// newAccountURL is the CA's, from its directory; accountRefusal is
	// the CA's last refusal of a request to that URL (to register the
	// account), for explainEAB.
	newAccountURL  string
	accountRefusal problem

	shared *sharedState // with ACMEOptions.TryLock; nil otherwise
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
	a := &ACME{hosts: map[string]bool{}, states: map[string]*keyState{}, seenAuthz: map[string]bool{},
		logger: opts.Logger, min: opts.MinBackoff, max: opts.MaxBackoff, renew: opts.RenewBefore}
	if a.min <= 0 {
		a.min = time.Minute
	}
	if a.max <= 0 {
		a.max = time.Hour
	}
	for _, h := range opts.Hosts {
		h = strings.ToLower(strings.TrimSuffix(h, "."))
		a.hosts[h] = true
		a.states[h] = newKeyState(h, "ECDSA")
		a.states[h+"+rsa"] = newKeyState(h, "RSA")
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if opts.CARoots != nil {
		transport.TLSClientConfig = &tls.Config{RootCAs: opts.CARoots}
	}
	observer := caObserver{base: transport, failed: a.challengeFailed, refused: a.caRefused, directory: a.directoryRead}
	var cache autocert.Cache = autocert.DirCache(opts.CacheDir)
	if opts.Cache != nil {
		cache = opts.Cache
	}
	a.m = &autocert.Manager{
		Prompt:      autocert.AcceptTOS,
		HostPolicy:  a.hostPolicy,
		Cache:       observedCache{Cache: cache, put: a.certStored},
		RenewBefore: opts.RenewBefore,
		Email:       opts.Email,
		Client: &acme.Client{
			DirectoryURL: opts.DirectoryURL,
			HTTPClient:   &http.Client{Transport: observer, Timeout: time.Minute},
			UserAgent:    "httpsd",
		},
	}
	a.obtain = a.m.GetCertificate
	if opts.EABKeyID != "" {
		a.m.ExternalAccountBinding = &acme.ExternalAccountBinding{KID: opts.EABKeyID, Key: opts.EABKey}
	}
	if opts.TryLock != nil {
		a.shared = newShared(opts, observer)
		a.shared.cache = a.m.Cache
		// The Manager only answers challenges: one-shot Managers order.
		a.m.Client.HTTPClient = &http.Client{Transport: refuseAll{}}
	}
	return a, nil
}

func (a *ACME) hostPolicy(_ context.Context, host string) error {
	if !a.hosts[strings.ToLower(host)] {
		return fmt.Errorf("certs: acme: host %q is not in hosts", host)
	}
	return nil
}

// GetCertificate answers TLS handshakes: ACME tls-alpn-01 challenges, and
// the certificate of a configured host: ECDSA P-256 whenever the client
// can verify it, else RSA. While a certificate is missing and backing off
// after a failure, handshakes needing it fail at once instead of calling
// the CA. With TryLock, a certificate in service is served from memory:
// a handshake never waits on the shared cache.
func (a *ACME) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == acme.ALPNProto {
		return a.m.GetCertificate(hello)
	}
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	if !a.hosts[name] {
		return nil, fmt.Errorf("certs: acme: no certificate for %q: not in hosts", hello.ServerName)
	}
	key, hello := keyFor(name, hello)
	st := a.states[key]
	a.mu.Lock()
	ready, cert := st.ready, st.cert
	a.mu.Unlock()
	switch {
	case ready && a.shared != nil:
		return cert, nil
	case ready:
		return a.obtain(hello)
	}
	return a.attempt(st, hello)
}

// HTTPHandler answers ACME http-01 challenges for the configured hosts on
// the plain-HTTP listener and passes every other request to fallback.
// Unlike autocert's own, it matches the Host without its port, and leaves
// other hosts to fallback (which refuses them).
func (a *ACME) HTTPHandler(fallback http.Handler) http.Handler {
	h := a.m.HTTPHandler(fallback)
	if a.shared != nil {
		a.shared.http01.Store(true)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := strings.ToLower(strings.TrimSuffix(hostOnly(r.Host), "."))
		if !strings.HasPrefix(r.URL.Path, "/.well-known/acme-challenge/") || !a.hosts[host] {
			fallback.ServeHTTP(w, r)
			return
		}
		r2 := r.Clone(r.Context())
		r2.Host = host
		h.ServeHTTP(w, r2)
	})
}

// Run obtains every host's ECDSA certificate in the background, from the
// cache or the CA, retrying failures with exponential backoff, then
// watches renewals, until ctx is done. Renewing is autocert's work: it
// starts ahead of expiry, retries every 30 to 60 minutes, and keeps the old
// certificate in service while renewal fails; Run logs when it is overdue.
// With TryLock, Run renews every certificate itself (RSA ones once a
// client has needed them) and, once ctx is done, stops any order running
// and releases its lock before it returns.
func (a *ACME) Run(ctx context.Context) {
	var wg sync.WaitGroup
	if a.shared != nil {
		defer a.shared.stop()
		wg.Go(func() {
			<-ctx.Done()
			a.shared.stop()
		})
	}
	for name := range a.hosts {
		st := a.states[name]
		wg.Go(func() {
			retry(ctx, a.min, a.max, func() (bool, time.Time) {
				_, err := a.attempt(st, ecdsaHello(name))
				a.mu.Lock()
				defer a.mu.Unlock()
				return err == nil, st.next
			})
			if a.shared != nil {
				a.renewShared(ctx, st)
				return
			}
			a.watchRenewal(ctx, st)
		})
		if rsa := a.states[name+"+rsa"]; a.shared != nil {
			wg.Go(func() {
				select {
				case <-rsa.readyc:
					a.renewShared(ctx, rsa)
				case <-ctx.Done():
				}
			})
		}
	}
	wg.Wait()
}
