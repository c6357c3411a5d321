package certs

import (
	"context"
	"crypto/sha256"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// FileWatcher reloads certificate files when their content changes, the
// way Kubernetes Secrets and renewal tools replace them: it compares the
// files' content, so swapped symlinks and rewritten files both count. A new
// pair that fails validation leaves the current certificates in service.
type FileWatcher struct {
	store  func(*Set) // receives every new valid Set
	logger *slog.Logger

	mu    sync.Mutex
	pairs []Pair
	seen  [sha256.Size]byte // content of the files last loaded or rejected
}

// NewFileWatcher watches pairs, whose certificates were just loaded from
// their current content, and hands every valid change to store.
func NewFileWatcher(pairs []Pair, store func(*Set), logger *slog.Logger) *FileWatcher {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	w := &FileWatcher{store: store, logger: logger, pairs: pairs}
	w.seen = contentSum(pairs)
	return w
}

// Check reloads the files if their content changed since the last Check,
// and returns the reason a change was rejected, if it was.
func (w *FileWatcher) Check(now time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	sum := contentSum(w.pairs)
	if sum == w.seen {
		return nil
	}
	w.seen = sum
	set, err := Files(w.pairs, now)
	if err != nil {
		w.logger.Error("certificate files changed but are not valid; still serving the previous certificates",
			"err", strings.ReplaceAll(err.Error(), "\n", "; "))
		return err
	}
	w.store(set)
	w.logger.Info("certificates reloaded", "names", strings.Join(set.Names(), ","))
	return nil
}

// SetPairs watches pairs from now on and loads them at once.
func (w *FileWatcher) SetPairs(pairs []Pair, now time.Time) error {
	w.mu.Lock()
	w.pairs = pairs
	w.seen = [sha256.Size]byte{}
	w.mu.Unlock()
	return w.Check(now)
}

// Run checks the files every interval until ctx is done.
func (w *FileWatcher) Run(ctx context.Context, interval time.Duration) {
	for sleep(ctx, interval) {
		w.Check(time.Now())
	}
}

// contentSum hashes the names and contents of every file, read errors
// included, so that any change, even to an unreadable state, is seen once.
func contentSum(pairs []Pair) [sha256.Size]byte {
	h := sha256.New()
	for _, p := range pairs {
		for _, f := range []string{p.Cert, p.Key} {
			h.Write([]byte(f + "\x00"))
			data, err := ReadFile(f)
			if err != nil {
				h.Write([]byte("error " + err.Error()))
			}
			h.Write(data)
			h.Write([]byte{0})
		}
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}
