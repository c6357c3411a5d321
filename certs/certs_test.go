package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeSelfSigned writes a self-signed ECDSA certificate for names, valid
// from notBefore to notAfter, and its key into dir, and returns the pair.
func writeSelfSigned(t *testing.T, dir, base string, names []string, notBefore, notAfter time.Time) Pair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: names[0]},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	p := Pair{Cert: filepath.Join(dir, base+".crt"), Key: filepath.Join(dir, base+".key")}
	if err := os.WriteFile(p.Cert, pemBlock("CERTIFICATE", der), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.Key, pemBlock("PRIVATE KEY", keyDER), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFilesErrors(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	good := writeSelfSigned(t, dir, "good", []string{"a.example"}, now.Add(-time.Hour), now.Add(time.Hour))
	other := writeSelfSigned(t, dir, "other", []string{"b.example"}, now.Add(-time.Hour), now.Add(time.Hour))
	expired := writeSelfSigned(t, dir, "expired", []string{"old.example"}, now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	future := writeSelfSigned(t, dir, "future", []string{"new.example"}, now.Add(24*time.Hour), now.Add(48*time.Hour))
	notPEM := filepath.Join(dir, "notpem.crt")
	os.WriteFile(notPEM, []byte("hello"), 0o644)
	missing := filepath.Join(dir, "missing.crt")

	tests := []struct {
		name  string
		pairs []Pair
		want  []string // substrings of the error, all required
	}{
		{"missing cert", []Pair{{missing, good.Key}}, []string{"certs: read " + missing, "no such file"}},
		{"missing key", []Pair{{good.Cert, missing}}, []string{"certs: read " + missing}},
		{"cert not PEM", []Pair{{notPEM, good.Key}}, []string{notPEM + ": no PEM certificate found"}},
		{"key not PEM", []Pair{{good.Cert, notPEM}}, []string{notPEM + ": no PEM private key found"}},
		{"swapped", []Pair{{good.Key, good.Cert}}, []string{good.Key + ": no PEM certificate found"}},
		{"key mismatch", []Pair{{good.Cert, other.Key}}, []string{"certs: load key pair " + good.Cert, "does not match"}},
		{"expired", []Pair{expired}, []string{expired.Cert + ": certificate for old.example expired on"}},
		{"not yet valid", []Pair{future}, []string{future.Cert + ": certificate for new.example is not valid before"}},
		{"every problem at once", []Pair{{missing, good.Key}, good, expired}, []string{"certs: read " + missing, "expired on"}},
		{"none", nil, []string{"no certificate files"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Files(tt.pairs, now)
			if err == nil {
				t.Fatalf("Files(%v) = nil error, want %q", tt.pairs, tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Files(%v) = %q, want it to contain %q", tt.pairs, err, w)
				}
			}
		})
	}
}

func TestSetGetCertificate(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	pairs := []Pair{
		writeSelfSigned(t, dir, "a", []string{"a.example", "127.0.0.1"}, now.Add(-time.Hour), now.Add(time.Hour)),
		writeSelfSigned(t, dir, "wild", []string{"*.b.example"}, now.Add(-time.Hour), now.Add(time.Hour)),
		writeSelfSigned(t, dir, "exact", []string{"www.b.example"}, now.Add(-time.Hour), now.Add(time.Hour)),
	}
	set, err := Files(pairs, now)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		sni  string
		want string // first DNS name of the certificate served
	}{
		{"a.example", "a.example"},
		{"A.Example.", "a.example"},
		{"www.b.example", "www.b.example"}, // exact beats the wildcard listed first
		{"api.b.example", "*.b.example"},
		{"x.api.b.example", "a.example"}, // a wildcard covers one label only
		{"unknown.example", "a.example"}, // no match: the first certificate
		{"", "a.example"},
	}
	for _, tt := range tests {
		c, err := set.GetCertificate(&tls.ClientHelloInfo{ServerName: tt.sni})
		if err != nil {
			t.Fatalf("GetCertificate(%q): %v", tt.sni, err)
		}
		if got := c.Leaf.DNSNames[0]; got != tt.want {
			t.Errorf("GetCertificate(%q) = cert for %q, want %q", tt.sni, got, tt.want)
		}
	}
	for host, want := range map[string]bool{"a.example": true, "127.0.0.1": true, "::1": false, "x.b.example": true, "b.example": false} {
		if got := set.Covers(host); got != want {
			t.Errorf("Covers(%q) = %v, want %v", host, got, want)
		}
	}
	if got, want := strings.Join(set.Names(), ","), "a.example,127.0.0.1,*.b.example,www.b.example"; got != want {
		t.Errorf("Names() = %q, want %q", got, want)
	}
}

func TestZeroSetRefuses(t *testing.T) {
	var s Set
	if _, err := s.GetCertificate(&tls.ClientHelloInfo{ServerName: "x"}); err == nil {
		t.Error("zero Set GetCertificate = nil error, want an error")
	}
}
