package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testCA signs leaf certificates into a directory for tests.
type testCA struct {
	t    *testing.T
	dir  string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string // the CA certificate, PEM
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	return newCA(t, "test CA", nil)
}

// newCA returns a CA named cn signed by parent, or self-signed if nil.
func newCA(t *testing.T, cn string, parent *testCA) *testCA {
	t.Helper()
	ca := &testCA{t: t, dir: t.TempDir()}
	ca.key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	signer, signKey := tmpl, ca.key
	if parent != nil {
		signer, signKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, ca.key.Public(), signKey)
	if err != nil {
		t.Fatal(err)
	}
	ca.cert, _ = x509.ParseCertificate(der)
	ca.file = ca.write("ca.crt", "CERTIFICATE", der)
	return ca
}

func (ca *testCA) write(name, typ string, der []byte) string {
	file := filepath.Join(ca.dir, name)
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		ca.t.Fatal(err)
	}
	return file
}

// leaf writes a certificate for names valid until notAfter and its key,
// and returns their file names.
func (ca *testCA) leaf(base string, notAfter time.Time, names ...string) (certFile, keyFile string) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: names[0]},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter, DNSNames: names,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		ca.t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	return ca.write(base+".crt", "CERTIFICATE", der), ca.write(base+".key", "PRIVATE KEY", keyDER)
}

// filesConfig writes a config for source files with the given pairs.
func filesConfig(t *testing.T, extra string, pairs ...[2]string) string {
	t.Helper()
	cfg := "listen: {https: 127.0.0.1:0, http: 127.0.0.1:0, admin: 127.0.0.1:0}\nlog: {format: json, level: debug}\n" + extra +
		"tls:\n  source: files\n  certificates:\n"
	for _, p := range pairs {
		cfg += fmt.Sprintf("    - cert: %s\n      key: %s\n", p[0], p[1])
	}
	file := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

func TestEndToEndFiles(t *testing.T) {
	ca := newTestCA(t)
	year := time.Now().Add(365 * 24 * time.Hour)
	aCert, aKey := ca.leaf("a", year, "a.test")
	bCert, bKey := ca.leaf("b", year, "b.test", "*.b.test")
	r := startRun(t, nil, "-config", filesConfig(t, "", [2]string{aCert, aKey}, [2]string{bCert, bKey}))
	if hosts := r.logs.find("httpsd serving")["hosts"]; hosts != "a.test,b.test,*.b.test" {
		t.Errorf("hosts from the certificates = %v, want a.test,b.test,*.b.test", hosts)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)

	tests := []struct {
		sni      string
		wantCert string // first DNS name of the certificate served
		status   int
	}{
		{"a.test", "a.test", 200},
		{"b.test", "b.test", 200},
		{"www.b.test", "b.test", 200},
		{"c.test", "a.test", 421}, // unknown: the first certificate, and the request is refused
	}
	for _, tt := range tests {
		t.Run(tt.sni, func(t *testing.T) {
			conn, err := tls.Dial("tcp", r.https, &tls.Config{ServerName: tt.sni, InsecureSkipVerify: true})
			if err != nil {
				t.Fatal(err)
			}
			got := conn.ConnectionState().PeerCertificates[0].DNSNames[0]
			conn.Close()
			if got != tt.wantCert {
				t.Errorf("SNI %s got the certificate for %s, want %s", tt.sni, got, tt.wantCert)
			}

			client := clientFor(roots, r.https)
			client.Transport.(*http.Transport).TLSClientConfig.InsecureSkipVerify = tt.status == 421
			resp, err := client.Get("https://" + tt.sni + "/hello/" + tt.sni)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Errorf("GET https://%s/hello = %d %q, want %d", tt.sni, resp.StatusCode, body, tt.status)
			}
			if got, want := resp.Header.Get("Strict-Transport-Security"), "max-age=63072000"; got != want {
				t.Errorf("GET https://%s/ Strict-Transport-Security = %q, want %q", tt.sni, got, want)
			}
		})
	}
	r.stop(t)
}

func TestFilesWarnings(t *testing.T) {
	ca := newTestCA(t)
	cert, key := ca.leaf("soon", time.Now().Add(3*24*time.Hour), "soon.test")
	r := startRun(t, nil, "-config", filesConfig(t, "hosts: [soon.test, other.test]\n", [2]string{cert, key}))
	for _, want := range []string{"certificate for soon.test expires in 3.0 days", "host other.test is covered by no certificate"} {
		if m := r.logs.find(want); m == nil || m["level"] != "WARN" {
			t.Errorf("no warning %q in:\n%s", want, r.logs)
		}
	}
	r.stop(t)
}
