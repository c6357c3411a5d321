package certs

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
)

// parseChain returns the certificates of a PEM file, in order. Unlike
// tls.X509KeyPair, which skips what it cannot decode, it refuses a PEM
// block that is truncated or malformed (a "-----BEGIN" that pem.Decode
// did not consume) and a certificate that does not parse. Blocks of
// other types, such as a key kept in the same file, are skipped.
func parseChain(file string, data []byte) ([]*x509.Certificate, error) {
	begin := []byte("-----BEGIN")
	var chain []*x509.Certificate
	for n, rest := 1, data; ; n++ {
		block, next := pem.Decode(rest)
		// Decode skips what it cannot decode up to the block it returns.
		skipped := bytes.Count(rest[:len(rest)-len(next)], begin)
		if block == nil {
			skipped = bytes.Count(rest, begin)
		} else {
			skipped-- // the block's own
		}
		if skipped > 0 {
			return nil, fmt.Errorf("certs: %s: PEM block %d is truncated or malformed", file, n)
		}
		if block == nil {
			return chain, nil
		}
		rest = next
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certs: %s: certificate %d does not parse: %w", file, len(chain)+1, err)
		}
		chain = append(chain, c)
	}
}

// checkChain checks that each certificate of chain, leaf first, is signed
// by the next one.
func checkChain(file string, chain []*x509.Certificate) error {
	for i := 0; i+1 < len(chain); i++ {
		if err := chain[i].CheckSignatureFrom(chain[i+1]); err != nil {
			return fmt.Errorf("certs: %s: certificate %d (%s) does not sign certificate %d (%s): %w",
				file, i+2, subject(chain[i+1]), i+1, subject(chain[i]), err)
		}
	}
	return nil
}

// subject names a certificate by its subject ("CN=example.com"), or its
// SANs when the subject is empty.
func subject(c *x509.Certificate) string {
	if s := c.Subject.String(); s != "" {
		return s
	}
	return describe(c)
}
