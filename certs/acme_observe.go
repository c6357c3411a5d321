package certs

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// caObserver is the ACME client's transport. autocert drops the CA's
// reason when a challenge fails ("no viable challenge type found") and
// every error of its background renewals, so this reads what the CA
// returns: each failed challenge of an authorization goes to failed, every
// refused request (an ACME problem document) or unreachable CA to refused,
// and the directory's newAccount URL to directory.
type caObserver struct {
	base      http.RoundTripper
	failed    func(authzURL, host, challenge, problem string)
	refused   func(url string, p problem)
	directory func(newAccountURL string)
}

// problem is why the CA refused a request: the HTTP status and the ACME
// problem document's type (without "urn:ietf:params:acme:error:") and
// detail; for an unreachable CA, only detail, the client's error.
type problem struct{ status, typ, detail string }

func (p problem) String() string {
	if p.status == "" {
		return p.detail
	}
	return p.status + ": " + p.typ + ": " + p.detail
}

const acmeErrorPrefix = "urn:ietf:params:acme:error:"

// authzBody is the part of an ACME authorization object read here.
type authzBody struct {
	Status     string `json:"status"`
	Identifier struct {
		Value string `json:"value"`
	} `json:"identifier"`
	Challenges []struct {
		Type  string `json:"type"`
		Error *struct {
			Type   string `json:"type"`
			Detail string `json:"detail"`
		} `json:"error"`
	} `json:"challenges"`
}

func (o caObserver) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := o.base.RoundTrip(req)
	if err != nil {
		o.refused(req.URL.String(), problem{detail: err.Error()})
		return resp, err
	}
	if resp.StatusCode >= 400 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		var p struct{ Type, Detail string }
		json.Unmarshal(body, &p)
		if !strings.HasSuffix(p.Type, ":badNonce") { // retried by the client itself
			o.refused(req.URL.String(), problem{resp.Status, strings.TrimPrefix(p.Type, acmeErrorPrefix), p.Detail})
		}
		return resp, nil
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") ||
		resp.ContentLength > 1<<20 {
		return resp, nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return resp, nil // the client reports the short body itself
	}
	var z struct {
		authzBody
		NewAccount string `json:"newAccount"` // in the directory
	}
	if json.Unmarshal(body, &z) != nil {
		return resp, nil
	}
	if z.NewAccount != "" {
		o.directory(z.NewAccount)
	}
	if z.Status == "invalid" && z.Identifier.Value != "" {
		for _, c := range z.Challenges {
			if c.Error != nil {
				o.failed(req.URL.String(), z.Identifier.Value, c.Type, strings.TrimPrefix(c.Error.Type, acmeErrorPrefix)+": "+c.Error.Detail)
			}
		}
	}
	return resp, nil
}

// challengeFailed logs a failed challenge once per authorization.
func (a *ACME) challengeFailed(authzURL, host, challenge, problem string) {
	a.mu.Lock()
	key := authzURL + " " + challenge
	seen := a.seenAuthz[key]
	a.seenAuthz[key] = true
	a.mu.Unlock()
	if !seen {
		a.logger.Warn("acme: challenge failed", "host", host, "challenge", challenge, "problem", problem)
	}
}

// caRefused logs what the CA refused, or that it was unreachable, when no
// attempt of Run's or a handshake's is running (those log their own
// failure): such requests are autocert's background renewals. It keeps
// the CA's last refusal to register the account, for explainEAB.
func (a *ACME) caRefused(url string, p problem) {
	a.mu.Lock()
	if url == a.newAccountURL {
		a.accountRefusal = p
	}
	a.mu.Unlock()
	if a.attempts.Load() == 0 {
		a.logger.Warn("acme: renewal request failed; autocert retries in 30 to 60 minutes and the current certificate stays in service",
			"url", url, "problem", p.String())
	}
}

// directoryRead keeps the CA's newAccount URL.
func (a *ACME) directoryRead(newAccountURL string) {
	a.mu.Lock()
	a.newAccountURL = newAccountURL
	a.mu.Unlock()
}

// explainEAB returns err, autocert's, saying what to fix when it is the CA
// refusing to register the account for want of a valid External Account
// Binding: none while the CA requires one, or one it does not accept (an
// unauthorized or malformed request, or a detail that names the binding).
// Other errors are returned as they are. Called with a.mu held.
func (a *ACME) explainEAB(err error) error {
	var ae *acme.Error
	if !errors.As(err, &ae) {
		return err
	}
	typ := strings.TrimPrefix(ae.ProblemType, acmeErrorPrefix)
	if a.m.ExternalAccountBinding == nil {
		if typ == "externalAccountRequired" {
			return fmt.Errorf("certs: acme: the CA requires External Account Binding and none is configured; "+
				"set tls.acme.eab.kid and tls.acme.eab.hmac_key to the key ID and HMAC key the CA issued: %w", err)
		}
		return err
	}
	r := a.accountRefusal
	if r.typ != typ || r.detail != ae.Detail {
		return err // not the answer to newAccount
	}
	d := strings.ToLower(ae.Detail)
	if typ == "unauthorized" || typ == "malformed" || typ == "externalAccountRequired" ||
		strings.Contains(d, "external account") || strings.Contains(d, "externalaccount") {
		return fmt.Errorf("certs: acme: the CA refused the External Account Binding (tls.acme.eab); check its kid and hmac_key: %w", err)
	}
	return err
}

// observedCache is autocert's cache, wrapped to report every certificate
// stored (issued or renewed) and to refuse deleting a certificate: only
// challenge tokens may go.
type observedCache struct {
	autocert.Cache
	put func(key string, data []byte)
}

func (c observedCache) Put(ctx context.Context, key string, data []byte) error {
	if err := c.Cache.Put(ctx, key, data); err != nil {
		return err
	}
	c.put(key, data)
	return nil
}

func (c observedCache) Delete(ctx context.Context, key string) error {
	if !isTokenKey(key) {
		return errors.New("certs: acme: refusing to delete " + key)
	}
	return c.Cache.Delete(ctx, key)
}

// isTokenKey reports whether an autocert cache key names a challenge token
// (tls-alpn-01 "+token", http-01 "+http-01") rather than a certificate or
// the account key.
func isTokenKey(key string) bool {
	return strings.HasSuffix(key, "+token") || strings.HasSuffix(key, "+http-01")
}

// certStored logs an issued or renewed certificate stored under key.
func (a *ACME) certStored(key string, data []byte) {
	st, ok := a.states[key]
	if !ok {
		return
	}
	leaf := leafFromPEM(data)
	if leaf == nil {
		return
	}
	a.mu.Lock()
	event := "issued"
	if st.leaf != nil {
		event = "renewed"
		st.stats.Renewed++
	} else {
		st.stats.Issued++
	}
	st.leaf = leaf
	a.mu.Unlock()
	a.logger.Info("acme: certificate "+event, "host", st.name, "key", keyType(leaf), "issuer", leaf.Issuer.CommonName,
		"not_after", leaf.NotAfter.UTC().Format(time.RFC3339), "renewal_due", renewalDue(leaf, a.renew).UTC().Format(time.RFC3339))
}

// leafFromPEM returns the first certificate in data, or nil.
func leafFromPEM(data []byte) *x509.Certificate {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil
		}
		if b.Type == "CERTIFICATE" {
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil
			}
			return c
		}
	}
}

// hostOnly strips a port from a Host header value.
func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}
