// Package certs provides the certificates httpsd serves: PEM files on disk
// (Files) or a leaf signed by a local, self-signed CA (LocalCA). Each source
// returns a *Set whose GetCertificate method plugs into tls.Config.
package certs

import (
	"crypto/tls"
	"crypto/x509"
	"net/netip"
	"strings"
)

// Set is an immutable list of certificates chosen by SNI. The zero value
// holds no certificate and fails every handshake.
type Set struct {
	certs []*tls.Certificate
}

// NewSet returns a Set serving the given certificates; each must have Leaf
// set. The first one is the fallback for unknown names.
func NewSet(certs ...*tls.Certificate) *Set {
	return &Set{certs: certs}
}

// GetCertificate picks the certificate whose SANs match the client's SNI:
// an exact name first, then a wildcard; with no SNI or no match it returns
// the first certificate (the request is then refused by the host check).
func (s *Set) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if len(s.certs) == 0 {
		return nil, errNoCertificate
	}
	if c := s.match(hello.ServerName); c != nil {
		return c, nil
	}
	return s.certs[0], nil
}

// Covers reports whether some certificate in the set is valid for host,
// a DNS name or an IP literal.
func (s *Set) Covers(host string) bool {
	if _, err := netip.ParseAddr(host); err == nil {
		for _, c := range s.certs {
			if c.Leaf.VerifyHostname(host) == nil {
				return true
			}
		}
		return false
	}
	return s.match(host) != nil
}

// Leaves returns the leaf certificate of every entry, in order.
func (s *Set) Leaves() []*x509.Certificate {
	leaves := make([]*x509.Certificate, len(s.certs))
	for i, c := range s.certs {
		leaves[i] = c.Leaf
	}
	return leaves
}

// Names returns the DNS names and IP addresses of every certificate, in
// order and without duplicates.
func (s *Set) Names() []string {
	var names []string
	seen := map[string]bool{}
	add := func(n string) {
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	for _, c := range s.certs {
		for _, n := range c.Leaf.DNSNames {
			add(strings.ToLower(n))
		}
		for _, ip := range c.Leaf.IPAddresses {
			add(ip.String())
		}
	}
	return names
}

func (s *Set) match(name string) *tls.Certificate {
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	if name == "" {
		return nil
	}
	for _, c := range s.certs {
		for _, n := range c.Leaf.DNSNames {
			if strings.EqualFold(n, name) {
				return c
			}
		}
	}
	dot := strings.IndexByte(name, '.')
	if dot <= 0 {
		return nil
	}
	wild := "*" + name[dot:]
	for _, c := range s.certs {
		for _, n := range c.Leaf.DNSNames {
			if strings.EqualFold(n, wild) {
				return c
			}
		}
	}
	return nil
}
