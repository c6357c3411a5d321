package certs

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"
)

var errNoCertificate = errors.New("certs: no certificate")

// Pair names a PEM certificate chain (leaf first) and its private key.
type Pair struct {
	Cert string
	Key  string
}

// Files loads every pair and returns them as a Set, in order. It reports
// every bad pair at once: a missing or unreadable file, a file without PEM
// data, a broken chain, a key that does not match its certificate, or a
// certificate that has expired (or is not yet valid) at now. It only reads
// files.
func Files(pairs []Pair, now time.Time) (*Set, error) {
	if len(pairs) == 0 {
		return nil, errors.New("certs: no certificate files given")
	}
	var errs []error
	list := make([]*tls.Certificate, 0, len(pairs))
	for _, p := range pairs {
		c, err := LoadPair(p, now)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		list = append(list, c)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return NewSet(list...), nil
}

// LoadPair reads one certificate chain and key and checks that every
// certificate parses, that each is signed by the next, that the key
// matches the leaf, and that the leaf is valid at now.
func LoadPair(p Pair, now time.Time) (*tls.Certificate, error) {
	certPEM, err := readPEM(p.Cert, "CERTIFICATE")
	if err != nil {
		return nil, err
	}
	chain, err := parseChain(p.Cert, certPEM)
	if err != nil {
		return nil, err
	}
	if err := checkChain(p.Cert, chain); err != nil {
		return nil, err
	}
	keyPEM, err := readPEM(p.Key, "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("certs: load key pair %s, %s: %w", p.Cert, p.Key, err)
	}
	if err := checkValidity(c.Leaf, p.Cert, now); err != nil {
		return nil, err
	}
	return &c, nil
}

// readPEM reads file and checks that it holds a PEM block whose type ends
// in kind ("CERTIFICATE", "PRIVATE KEY" also matching "EC PRIVATE KEY").
func readPEM(file, kind string) ([]byte, error) {
	data, err := ReadFile(file)
	if err != nil {
		return nil, err
	}
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, fmt.Errorf("certs: %s: no PEM %s found", file, strings.ToLower(kind))
		}
		if strings.HasSuffix(block.Type, kind) {
			return data, nil
		}
	}
}

func checkValidity(leaf *x509.Certificate, file string, now time.Time) error {
	switch {
	case now.After(leaf.NotAfter):
		return fmt.Errorf("certs: %s: certificate for %s expired on %s",
			file, describe(leaf), leaf.NotAfter.UTC().Format(time.DateOnly))
	case now.Before(leaf.NotBefore):
		return fmt.Errorf("certs: %s: certificate for %s is not valid before %s",
			file, describe(leaf), leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	return nil
}

// describe names a certificate by its SANs, or its subject when it has none.
func describe(leaf *x509.Certificate) string {
	names := append([]string(nil), leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 {
		return leaf.Subject.String()
	}
	return strings.Join(names, ", ")
}
