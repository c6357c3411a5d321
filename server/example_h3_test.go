package server_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/quic-go/quic-go/http3"

	"github.com/httpsd/httpsd/certs"
	"github.com/httpsd/httpsd/server"
)

// The same router over HTTP/3 too: ServeQUIC on a UDP socket with the
// HTTPS listener's address and port. HTTP/1.1 and HTTP/2 answers then
// advertise it in Alt-Svc.
func ExampleServer_ServeQUIC() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	set, err := certs.LocalCA(filepath.Join(dir, "data"), []string{"localhost"}, time.Now())
	if err != nil {
		log.Fatal(err)
	}
	srv := server.New(server.Options{Hosts: []string{"localhost"}, GetCertificate: set.GetCertificate, Handler: usersRouter()})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer pc.Close()
	go srv.ServeTLS(ln)
	go srv.ServeQUIC(pc)
	defer srv.Shutdown(context.Background())

	roots := x509.NewCertPool()
	caPEM, _ := os.ReadFile(filepath.Join(dir, "data", certs.CACertFile))
	roots.AppendCertsFromPEM(caPEM)
	tr := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}
	defer tr.Close()
	_, port, _ := net.SplitHostPort(pc.LocalAddr().String())
	resp, err := (&http.Client{Transport: tr}).Get("https://localhost:" + port + "/users/42")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Printf("%s %s %s", resp.Proto, resp.Status, body)
	// Output: HTTP/3.0 200 OK user 42
}
