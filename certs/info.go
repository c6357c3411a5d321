package certs

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"
)

// Info describes one certificate for listings such as `httpsd certs`.
type Info struct {
	Source    string // "files", "local CA", "acme"
	File      string
	Names     []string // DNS names and IP addresses, or the subject for a CA
	Issuer    string
	NotBefore time.Time
	NotAfter  time.Time
	KeyType   string // "ECDSA P-256", "RSA-2048", "Ed25519"
}

// NewInfo describes leaf, found in file of source.
func NewInfo(source, file string, leaf *x509.Certificate) Info {
	names := append([]string(nil), leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 {
		names = []string{leaf.Subject.CommonName}
	}
	return Info{Source: source, File: file, Names: names, Issuer: leaf.Issuer.CommonName,
		NotBefore: leaf.NotBefore, NotAfter: leaf.NotAfter, KeyType: keyType(leaf)}
}

// ReadLeaf reads the first certificate of a PEM file.
func ReadLeaf(file string) (*x509.Certificate, error) {
	data, err := ReadFile(file)
	if err != nil {
		return nil, err
	}
	leaf := leafFromPEM(data)
	if leaf == nil {
		return nil, fmt.Errorf("certs: %s: no PEM certificate found", file)
	}
	return leaf, nil
}

// ACMECached describes the certificates for hosts in an autocert cache
// directory, ECDSA (cached as HOST) and RSA (HOST+rsa), without contacting
// anyone. Hosts with no certificate yet are left out.
func ACMECached(cacheDir string, hosts []string) ([]Info, error) {
	var infos []Info
	for _, h := range hosts {
		for _, key := range []string{h, h + "+rsa"} {
			file := filepath.Join(cacheDir, key)
			leaf, err := ReadLeaf(file)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return infos, err
			}
			infos = append(infos, NewInfo("acme", file, leaf))
		}
	}
	return infos, nil
}

func keyType(c *x509.Certificate) string {
	switch k := c.PublicKey.(type) {
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA-%d", k.N.BitLen())
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return c.PublicKeyAlgorithm.String()
}

// LoadRoots returns the system roots plus the PEM certificates in file.
func LoadRoots(file string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	data, err := ReadFile(file)
	if err != nil {
		return nil, err
	}
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("certs: %s: no PEM certificate found", file)
	}
	return pool, nil
}
