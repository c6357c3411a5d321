#!/usr/bin/env bash
# Starts httpsd as a compare.sh peer: files source with the rig's $CERT and
# $KEY on 127.0.0.1:$PORT, pinned with $PIN_PREFIX. Extra HTTPSD_* variables
# in the environment (e.g. HTTPSD_LOG_ACCESS=false) pass through.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "${PEERS_DIR:-$HERE/../../../shared/peers}/common.sh"
PORT=$(cat "$HERE/port"); D=$RUN_ROOT/httpsd; mkdir -p "$D"
go build -C "$HERE/../.." -o "$D/httpsd" .
cat >"$D/config.yaml" <<YAML
listen: {https: "127.0.0.1:$PORT", http: ""}
data_dir: $D/data
tls:
  source: files
  certificates: [{cert: "$CERT", key: "$KEY"}]
YAML
"${PIN_PREFIX[@]}" "$D/httpsd" -config "$D/config.yaml" >"$D/log" 2>&1 &
echo $! >"$D/pid"
wait_port "$PORT"
