#!/usr/bin/env bash
# httpsd -> gunicorn -> the seed's Bottle app (../shared/peers/seed/index.py),
# gunicorn with the seed's mod_wsgi daemon settings (2 processes x 15
# threads, 10000 requests each), both pinned as the seed is.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "${PEERS_DIR:-$HERE/../../../shared/peers}/common.sh"
D=$RUN_ROOT/httpsd-gunicorn
mkdir -p "$D/app"
cp "$PEERS_DIR/seed/index.py" "$D/app/"
rm -f "$D/app.sock"
"${PIN_PREFIX[@]}" gunicorn --chdir "$D/app" --bind "unix:$D/app.sock" --worker-class gthread \
  --workers 2 --threads 15 --max-requests 10000 --log-level warning index:application >"$D/gunicorn.log" 2>&1 &
echo $! >"$D/gunicorn.pid"
for _ in $(seq 1 100); do [ -S "$D/app.sock" ] && break; sleep 0.1; done
exec "$HERE/../peer.sh" start "$HERE"
