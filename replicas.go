package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/crypto/acme/autocert"

	"github.com/httpsd/httpsd/certs"
	"github.com/httpsd/httpsd/cluster"
	"github.com/httpsd/httpsd/metrics"
)

// storePing is how often serve asks the shared storage whether it
// answers (and writes what it missed while down).
const storePing = 2 * time.Second

// openStore returns the shared storage of tls.acme.storage, nil when it is
// not set, and the cluster secret when the session-ticket keys are shared.
// It reads the password and secret files but does not connect.
func openStore(cfg *Config, logger *slog.Logger) (*cluster.Store, []byte, error) {
	st := cfg.TLS.ACME.Storage
	if st.URL == "" {
		return nil, nil, nil
	}
	password, secret, err := clusterSecrets(cfg)
	if err != nil {
		return nil, nil, err
	}
	opts := cluster.Options{URL: st.URL, Password: password, KeyPrefix: st.KeyPrefix, Logger: logger}
	if st.CARoots != "" {
		if opts.RootCAs, err = certs.LoadRoots(st.CARoots); err != nil {
			return nil, nil, fmt.Errorf("tls.acme.storage.ca_roots: %w", err)
		}
	}
	store, err := cluster.New(opts)
	if err != nil {
		return nil, nil, fmt.Errorf("tls.acme.storage.url: %w", err)
	}
	return store, secret, nil
}

// sharedACME sets opts to keep ACME's state in store, with the local
// cache directory as its read-through copy, and to order under its lock.
func sharedACME(opts *certs.ACMEOptions, store *cluster.Store, lockTTL time.Duration) {
	opts.Cache = store.Cache(autocert.DirCache(opts.CacheDir))
	opts.TryLock = func(ctx context.Context, name string) (certs.Lease, bool, error) {
		l, err := store.TryLock(ctx, "acme:"+name, lockTTL)
		if errors.Is(err, cluster.ErrLocked) {
			return certs.Lease{}, false, nil
		}
		if err != nil {
			return certs.Lease{}, false, err
		}
		return certs.Lease{Lost: l.Lost(), Release: func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			l.Release(ctx)
		}}, true, nil
	}
	// An order holds the lock for about a minute at most; a replica that
	// waits longer than the lock's expiry and autocert's 5 minutes per
	// order has waited for a stuck one.
	opts.LockWait = lockTTL + 5*time.Minute
	opts.Poll = min(time.Second, lockTTL/4)
}

// startTickets shares the session-ticket keys through store: it applies
// the stored ones (waiting at most 2 seconds) and returns the Tickets to
// Run, so that sessions resume on any replica.
func (d *daemon) startTickets(ctx context.Context, store *cluster.Store, secret []byte, t TicketsConfig) (*cluster.Tickets, error) {
	tickets, err := store.Tickets(cluster.TicketOptions{Secret: secret, Rotate: t.Rotate, Keep: t.Keep,
		Apply: func(keys [][32]byte) {
			d.srv.SetSessionTicketKeys(keys)
			d.logger.Info("cluster: session ticket keys applied", "keys", len(keys))
		}})
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := tickets.Sync(sctx); err != nil {
		d.logger.Warn("cluster: no shared session ticket keys yet; this replica uses its own until it reads them", "err", err)
	}
	return tickets, nil
}

// storageWarnings is what /readyz says about the shared storage: down,
// since when and why, while the certificates held keep serving.
func storageWarnings(store *cluster.Store) []string {
	if store == nil {
		return nil
	}
	st := store.Status()
	if st.Up {
		return nil
	}
	return []string{fmt.Sprintf("cluster storage %s unreachable since %s (%v): certificates held stay in service; issuance, renewals and new session ticket keys wait",
		store, st.DownSince.UTC().Format(time.RFC3339), st.Err)}
}

// registerStoreMetrics adds httpsd_cluster_storage_up.
func registerStoreMetrics(reg *metrics.Registry, store *cluster.Store) {
	reg.Func("httpsd_cluster_storage_up", "Whether the shared storage (tls.acme.storage) answered the last call: 1 or 0.",
		"gauge", nil, func(add func(float64, ...string)) {
			up := 0.0
			if store.Status().Up {
				up = 1
			}
			add(up)
		})
}
