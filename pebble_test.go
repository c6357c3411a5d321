package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/letsencrypt/challtestsrv"
	pebbleca "github.com/letsencrypt/pebble/v2/ca"
	pebbledb "github.com/letsencrypt/pebble/v2/db"
	pebbleva "github.com/letsencrypt/pebble/v2/va"
	pebblewfe "github.com/letsencrypt/pebble/v2/wfe"
)

// pebble is Let's Encrypt's test CA running in this process on loopback,
// with challtestsrv as its DNS: every name resolves to 127.0.0.1.
type pebble struct {
	directory string            // https://127.0.0.1:PORT/dir
	apiRoots  string            // PEM file trusted for the directory's HTTPS (tls.acme.ca_roots)
	root      *x509.Certificate // issued certificates chain to it
	rootFile  string            // root as PEM, for curl --cacert
	dns       string            // challtestsrv's address
	requests  atomic.Int64      // requests to the ACME API
	orders    atomic.Int64      // new orders (POST to newOrder)
	stop      func()            // stops the API; the DNS stays up until the test ends
}

// startPebble starts a fresh CA whose validation connects to 127.0.0.1 on
// httpPort for http-01 and tlsPort for tls-alpn-01, issuing certificates
// valid for validity seconds (0: Pebble's default, 90 days).
func startPebble(t *testing.T, httpPort, tlsPort int, validity uint64) *pebble {
	t.Helper()
	return startPebbleWith(t, httpPort, tlsPort, pebbleOptions{validity: validity})
}

// pebbleOptions is what startPebbleWith sets beyond the validation ports.
type pebbleOptions struct {
	validity uint64 // certificate lifetime in seconds; 0: Pebble's default, 90 days
	// eabKID and eabKey (base64url), when set, make External Account
	// Binding required, with this one MAC key known to the CA.
	eabKID, eabKey string
	// hook, when not nil, sees every API request before Pebble does (and
	// may hold it).
	hook func(*http.Request)
}

// startPebbleWith is startPebble with opts.
func startPebbleWith(t *testing.T, httpPort, tlsPort int, opts pebbleOptions) *pebble {
	t.Helper()
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	t.Setenv("PEBBLE_AUTHZREUSE", "0")
	quiet := log.New(io.Discard, "", 0)
	p := &pebble{dns: startDNS(t, quiet)}

	store := pebbledb.NewMemoryStore()
	if opts.eabKID != "" {
		if err := store.AddExternalAccountKeyByID(opts.eabKID, opts.eabKey); err != nil {
			t.Fatal(err)
		}
	}
	ca := pebbleca.New(quiet, store, "", "ecdsa", 0, 1, map[string]pebbleca.Profile{"default": {Description: "default", ValidityPeriod: opts.validity}})
	va := pebbleva.New(quiet, httpPort, tlsPort, false, p.dns, store)
	wfe := pebblewfe.New(quiet, store, va, ca, nil, false, opts.eabKID != "", 0, 0)
	api := wfe.Handler()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		if r.Method == "POST" && r.URL.Path == newOrderPath {
			p.orders.Add(1)
		}
		if opts.hook != nil {
			opts.hook(r)
		}
		api.ServeHTTP(w, r)
	}))
	srv.Config.ErrorLog = quiet
	srv.StartTLS()
	p.stop = srv.Close
	t.Cleanup(srv.Close)
	p.directory = srv.URL + pebblewfe.DirectoryPath

	dir := t.TempDir()
	p.apiRoots = writePEM(t, filepath.Join(dir, "api-roots.pem"), srv.Certificate().Raw)
	p.root = ca.GetRootCert(0).Cert
	p.rootFile = writePEM(t, filepath.Join(dir, "root.pem"), p.root.Raw)
	return p
}

func writePEM(t *testing.T, file string, der []byte) string {
	t.Helper()
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// startDNS starts challtestsrv on a free loopback port, answering every A
// query with 127.0.0.1 and no AAAA (else validation would try ::1).
func startDNS(t *testing.T, logger *log.Logger) string {
	t.Helper()
	for range 5 {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
		srv, err := challtestsrv.New(challtestsrv.Config{DNSAddrs: []string{addr}, Log: logger})
		if err != nil {
			t.Fatal(err)
		}
		srv.SetDefaultDNSIPv4("127.0.0.1")
		srv.SetDefaultDNSIPv6("")
		srv.Run()
		if waitDNS(addr) == nil {
			t.Cleanup(srv.Shutdown)
			return addr
		}
		srv.Shutdown()
	}
	t.Fatal("challtestsrv did not start")
	return ""
}

func waitDNS(addr string) error {
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	}}
	var err error
	for range 100 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err = r.LookupNetIP(ctx, "ip4", "probe.example")
		cancel()
		if err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return err
}

// newOrderPath is Pebble's newOrder endpoint.
const newOrderPath = "/order-plz"

// portsGiven are the ports freePort has returned in this test binary: a
// port is picked before anything binds it, so two picks must not agree.
var portsGiven sync.Map

// freePort returns a loopback port nobody listened on a moment ago and
// that no other call has returned.
func freePort(t *testing.T) int {
	t.Helper()
	// Below Linux's ephemeral range (32768-60999), where the outgoing
	// connections of every process on the machine would otherwise take
	// the port between this check and the server's bind.
	for range 100 {
		port := 20000 + rand.IntN(12000)
		if _, taken := portsGiven.LoadOrStore(port, true); taken {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err == nil {
			ln.Close()
			return port
		}
	}
	t.Fatal("no free port in 20000-32000")
	return 0
}
