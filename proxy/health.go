package proxy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// checkHealth asks u for the health path every HealthInterval until ctx is
// done, and logs every change of state.
func (p *Proxy) checkHealth(ctx context.Context, u *upstream) {
	t := time.NewTicker(p.o.HealthInterval)
	defer t.Stop()
	for {
		err := p.probe(ctx, u)
		if ctx.Err() != nil {
			return
		}
		u.mu.Lock()
		wasUsable := u.usable(time.Now())
		changed := !u.activeKnown || wasUsable != (err == nil)
		u.activeKnown = true
		u.activeBad.Store(err != nil)
		if err != nil {
			u.lastErr = err
		} else {
			u.succeeded() // it answers: a passive mark ends too
		}
		u.mu.Unlock()
		switch {
		case changed && err == nil:
			p.o.Logger.Info("proxy: upstream healthy", "upstream", u.name)
		case changed:
			p.o.Logger.Warn("proxy: upstream unhealthy", "upstream", u.name, "err", err.Error())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// probe GETs the health path from u: nil for a 2xx or 3xx answer.
func (p *Proxy) probe(ctx context.Context, u *upstream) error {
	ctx, cancel := context.WithTimeout(ctx, min(p.o.HealthInterval, 5*time.Second))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+u.host+p.o.HealthPath, nil)
	if err != nil {
		return err
	}
	if p.o.HostHeader != "" {
		req.Host = p.o.HostHeader
	}
	req.Header.Set("User-Agent", "httpsd-health-check")
	resp, err := u.transport.RoundTrip(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode >= 400 {
		return fmt.Errorf("GET %s = %s", p.o.HealthPath, resp.Status)
	}
	return nil
}
