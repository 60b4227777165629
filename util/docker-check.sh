#!/usr/bin/env bash
# Builds the Docker images (nginx + the module's Debian package, and a
# Redis), runs them on a private Docker network with the relay published on
# 127.0.0.1, and checks that /api/health answers, the demo page and the
# client library are served, a WebSocket handshake gets 101 and the welcome
# message, and the module is the package's.  Containers and network are
# always removed; the images stay (compose.yaml uses the same names).
#
# Works without an image registry: when debian:bookworm is not there it is
# made with debootstrap from the host's apt mirror and `docker import`.
# Starts dockerd when it is not running (and stops it again at the end,
# unless KEEP_DOCKERD=1).  Run as root on Debian 12.
#
#   HOST_PORT=13000 util/docker-check.sh
#
# Environment: HOST_PORT (13000), IMAGE (ngx-ws-relay:latest), REDIS_IMAGE
# (ngx-ws-relay-redis:latest), DEBIAN_MIRROR (from
# /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list),
# KEEP_DOCKERD (0), NO_CACHE (0; 1 rebuilds the images from scratch).

set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
host_port=${HOST_PORT:-13000}
image=${IMAGE:-ngx-ws-relay:latest}
redis_image=${REDIS_IMAGE:-ngx-ws-relay-redis:latest}
base_image=debian:bookworm   # what the Dockerfile builds FROM
work=$top/build/docker
name=ws-relay-check-$$
net=$name-net

mkdir -p "$work"

. "$top/util/common.sh"

dockerd_pid= bookworm_rootfs=
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "${docker_ready:-}" ]; then
        docker rm -f "$name-nginx" "$name-redis" >/dev/null 2>&1 || true
        docker network rm "$net" >/dev/null 2>&1 || true
    fi
    [ -n "$bookworm_rootfs" ] && rm -rf "$bookworm_rootfs"
    docker_down
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ss -Htln "sport = :$host_port" 2>/dev/null | grep -q .; then
    echo "port $host_port is in use: set HOST_PORT" >&2
    exit 1
fi

# --- docker ------------------------------------------------------------------
command -v curl >/dev/null || install_missing curl
docker_up "$work/dockerd.log" || exit 1
docker_ready=1

# --- the base image, without a registry -----------------------------------
bookworm_image "$work" || exit 1
say "base image: $base_image $(docker image inspect -f '{{.Id}}' "$base_image" | cut -c1-19)"

# --- images --------------------------------------------------------------
build_opts=()
[ "${NO_CACHE:-0}" = 1 ] && build_opts+=(--no-cache)

build() {   # build LOG ARGS...
    local log=$work/$1
    shift
    if docker build ${build_opts[@]+"${build_opts[@]}"} "$@" "$top" >"$log" 2>&1; then
        return 0
    fi
    tail -30 "$log"
    return 1
}

start=$SECONDS
if build build-redis.log --target redis -t "$redis_image"; then
    ok "image $redis_image builds"
else
    not_ok "image $redis_image builds"; exit 1
fi
if build build-nginx.log -t "$image"; then
    ok "image $image builds ($((SECONDS - start)) s)"
else
    not_ok "image $image builds"; exit 1
fi

# --- containers ------------------------------------------------------------
docker network create "$net" >/dev/null

docker run -d --name "$name-redis" --network "$net" --network-alias redis \
    "$redis_image" >/dev/null

# ws_relay_redis resolves "redis" when nginx starts: Redis first (as the
# compose healthcheck does).
for _ in $(seq 1 30); do
    [ "$(docker exec "$name-redis" redis-cli ping 2>/dev/null)" = PONG ] && break
    sleep 1
done
if [ "$(docker exec "$name-redis" redis-cli ping 2>/dev/null)" = PONG ]; then
    ok "redis container answers PING"
else
    not_ok "redis container answers PING"; docker logs "$name-redis" 2>&1 | tail; exit 1
fi

docker run -d --name "$name-nginx" --network "$net" \
    -p "127.0.0.1:$host_port:3000" "$image" >/dev/null

base=http://127.0.0.1:$host_port
health=
for _ in $(seq 1 30); do
    health=$(curl -fsS --max-time 2 "$base/api/health" 2>/dev/null) && break
    health=
    if [ "$(docker inspect -f '{{.State.Running}}' "$name-nginx")" != true ]; then
        break
    fi
    sleep 1
done

if [ -n "$health" ]; then
    ok "GET /api/health answers the host: $health"
else
    not_ok "GET /api/health answers the host"
    docker logs "$name-nginx" 2>&1 | tail -20
    exit 1
fi

# the workers reach Redis a moment after nginx answers
for _ in $(seq 1 20); do
    grep -q '"status":"ok"' <<<"$health" && break
    sleep 0.5
    health=$(curl -fsS --max-time 2 "$base/api/health" 2>/dev/null) || health=
done

if grep -q '"status":"ok"' <<<"$health"; then
    ok "health status ok (Redis connected)"
else
    not_ok "health status ok (Redis connected)"
fi

# no "curl | grep -q": grep leaving early fails curl under pipefail
demo=$(curl -fsS --max-time 2 "$base/demo/" 2>/dev/null) || demo=
if grep -q '<title>' <<<"$demo"; then
    ok "GET /demo/ serves the demo page"
else
    not_ok "GET /demo/ serves the demo page"
fi

# the client library, which the demo page imports: browsers load an ES
# module only when it comes as JavaScript
client=$(curl -fsS -i --max-time 2 "$base/client/ws-relay-client.js" 2>/dev/null \
         | tr -d '\r') || client=
if grep -qi '^Content-Type: text/javascript' <<<"$client" \
   && grep -q '^export function connect' <<<"$client"; then
    ok "GET /client/ws-relay-client.js serves the client library as JavaScript"
else
    not_ok "GET /client/ws-relay-client.js serves the client library as JavaScript:" \
           "$(grep -i '^Content-Type' <<<"$client" || head -1 <<<"$client")"
fi

# The WebSocket handshake: the connection stays open, so curl stops at its
# --max-time; what it got is what counts.
hs=$(curl -sS -i -N --http1.1 --max-time 2 \
        -H 'Connection: Upgrade' -H 'Upgrade: websocket' \
        -H 'Sec-WebSocket-Version: 13' \
        -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' \
        "$base/" 2>/dev/null | tr -d '\r' | tr '\0' ' ' || true)

check_handshake "" "$hs"

# the module comes from the Debian package, loaded through its link
so=/usr/lib/nginx/modules/ngx_ws_relay_module.so
owner=$(docker exec "$name-nginx" dpkg -S "$so" 2>/dev/null | cut -d: -f1) || owner=
if [ "$owner" = libnginx-mod-http-ws-relay ] \
   && docker exec "$name-nginx" test -L /etc/nginx/modules-enabled/50-mod-http-ws-relay.conf; then
    ok "the module is the package's: $owner $(docker exec "$name-nginx" \
            dpkg-query -W -f='${Version}' "$owner"), enabled in modules-enabled/"
else
    not_ok "the module comes from the package libnginx-mod-http-ws-relay (owner: ${owner:-none})"
fi

if docker exec "$name-nginx" nginx -t -q 2>/dev/null; then
    ok "nginx -t in the container"
else
    not_ok "nginx -t in the container"
fi

# compose.yaml: same images, same wiring; checked when a compose is here.
compose=()
if docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
elif command -v docker-compose >/dev/null; then
    compose=(docker-compose)
fi
if [ ${#compose[@]} -gt 0 ]; then
    if (cd "$top" && "${compose[@]}" -f compose.yaml config -q); then
        ok "compose.yaml is valid (${compose[*]})"
    else
        not_ok "compose.yaml is valid (${compose[*]})"
    fi
else
    say "no docker compose here: compose.yaml not checked"
fi

if [ "$failed" -gt 0 ]; then
    say "nginx container log:"
    docker logs "$name-nginx" 2>&1 | tail -20
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
