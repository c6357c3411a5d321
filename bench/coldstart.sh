#!/usr/bin/env bash
# coldstart.sh: time from starting httpsd to its first HTTPS response, with
# certificate files and with an existing local CA (bench/coldstart).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
export PEERS_DIR=${PEERS_DIR:-$HERE/../../shared/peers}
. "$PEERS_DIR/common.sh"
D=$RUN_ROOT/coldstart; mkdir -p "$D"
CGO_ENABLED=0 go build -C "$HERE/.." -trimpath -ldflags "-s -w" -o "$D/httpsd" .
go build -C "$HERE/.." -o "$D/coldstart" ./bench/coldstart
cat >"$D/files.yaml" <<YAML
listen: {https: "127.0.0.1:8459", http: "", admin: ""}
data_dir: $D/data
tls: {source: files, certificates: [{cert: "$CERT", key: "$KEY"}]}
YAML
cat >"$D/local.yaml" <<YAML
listen: {https: "127.0.0.1:8459", http: "", admin: ""}
data_dir: $D/data
YAML
"$D/httpsd" -config "$D/local.yaml" 2>/dev/null & pid=$!; sleep 0.5; kill "$pid"; wait "$pid" || true # make the CA
"$D/coldstart" -name "files" -- "$D/httpsd" -config "$D/files.yaml"
"$D/coldstart" -name "local CA (existing)" -- "$D/httpsd" -config "$D/local.yaml"
