#!/usr/bin/env bash
# The Quick start on a fresh Debian 12: the README's two commands, each in
# its own new debian:bookworm container, as root, on a clean copy of the
# committed tree (`git archive`, so nothing from build/ or node_modules/):
#
#   1. `make test`: every suite passes (the summaries are printed);
#   2. `make run`: nginx answers GET /api/health with "status":"ok" (Redis
#      connected), serves the demo page and the client library, and
#      answers a WebSocket handshake with 101, the right
#      Sec-WebSocket-Accept and the welcome message; then Ctrl-C (SIGINT
#      to its process group) stops it, and no make, nginx or redis-server
#      is left running.
#
# The only thing installed by hand in the containers is `make`. They
# reach the package registries as a new machine would; when those are
# behind a TLS proxy, HOST_CA (the host's CA bundle by default) is given
# to npm and Node (NODE_EXTRA_CA_CERTS, npm_config_cafile). Inside a
# container everything uses its default ports (its own network namespace).
# Containers are always removed; dockerd is started when it is not
# running (and stopped at the end, unless KEEP_DOCKERD=1); debian:bookworm
# is made with debootstrap when it is missing (as util/docker-check.sh).
# Prints "N passed, N failed"; exits non-zero on failure. Run as root on
# Debian 12.
#
#   util/fresh-debian-check.sh          # or: make fresh-check
#
# Environment: REF (the commit to check, HEAD), HOST_CA
# (/etc/ssl/certs/ca-certificates.crt; empty: none), RUN_TIMEOUT (seconds
# for `make run` to answer, 900), TEST_TIMEOUT (seconds for `make test`,
# 3600), KEEP_DOCKERD (0). Logs: build/fresh-check/.

set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
ref=${REF:-HEAD}
host_ca=${HOST_CA-/etc/ssl/certs/ca-certificates.crt}
work=$top/build/fresh-check
image=debian:bookworm
name=ws-relay-fresh-$$
src=/root/ngx_ws_relay_module

. "$top/util/common.sh"

mkdir -p "$work"
rm -f "$work"/*.log "$work/src.tar"

containers=() dockerd_pid= bookworm_rootfs=
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ ${#containers[@]} -gt 0 ]; then
        docker rm -f "${containers[@]}" >/dev/null 2>&1 || true
    fi
    [ -n "$bookworm_rootfs" ] && rm -rf "$bookworm_rootfs"
    docker_down
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the tree: what is committed -------------------------------------------
commit=$(git -C "$top" rev-parse --verify "$ref^{commit}")
if [ "$ref" = HEAD ] && [ -n "$(git -C "$top" status --porcelain --untracked-files=no)" ]; then
    say "the work tree has uncommitted changes: they are not checked"
fi
git -C "$top" archive --format=tar "$commit" > "$work/src.tar"
say "checking $(git -C "$top" log -1 --format='%h %s' "$commit")"

# --- docker and the base image ----------------------------------------------
docker_up "$work/dockerd.log" || exit 1
bookworm_image "$work" || exit 1
say "base image: $image $(docker image inspect -f '{{.Id}}' "$image" | cut -c1-19)"

run_opts=(--shm-size=1g)
if [ -n "$host_ca" ]; then
    [ -r "$host_ca" ] || { echo "HOST_CA $host_ca is not readable" >&2; exit 1; }
    run_opts+=(-v "$host_ca:/etc/fresh-check/ca.crt:ro"
               -e NODE_EXTRA_CA_CERTS=/etc/fresh-check/ca.crt
               -e npm_config_cafile=/etc/fresh-check/ca.crt)
fi

# new_container NAME: a new debian:bookworm container, idle, with the tree
# in $src and `make` installed
new_container() {
    local c=$1
    containers+=("$c")
    docker run -d --name "$c" "${run_opts[@]}" "$image" sleep infinity >/dev/null
    docker exec -i "$c" bash -c "mkdir -p $src && tar -x -C $src" < "$work/src.tar"
    docker exec "$c" bash -c 'apt-get update -q \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y -q make' \
        > "$work/$c-make.log" 2>&1 \
        || { tail -20 "$work/$c-make.log"; return 1; }
}

# in_tree CONTAINER COMMAND...: runs a shell command in the tree
in_tree() {
    local c=$1
    shift
    docker exec "$c" bash -c "cd $src && $*"
}

# --- 1. make test -------------------------------------------------------------
c=$name-test
if new_container "$c"; then
    ok "a new container with the tree and make ($c)"
else
    not_ok "a new container with the tree and make"; exit 1
fi

say "make test (log: $work/make-test.log)"
start=$SECONDS rc=0
timeout "${TEST_TIMEOUT:-3600}" docker exec "$c" bash -c "cd $src && make test" \
    > "$work/make-test.log" 2>&1 || rc=$?

# the summaries of the suites, in their order
grep -E '^([0-9]+ passed, [0-9]+ failed|Files=[0-9]+, Tests=[0-9]+|Result: [A-Z]+)' \
    "$work/make-test.log" | sed 's/, [0-9]* wallclock.*//; s/^/#   /' || true
if [ "$rc" -eq 0 ]; then
    ok "make test passes ($((SECONDS - start)) s)"
else
    not_ok "make test passes (exit $rc after $((SECONDS - start)) s)"
    grep -E '^not ok|^t/.*(Failed|Dubious)|Error|error:' "$work/make-test.log" \
        | head -20 | sed 's/^/#   /' || true
fi
say "in it: node $(in_tree "$c" 'node --version' 2>/dev/null || echo none)," \
    "npm $(in_tree "$c" 'npm --version' 2>/dev/null || echo none)," \
    "$(in_tree "$c" '/usr/bin/chromium --version' 2>/dev/null | head -1 || echo 'no chromium')," \
    "playwright-core $(in_tree "$c" 'node -p "require(\"./t/e2e/node_modules/playwright-core/package.json\").version"' 2>/dev/null || echo none)"
docker rm -f "$c" >/dev/null

# --- 2. make run ----------------------------------------------------------------
c=$name-run
if new_container "$c"; then
    ok "a new container with the tree and make ($c)"
else
    not_ok "a new container with the tree and make"; exit 1
fi

# In a process group of its own, as a terminal's foreground job (Ctrl-C
# is SIGINT to that group), and never started with "&": a shell without
# job control starts those with SIGINT ignored.
say "make run (log: $work/make-run.log)"
docker exec -d "$c" setsid bash -c "echo \$\$ > /root/make-run.pgid
                                     cd $src && exec make run > /root/make-run.log 2>&1"

start=$SECONDS health=
while [ $((SECONDS - start)) -lt "${RUN_TIMEOUT:-900}" ]; do
    health=$(probe_in "$c" 3000 /api/health)
    grep -q '"status":"ok"' <<<"$health" && break
    # make run ended (failed build, nginx -t): no point waiting
    if ! docker exec "$c" bash -c 'kill -0 $(cat /root/make-run.pgid)' 2>/dev/null \
       && docker exec "$c" test -s /root/make-run.pgid; then
        break
    fi
    sleep 2
done
docker exec "$c" cat /root/make-run.log > "$work/make-run.log" 2>/dev/null || true

if grep -q '"status":"ok"' <<<"$health"; then
    ok "make run: GET /api/health after $((SECONDS - start)) s: $(tail -1 <<<"$health")"
else
    not_ok "make run: GET /api/health answers with \"status\":\"ok\": $(tail -1 <<<"$health")"
    tail -20 "$work/make-run.log" | sed 's/^/#   /'
fi

demo=$(probe_in "$c" 3000 /demo/)
if head -1 <<<"$demo" | grep -q '^HTTP/1.1 200' && grep -q '<title>' <<<"$demo"; then
    ok "make run: GET /demo/ serves the demo page: $(grep -o '<title>[^<]*' <<<"$demo" | head -1)"
else
    not_ok "make run: GET /demo/ serves the demo page: $(head -1 <<<"$demo")"
fi

client=$(probe_in "$c" 3000 /client/ws-relay-client.js)
if head -1 <<<"$client" | grep -q '^HTTP/1.1 200' \
   && grep -qi '^Content-Type: text/javascript' <<<"$client"; then
    ok "make run: GET /client/ws-relay-client.js serves the client library as JavaScript"
else
    not_ok "make run: GET /client/ws-relay-client.js serves the client library as JavaScript:" \
           "$(head -1 <<<"$client"), $(grep -i '^Content-Type' <<<"$client")"
fi

hs=$(probe_in "$c" 3000 handshake)
check_handshake "make run: " "$hs"

# Ctrl-C, and everything it started must be gone (exited processes that
# the container's first process, a plain sleep, does not reap are zombies:
# they are not counted)
docker exec "$c" bash -c 'kill -INT -- -$(cat /root/make-run.pgid)' 2>/dev/null || true
left=
for _ in $(seq 1 30); do
    left=$(docker exec "$c" bash -c \
        'for f in /proc/[0-9]*/stat; do
             read -r pid comm state rest < "$f" 2>/dev/null || continue
             [ "$state" = Z ] && continue
             case $comm in "(make)"|"(nginx)"|"(redis-server)"|"(run-server.sh)")
                 echo "$comm";; esac
         done' 2>/dev/null | sort | uniq -c | xargs || true)
    [ -z "$left" ] && break
    sleep 1
done
docker exec "$c" cat /root/make-run.log > "$work/make-run.log" 2>/dev/null || true
if [ -z "$left" ]; then
    ok "make run: Ctrl-C stops make, nginx and Redis"
else
    not_ok "make run: Ctrl-C stops make, nginx and Redis (still running: $left)"
fi
if docker exec "$c" bash -c 'exec 3<>/dev/tcp/127.0.0.1/3000' 2>/dev/null; then
    not_ok "make run: nothing listens on 3000 after Ctrl-C"
else
    ok "make run: nothing listens on 3000 after Ctrl-C"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
