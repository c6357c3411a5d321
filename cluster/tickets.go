package cluster

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// TicketOptions configures the shared session-ticket keys. Zero fields
// take the defaults in comments.
type TicketOptions struct {
	// Secret encrypts the keys in Redis; every replica must have the same
	// one, of at least 32 bytes. Required.
	Secret []byte
	// Rotate is how often a new key is made; 12 hours.
	Rotate time.Duration
	// Keep is how long a key still decrypts tickets after the next one
	// took its place; 48 hours.
	Keep time.Duration
	// Poll is how often every replica reads the keys; a new key encrypts
	// tickets only three polls after it was made, once every replica has
	// it. Rotate/8, at most a minute.
	Poll time.Duration
	// Apply receives the keys to use, the one to encrypt new tickets with
	// first (for tls.Config.SetSessionTicketKeys), whenever they change.
	// Required.
	Apply func(keys [][32]byte)
}

// Tickets keeps session-ticket keys in Redis, encrypted with AES-256-GCM
// under a key derived from the secret: one replica at a time (the holder
// of a lock) makes a new key every Rotate, and all of them read and apply
// the keys every Poll.
type Tickets struct {
	s    *Store
	opts TicketOptions
	aead cipher.AEAD
	key  string // the Redis key; named after the secret, so that replicas with another secret keep apart

	mu      sync.Mutex
	applied [][32]byte
	lastLog time.Time
}

// ticketKey is one session-ticket key as stored.
type ticketKey struct {
	Key     [32]byte  `json:"key"`
	Created time.Time `json:"created"`
	// Active is when it starts to encrypt tickets: by then every replica
	// has read it and decrypts what it encrypts.
	Active time.Time `json:"active"`
}

// Tickets returns the shared session-ticket keys for opts.
func (s *Store) Tickets(opts TicketOptions) (*Tickets, error) {
	if len(opts.Secret) < 32 {
		return nil, fmt.Errorf("cluster: the secret has %d bytes; it needs at least 32", len(opts.Secret))
	}
	if opts.Apply == nil {
		return nil, errors.New("cluster: Tickets needs Apply")
	}
	if opts.Rotate <= 0 {
		opts.Rotate = 12 * time.Hour
	}
	if opts.Keep <= 0 {
		opts.Keep = 48 * time.Hour
	}
	if opts.Poll <= 0 {
		opts.Poll = min(opts.Rotate/8, time.Minute)
	}
	key, err := hkdf.Key(sha256.New, opts.Secret, nil, "httpsd session ticket keys", 32)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	block, _ := aes.NewCipher(key)
	aead, _ := cipher.NewGCM(block)
	mac := hmac.New(sha256.New, opts.Secret)
	mac.Write([]byte("httpsd session ticket keys id"))
	id := hex.EncodeToString(mac.Sum(nil)[:8])
	return &Tickets{s: s, opts: opts, aead: aead, key: s.prefix + "tickets:" + id}, nil
}

// RedisKey is the key the encrypted ticket keys are stored under.
func (t *Tickets) RedisKey() string { return t.key }

// seal encrypts keys for storage: a random nonce, then the ciphertext
// of their JSON, bound to the Redis key.
func (t *Tickets) seal(keys []ticketKey) ([]byte, error) {
	plain, err := json.Marshal(keys)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, t.aead.NonceSize())
	rand.Read(nonce)
	return t.aead.Seal(nonce, nonce, plain, []byte(t.key)), nil
}

// Open decrypts a value stored by seal.
func (t *Tickets) open(data []byte) ([]ticketKey, error) {
	n := t.aead.NonceSize()
	if len(data) < n {
		return nil, errors.New("cluster: ticket keys: stored value too short")
	}
	plain, err := t.aead.Open(nil, data[:n], data[n:], []byte(t.key))
	if err != nil {
		return nil, errors.New("cluster: ticket keys do not decrypt with this secret")
	}
	var keys []ticketKey
	if err := json.Unmarshal(plain, &keys); err != nil {
		return nil, fmt.Errorf("cluster: ticket keys: %w", err)
	}
	return keys, nil
}

// read returns the stored keys; none when there are none yet.
func (t *Tickets) read(ctx context.Context) ([]ticketKey, error) {
	rctx, cancel := t.s.ctx(ctx)
	data, err := t.s.rdb.Get(rctx, t.key).Bytes()
	cancel()
	t.s.observe(err)
	switch {
	case errors.Is(err, redis.Nil):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("cluster: ticket keys: %w", err)
	}
	return t.open(data)
}

// Sync reads the keys, makes a new one if the newest is Rotate old and
// this replica gets the rotation lock, and applies them if they changed.
func (t *Tickets) Sync(ctx context.Context) error {
	keys, err := t.read(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	if len(keys) == 0 || now.Sub(keys[0].Created) >= t.opts.Rotate {
		if keys, err = t.rotate(ctx, now); err != nil {
			return err
		}
	}
	t.apply(keys, now)
	return nil
}

// rotate makes a new key under the rotation lock, unless another replica
// holds it or made one meanwhile, and returns the keys stored.
func (t *Tickets) rotate(ctx context.Context, now time.Time) ([]ticketKey, error) {
	lease, err := t.s.TryLock(ctx, "tickets", 10*time.Second)
	if errors.Is(err, ErrLocked) {
		return t.read(ctx)
	}
	if err != nil {
		return nil, err
	}
	defer lease.Release(context.WithoutCancel(ctx))
	keys, err := t.read(ctx)
	if err != nil || len(keys) > 0 && now.Sub(keys[0].Created) < t.opts.Rotate {
		return keys, err
	}
	k := ticketKey{Created: now, Active: now.Add(3 * t.opts.Poll)}
	if len(keys) == 0 {
		k.Active = now // no replica encrypts with a shared key yet
	}
	rand.Read(k.Key[:])
	keys = append([]ticketKey{k}, keys...)
	keys = slices.DeleteFunc(keys, func(k ticketKey) bool { return now.Sub(k.Created) > t.opts.Rotate+t.opts.Keep })
	data, err := t.seal(keys)
	if err != nil {
		return nil, err
	}
	rctx, cancel := t.s.ctx(ctx)
	defer cancel()
	// An abandoned set (a secret no replica has any more) expires.
	if err := t.s.observe(t.s.rdb.Set(rctx, t.key, data, 2*t.opts.Rotate+t.opts.Keep).Err()); err != nil {
		return nil, fmt.Errorf("cluster: ticket keys: %w", err)
	}
	t.s.logger.Info("cluster: new session ticket key", "keys", len(keys), "active", k.Active.UTC().Format(time.RFC3339))
	return keys, nil
}

// apply hands the keys to Apply, the newest active one first, when they
// differ from those applied last.
func (t *Tickets) apply(keys []ticketKey, now time.Time) {
	if len(keys) == 0 {
		return
	}
	first := len(keys) - 1
	for i, k := range keys { // newest first
		if !now.Before(k.Active) {
			first = i
			break
		}
	}
	out := [][32]byte{keys[first].Key}
	for i, k := range keys {
		if i != first {
			out = append(out, k.Key)
		}
	}
	t.mu.Lock()
	same := len(out) == len(t.applied)
	for i := 0; same && i < len(out); i++ {
		same = bytes.Equal(out[i][:], t.applied[i][:])
	}
	t.applied = out
	t.mu.Unlock()
	if !same {
		t.opts.Apply(out)
	}
}

// Run syncs every Poll (every 250ms while Redis has no keys yet) until ctx is done,
// logging a failure at most once a minute; until the first success the
// server keeps the keys it made itself.
func (t *Tickets) Run(ctx context.Context) {
	for {
		err := t.Sync(ctx)
		t.mu.Lock()
		have := len(t.applied) > 0
		if err != nil && time.Since(t.lastLog) >= time.Minute {
			t.lastLog = time.Now()
			t.s.logger.Warn("cluster: session ticket keys not read; resumption across replicas may fail", "err", err)
		}
		t.mu.Unlock()
		wait := t.opts.Poll
		if !have && err == nil { // Redis answers but no replica has made a key yet
			wait = min(wait, 250*time.Millisecond)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// Keys returns the stored keys, newest first, decrypted with the secret:
// none when there are none yet.
func (t *Tickets) Keys(ctx context.Context) ([][32]byte, error) {
	keys, err := t.read(ctx)
	out := make([][32]byte, len(keys))
	for i, k := range keys {
		out[i] = k.Key
	}
	return out, err
}
