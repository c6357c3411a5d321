#!/usr/bin/env bash
# idle.sh: server memory per idle TLS keep-alive connection, httpsd beside
# the bare net/http peer: N (default 10000) connections each, loopback only,
# in ROUNDS (default 3) fresh starts; prints each and the medians.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
export PEERS_DIR=${PEERS_DIR:-$HERE/../../shared/peers}
. "$PEERS_DIR/common.sh"
N=${N:-10000}
ulimit -n $((N + 4096))
go build -C "$HERE/.." -o "$RUN_ROOT/bin/idle" ./bench/idle
trap '"$PEERS_DIR/go/stop.sh" >/dev/null 2>&1 || true; "$HERE/httpsd/stop.sh" >/dev/null 2>&1 || true' EXIT
# Where the garbage collector last ran during the ramp moves the result by
# about 10%: ROUNDS fresh starts of each server, and the median.
declare -A KIB
for _ in $(seq "${ROUNDS:-3}"); do
  PIN=${SERVER_CPU:-0} "$PEERS_DIR/go/start.sh" >/dev/null
  PIN=${SERVER_CPU:-0} "$HERE/httpsd/start.sh" >/dev/null
  sleep 1
  for name in go httpsd; do
    if [ $name = go ]; then port=$(cat "$PEERS_DIR/go/port") pid=$(cat "$RUN_ROOT/go/go.pid")
    else port=$(cat "$HERE/httpsd/port") pid=$(cat "$RUN_ROOT/httpsd/pid"); fi
    line=$("$RUN_ROOT/bin/idle" -name $name -addr "127.0.0.1:$port" -pid "$pid" -n "$N")
    echo "$line"
    KIB[$name]+="${line##*: } "
  done
  "$PEERS_DIR/go/stop.sh" >/dev/null
  "$HERE/httpsd/stop.sh" >/dev/null
done
for name in go httpsd; do
  echo "$name: median $(tr ' ' '\n' <<<"${KIB[$name]}" | grep -o '^[0-9.]*' | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}') KiB per idle connection (${ROUNDS:-3} rounds)"
done
