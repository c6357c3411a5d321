package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Local CA file names inside the data directory.
const (
	CACertFile = "ca.crt"
	CAKeyFile  = "ca.key"
)

const (
	caLifetime   = 10 * 365 * 24 * time.Hour
	leafLifetime = 397 * 24 * time.Hour
	backdate     = time.Hour // tolerate clients whose clock is a little behind
)

// LocalCA loads the CA kept in dir (ca.crt and ca.key), creating dir (0700)
// and the CA (ECDSA P-256, key 0600) when neither file exists, and returns a
// Set holding one leaf for hosts signed by it. A CA that is corrupt, half
// present, expired or whose key does not match is an error; it is never
// replaced. So are a dir others can write and a ca.key others can read
// (CheckDirPerm, CheckKeyPerm). Symlinks in dir are followed.
func LocalCA(dir string, hosts []string, now time.Time) (*Set, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("certs: create data dir: %w", err)
	}
	if err := CheckDirPerm(dir); err != nil {
		return nil, err
	}
	ca, err := loadCA(dir, now)
	if errors.Is(err, fs.ErrNotExist) {
		ca, err = createCA(dir, now)
	}
	if err != nil {
		return nil, err
	}
	leaf, err := issueLeaf(ca, hosts, now)
	if err != nil {
		return nil, err
	}
	return NewSet(leaf), nil
}

// CheckLocalCA validates the CA in dir without writing anything. It returns
// false and no error when there is no CA yet (serve would create one).
func CheckLocalCA(dir string, now time.Time) (bool, error) {
	if err := CheckDirPerm(dir); err != nil {
		return false, err
	}
	_, err := loadCA(dir, now)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// loadCA reads the CA pair from dir. It returns an error wrapping
// fs.ErrNotExist only when both files are missing.
func loadCA(dir string, now time.Time) (*tls.Certificate, error) {
	certFile, keyFile := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	_, certErr := os.Stat(certFile)
	_, keyErr := os.Stat(keyFile)
	switch {
	case errors.Is(certErr, fs.ErrNotExist) && errors.Is(keyErr, fs.ErrNotExist):
		return nil, fmt.Errorf("certs: local CA: %w", fs.ErrNotExist)
	case errors.Is(certErr, fs.ErrNotExist):
		return nil, fmt.Errorf("certs: local CA: %s exists but %s is missing; restore it, or remove both to make a new CA", keyFile, certFile)
	case errors.Is(keyErr, fs.ErrNotExist):
		return nil, fmt.Errorf("certs: local CA: %s exists but %s is missing; restore it, or remove both to make a new CA", certFile, keyFile)
	}
	ca, err := LoadPair(Pair{Cert: certFile, Key: keyFile}, now)
	if err != nil {
		return nil, fmt.Errorf("certs: local CA: %w", err)
	}
	if !ca.Leaf.IsCA {
		return nil, fmt.Errorf("certs: local CA: %s is not a CA certificate", certFile)
	}
	if err := CheckKeyPerm(keyFile); err != nil {
		return nil, err
	}
	return ca, nil
}

func createCA(dir string, now time.Time) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("certs: local CA: %w", err)
	}
	host, _ := os.Hostname()
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{Organization: []string{"httpsd local CA"}, CommonName: "httpsd local CA " + host + " " + now.UTC().Format(time.DateOnly)},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(caLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := sign(tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("certs: local CA: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("certs: local CA: %w", err)
	}
	// The key goes first: a crash in between leaves a key without a
	// certificate, which loadCA reports instead of silently replacing.
	if err := writeFile(filepath.Join(dir, CAKeyFile), pemBlock("PRIVATE KEY", keyDER), 0o600); err != nil {
		return nil, err
	}
	if err := writeFile(filepath.Join(dir, CACertFile), pemBlock("CERTIFICATE", der), 0o644); err != nil {
		return nil, err
	}
	return loadCA(dir, now)
}

func issueLeaf(ca *tls.Certificate, hosts []string, now time.Time) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("certs: local CA leaf: %w", err)
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{Organization: []string{"httpsd local CA"}},
		NotBefore:   now.Add(-backdate),
		NotAfter:    now.Add(leafLifetime),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if ca.Leaf.NotAfter.Before(tmpl.NotAfter) {
		tmpl.NotAfter = ca.Leaf.NotAfter
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	if len(hosts) > 0 {
		tmpl.Subject.CommonName = hosts[0]
	}
	der, err := sign(tmpl, ca.Leaf, key.Public(), ca.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("certs: local CA leaf: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("certs: local CA leaf: %w", err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

func sign(tmpl, parent *x509.Certificate, pub crypto.PublicKey, priv crypto.PrivateKey) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	return x509.CreateCertificate(rand.Reader, tmpl, parent, pub, priv)
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// writeFile creates file with perm, failing if it exists, through a
// temporary file so a reader never sees half of it.
func writeFile(file string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(file), filepath.Base(file)+".tmp*")
	if err != nil {
		return fmt.Errorf("certs: write %s: %w", file, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("certs: write %s: %w", file, err)
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return fmt.Errorf("certs: write %s: %w", file, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("certs: write %s: %w", file, err)
	}
	// Link fails when file exists, unlike Rename: a CA is never overwritten.
	if err := os.Link(tmp.Name(), file); err != nil {
		return fmt.Errorf("certs: write %s: %w", file, err)
	}
	return nil
}
