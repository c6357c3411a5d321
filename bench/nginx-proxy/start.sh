#!/usr/bin/env bash
# nginx proxy_pass with upstream keep-alive, on the port in nginx-proxy/port.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "${PEERS_DIR:-$HERE/../../../shared/peers}/common.sh"
"$HERE/../backend.sh" start
NGINX_PORT=$(cat "$HERE/port")
export NGINX_PORT NGINX_RUN=$RUN_ROOT/nginx-proxy
if [ -z "${NGINX_WORKERS:-}" ]; then
  case "${PIN:-}" in ""|*,*|*-*) NGINX_WORKERS=auto ;; *) NGINX_WORKERS=1 ;; esac
fi
export NGINX_WORKERS
mkdir -p "$NGINX_RUN"
envsubst '${NGINX_RUN} ${NGINX_PORT} ${NGINX_WORKERS} ${CERT} ${KEY}' <"$HERE/nginx.conf.in" >"$NGINX_RUN/nginx.conf"
"${PIN_PREFIX[@]}" nginx -p "$NGINX_RUN" -c "$NGINX_RUN/nginx.conf" -e "$NGINX_RUN/error.log"
wait_port "$NGINX_PORT"
