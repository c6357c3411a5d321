#!/usr/bin/env bash
# proxy.sh: the reverse-proxy benchmarks of issue #10, written to stdout
# as two compare.sh tables:
#   1. httpsd `proxy`, nginx `proxy_pass` (upstream keep-alive) and Caddy
#      `reverse_proxy`, all in front of the same small Go backend
#      (bench/backend, pinned to the client's CPU), h1 and h2; httpsd
#      twice: with its defaults, whose per-client cap (100 requests, 200
#      streams per address) refuses most of h2load's 500 streams from one
#      address, and with that cap raised (httpsd-proxy-open);
#   2. the seed end to end: Apache + mod_wsgi + Bottle against
#      httpsd -> gunicorn + the same Bottle app.
#   ROUNDS=3 bench/proxy.sh
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
export PEERS_DIR=${PEERS_DIR:-$HERE/../../shared/peers}
export ROUNDS=${ROUNDS:-3} HS_RSA=${HS_RSA:-0} HSLOAD=${HSLOAD-}
cd "$HERE/.."
echo "## Proxies in front of one backend"
"$PEERS_DIR/compare.sh" "$HERE/httpsd-proxy" "$HERE/httpsd-proxy-open" "$HERE/nginx-proxy" "$HERE/caddy-proxy"
echo
echo "## The seed end to end: Apache + mod_wsgi + Bottle, and httpsd + gunicorn + Bottle"
"$PEERS_DIR/compare.sh" seed "$HERE/httpsd-gunicorn"
