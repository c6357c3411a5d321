#!/usr/bin/env bash
# peer.sh start|stop DIR: runs httpsd as a compare.sh peer from a folder
# holding `port`, `env` (HTTPSD_* settings, one KEY=VALUE a line) and
# optionally `routes.yaml` (appended to the config): files
# source with the rig's $CERT and $KEY on 127.0.0.1:PORT, pinned with
# $PIN_PREFIX, its pid and log under $RUN_ROOT/<folder name>.
set -euo pipefail
cmd=$1 DIR=$(cd "$2" && pwd)
. "${PEERS_DIR:-$DIR/../../../shared/peers}/common.sh"
NAME=$(basename "$DIR") PORT=$(cat "$DIR/port") D=$RUN_ROOT/$(basename "$DIR")
if [ "$cmd" = stop ]; then
  stop_pid "$D/pid"
  exit 0
fi
mkdir -p "$D"
# Built as the Dockerfile builds it: static, without cgo (CGO=1 builds with
# cgo, as a plain `go build` does where a C compiler is installed).
CGO_ENABLED=${CGO:-0} go build -C "$DIR/../.." -trimpath -ldflags "-s -w" -o "$D/httpsd" .
cat >"$D/config.yaml" <<YAML
listen: {https: "127.0.0.1:$PORT", http: "", admin: ""}
data_dir: $D/data
tls:
  source: files
  certificates: [{cert: "$CERT", key: "$KEY"}]
YAML
# A routes.yaml in the folder adds routes (the proxy peers).
[ -s "$DIR/routes.yaml" ] && RUN_ROOT=$RUN_ROOT envsubst '${RUN_ROOT}' <"$DIR/routes.yaml" >>"$D/config.yaml"
set -a
. "$DIR/env"
set +a
"${PIN_PREFIX[@]}" "$D/httpsd" -config "$D/config.yaml" >"$D/log" 2>&1 &
echo $! >"$D/pid"
wait_port "$PORT"
