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
# then prints each result and a table of medians [min-max], and writes
# them into the section "HTTP/3 beside HTTP/2" of docs/BENCHMARKS.md with
# bench/h3-notes.md (what the figures mean), which bench/run.sh keeps.
#
#   bench/h3.sh                  # ROUNDS=3 DURATION=10, about 8 minutes
#   ROUNDS=1 DURATION=3 bench/h3.sh
#   REPORT_FROM=log ROUNDS=3 bench/h3.sh   # only the report, from a run's output
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

TCK=$(getconf CLK_TCK) QUIET_WAIT=${QUIET_WAIT:-60} QUIET_MAX=${QUIET_MAX:-15}
busy_ticks() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat; }
proc_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
# wait_quiet: up to QUIET_WAIT s for the machine to use less than QUIET_MAX%
# of a core (nothing of ours runs then), as ../shared/peers/compare.sh does.
wait_quiet() {
  local deadline=$(( $(date +%s) + QUIET_WAIT )) b0 o
  while :; do
    b0=$(busy_ticks); sleep 1; o=$(( ($(busy_ticks) - b0) * 100 / TCK ))
    [ "$o" -le "$QUIET_MAX" ] && return 0
    [ "$(date +%s)" -ge "$deadline" ] && { echo "  (machine not quiet: ~${o}% of a core busy; going on)" >&2; return 0; }
    sleep 2
  done
}
# measured PID CMD...: runs CMD and appends to its output line the server's
# CPU and the rest of the machine's (the client included), in % of a core.
measured() {
  local pid=$1 b0 s0 t0 line
  shift
  b0=$(busy_ticks) s0=$(proc_ticks "$pid") t0=$(date +%s.%N)
  line=$("$@")
  echo "$line $(awk -v b=$(( $(busy_ticks) - b0 )) -v s=$(( $(proc_ticks "$pid") - s0 )) -v t0="$t0" -v t1="$(date +%s.%N)" -v k="$TCK" \
    'BEGIN {w = t1 - t0; printf "[server CPU %.0f%%, rest %.0f%%]", 100 * s / k / w, 100 * (b - s) / k / w}')"
}
pidfile() { [ "$1" = httpsd ] && echo "$RUN_ROOT/httpsd/pid" || echo "$RUN_ROOT/caddy-h3/caddy.pid"; }
load() { taskset -c "$C" "$RUN_ROOT/bin/h3load" "$@"; }
# REPORT_FROM=FILE: no measurements, the report from the result lines of
# an earlier run's output.
if [ -n "${REPORT_FROM:-}" ]; then
  grep -E '^(httpsd|caddy-h3): ' "$REPORT_FROM" >"$out"
fi
run_rounds=$ROUNDS
[ -n "${REPORT_FROM:-}" ] && run_rounds=0
[ "$run_rounds" -gt 0 ] && echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$run_rounds"); do
  for peer in httpsd caddy-h3; do
    addr=127.0.0.1:$(cat "$HERE/$peer/port")
    wait_quiet
    PIN=$S "$HERE/$peer/start.sh" >/dev/null
    pid=$(cat "$(pidfile $peer)")
    for proto in h3 h2; do
      measured "$pid" load -name "$peer" -addr "$addr" -proto $proto -mode req -c 50 -m 10 -d "${DURATION}s" | tee -a "$out"
    done
    measured "$pid" load -name "$peer" -addr "$addr" -proto h3 -mode hs -c 16 -d "${DURATION}s" | tee -a "$out"
    measured "$pid" taskset -c "$C" "$RUN_ROOT/bin/handshakes" -name "$peer" -addr "$addr" -c 16 -d "${DURATION}s" -mode "full (default" |
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
# cap PEER PATTERN: median [min-max] of handshakes per second of server CPU
# (the rate divided by the share of its core the server used): what one
# core could do were the client not the limit.
cap() {
  grep "^$1: $2" "$out" | sed -E 's/.* ([0-9.]+) (full )?handshakes\/s.*server CPU ([0-9]+)%.*/\1 \3/' |
    awk '$2 > 0 {print $1 * 100 / $2}' | sort -n |
    awk '{v[NR] = $1} END {if (NR == 0) {print "-"; exit} printf "%.0f [%.0f-%.0f]", v[int((NR + 1) / 2)], v[1], v[NR]}'
}
table=$(
  echo "| server | HTTP/3 req/s | HTTP/2 req/s | HTTP/3 p99 ms | HTTP/2 p99 ms | QUIC full hs/s | TCP+TLS full hs/s | QUIC hs per server CPU-s | TCP+TLS hs per server CPU-s | RSS per idle HTTP/3 conn KiB | RSS per idle HTTP/2 conn KiB |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
  for peer in httpsd caddy-h3; do
    p99() { grep "^$peer: $1 req" "$out" | sed -E 's/.*p99 ([0-9.]+) ms.*/\1/' | sort -n | awk '{v[NR] = $1} END {printf "%s", v[int((NR + 1) / 2)]}'; }
    echo "| $peer | $(med $peer 'h3 req' requests/s) | $(med $peer 'h2 req' requests/s) | $(p99 h3) | $(p99 h2) | $(med $peer 'h3 hs' 'full handshakes') | $(med $peer 'tcp hs' handshakes/s) | $(cap $peer 'h3 hs') | $(cap $peer 'tcp hs') | $(med $peer 'h3 idle' 'KiB per') | $(med $peer 'h2 idle' 'KiB per') |"
  done
)
# m PEER PATTERN FIELD: the median alone.
m() { med "$1" "$2" "$3" | cut -d' ' -f1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
r_req=$(ratio "$(m httpsd 'h3 req' requests/s)" "$(m caddy-h3 'h3 req' requests/s)")
r_hs=$(ratio "$(m httpsd 'h3 hs' 'full handshakes')" "$(m httpsd 'tcp hs' handshakes/s)")
r_cap=$(ratio "$(cap httpsd 'h3 hs' | cut -d' ' -f1)" "$(cap httpsd 'tcp hs' | cut -d' ' -f1)")
r_idle=$(ratio "$(m httpsd 'h3 idle' 'KiB per')" "$(m httpsd 'h2 idle' 'KiB per')")
verdict() { awk -v r="$1" -v op="$2" -v t="$3" 'BEGIN {ok = (op == ">=") ? r >= t : r <= t; print ok ? "met" : "not met"}'; }
targets=$(
  echo "| target | measured | |"
  echo "|---|---|---|"
  echo "| httpsd HTTP/3 req/s ≥ 1.0× Caddy's HTTP/3 | ${r_req}× | $(verdict "$r_req" ">=" 1.0) |"
  echo "| httpsd QUIC full handshakes/s ≥ 0.8× its TCP+TLS ones | ${r_hs}× (per server CPU-second: ${r_cap}×) | $(verdict "$r_hs" ">=" 0.8) |"
  echo "| httpsd RSS per idle QUIC connection ≤ 2× an idle HTTP/2 one | ${r_idle}× | $(verdict "$r_idle" "<=" 2.0) |"
)
echo
echo "$table"
echo
echo "$targets"
section=$(
  echo "## HTTP/3 beside HTTP/2 (bench/h3.sh)"
  echo
  echo "Measured by \`ROUNDS=$ROUNDS DURATION=$DURATION N=$N bench/h3.sh\` on $(date -u +%Y-%m-%d): httpsd (bench/httpsd, its defaults) and Caddy $(caddy version 2>/dev/null | cut -d' ' -f1) with \`protocols h1 h2 h3\` (bench/caddy-h3), each on CPU $S, the clients on CPU $C, rounds interleaved; medians [min-max]. The load client is the same Go code for both protocols (bench/h3load: quic-go, x/net/http2), 50 connections × 10 streams for requests, 16 workers for handshakes (a new connection, one request, closed; no resumption), $N connections for idle memory."
  echo
  echo "$table"
  echo
  echo "$targets"
  echo
  [ -s "$HERE/h3-notes.md" ] && cat "$HERE/h3-notes.md"
  echo
  echo '```'
  grep . "$out"
  echo '```'
)
doc=$ROOT/docs/BENCHMARKS.md
awk -v section="$section" '
  /^## HTTP\/3 beside HTTP\/2/ {skip = 1; next}
  skip && /^## / {skip = 0}
  skip {next}
  /^## Commands/ && !done {print section; print ""; done = 1}
  {print}
  END {if (!done) {print ""; print section}}' "$doc" >"$doc.new" && mv "$doc.new" "$doc"
echo "wrote the HTTP/3 section of docs/BENCHMARKS.md"
