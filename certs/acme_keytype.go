package certs

import "crypto/tls"

// keyFor decides which certificate a client gets, ECDSA P-256 whenever it
// can verify one, and returns the autocert cache key for it with a hello
// that makes autocert pick that key type. autocert looks for TLS 1.2 ECDSA
// suites and P-256 among the key-exchange groups, so on its own it would
// hand RSA to TLS 1.3-only clients and to clients offering only X25519
// (golang/go#50522), though their signature algorithms allow ECDSA.
func keyFor(name string, hello *tls.ClientHelloInfo) (string, *tls.ClientHelloInfo) {
	h := *hello
	if acceptsECDSA(hello) {
		h.SignatureSchemes = []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256}
		h.SupportedCurves = []tls.CurveID{tls.CurveP256}
		h.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}
		return name, &h
	}
	h.CipherSuites = nil // autocert then picks RSA
	return name + "+rsa", &h
}

// acceptsECDSA reports whether the client can verify an ECDSA P-256
// certificate: over TLS 1.3 its signature algorithms must allow it; over
// TLS 1.2 it also needs an ECDHE-ECDSA suite and P-256.
func acceptsECDSA(hello *tls.ClientHelloInfo) bool {
	sigOK := hello.SignatureSchemes == nil || offersScheme(hello, tls.ECDSAWithP256AndSHA256)
	if !sigOK {
		return false
	}
	if offersTLS13(hello) && hello.SignatureSchemes != nil {
		return true
	}
	curveOK := hello.SupportedCurves == nil
	for _, c := range hello.SupportedCurves {
		curveOK = curveOK || c == tls.CurveP256
	}
	for _, s := range hello.CipherSuites {
		switch s {
		case tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256:
			return curveOK
		}
	}
	return false
}

func offersTLS13(hello *tls.ClientHelloInfo) bool {
	for _, v := range hello.SupportedVersions {
		if v == tls.VersionTLS13 {
			return true
		}
	}
	return false
}

func offersScheme(hello *tls.ClientHelloInfo, s tls.SignatureScheme) bool {
	for _, v := range hello.SignatureSchemes {
		if v == s {
			return true
		}
	}
	return false
}

// ecdsaHello is the hello Run uses to obtain a host's ECDSA certificate.
func ecdsaHello(host string) *tls.ClientHelloInfo {
	_, h := keyFor(host, &tls.ClientHelloInfo{
		ServerName:        host,
		SupportedVersions: []uint16{tls.VersionTLS13, tls.VersionTLS12},
		SignatureSchemes:  []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256},
	})
	return h
}
