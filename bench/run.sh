#!/usr/bin/env bash
# run.sh: the whole benchmark in one command. Builds httpsd, runs
# ../shared/peers/compare.sh with httpsd (bench/httpsd: its defaults, access
# log on) beside the bare net/http peer, nginx, Caddy and the original
# Apache + mod_wsgi + Bottle stack, then the idle-connection memory test,
# the handshake modes and the Go benchmarks, and writes docs/BENCHMARKS.md
# and docs/bench.svg from what it measured. Everything runs on loopback.
#
#   bench/run.sh                      # ROUNDS=3, about 25 minutes
#   ROUNDS=1 DURATION=3 bench/run.sh  # a quick look
#   PEERS="go" bench/run.sh           # fewer peers
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
export PEERS_DIR=${PEERS_DIR:-$ROOT/../shared/peers}
. "$PEERS_DIR/common.sh"
export ROUNDS=${ROUNDS:-3}
PEERS=${PEERS:-seed nginx caddy go}
cd "$ROOT"
log=$(mktemp)
trap 'rm -f "$log"' EXIT

"$PEERS_DIR/compare.sh" $PEERS "$HERE/httpsd" | tee "$log"
summary=$(sed -n 's/^servers: .*raw output in \(.*\)$/\1/p' "$log")/summary.md
[ -s "$summary" ] || { echo "run.sh: no summary.md from compare.sh" >&2; exit 1; }
go run ./bench/chart -in "$summary" -out docs/bench.svg

idle=$(bash "$HERE/idle.sh" 2>&1 | grep -E 'idle TLS connections|per idle connection')
go build -o "$RUN_ROOT/bin/handshakes" ./bench/handshakes
PIN=${SERVER_CPU:-0} "$HERE/httpsd/start.sh" >/dev/null
hs=$(taskset -c "${CLIENT_CPU:-1}" "$RUN_ROOT/bin/handshakes" -name httpsd -addr "127.0.0.1:$(cat "$HERE/httpsd/port")")
"$HERE/httpsd/stop.sh"
PIN=${SERVER_CPU:-0} "$PEERS_DIR/go/start.sh" >/dev/null
hs="$hs
$(taskset -c "${CLIENT_CPU:-1}" "$RUN_ROOT/bin/handshakes" -name go -addr "127.0.0.1:$(cat "$PEERS_DIR/go/port")")"
"$PEERS_DIR/go/stop.sh" >/dev/null
cold=$(bash "$HERE/coldstart.sh")
gogc=$(bash "$HERE/gogc.sh")
idle_rss() { # idle_rss CGO: httpsd's RSS in MiB one second after start
  CGO=$1 PIN=${SERVER_CPU:-0} "$HERE/httpsd/start.sh" >/dev/null
  sleep 1
  awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$(cat "$RUN_ROOT/httpsd/pid")/status"
  "$HERE/httpsd/stop.sh" >/dev/null
}
build_rss="idle RSS of httpsd built without cgo: $(idle_rss 0) MiB; with cgo: $(idle_rss 1) MiB"
gobench=$(go test -run XXX -bench . -benchmem -count 3 ./server 2>&1 | grep -E '^(Benchmark|goos|goarch|cpu)')

h3section=$(awk '/^## HTTP\/3 beside HTTP\/2/ {on = 1} on && /^## / && !/^## HTTP\/3 beside/ {on = 0} on' docs/BENCHMARKS.md 2>/dev/null || true)
{
  echo "# Benchmarks"
  echo
  echo "Measured by \`bench/run.sh\` on $(date -u +%Y-%m-%d) (ROUNDS=$ROUNDS); every number here comes from that run."
  echo "Machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(uname -sr), $(go version | cut -d' ' -f3),"
  echo "$(free -g | awk '/^Mem:/ {print $2}') GiB. Servers pinned to CPU ${SERVER_CPU:-0}, load clients to CPU ${CLIENT_CPU:-1}, all on loopback."
  echo "Identical runs differ by up to ±30% on this VM: compare servers within this run, as ratios."
  echo
  echo "![requests and handshakes per second](bench.svg)"
  echo
  echo "## Peers under load (../shared/peers/compare.sh)"
  echo
  echo "httpsd runs with its defaults: access log on, request limits on. It is built as the Dockerfile builds it (\`CGO_ENABLED=0 go build -trimpath -ldflags \"-s -w\"\`); the bare peer as the rig builds it (\`go build\`, cgo on, which maps libc and ld.so too): $build_rss."
  echo
  sed -n '/^| peer | port/,/^$/p' "$summary"
  echo
  sed -n '/^CPU during/,/^$/p' "$summary"
  sed -n '/^| peer | h1 (wrk)/,/^$/p' "$summary"
  echo
  echo "## Idle keep-alive connections (bench/idle.sh)"
  echo
  echo '```'
  echo "$idle"
  echo '```'
  echo
  echo "## Handshake modes (bench/handshakes, 16 connections, 5 s each)"
  echo
  echo '```'
  echo "$hs"
  echo '```'
  echo
  echo "## What GOGC trades (bench/gogc.sh)"
  echo
  echo "httpsd keeps Go's default GOGC=100. A higher value spends memory to run the garbage collector less often:"
  echo
  echo "$gogc"
  echo
  echo "## Cold start to first HTTPS response (bench/coldstart.sh)"
  echo
  echo '```'
  echo "$cold"
  echo '```'
  echo
  echo "## Go benchmarks (go test -bench . -benchmem ./server)"
  echo
  echo "\`BenchmarkHello\`: one request through the whole HTTPS handler (limits, host check, headers, metrics, router, hello) against the bare peer's handler, no network."
  echo "\`BenchmarkHandshake\`: full TLS 1.3 handshakes over an in-memory pipe, httpsd's TLS settings against Go's defaults."
  echo
  echo '```'
  echo "$gobench"
  echo '```'
  echo
  # bench/h3.sh writes its own section (HTTP/3 beside HTTP/2): kept as it is.
  [ -n "$h3section" ] && printf '%s\n\n' "$h3section"
  echo "## Commands"
  echo
  echo '```'
  echo "ROUNDS=$ROUNDS bench/run.sh"
  echo "# which runs: ../shared/peers/compare.sh $PEERS ./bench/httpsd; bench/idle.sh; bench/handshakes; bench/coldstart.sh; bench/gogc.sh; go test -bench . -benchmem ./server"
  echo '```'
} > docs/BENCHMARKS.md
echo "wrote docs/BENCHMARKS.md and docs/bench.svg"
