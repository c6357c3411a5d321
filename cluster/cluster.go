// Package cluster is the state that several httpsd replicas share in
// Redis: an autocert.Cache for ACME (account key, certificates and
// challenge data) with a local read-through copy, a lock so that one
// replica at a time orders a certificate, and session-ticket keys stored
// encrypted. It takes typed Options and never reads config files or the
// environment. Every Redis call is bounded by Options.Timeout, and a Store
// tracks whether Redis answers, so that callers never wait long on a dead
// one.
package cluster

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Options configures a Store. Zero fields take the defaults in comments.
type Options struct {
	// URL is the Redis server: redis://HOST:PORT/DB, or rediss:// for TLS.
	// A user name in it is used with Password (Redis ACLs). Required.
	URL string
	// Password authenticates to Redis; "" sends none.
	Password string
	// RootCAs are trusted for rediss://; nil means the system roots.
	RootCAs *x509.CertPool
	// KeyPrefix starts every key, so that several sites can share one
	// Redis; "" means "httpsd:".
	KeyPrefix string
	// Timeout bounds every Redis call, dial included; 0 means 1 second.
	Timeout time.Duration
	// Logger receives state changes (unreachable, reachable again); nil
	// discards them.
	Logger *slog.Logger
}

// Store is a connection to the shared Redis. It is safe for concurrent use.
type Store struct {
	rdb     *redis.Client
	prefix  string
	timeout time.Duration
	logger  *slog.Logger
	where   string // the URL without credentials, for messages

	mu        sync.Mutex
	up        bool
	lastErr   error
	downSince time.Time
	lastLog   time.Time
	// pending holds the cache entries whose write to Redis failed; they
	// are written when Redis answers again.
	pending map[string]*Cache
}

// New returns a Store for opts. It does not connect: the first call does,
// and Run checks the connection in the background.
func New(opts Options) (*Store, error) {
	ro, err := redis.ParseURL(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("cluster: storage URL: %w", err)
	}
	if opts.Password != "" {
		ro.Password = opts.Password
	}
	if ro.TLSConfig != nil {
		ro.TLSConfig = &tls.Config{ServerName: ro.TLSConfig.ServerName, MinVersion: tls.VersionTLS12, RootCAs: opts.RootCAs}
	}
	if opts.Timeout <= 0 {
		opts.Timeout = time.Second
	}
	if opts.KeyPrefix == "" {
		opts.KeyPrefix = "httpsd:"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ro.DialTimeout = opts.Timeout
	ro.ReadTimeout = opts.Timeout
	ro.WriteTimeout = opts.Timeout
	ro.PoolTimeout = opts.Timeout
	ro.ContextTimeoutEnabled = true
	ro.MaxRetries = -1 // no retries: a call fails within Timeout
	ro.DialerRetries = 1
	ro.DisableIdentity = true // no CLIENT SETINFO, which older servers refuse
	ro.PoolSize = 16
	return &Store{rdb: redis.NewClient(ro), prefix: opts.KeyPrefix, timeout: opts.Timeout,
		logger: opts.Logger, where: redacted(opts.URL), up: true, pending: map[string]*Cache{}}, nil
}

// redacted is u without a password, for messages.
func redacted(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	return p.Redacted()
}

// String is the storage's URL without a password.
func (s *Store) String() string { return s.where }

// Close closes the connections to Redis.
func (s *Store) Close() error { return s.rdb.Close() }

// Status is whether Redis answered the last call.
type Status struct {
	Up        bool
	Err       error     // why it is down; nil when up
	DownSince time.Time // when it stopped answering; zero when up
}

// Status returns whether Redis answered the last call made to it.
func (s *Store) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.up {
		return Status{Up: true}
	}
	return Status{Err: s.lastErr, DownSince: s.downSince}
}

// ctx bounds a call by the Store's timeout.
func (s *Store) ctx(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, s.timeout)
}

// observe records the outcome of a Redis call: redis.Nil (no such key)
// counts as an answer. It returns err.
func (s *Store) observe(err error) error {
	answered := err == nil || errors.Is(err, redis.Nil)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	switch {
	case answered && !s.up:
		s.up, s.lastErr = true, nil
		s.logger.Info("cluster: storage reachable again", "storage", s.where,
			"down_for", now.Sub(s.downSince).Round(time.Millisecond).String())
	case !answered && s.up:
		s.up, s.lastErr, s.downSince, s.lastLog = false, err, now, now
		s.logger.Warn("cluster: storage unreachable; serving the certificates held, issuance waits",
			"storage", s.where, "err", err)
	case !answered:
		s.lastErr = err
		if now.Sub(s.lastLog) >= time.Minute {
			s.lastLog = now
			s.logger.Warn("cluster: storage still unreachable; serving the certificates held, issuance waits",
				"storage", s.where, "err", err, "since", s.downSince.UTC().Format(time.RFC3339))
		}
	}
	return err
}

// Ping asks Redis whether it answers.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	if err := s.observe(s.rdb.Ping(ctx).Err()); err != nil {
		return fmt.Errorf("cluster: %s: %w", s.where, err)
	}
	return nil
}

// Run pings Redis every interval until ctx is done, and writes the cache
// entries Redis missed while it was down as soon as it answers again.
func (s *Store) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if s.Ping(ctx) == nil {
			s.flushPending(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Probe checks what the replicas need from Redis, step by step: that it
// answers (with the password), then that a probe key can be written, read
// back and deleted. The error names the step that failed.
func (s *Store) Probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*s.timeout)
	defer cancel()
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		if isAuthError(err) {
			return fmt.Errorf("cluster: authenticate to %s: %w", s.where, err)
		}
		return fmt.Errorf("cluster: connect to %s: %w", s.where, err)
	}
	b := make([]byte, 8)
	rand.Read(b)
	key, value := s.prefix+"probe:"+hex.EncodeToString(b), hex.EncodeToString(b)
	if err := s.rdb.Set(ctx, key, value, time.Minute).Err(); err != nil {
		return fmt.Errorf("cluster: write probe key %s: %w", key, err)
	}
	got, err := s.rdb.Get(ctx, key).Result()
	if err != nil {
		return fmt.Errorf("cluster: read probe key %s: %w", key, err)
	}
	if got != value {
		return fmt.Errorf("cluster: read probe key %s: got %q, wrote %q", key, got, value)
	}
	if err := s.rdb.Del(ctx, key).Err(); err != nil {
		return fmt.Errorf("cluster: delete probe key %s: %w", key, err)
	}
	return nil
}

// isAuthError reports whether Redis refused the credentials.
func isAuthError(err error) bool {
	msg := err.Error()
	for _, p := range []string{"WRONGPASS", "NOAUTH", "invalid password", "invalid username-password"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

// QuietRedisLog sends go-redis's own log lines nowhere. They would go to
// stderr, past httpsd's log and its rate limits, a line per failed dial;
// the Store reports what they say itself, a line a minute. It sets a
// variable of that library for the whole process: only main (and
// TestMain) call it, once.
func QuietRedisLog() { redis.SetLogger(discardLog{}) }

type discardLog struct{}

func (discardLog) Printf(context.Context, string, ...any) {}
