package server

import "crypto/tls"

// cipherSuites are the TLS 1.2 suites accepted: ECDHE key exchange with an
// AEAD only, no CBC and no RSA key exchange. TLS 1.3 suites are not
// configurable and all qualify.
var cipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// TLSConfig returns the server TLS settings: TLS 1.2 or minVersion if
// higher, AEAD suites only, ALPN h2, http/1.1 and extraALPN, and Go's
// default key exchanges (post-quantum X25519MLKEM768 first). A zero
// minVersion means TLS 1.2.
func TLSConfig(getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error), minVersion uint16, extraALPN ...string) *tls.Config {
	if minVersion < tls.VersionTLS12 {
		minVersion = tls.VersionTLS12
	}
	return &tls.Config{
		MinVersion:     minVersion,
		CipherSuites:   cipherSuites,
		NextProtos:     append([]string{"h2", "http/1.1"}, extraALPN...),
		GetCertificate: getCert,
	}
}
