#!/usr/bin/env bash
# replicas.sh: the load-balancer benchmarks of issue #11, on loopback:
# three httpsd replicas (files source, the rig's certificate, shared
# ticket keys through a local redis-server) behind HAProxy in TCP mode
# (deploy/haproxy.cfg), the replicas on $SERVER_CPU (0: the machine has two
# cores, so one core for all three), HAProxy and the load clients on
# $CLIENT_CPU (1). It prints a markdown table:
#   - full and resumed handshakes/s through HAProxy, with shared ticket
#     keys and with each replica's own (resumed ones then mostly fail);
#   - requests/s (wrk, 50 connections) through HAProxy and to one replica
#     directly;
#   - the cost of the PROXY protocol: full handshakes/s through HAProxy
#     with send-proxy-v2 and without (replicas not expecting it).
#   ROUNDS=3 DURATION=10 bench/replicas.sh
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
export PEERS_DIR=${PEERS_DIR:-$ROOT/../shared/peers}
. "$PEERS_DIR/common.sh"
ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-10} SERVER_CPU=${SERVER_CPU:-0} CLIENT_CPU=${CLIENT_CPU:-1}
D=$RUN_ROOT/replicas
rm -rf "$D" && mkdir -p "$D"
CGO_ENABLED=0 go build -C "$ROOT" -trimpath -ldflags "-s -w" -o "$D/httpsd" .
go build -C "$ROOT" -o "$D/handshakes" ./bench/handshakes
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

REDIS_PORT=$(port) REDIS_PASS=$(openssl rand -hex 16)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --requirepass "$REDIS_PASS" --save "" --appendonly no \
  --dir "$D" >"$D/redis.log" 2>&1 &
pids+=($!)
SECRET=$(openssl rand -hex 32)

# start_replicas SHARED PROXY: three replicas; SHARED true|false for ticket
# keys, PROXY true|false for listen.proxy_protocol_from.
start_replicas() {
  replicas=()
  for i in 1 2 3; do
    local p; p=$(port)
    local pp="[]"; [ "$2" = true ] && pp="[127.0.0.1]"
    cat >"$D/r$i.yaml" <<YAML
hosts: [localhost]
listen: {https: "127.0.0.1:$p", http: "", admin: "", proxy_protocol_from: $pp}
data_dir: $D/data$i
log: {access: false}
tls:
  source: files
  certificates: [{cert: "$CERT", key: "$KEY"}]
YAML
    env HTTPSD_TLS_ACME_STORAGE="redis://127.0.0.1:$REDIS_PORT/0" HTTPSD_TLS_ACME_STORAGE_PASSWORD="$REDIS_PASS" \
      HTTPSD_TLS_SESSION_TICKETS_SHARED="$1" HTTPSD_CLUSTER_SECRET="$SECRET" \
      taskset -c "$SERVER_CPU" "$D/httpsd" -config "$D/r$i.yaml" >"$D/r$i.log" 2>&1 &
    rpids+=($!)
    replicas+=("127.0.0.1:$p")
  done
  for r in "${replicas[@]}"; do
    for _ in $(seq 1 100); do curl -sk -o /dev/null "https://$r/healthz" && break; sleep 0.1; done
  done
  [ "$1" = true ] && for i in 1 2 3; do
    for _ in $(seq 1 100); do grep -q "session ticket keys applied" "$D/r$i.log" && break; sleep 0.1; done
  done
  return 0
}
stop_replicas() { for p in "${rpids[@]}"; do kill "$p" 2>/dev/null || true; done; wait "${rpids[@]}" 2>/dev/null || true; rpids=(); }

# start_lb PROXY: HAProxy with deploy/haproxy.cfg (without send-proxy-v2
# when PROXY is false).
start_lb() {
  LB="127.0.0.1:$(port)"
  cfg=$ROOT/deploy/haproxy.cfg
  if [ "$1" = false ]; then
    sed 's/send-proxy-v2 check check-send-proxy/check/' "$cfg" >"$D/haproxy-noproxy.cfg"
    cfg=$D/haproxy-noproxy.cfg
  fi
  HTTPSD_LB_BIND=$LB HTTPSD_REPLICA1=${replicas[0]} HTTPSD_REPLICA2=${replicas[1]} HTTPSD_REPLICA3=${replicas[2]} \
    taskset -c "$CLIENT_CPU" haproxy -db -f "$cfg" >"$D/haproxy.log" 2>&1 &
  lbpid=$!
  for _ in $(seq 1 100); do curl -sk -o /dev/null "https://$LB/healthz" && break; sleep 0.1; done
}
stop_lb() { kill "$lbpid" 2>/dev/null || true; wait "$lbpid" 2>/dev/null || true; }

hs() { # hs ADDR MODE: handshakes/s and "resumed of n"
  taskset -c "$CLIENT_CPU" "$D/handshakes" -addr "$1" -c 16 -d "${DURATION}s" -mode "$2" | sed 's/.*: \([0-9]*\) handshakes\/s (\([0-9]*\) resumed of \([0-9]*\).*/\1 \2 \3/'
}
rps() { taskset -c "$CLIENT_CPU" wrk -t1 -c50 -d"${DURATION}s" "https://$1/hello/world" | awk '/Requests\/sec/ {printf "%d", $2}'; }

declare -A R
rpids=()
for round in $(seq 1 "$ROUNDS"); do
  for shared in true false; do
    start_replicas "$shared" true
    start_lb true
    read -r n res tot <<<"$(hs "$LB" "full (X25519)")"; R[full_$shared]+="$n "
    read -r n res tot <<<"$(hs "$LB" "resumed (X25519)")"; R[resumed_$shared]+="$n "; R[ratio_$shared]+="$((100 * res / (tot > 0 ? tot : 1))) "
    if [ "$shared" = true ]; then
      R[rps_lb]+="$(rps "$LB") "
    fi
    stop_lb
    stop_replicas
  done
  start_replicas true false
  start_lb false
  read -r n res tot <<<"$(hs "$LB" "full (X25519)")"; R[full_noproxy]+="$n "
  # Directly: replicas that expect the PROXY protocol close a connection without it.
  R[rps_direct]+="$(rps "${replicas[0]}") "
  stop_lb
  stop_replicas
  echo "round $round done" >&2
done
med() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
cat <<EOF
| through HAProxy to 3 replicas (medians of $ROUNDS rounds, ${DURATION}s each) | with shared ticket keys | with each replica's own |
|---|---|---|
| full handshakes/s (TLS 1.3, X25519) | $(echo "${R[full_true]}" | med) | $(echo "${R[full_false]}" | med) |
| resumed handshakes/s | $(echo "${R[resumed_true]}" | med) | $(echo "${R[resumed_false]}" | med) |
| of which resumed, % | $(echo "${R[ratio_true]}" | med) | $(echo "${R[ratio_false]}" | med) |

| requests/s, wrk -c50 (HTTP/1.1 keep-alive) | req/s |
|---|---|
| through HAProxy to 3 replicas | $(echo "${R[rps_lb]}" | med) |
| to one replica directly | $(echo "${R[rps_direct]}" | med) |

| PROXY protocol | full handshakes/s through HAProxy |
|---|---|
| with send-proxy-v2 (replicas read the header) | $(echo "${R[full_true]}" | med) |
| without | $(echo "${R[full_noproxy]}" | med) |
EOF
