package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// health GETs url (default: /healthz on the admin listener, or on the
// HTTPS port when the admin listener is off, on loopback) and returns nil
// when it answers 200, for container health checks and scripts: scratch
// images have no curl.
func health(ctx context.Context, cfg *Config, url string, stdout io.Writer) error {
	switch {
	case url != "":
	case cfg.Listen.Admin != "":
		url = "http" + strings.TrimPrefix(healthURL(cfg.Listen.Admin), "https")
	default:
		url = healthURL(cfg.Listen.HTTPS)
	}
	// The probe asks our own process whether it is alive; it trusts
	// nothing it receives, so it does not verify the certificate. It sends
	// a served name as SNI so that a source choosing by SNI (ACME) answers.
	conf := &tls.Config{InsecureSkipVerify: true}
	for _, h := range cfg.Hosts {
		if _, err := netip.ParseAddr(h); err != nil && h[0] != '*' {
			conf.ServerName = h
			break
		}
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: conf}}
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return usageError{fmt.Errorf("health: %w", err)}
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health: GET %s = %s", url, resp.Status)
	}
	fmt.Fprintf(stdout, "ok %s\n", url)
	return nil
}

// healthURL is https://HOST:PORT/healthz for a listen address, with a
// wildcard or empty host replaced by loopback.
func healthURL(listen string) string {
	host, port, _ := net.SplitHostPort(listen)
	if ip, err := netip.ParseAddr(host); host == "" || (err == nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "https://" + net.JoinHostPort(host, port) + "/healthz"
}
