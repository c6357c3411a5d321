#!/usr/bin/env bash
# backend.sh start|stop: the proxy benchmarks' backend (bench/backend) on
# 127.0.0.1:$BACKEND_PORT (9050), pinned to $BACKEND_CPU (the load
# client's CPU, 1), started once for every proxy peer.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "${PEERS_DIR:-$HERE/../../shared/peers}/common.sh"
PORT=${BACKEND_PORT:-9050} D=$RUN_ROOT/backend
case $1 in
  start)
    if [ -s "$D/pid" ] && kill -0 "$(cat "$D/pid")" 2>/dev/null; then exit 0; fi
    mkdir -p "$D"
    go build -C "$HERE/.." -o "$D/backend" ./bench/backend
    taskset -c "${BACKEND_CPU:-1}" "$D/backend" -addr "127.0.0.1:$PORT" >"$D/log" 2>&1 &
    echo $! >"$D/pid"
    for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/hello/x" && exit 0; sleep 0.1; done
    echo "backend did not start" >&2; exit 1 ;;
  stop) stop_pid "$D/pid" ;;
esac
