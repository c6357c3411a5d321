package server_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/letsencrypt/challtestsrv"
	pebbleca "github.com/letsencrypt/pebble/v2/ca"
	pebbledb "github.com/letsencrypt/pebble/v2/db"
	pebbleva "github.com/letsencrypt/pebble/v2/va"
	pebblewfe "github.com/letsencrypt/pebble/v2/wfe"
	"golang.org/x/crypto/acme"

	"github.com/httpsd/httpsd/certs"
	"github.com/httpsd/httpsd/server"
)

// usersRouter is the app of a Go user who rewrote the Bottle app's
// handlers: an httprouter.Router of their own, its routes labelled for
// httpsd's metrics with NamedHandle.
func usersRouter() *httprouter.Router {
	r := httprouter.New()
	r.GET("/users/:id", server.NamedHandle("/users/:id", func(w http.ResponseWriter, _ *http.Request, ps httprouter.Params) {
		fmt.Fprintf(w, "user %s\n", ps.ByName("id"))
	}))
	return r
}

// get GETs url from addr, trusting roots, and prints the answer.
func get(roots *x509.CertPool, addr, url string) {
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots},
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}}
	resp, err := client.Get(url)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Printf("%s %s %s", resp.Proto, resp.Status, body)
}

// A router of your own behind httpsd's TLS, limits, metrics and access
// log, with a certificate from a local CA.
func Example_localCA() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	set, err := certs.LocalCA(filepath.Join(dir, "data"), []string{"localhost"}, time.Now())
	if err != nil {
		log.Fatal(err)
	}
	srv := server.New(server.Options{
		Hosts:          []string{"localhost"},
		GetCertificate: set.GetCertificate,
		Handler:        usersRouter(),
		Limits:         server.Limits{MaxConcurrent: 100, MaxRequestsPerIP: 10, SendTimeout: 10 * time.Second},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go srv.ServeTLS(ln)
	defer srv.Shutdown(context.Background())

	roots := x509.NewCertPool()
	caPEM, _ := os.ReadFile(filepath.Join(dir, "data", certs.CACertFile))
	roots.AppendCertsFromPEM(caPEM)
	get(roots, ln.Addr().String(), "https://localhost/users/42")
	// Output: HTTP/2.0 200 OK user 42
}

// The same router with a certificate obtained through ACME: here from
// Pebble, Let's Encrypt's test CA, running in this process; in production
// from Let's Encrypt (certs.LetsEncryptURL), with DNS pointing at the
// machine.
func Example_acme() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	directory, apiRoots, root := startPebble(ln.Addr().(*net.TCPAddr).Port)

	a, err := certs.NewACME(certs.ACMEOptions{
		Hosts:        []string{"app.example.test"},
		CacheDir:     filepath.Join(dir, "acme"),
		DirectoryURL: directory,
		CARoots:      apiRoots,
		MinBackoff:   time.Second, // the CA is local: retry a failed order soon
		Logger:       slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go a.Run(ctx) // obtains the certificate now, renews it later
	srv := server.New(server.Options{
		Hosts:          []string{"app.example.test"},
		GetCertificate: a.GetCertificate,
		ExtraALPN:      []string{acme.ALPNProto}, // tls-alpn-01 challenges
		Handler:        usersRouter(),
	})
	go srv.ServeTLS(ln)
	defer srv.Shutdown(context.Background())

	roots := x509.NewCertPool()
	roots.AddCert(root)
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: roots, ServerName: "app.example.test"}); err == nil {
			c.Close()
			break
		}
	}
	get(roots, ln.Addr().String(), "https://app.example.test/users/7")
	// Output: HTTP/2.0 200 OK user 7
}

// startPebble runs Pebble with a DNS that answers 127.0.0.1 for every
// name, validating tls-alpn-01 on tlsPort, and returns its directory, the
// roots for its API's HTTPS and the root its certificates chain to.
func startPebble(tlsPort int) (directory string, apiRoots *x509.CertPool, root *x509.Certificate) {
	os.Setenv("PEBBLE_VA_NOSLEEP", "1")
	os.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	quiet := log.New(io.Discard, "", 0)
	dnsLn, _ := net.ListenPacket("udp", "127.0.0.1:0")
	dnsAddr := dnsLn.LocalAddr().String()
	dnsLn.Close()
	dns, err := challtestsrv.New(challtestsrv.Config{DNSAddrs: []string{dnsAddr}, Log: quiet})
	if err != nil {
		log.Fatal(err)
	}
	dns.SetDefaultDNSIPv4("127.0.0.1")
	dns.SetDefaultDNSIPv6("")
	go dns.Run()
	store := pebbledb.NewMemoryStore()
	ca := pebbleca.New(quiet, store, "", "ecdsa", 0, 1, map[string]pebbleca.Profile{"default": {Description: "default"}})
	va := pebbleva.New(quiet, 1, tlsPort, false, dnsAddr, store)
	wfe := pebblewfe.New(quiet, store, va, ca, nil, false, false, 0, 0)
	api := httptest.NewUnstartedServer(wfe.Handler())
	api.Config.ErrorLog = quiet
	api.StartTLS()
	apiRoots = x509.NewCertPool()
	apiRoots.AddCert(api.Certificate())
	return api.URL + pebblewfe.DirectoryPath, apiRoots, ca.GetRootCert(0).Cert
}
