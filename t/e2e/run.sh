#!/usr/bin/env bash
# End-to-end test of the demo page: nginx (2 workers, the example config)
# with a local Redis, two headless Chromium pages on different workers that
# register two users and send each other chats and notifications through
# the page, then again after `nginx -s reload`; then the message history:
# a page closed and opened again, a page open across a reload while
# another sends, and copies of a message.  Prints "N passed, N failed";
# exits non-zero on failure.
#
#   t/e2e/run.sh          (as root on Debian 12)
#
# Installs Debian's chromium, redis-server, curl and nodejs/npm, and the npm
# dependencies (playwright-core), when missing; uses the module that
# `make` built (builds it when it is missing), or MODULE_SO.  nginx and
# Redis always stop.
#
# Environment: E2E_PORT (13580), E2E_REDIS_PORT (16580), NGINX_BIN
# (/usr/sbin/nginx), MODULE_SO (build/ngx_ws_relay_module.so), CHROMIUM
# (/usr/bin/chromium), E2E_TIMEOUT (seconds for the browser part, 240),
# E2E_HISTORY (off: the example without ws_relay_history, the history
# cases skipped; the page must work as before).
# Screenshots and logs: t/e2e/build/.

set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
port=${E2E_PORT:-13580}
redis_port=${E2E_REDIS_PORT:-16580}
nginx=${NGINX_BIN:-/usr/sbin/nginx}
chromium=${CHROMIUM:-/usr/bin/chromium}
out=$here/build
prefix=$out/nginx

. "$top/util/common.sh"

fail() { echo "not ok - $*"; echo "0 passed, 1 failed"; exit 1; }

# --- what it needs -----------------------------------------------------------
[ -x "$chromium" ] || install_missing chromium
command -v redis-server >/dev/null || install_missing redis-server
command -v curl >/dev/null || install_missing curl

npm_deps "$here" || fail "npm dependencies do not install (see above)"

module=${MODULE_SO:-$top/build/ngx_ws_relay_module.so}
if [ ! -f "$module" ] && [ -z "${MODULE_SO:-}" ]; then
    make -C "$top" --no-print-directory module >/dev/null
fi
[ -f "$module" ] || fail "no module at $module"
module=$(cd "$(dirname "$module")" && pwd)/$(basename "$module")

for p in "$port" "$redis_port"; do
    if ! port_free "$p"; then
        fail "port $p is in use (set E2E_PORT / E2E_REDIS_PORT)"
    fi
done

# --- nginx config: the example, with test ports and 2 workers ----------------
rm -rf "$prefix" "$out"/*.png "$out/redis"
mkdir -p "$prefix"/{logs,temp,modules,html} "$out/redis"
ln -sf "$module" "$prefix/modules/ngx_ws_relay_module.so"
ln -sfn "$top/demo" "$prefix/html/demo"
ln -sfn "$top/client" "$prefix/html/client"

# as root in a tree its workers cannot read (under /root), they run as root
user=$(worker_user "$prefix/temp" "$top/demo/index.html" \
                   "$top/client/ws-relay-client.js")
[ -n "$user" ] && say "nginx workers run as root: nobody cannot read $top"

sed -e "s/^worker_processes .*/worker_processes  2;${user:+\\n$user}/" \
    -e "s/listen  3000 reuseport;/listen  127.0.0.1:$port reuseport;/" \
    -e "s/ws_relay_redis  127.0.0.1:6379;/ws_relay_redis  127.0.0.1:$redis_port;/" \
    "$top/nginx.conf.example" > "$prefix/nginx.conf"

history=${E2E_HISTORY:-on}
for want in 'worker_processes  2;' "listen  127.0.0.1:$port reuseport;" \
            "ws_relay_redis  127.0.0.1:$redis_port;" 'location /demo/' \
            'location /client/' \
            'ws_relay_history  ' 'ws_relay_drain  '; do
    grep -qF "$want" "$prefix/nginx.conf" \
        || fail "nginx.conf.example changed: cannot derive '$want'"
done
if [ "$history" = off ]; then
    sed -i '/^ *ws_relay_history  /d' "$prefix/nginx.conf"
fi

# --- servers, always stopped ------------------------------------------------
redis_pid= nginx_pid=
stop() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$nginx_pid" ]; then
        kill -TERM "$nginx_pid" 2>/dev/null || true
        wait "$nginx_pid" 2>/dev/null || true
    fi
    if [ -n "$redis_pid" ]; then
        kill -TERM "$redis_pid" 2>/dev/null || true
        wait "$redis_pid" 2>/dev/null || true
    fi
    exit "$rc"
}
trap stop EXIT
trap 'exit 130' INT TERM

redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
             --dir "$out/redis" --logfile "$out/redis.log" &
redis_pid=$!
for _ in $(seq 1 50); do
    redis-cli -p "$redis_port" ping 2>/dev/null | grep -q PONG && break
    sleep 0.1
done
redis-cli -p "$redis_port" ping 2>/dev/null | grep -q PONG || fail "redis does not start"

"$nginx" -p "$prefix/" -c nginx.conf -t -q || fail "nginx -t"
"$nginx" -p "$prefix/" -c nginx.conf -g 'daemon off;' &
nginx_pid=$!

base=http://127.0.0.1:$port
for _ in $(seq 1 50); do
    curl -fsS -o /dev/null --max-time 1 "$base/api/health" 2>/dev/null && break
    kill -0 "$nginx_pid" 2>/dev/null || break
    sleep 0.1
done
curl -fsS -o /dev/null --max-time 1 "$base/api/health" \
    || { tail -20 "$prefix/logs/error.log"; fail "nginx does not answer on $base"; }
say "nginx $($nginx -v 2>&1 | sed 's/.*: //') on $base, Redis on $redis_port"

# --- the browser part -----------------------------------------------------
rc=0
E2E_BASE_URL=$base E2E_OUT_DIR=$out CHROMIUM=$chromium E2E_HISTORY=$history \
E2E_RELOAD_CMD="$nginx -p $prefix/ -c nginx.conf -s reload" \
    timeout "${E2E_TIMEOUT:-240}" node "$here/demo.test.js" \
    | tee "$out/test.log" || rc=$?
if [ "$rc" -ne 0 ]; then
    say "nginx error.log (tail):"
    tail -20 "$prefix/logs/error.log" | sed 's/^/#   /'
    # the summary last, also when the test was cut short
    summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out/test.log" | tail -1 || true)
    if [ -z "$summary" ]; then
        echo "not ok - the test ended early (exit $rc$([ "$rc" -eq 124 ] \
              && echo ", timed out after ${E2E_TIMEOUT:-240} s"))"
        summary="$(grep -c '^ok ' "$out/test.log" || true) passed,"
        summary+=" $(( $(grep -c '^not ok ' "$out/test.log" || true) + 1 )) failed"
    fi
    echo "$summary"
fi
exit "$rc"
