#!/usr/bin/env bash
# gogc.sh: what GOGC trades in httpsd (defaults, access log on): HTTP/1.1
# and HTTP/2 requests/s and RSS after the load, for each GOGC value, in
# interleaved rounds on loopback; prints a Markdown table of medians.
#
#   bench/gogc.sh                         # GOGC 100 200 400, 3 rounds of 5 s
#   VALUES="100 800" ROUNDS=1 bench/gogc.sh
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
export PEERS_DIR=${PEERS_DIR:-$HERE/../../shared/peers}
. "$PEERS_DIR/common.sh"
VALUES=${VALUES:-100 200 400}
ROUNDS=${ROUNDS:-3}
D=${DURATION:-5}
PORT=$(cat "$HERE/httpsd/port")
URL=https://127.0.0.1:$PORT/hello/world
trap '"$HERE/httpsd/stop.sh" >/dev/null 2>&1 || true' EXIT
declare -A H1 H2 RSS
for _ in $(seq "$ROUNDS"); do
  for g in $VALUES; do
    GOGC=$g PIN=${SERVER_CPU:-0} "$HERE/httpsd/start.sh" >/dev/null
    pid=$(cat "$RUN_ROOT/httpsd/pid")
    H1[$g]+="$(taskset -c "${CLIENT_CPU:-1}" wrk -t1 -c50 -d"${D}s" "$URL" | awk '/Requests\/sec/ {printf "%d", $2}') "
    H2[$g]+="$(taskset -c "${CLIENT_CPU:-1}" h2load -t1 -c50 -m10 -D"$D" "$URL" 2>&1 | awk '/^finished/ {printf "%d", $4}') "
    RSS[$g]+="$(awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$pid/status") "
    "$HERE/httpsd/stop.sh" >/dev/null
  done
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
echo "| GOGC | h1 req/s | h2 req/s | RSS after the load, MiB |"
echo "|---|---|---|---|"
for g in $VALUES; do
  echo "| $g | $(median <<<"${H1[$g]}") | $(median <<<"${H2[$g]}") | $(median <<<"${RSS[$g]}") |"
done
echo
echo "Medians of $ROUNDS interleaved rounds; wrk -t1 -c50 -d${D}s, then h2load -t1 -c50 -m10 -D$D, on one fresh server per value and round."
