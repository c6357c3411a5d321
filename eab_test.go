package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestACMEEAB has Pebble require External Account Binding with one MAC
// key: with that key httpsd registers, obtains a certificate and serves
// it; with a wrong key, an unknown key ID or none, the first failure is
// logged naming External Account Binding and tls.acme.eab, with the CA's
// reason where it gave one.
func TestACMEEAB(t *testing.T) {
	const kid = "httpsd-test-kid"
	key := base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0x5a}, 32))
	wrongKey := base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0xa5}, 32))
	tests := []struct {
		name    string
		kid     string // tls.acme.eab.kid; "" for no eab section
		hmacKey string
		want    []string // in the failure's err; nil: the certificate is issued
	}{
		{"right key", kid, key, nil},
		{"wrong key", kid, wrongKey, []string{"the CA refused the External Account Binding (tls.acme.eab)",
			"external account binding JWS verification error"}},
		{"unknown kid", "other-kid", key, []string{"the CA refused the External Account Binding (tls.acme.eab)",
			"'kid' references a key that is not known"}},
		{"none configured", "", "", []string{"the CA requires External Account Binding", "set tls.acme.eab",
			"externalAccountRequired"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newACMESetup(t)
			p := startPebbleWith(t, freePort(t), s.httpsPort, pebbleOptions{eabKID: kid, eabKey: key})
			var extra []string
			if tt.kid != "" {
				extra = append(extra, fmt.Sprintf("eab: {kid: %q, hmac_key: %q}", tt.kid, tt.hmacKey))
			}
			s.write(t, p.directory, p.apiRoots, extra...)
			r := startRun(t, nil, "-config", s.config)
			if tt.want == nil {
				waitLog(t, r, "acme: certificate ready", 30*time.Second)
				getHello(t, "127.0.0.1:"+strconv.Itoa(s.httpsPort), p.root, nil)
				if m := r.logs.find("acme: certificate failed"); m != nil {
					t.Errorf("issuance with the right EAB key logged a failure: %v", m)
				}
				r.stop(t)
				return
			}
			failed := waitLog(t, r, "acme: certificate failed", 30*time.Second)
			msg := fmt.Sprint(failed["err"])
			for _, want := range tt.want {
				if !strings.Contains(msg, want) {
					t.Errorf("failure err = %q, want it to contain %q", msg, want)
				}
			}
			if m := r.logs.find("acme: certificate ready"); m != nil {
				t.Errorf("a certificate was issued: %v", m)
			}
			r.stop(t)
		})
	}
}
