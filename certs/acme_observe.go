package certs

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"golang.org/x/crypto/acme/autocert"
)

// caObserver is the ACME client's transport. autocert drops the CA's
// reason when a challenge fails ("no viable challenge type found") and
// every error of its background renewals, so this reads what the CA
// returns: each failed challenge of an authorization goes to failed, every
// refused request (an ACME problem document) or unreachable CA to refused.
type caObserver struct {
	base    http.RoundTripper
	failed  func(authzURL, host, challenge, problem string)
	refused func(url, problem string)
}

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
		o.refused(req.URL.String(), err.Error())
		return resp, err
	}
	if resp.StatusCode >= 400 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		var p struct{ Type, Detail string }
		json.Unmarshal(body, &p)
		if !strings.HasSuffix(p.Type, ":badNonce") { // retried by the client itself
			o.refused(req.URL.String(), resp.Status+": "+strings.TrimPrefix(p.Type, "urn:ietf:params:acme:error:")+": "+p.Detail)
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
	var z authzBody
	if json.Unmarshal(body, &z) == nil && z.Status == "invalid" && z.Identifier.Value != "" {
		for _, c := range z.Challenges {
			if c.Error != nil {
				o.failed(req.URL.String(), z.Identifier.Value, c.Type, strings.TrimPrefix(c.Error.Type, "urn:ietf:params:acme:error:")+": "+c.Error.Detail)
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
// failure): such requests are autocert's background renewals.
func (a *ACME) caRefused(url, problem string) {
	if a.attempts.Load() == 0 {
		a.logger.Warn("acme: renewal request failed; autocert retries in 30 to 60 minutes and the current certificate stays in service",
			"url", url, "problem", problem)
	}
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
