#!/usr/bin/env bash
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "${PEERS_DIR:-$HERE/../../../shared/peers}/common.sh"
stop_pid "$RUN_ROOT/caddy-h3/caddy.pid"
