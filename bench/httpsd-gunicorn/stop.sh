#!/usr/bin/env bash
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "${PEERS_DIR:-$HERE/../../../shared/peers}/common.sh"
"$HERE/../peer.sh" stop "$HERE"
stop_pid "$RUN_ROOT/httpsd-gunicorn/gunicorn.pid"
