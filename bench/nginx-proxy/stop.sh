#!/usr/bin/env bash
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "${PEERS_DIR:-$HERE/../../../shared/peers}/common.sh"
stop_pid "$RUN_ROOT/nginx-proxy/nginx.pid"
"$HERE/../backend.sh" stop
