package server

import (
	"context"
	"log"
	"log/slog"
	"strings"
)

// newErrorLog returns an http.Server.ErrorLog that writes through logger:
// TLS handshake failures (also passed to handshakeFailed) and connections
// dropped by clients, which any public server sees all day, at debug;
// everything else at warn.
func newErrorLog(logger *slog.Logger, handshakeFailed func(msg string)) *log.Logger {
	return log.New(errorLogWriter{logger, handshakeFailed}, "", 0)
}

type errorLogWriter struct {
	logger          *slog.Logger
	handshakeFailed func(msg string)
}

func (w errorLogWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	if strings.Contains(msg, "TLS handshake error") {
		w.handshakeFailed(msg)
	}
	level := slog.LevelWarn
	if isClientNoise(msg) {
		level = slog.LevelDebug
	}
	w.logger.Log(context.Background(), level, msg, "from", "http.Server")
	return len(p), nil
}

func isClientNoise(msg string) bool {
	for _, s := range []string{"TLS handshake error", "error reading preface", "connection reset by peer", "broken pipe", "i/o timeout"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
