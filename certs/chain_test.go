package certs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testIssuer is a CA that signs certificates for chain tests.
type testIssuer struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

// newIssuer returns a CA named cn, signed by parent (self-signed if nil).
func newIssuer(t *testing.T, cn string, parent *testIssuer) *testIssuer {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	signer, signKey := tmpl, key
	if parent != nil {
		signer, signKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, key.Public(), signKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testIssuer{cert: cert, key: key, pem: pemBlock("CERTIFICATE", der)}
}

// leaf writes a certificate for name signed by ca, followed by the PEM data
// in chain, and its key, into dir.
func (ca *testIssuer) leaf(t *testing.T, dir, name string, chain ...[]byte) Pair {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	p := Pair{Cert: filepath.Join(dir, name+".crt"), Key: filepath.Join(dir, name+".key")}
	os.WriteFile(p.Cert, bytes.Join(append([][]byte{pemBlock("CERTIFICATE", der)}, chain...), nil), 0o644)
	os.WriteFile(p.Key, pemBlock("PRIVATE KEY", keyDER), 0o600)
	return p
}

func TestLoadPairChain(t *testing.T) {
	dir := t.TempDir()
	root := newIssuer(t, "test root", nil)
	inter := newIssuer(t, "test intermediate", root)
	other := newIssuer(t, "other root", nil)
	otherInter := newIssuer(t, "other intermediate", other)
	half := inter.pem[:len(inter.pem)/2]
	junk := pemBlock("CERTIFICATE", []byte("not DER"))

	tests := []struct {
		name  string
		chain [][]byte // after the leaf, signed by inter
		want  string   // after "certs: FILE: "; "" = accepted
	}{
		{"leaf and intermediate", [][]byte{inter.pem}, ""},
		{"up to the root", [][]byte{inter.pem, root.pem}, ""},
		{"key in the same file", [][]byte{inter.pem, pemBlock("PRIVATE KEY", []byte("x"))}, ""},
		{"truncated intermediate", [][]byte{half}, "PEM block 2 is truncated or malformed"},
		{"truncated block before a good one", [][]byte{half, inter.pem}, "PEM block 2 is truncated or malformed"},
		{"unrelated extra certificate", [][]byte{inter.pem, other.pem},
			"certificate 3 (CN=other root) does not sign certificate 2 (CN=test intermediate)"},
		{"wrong intermediate", [][]byte{otherInter.pem},
			"certificate 2 (CN=other intermediate) does not sign certificate 1 (CN=a.example)"},
		{"undecodable certificate", [][]byte{junk}, "certificate 2 does not parse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := inter.leaf(t, dir, "a.example", tt.chain...)
			c, err := LoadPair(p, time.Now())
			if tt.want == "" {
				if err != nil {
					t.Fatalf("LoadPair = %v, want the pair", err)
				}
				if len(c.Certificate) < 2 {
					t.Errorf("LoadPair served %d certificates, want the chain", len(c.Certificate))
				}
				return
			}
			if want := "certs: " + p.Cert + ": " + tt.want; err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("LoadPair = %v, want an error containing %q", err, want)
			}
		})
	}
}
