#!/usr/bin/env bash
# h3.sh: HTTP/3 beside HTTP/2, httpsd (bench/httpsd: its defaults, access
# log on) beside Caddy with HTTP/3 on (bench/caddy-h3), on loopback; servers
# pinned to CPU $SERVER_CPU (0), the clients to CPU $CLIENT_CPU (1). In each
# of ROUNDS (3) rounds, interleaved, for each server on a fresh start:
#   req    bench/h3load -mode req: 50 connections x 10 streams, DURATION s,
#          over HTTP/3 and over HTTP/2 (the same Go client code for both)
#   hs     full handshakes/s, 16 workers: QUIC (bench/h3load -mode hs) and
#          TCP+TLS (bench/handshakes, default key exchange X25519MLKEM768)
#   idle   server RSS per idle connection, N (1000) of each: HTTP/2 first,
#          then HTTP/3, one request on each
# then prints each result and a table of medians [min-max].
#
#   bench/h3.sh                  # ROUNDS=3 DURATION=10, about 8 minutes
#   ROUNDS=1 DURATION=3 bench/h3.sh
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
export PEERS_DIR=${PEERS_DIR:-$ROOT/../shared/peers}
. "$PEERS_DIR/common.sh"
ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-10} N=${N:-1000}
S=${SERVER_CPU:-0} C=${CLIENT_CPU:-1}
ulimit -n $((N * 2 + 4096))
go build -C "$ROOT" -o "$RUN_ROOT/bin/h3load" ./bench/h3load
go build -C "$ROOT" -o "$RUN_ROOT/bin/handshakes" ./bench/handshakes
out=$(mktemp)
trap '"$HERE/httpsd/stop.sh" >/dev/null 2>&1 || true; "$HERE/caddy-h3/stop.sh" >/dev/null 2>&1 || true; rm -f "$out"' EXIT

pidfile() { [ "$1" = httpsd ] && echo "$RUN_ROOT/httpsd/pid" || echo "$RUN_ROOT/caddy-h3/caddy.pid"; }
load() { taskset -c "$C" "$RUN_ROOT/bin/h3load" "$@"; }
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$ROUNDS"); do
  for peer in httpsd caddy-h3; do
    port=$(cat "$HERE/$peer/port") addr=127.0.0.1:$(cat "$HERE/$peer/port")
    PIN=$S "$HERE/$peer/start.sh" >/dev/null
    for proto in h3 h2; do
      load -name "$peer" -addr "$addr" -proto $proto -mode req -c 50 -m 10 -d "${DURATION}s" | tee -a "$out"
    done
    load -name "$peer" -addr "$addr" -proto h3 -mode hs -c 16 -d "${DURATION}s" | tee -a "$out"
    taskset -c "$C" "$RUN_ROOT/bin/handshakes" -name "$peer" -addr "$addr" -c 16 -d "${DURATION}s" -mode "full (default" |
      sed "s/: full (default, X25519MLKEM768): /: tcp hs: /" | tee -a "$out"
    "$HERE/$peer/stop.sh" >/dev/null
    PIN=$S "$HERE/$peer/start.sh" >/dev/null
    pid=$(cat "$(pidfile $peer)")
    for proto in h2 h3; do
      load -name "$peer" -addr "$addr" -proto $proto -mode idle -n "$N" -pid "$pid" | tee -a "$out"
    done
    "$HERE/$peer/stop.sh" >/dev/null
  done
  echo "round $round done; load $(cut -d' ' -f1-3 /proc/loadavg)"
done

# med PEER PATTERN FIELD: median [min-max] of the number before FIELD on
# the lines of PEER matching PATTERN.
med() {
  grep "^$1: $2" "$out" | sed -E "s|.* ([0-9.]+) $3.*|\1|" | sort -n |
    awk '{v[NR] = $1} END {if (NR == 0) {print "-"; exit} printf "%.0f [%.0f-%.0f]", v[int((NR + 1) / 2)], v[1], v[NR]}'
}
echo
echo "| server | HTTP/3 req/s | HTTP/2 req/s | HTTP/3 p99 ms | HTTP/2 p99 ms | QUIC full hs/s | TCP+TLS full hs/s | RSS per idle HTTP/3 conn KiB | RSS per idle HTTP/2 conn KiB |"
echo "|---|---|---|---|---|---|---|---|---|"
for peer in httpsd caddy-h3; do
  p99() { grep "^$peer: $1 req" "$out" | sed -E 's/.*p99 ([0-9.]+) ms.*/\1/' | sort -n | awk '{v[NR] = $1} END {printf "%s", v[int((NR + 1) / 2)]}'; }
  echo "| $peer | $(med $peer 'h3 req' requests/s) | $(med $peer 'h2 req' requests/s) | $(p99 h3) | $(p99 h2) | $(med $peer 'h3 hs' 'full handshakes') | $(med $peer 'tcp hs' handshakes/s) | $(med $peer 'h3 idle' 'KiB per') | $(med $peer 'h2 idle' 'KiB per') |"
done
