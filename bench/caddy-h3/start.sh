#!/usr/bin/env bash
# Caddy with HTTP/3 on the port in caddy-h3/port (TCP and UDP), as a
# compare.sh peer folder: PIN=0 pins it to CPU 0.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "${PEERS_DIR:-$HERE/../../../shared/peers}/common.sh"
CADDY_PORT=$(cat "$HERE/port")
export CADDY_PORT CADDY_RUN=$RUN_ROOT/caddy-h3
mkdir -p "$CADDY_RUN"
export HOME=$CADDY_RUN XDG_DATA_HOME=$CADDY_RUN/data XDG_CONFIG_HOME=$CADDY_RUN/config
"${PIN_PREFIX[@]}" caddy run --adapter caddyfile --config "$HERE/Caddyfile" >"$CADDY_RUN/caddy.log" 2>&1 &
echo $! >"$CADDY_RUN/caddy.pid"
wait_port "$CADDY_PORT"
