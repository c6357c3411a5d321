package main

import (
	"bufio"
	"context"
	"io"
	"sync"
	"time"
)

// logBuffer batches the access log: lines are written to w every
// flushEvery, or sooner when the buffer fills, so that a request costs no
// write system call. A line is never split between two writes.
type logBuffer struct {
	mu sync.Mutex
	w  *bufio.Writer
}

// flushEvery bounds how late an access log line may appear.
const flushEvery = 100 * time.Millisecond

func newLogBuffer(w io.Writer) *logBuffer {
	return &logBuffer{w: bufio.NewWriterSize(w, 64<<10)}
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(p) > b.w.Available() && b.w.Buffered() > 0 {
		if err := b.w.Flush(); err != nil {
			return 0, err
		}
	}
	return b.w.Write(p)
}

// Flush writes out what is buffered.
func (b *logBuffer) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.w.Flush()
}

// run flushes every flushEvery until ctx is done, then once more.
func (b *logBuffer) run(ctx context.Context) {
	t := time.NewTicker(flushEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			b.Flush()
			return
		case <-t.C:
			b.Flush()
		}
	}
}
