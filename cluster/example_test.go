package cluster_test

import (
	"context"
	"crypto/tls"
	"errors"
	"log"
	"time"

	"golang.org/x/crypto/acme/autocert"

	"github.com/httpsd/httpsd/cluster"
)

// An autocert.Manager whose state every replica shares, with a local copy
// to fall back on while Redis is down.
func ExampleStore_Cache() {
	store, err := cluster.New(cluster.Options{URL: "redis://redis.internal:6379/0", Password: "from-a-secret"})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	m := &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		HostPolicy: autocert.HostWhitelist("example.com"),
		Cache:      store.Cache(autocert.DirCache("/var/lib/app/acme")),
	}
	_ = &tls.Config{GetCertificate: m.GetCertificate}
}

// One replica at a time does the work the lock guards, and stops if the
// lock is lost.
func ExampleStore_TryLock() {
	store, err := cluster.New(cluster.Options{URL: "redis://redis.internal:6379/0"})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	lease, err := store.TryLock(ctx, "nightly-report", 30*time.Second)
	switch {
	case errors.Is(err, cluster.ErrLocked):
		return // another replica does it
	case err != nil:
		log.Print(err) // Redis did not answer
		return
	}
	defer lease.Release(ctx)
	work, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		<-lease.Lost()
		cancel()
	}()
	<-work.Done() // the work, stopped if the lock is lost
}
