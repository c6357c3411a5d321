#!/usr/bin/env bash
# idle.sh: server memory per idle TLS keep-alive connection, httpsd beside
# the bare net/http peer: N (default 10000) connections each, loopback only.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
export PEERS_DIR=${PEERS_DIR:-$HERE/../../shared/peers}
. "$PEERS_DIR/common.sh"
N=${N:-10000}
ulimit -n $((N + 4096))
go build -C "$HERE/.." -o "$RUN_ROOT/bin/idle" ./bench/idle
trap '"$PEERS_DIR/go/stop.sh" >/dev/null 2>&1 || true; "$HERE/httpsd/stop.sh" >/dev/null 2>&1 || true' EXIT
PIN=${SERVER_CPU:-0} "$PEERS_DIR/go/start.sh" >/dev/null
PIN=${SERVER_CPU:-0} "$HERE/httpsd/start.sh" >/dev/null
sleep 1
"$RUN_ROOT/bin/idle" -name go -addr "127.0.0.1:$(cat "$PEERS_DIR/go/port")" -pid "$(cat "$RUN_ROOT/go/go.pid")" -n "$N"
"$RUN_ROOT/bin/idle" -name httpsd -addr "127.0.0.1:$(cat "$HERE/httpsd/port")" -pid "$(cat "$RUN_ROOT/httpsd/pid")" -n "$N"
