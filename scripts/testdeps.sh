#!/usr/bin/env bash
# testdeps.sh PACKAGE...: installs the Debian packages the tests need
# (gunicorn, redis-server, haproxy, chromium, ...) when their commands are
# missing, so that `go test ./...` works on a fresh Debian machine as well
# as under .ci/run, which installs them all up front. Test packages run in
# parallel: one install at a time, under a lock. Needs root and apt-get;
# otherwise it says what to install and fails.
set -euo pipefail
[ $# -gt 0 ] || exit 0
missing=()
for pkg in "$@"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "testdeps: missing Debian packages: ${missing[*]}; install them (apt-get install ${missing[*]}) or run .ci/run as root" >&2
  exit 1
fi
exec 9>/tmp/httpsd-testdeps.lock
flock 9
missing=()
for pkg in "$@"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "testdeps: installing ${missing[*]}" >&2
if [ ! -f /tmp/httpsd-testdeps.updated ]; then
  apt-get update -qq >&2 && touch /tmp/httpsd-testdeps.updated
fi
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
