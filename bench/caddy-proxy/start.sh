#!/usr/bin/env bash
# Caddy reverse_proxy, on the port in caddy-proxy/port.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "${PEERS_DIR:-$HERE/../../../shared/peers}/common.sh"
"$HERE/../backend.sh" start
CADDY_PORT=$(cat "$HERE/port")
export CADDY_PORT CADDY_RUN=$RUN_ROOT/caddy-proxy
mkdir -p "$CADDY_RUN"
export HOME=$CADDY_RUN XDG_DATA_HOME=$CADDY_RUN/data XDG_CONFIG_HOME=$CADDY_RUN/config
"${PIN_PREFIX[@]}" caddy run --adapter caddyfile --config "$HERE/Caddyfile" >"$CADDY_RUN/caddy.log" 2>&1 &
echo $! >"$CADDY_RUN/caddy.pid"
wait_port "$CADDY_PORT"
