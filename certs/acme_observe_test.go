package certs

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/crypto/acme"
)

// TestExplainEAB checks which of autocert's errors are explained as an
// External Account Binding problem: only the CA's answer to newAccount,
// and only when it is about the binding.
func TestExplainEAB(t *testing.T) {
	const newAccount = "https://ca.example/new-acct"
	acmeErr := func(typ, detail string) error {
		return &acme.Error{StatusCode: 403, ProblemType: acmeErrorPrefix + typ, Detail: detail}
	}
	tests := []struct {
		name    string
		eab     bool    // EAB configured
		url     string  // where the CA's refusal was seen
		refusal problem // what it was
		err     error   // autocert's
		want    string  // in the explained error; "": err unchanged
	}{
		{"refused binding", true, newAccount, problem{"403 Forbidden", "unauthorized", "unknown kid"},
			acmeErr("unauthorized", "unknown kid"), "the CA refused the External Account Binding (tls.acme.eab)"},
		{"wrapped", true, newAccount, problem{"400 Bad Request", "malformed", "bad EAB JWS"},
			fmt.Errorf("acme: %w", acmeErr("malformed", "bad EAB JWS")), "the CA refused the External Account Binding"},
		{"detail names the binding", true, newAccount, problem{"403 Forbidden", "badPublicKey", "external account binding key mismatch"},
			acmeErr("badPublicKey", "external account binding key mismatch"), "the CA refused the External Account Binding"},
		{"newAccount rate limited", true, newAccount, problem{"429 Too Many Requests", "rateLimited", "too many"},
			acmeErr("rateLimited", "too many"), ""},
		{"unauthorized order", true, "https://ca.example/new-order", problem{"403 Forbidden", "unauthorized", "policy forbids this name"},
			acmeErr("unauthorized", "policy forbids this name"), ""},
		{"required, none configured", false, newAccount, problem{"403 Forbidden", "externalAccountRequired", "eab required"},
			acmeErr("externalAccountRequired", "eab required"), "the CA requires External Account Binding and none is configured; set tls.acme.eab"},
		{"unauthorized, none configured", false, newAccount, problem{"403 Forbidden", "unauthorized", "no"},
			acmeErr("unauthorized", "no"), ""},
		{"CA unreachable", true, newAccount, problem{detail: "connection refused"}, errors.New("connection refused"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := ACMEOptions{Hosts: []string{"a.example"}, CacheDir: t.TempDir()}
			if tt.eab {
				opts.EABKeyID, opts.EABKey = "kid", []byte("key")
			}
			a, err := NewACME(opts)
			if err != nil {
				t.Fatal(err)
			}
			a.directoryRead(newAccount)
			a.caRefused(tt.url, tt.refusal)
			a.mu.Lock()
			got := a.explainEAB(tt.err)
			a.mu.Unlock()
			if tt.want == "" && got != tt.err {
				t.Errorf("explainEAB(%q) = %q, want it unchanged", tt.err, got)
			}
			if tt.want != "" && (!strings.Contains(got.Error(), tt.want) || !errors.Is(got, tt.err)) {
				t.Errorf("explainEAB(%q) = %q, want %q wrapping it", tt.err, got, tt.want)
			}
		})
	}
}
