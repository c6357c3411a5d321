#!/usr/bin/env bash
# docker-test.sh - builds httpsd's Dockerfile and runs the image for real.
#
# Run as root (CI does). Starts a PRIVATE dockerd (own data-root, exec-root
# and socket in a temp dir; no registry is needed or reachable), builds a Go
# build-stage image with `docker import` from this machine's Go toolchain,
# builds the Dockerfile with the classic builder from a vendored copy of the
# repository, then runs the image: HTTPS with the local CA from the volume,
# uid 65532, `httpsd health` and the HEALTHCHECK, restart with the same CA,
# a graceful stop. Tears everything down (trap). Fails loudly, never skips.
#
# Knobs (env): STORAGE_DRIVER (default overlay2, falling back to vfs),
# GO_ROOT (default /usr/local/go), DOCKERD_TIMEOUT (s, default 60),
# KEEP_LOGS=1 (copy dockerd/build logs to /tmp/docker-test-logs.<pid>).
set -Eeuo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
APP_DIR=$(cd "$HERE/.." && pwd)
STORAGE_DRIVER=${STORAGE_DRIVER:-overlay2}
GO_ROOT=${GO_ROOT:-/usr/local/go}
DOCKERD_TIMEOUT=${DOCKERD_TIMEOUT:-60}
GO_IMAGE=httpsd-go-build:local
APP_IMAGE=httpsd:e2e
APP_VERSION=e2e-$$
CTR=httpsd-e2e
VOL=httpsd-e2e-data
UID_EXPECTED=65532

# Pin the Debian client: /usr/local/bin/docker (28.x) may come first in PATH.
# It works too (negotiates API 1.41) but the docker.io client matches the daemon.
DOCKER_BIN=/usr/bin/docker
DOCKERD_BIN=/usr/sbin/dockerd

T_SCRIPT=${EPOCHREALTIME/./}
WORK=""
DOCKERD_PID=""

log() { printf '[docker-test %6.1fs] %s\n' "$(elapsed_s "$T_SCRIPT")" "$*"; }
die() {
	printf '\n[docker-test] FATAL: %s\n\n' "$*" >&2
	exit 1
}
now_us() { echo "${EPOCHREALTIME/./}"; }
# elapsed_s START_US -> seconds with 3 decimals
elapsed_s() { local d=$(($(now_us) - $1)); printf '%d.%03d' $((d / 1000000)) $((d % 1000000 / 1000)); }
declare -A TIMING=()
declare -a TIMING_ORDER=()
record() { TIMING[$1]=$2; TIMING_ORDER+=("$1"); }

trap 'die "command failed (exit $?) at line $LINENO: $BASH_COMMAND"' ERR

[ "$(id -u)" = 0 ] || die "must run as root"

# ---------------------------------------------------------------- cleanup ---
cleanup() {
	local rc=$? t pid i cmd
	trap - ERR
	set +e
	if [ -n "$DOCKERD_PID" ] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
		# Remove containers first so dockerd does not have to stop them on exit.
		"$DOCKER_BIN" rm -f $("$DOCKER_BIN" ps -aq 2>/dev/null) >/dev/null 2>&1
		t=$(now_us)
		kill -TERM "$DOCKERD_PID"
		for ((i = 0; i < 300; i++)); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.1; done
		if kill -0 "$DOCKERD_PID" 2>/dev/null; then
			echo "[docker-test] dockerd did not exit in 30s, SIGKILL" >&2
			kill -KILL "$DOCKERD_PID"
		fi
		wait "$DOCKERD_PID" 2>/dev/null
		echo "[docker-test] dockerd stopped in $(elapsed_s "$t")s"
	fi
	if [ -n "$WORK" ] && [ -d "$WORK" ]; then
		# Stragglers (managed containerd, shims) that still reference our
		# private dirs: kill them by pid, never by name.
		for pid in $(grep -lsF -- "$WORK" /proc/[0-9]*/cmdline | cut -d/ -f3); do
			cmd=$(tr '\0' ' ' 2>/dev/null </proc/"$pid"/cmdline) || continue # gone (e.g. that grep)
			[[ $cmd == *"$WORK"* ]] || continue
			echo "[docker-test] killing leftover pid $pid: $cmd" >&2
			kill -KILL "$pid" 2>/dev/null
		done
		# dockerd leaves exec-root/netns/default (an nsfs bind mount) behind;
		# unmount anything under WORK, deepest first, before rm -rf.
		awk -v w="$WORK" '$2 == w || index($2, w "/") == 1 { print $2 }' /proc/mounts |
			sort -r | while read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done
		if [ "${KEEP_LOGS:-0}" = 1 ]; then
			mkdir -p "/tmp/docker-test-logs.$$" && cp "$WORK"/*.log "/tmp/docker-test-logs.$$/" 2>/dev/null
			echo "[docker-test] logs kept in /tmp/docker-test-logs.$$"
		fi
		rm -rf "$WORK" || echo "[docker-test] WARNING: could not remove $WORK" >&2
		[ -e "$WORK" ] && rc=1
	fi
	if [ "$rc" = 0 ]; then
		echo "[docker-test] PASS (total $(elapsed_s "$T_SCRIPT")s)"
	else
		echo "[docker-test] FAIL (exit $rc)" >&2
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------- 1. install ---
# (ldd exits 1 on a static binary: capture first, pipefail would hide the match)
busybox_is_static() { local o; [ -x /bin/busybox ] && o=$(ldd /bin/busybox 2>&1 || true) && [[ $o == *"not a dynamic executable"* ]]; }
need=()
[ -x "$DOCKER_BIN" ] && [ -x "$DOCKERD_BIN" ] || need+=(docker.io)
busybox_is_static || need+=(busybox-static)
command -v curl >/dev/null || need+=(curl)
[ -s /etc/ssl/certs/ca-certificates.crt ] || need+=(ca-certificates)
command -v ss >/dev/null || need+=(iproute2)
if [ ${#need[@]} -gt 0 ]; then
	t=$(now_us)
	log "installing ${need[*]} via apt-get"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq || die "apt-get update failed"
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null || die "apt-get install ${need[*]} failed"
	record "apt-get install (${need[*]})" "$(elapsed_s "$t")"
fi
[ -x "$DOCKERD_BIN" ] || die "$DOCKERD_BIN missing after install"
busybox_is_static || die "/bin/busybox is not static (install busybox-static)"
[ -x "$GO_ROOT/bin/go" ] || die "no Go toolchain at $GO_ROOT"
GO="$GO_ROOT/bin/go"
[ -f "$APP_DIR/Dockerfile" ] && [ -f "$APP_DIR/go.mod" ] || die "APP_DIR=$APP_DIR needs Dockerfile and go.mod"

# Short path on purpose: containerd's socket lives under exec-root and unix
# socket paths are limited to 108 bytes.
WORK=$(mktemp -d /tmp/dkt.XXXXXX)
chmod 711 "$WORK"
SOCK="$WORK/docker.sock"
export DOCKER_HOST="unix://$SOCK"
export DOCKER_CONFIG="$WORK/cli"     # keep ~/.docker untouched
export DOCKER_BUILDKIT=0             # no BuildKit/buildx here: classic builder
log "work dir $WORK"

# ------------------------------------------------------------ 2. dockerd ---
# start_dockerd DRIVER: starts dockerd and waits for it; returns 1 (with the
# log's tail printed) if it exits or does not answer.
start_dockerd() {
	local driver=$1 i
	rm -rf "$WORK/data" "$WORK/exec"
	mkdir -p "$WORK/data" "$WORK/exec"
	"$DOCKERD_BIN" \
		--storage-driver="$driver" \
		--iptables=false --ip6tables=false --bridge=none \
		--data-root "$WORK/data" --exec-root "$WORK/exec" \
		--pidfile "$WORK/dockerd.pid" -H "$DOCKER_HOST" \
		--containerd-namespace "httpsd-e2e-$$" --containerd-plugins-namespace "httpsd-e2e-$$-plugins" \
		>"$WORK/dockerd.log" 2>&1 &
	DOCKERD_PID=$!
	for ((i = 0; i < DOCKERD_TIMEOUT * 5; i++)); do
		if ! kill -0 "$DOCKERD_PID" 2>/dev/null; then
			DOCKERD_PID=""
			echo "----- dockerd.log (tail, storage driver $driver) -----" >&2
			grep -v 'module=grpc' "$WORK/dockerd.log" | tail -n 25 >&2
			return 1
		fi
		if "$DOCKER_BIN" info >/dev/null 2>&1; then return 0; fi
		sleep 0.2
	done
	echo "----- dockerd.log (tail, storage driver $driver) -----" >&2
	grep -v 'module=grpc' "$WORK/dockerd.log" | tail -n 25 >&2
	kill -TERM "$DOCKERD_PID" 2>/dev/null; wait "$DOCKERD_PID" 2>/dev/null; DOCKERD_PID=""
	return 1
}
t=$(now_us)
if ! start_dockerd "$STORAGE_DRIVER"; then
	[ "$STORAGE_DRIVER" != vfs ] || die "dockerd could not start (see log above)"
	log "dockerd failed with $STORAGE_DRIVER; trying vfs"
	STORAGE_DRIVER=vfs
	start_dockerd vfs || die "dockerd could not start with $STORAGE_DRIVER or vfs (see log above)"
fi
record "dockerd start -> docker info ok ($STORAGE_DRIVER)" "$(elapsed_s "$t")"
log "dockerd up: $("$DOCKER_BIN" version -f 'server {{.Server.Version}}, API {{.Server.APIVersion}}')"

# ------------------------------------------- 3. registry-free Go image ---
t=$(now_us)
ROOTFS="$WORK/rootfs"
mkdir -p "$ROOTFS"/{bin,etc,tmp,root,go,src}
chmod 1777 "$ROOTFS/tmp"
chmod 700 "$ROOTFS/root"
cp /bin/busybox "$ROOTFS/bin/busybox"
# The CA bundle the official golang image has (Debian's ca-certificates).
mkdir -p "$ROOTFS/etc/ssl/certs"
cp /etc/ssl/certs/ca-certificates.crt "$ROOTFS/etc/ssl/certs/"
for a in $(/bin/busybox --list); do
	[ "$a" = busybox ] || ln -s busybox "$ROOTFS/bin/$a"
done
cat >"$ROOTFS/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nonroot:x:65532:65532:nonroot:/home/nonroot:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$ROOTFS/etc/group" <<'EOF'
root:x:0:
nonroot:x:65532:
nogroup:x:65534:
EOF
GOREL=${GO_ROOT#/}
# Excluded: Go's own test suite (test/), API lists (api/), doc/, misc/, and
# std testdata dirs / *_test.go files. `go build` never reads any of them.
# Kept (safe default): all of pkg/tool and src/cmd (tools that are not in
# pkg/tool are built from src/cmd on demand). Dropping src/cmd too saves ~40 MB
# and plain `go build`/`go vet` still work, but it is not needed here.
# env (not Dockerfile ENV) keeps the Dockerfile identical for golang:1.26:
# the official image also has GOPATH=/go, GOTOOLCHAIN=local, /go/bin in PATH.
tar -c --numeric-owner --owner=0 --group=0 -C "$ROOTFS" . -C / \
	--anchored --exclude="$GOREL/test" --exclude="$GOREL/api" \
	--exclude="$GOREL/doc" --exclude="$GOREL/misc" \
	--no-anchored --exclude=testdata --exclude='*_test.go' \
	--transform="s,^$GOREL,usr/local/go," \
	"$GOREL" |
	"$DOCKER_BIN" import \
		-c 'ENV PATH=/usr/local/go/bin:/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		-c 'ENV GOPATH=/go' -c 'ENV HOME=/root' \
		-c 'ENV GOTOOLCHAIN=local' -c 'ENV GOPROXY=off' \
		-c 'WORKDIR /go' -c 'CMD ["/bin/sh"]' \
		-m "Go $("$GO" env GOVERSION) from $GO_ROOT + busybox-static, for offline builds" \
		- "$GO_IMAGE" >/dev/null
record "go build-stage image (docker import)" "$(elapsed_s "$t")"
GO_IMAGE_SIZE=$("$DOCKER_BIN" image inspect -f '{{.Size}}' "$GO_IMAGE")
"$DOCKER_BIN" run --rm "$GO_IMAGE" go version | grep -q "$("$GO" env GOVERSION)" ||
	die "imported Go image does not run 'go version'"
log "$GO_IMAGE: $((GO_IMAGE_SIZE / 1000000)) MB"

# ------------------------------------------------- 4. vendored context ---
# The repository's tracked files (a clean checkout, as CI has), plus vendor/
# so that the build needs no network.
t=$(now_us)
CTX="$WORK/ctx"
mkdir -p "$CTX"
(cd "$APP_DIR" && git ls-files -z | xargs -0 cp --parents -t "$CTX") || die "copying the repository failed"
(cd "$CTX" && GOFLAGS= GOTOOLCHAIN=local "$GO" mod vendor) || die "go mod vendor failed (module proxy or module cache needed)"
[ -f "$CTX/vendor/modules.txt" ] || die "vendor/modules.txt missing"
record "go mod vendor (copy of the repository)" "$(elapsed_s "$t")"

t=$(now_us)
"$DOCKER_BIN" build --force-rm \
	--build-arg GO_IMAGE="$GO_IMAGE" --build-arg VERSION="$APP_VERSION" \
	-t "$APP_IMAGE" "$CTX" 2>&1 |
	while IFS= read -r line; do printf '%7.2f %s\n' "$(elapsed_s "$t")" "$line"; done >"$WORK/build.log" ||
	{ tail -n 40 "$WORK/build.log" >&2; die "docker build failed"; }
grep -q "Successfully tagged $APP_IMAGE" "$WORK/build.log" || { tail -n 40 "$WORK/build.log" >&2; die "docker build failed"; }
record "docker build (classic builder, no cache)" "$(elapsed_s "$t")"
APP_IMAGE_SIZE=$("$DOCKER_BIN" image inspect -f '{{.Size}}' "$APP_IMAGE")
log "$APP_IMAGE: $APP_IMAGE_SIZE bytes"
[ "$APP_IMAGE_SIZE" -lt 15000000 ] || die "image is $APP_IMAGE_SIZE bytes, over the 15 MB target"
[ "$("$DOCKER_BIN" image inspect -f '{{.Config.User}}' "$APP_IMAGE")" = "$UID_EXPECTED:$UID_EXPECTED" ] ||
	die "image USER is not $UID_EXPECTED:$UID_EXPECTED"
"$DOCKER_BIN" image inspect -f '{{json .Config.Healthcheck.Test}}' "$APP_IMAGE" | grep -q '"/httpsd","health"' ||
	die "image has no HEALTHCHECK CMD /httpsd health"
"$DOCKER_BIN" image inspect -f '{{json .Config.ExposedPorts}}' "$APP_IMAGE" | grep -q '"443/udp"' ||
	die "image does not EXPOSE 443/udp (HTTP/3)"
# The CA bundle for ACME servers, where Go looks for it.
BUNDLE_CTR=$("$DOCKER_BIN" create "$APP_IMAGE")
"$DOCKER_BIN" export "$BUNDLE_CTR" | tar -xO etc/ssl/certs/ca-certificates.crt | cmp -s - /etc/ssl/certs/ca-certificates.crt ||
	die "image lacks /etc/ssl/certs/ca-certificates.crt from the build stage"
"$DOCKER_BIN" rm "$BUNDLE_CTR" >/dev/null
"$DOCKER_BIN" run --rm "$APP_IMAGE" version | grep -q "httpsd $APP_VERSION" || die "httpsd version does not print $APP_VERSION"

# ------------------------------------------------------------ 5. run it ---
# --network host: there is no bridge (dockerd --bridge=none), so ports are
# moved to free loopback ports by env instead of -p.
free_port() {
	local p
	for p in $(shuf -i 20000-29999 -n 50); do
		if [ -z "$(ss -Htln "sport = :$p")" ]; then echo "$p"; return 0; fi
	done
	return 1
}
HTTPS_PORT=$(free_port) || die "no free loopback port"
HTTP_PORT=$(free_port) || die "no free loopback port"
ADMIN_PORT=$(free_port) || die "no free loopback port"
[ "$HTTPS_PORT" != "$HTTP_PORT" ] || HTTP_PORT=$(free_port)
[ "$ADMIN_PORT" != "$HTTPS_PORT" ] && [ "$ADMIN_PORT" != "$HTTP_PORT" ] || ADMIN_PORT=$(free_port)
URL="https://localhost:$HTTPS_PORT/hello/world"
"$DOCKER_BIN" volume create "$VOL" >/dev/null
MP=$("$DOCKER_BIN" volume inspect -f '{{.Mountpoint}}' "$VOL")

# wait_https CONTAINER TIMEOUT_S: poll with the volume's CA until 200.
wait_https() {
	local c=$1 deadline=$(($(now_us) + $2 * 1000000))
	while [ "$(now_us)" -lt "$deadline" ]; do
		if [ -s "$MP/ca.crt" ] && BODY=$(curl -fsS --max-time 2 --cacert "$MP/ca.crt" \
			--resolve "localhost:$HTTPS_PORT:127.0.0.1" "$URL" 2>/dev/null); then
			return 0
		fi
		if [ "$("$DOCKER_BIN" inspect -f '{{.State.Running}}' "$c" 2>/dev/null)" != true ]; then
			"$DOCKER_BIN" logs "$c" >&2 || true
			die "container $c is not running"
		fi
		sleep 0.02
	done
	"$DOCKER_BIN" logs "$c" >&2 || true
	die "no HTTPS 200 from $URL within $2s"
}
run_ctr() {
	"$DOCKER_BIN" run -d --name "$CTR" --network host \
		-e HTTPSD_LISTEN_HTTPS="127.0.0.1:$HTTPS_PORT" -e HTTPSD_LISTEN_HTTP="127.0.0.1:$HTTP_PORT" \
		-e HTTPSD_LISTEN_ADMIN="127.0.0.1:$ADMIN_PORT" \
		-v "$VOL:/data" --read-only --cap-drop ALL --security-opt no-new-privileges \
		--health-interval 1s \
		"$APP_IMAGE" >/dev/null
}

t=$(now_us)
T_RUN=$t
run_ctr
wait_https "$CTR" 30
record "cold start: docker run -> first HTTPS 200" "$(elapsed_s "$t")"
[ "$BODY" = "<b>Hello world</b>!" ] || die "unexpected body: $BODY"
log "GET $URL with --cacert <volume>/ca.crt -> $BODY"
[ "$(stat -c '%u %a' "$MP/ca.key")" = "$UID_EXPECTED 600" ] || die "ca.key in the volume: $(stat -c '%u %a' "$MP/ca.key")"
CA_SUM=$(sha256sum <"$MP/ca.crt")

REDIRECT=$(curl -sS -o /dev/null -w '%{http_code} %{redirect_url}' -H 'Host: localhost' "http://127.0.0.1:$HTTP_PORT/hello/x")
[ "$REDIRECT" = "308 https://localhost:$HTTPS_PORT/hello/x" ] || die "plain HTTP answered: $REDIRECT"

PID=$("$DOCKER_BIN" inspect -f '{{.State.Pid}}' "$CTR")
UIDS=$(awk '/^Uid:/ {print $2, $3, $4, $5}' "/proc/$PID/status")
[ "$UIDS" = "$UID_EXPECTED $UID_EXPECTED $UID_EXPECTED $UID_EXPECTED" ] || die "container pid $PID runs as Uid: $UIDS"
log "main pid $PID runs as uid $UID_EXPECTED"

EXEC_OUT=$("$DOCKER_BIN" exec "$CTR" /httpsd health) || die "docker exec $CTR /httpsd health failed: $EXEC_OUT"
log "docker exec /httpsd health -> $EXEC_OUT"
for ((i = 0; i < 150; i++)); do
	H=$("$DOCKER_BIN" inspect -f '{{.State.Health.Status}}' "$CTR")
	[ "$H" = healthy ] && break
	sleep 0.2
done
[ "$H" = healthy ] || die "health status '$H': $("$DOCKER_BIN" inspect -f '{{json .State.Health}}' "$CTR")"
record "docker run -> HEALTHCHECK healthy (1s interval)" "$(elapsed_s "$T_RUN")"

t=$(now_us)
"$DOCKER_BIN" restart -t 10 "$CTR" >/dev/null
wait_https "$CTR" 30
record "docker restart -> first HTTPS 200" "$(elapsed_s "$t")"
[ "$(sha256sum <"$MP/ca.crt")" = "$CA_SUM" ] || die "the local CA changed across a restart"
"$DOCKER_BIN" rm -f "$CTR" >/dev/null
t=$(now_us)
run_ctr
wait_https "$CTR" 30
record "new container, same volume -> first HTTPS 200" "$(elapsed_s "$t")"
[ "$(sha256sum <"$MP/ca.crt")" = "$CA_SUM" ] || die "the local CA changed in a new container on the same volume"
log "the same local CA served across restart and re-create"

t=$(now_us)
"$DOCKER_BIN" stop -t 10 "$CTR" >/dev/null
record "docker stop (SIGTERM, graceful)" "$(elapsed_s "$t")"
EXIT_CODE=$("$DOCKER_BIN" inspect -f '{{.State.ExitCode}}' "$CTR")
[ "$EXIT_CODE" = 0 ] || { "$DOCKER_BIN" logs "$CTR" >&2; die "docker stop: exit code $EXIT_CODE, want 0"; }
"$DOCKER_BIN" logs "$CTR" 2>&1 | grep -q 'msg=stopped' || die "no clean shutdown in the container's log"
"$DOCKER_BIN" rm "$CTR" >/dev/null
"$DOCKER_BIN" volume rm "$VOL" >/dev/null

# ------------------------------------------------------------ 6. report ---
echo
echo "================ timings ($STORAGE_DRIVER) ================"
for k in "${TIMING_ORDER[@]}"; do printf '  %-48s %8ss\n' "$k" "${TIMING[$k]}"; done
printf '  %-48s %8s bytes (%d MB)\n' "image size $GO_IMAGE" "$GO_IMAGE_SIZE" $((GO_IMAGE_SIZE / 1000000))
printf '  %-48s %8s bytes (%s MB)\n' "image size $APP_IMAGE" "$APP_IMAGE_SIZE" "$(awk -v s="$APP_IMAGE_SIZE" 'BEGIN {printf "%.1f", s / 1e6}')"
echo "============================================================="
