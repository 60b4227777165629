#!/usr/bin/env bash
# Tests of the client library (client/ws-relay-client.js): nginx (2
# workers, the example config with its history) with a local Redis, the
# scenarios of scenarios.mjs in Node and in headless Chromium (connect,
# register, chat, notify, ping; a dropped connection; nginx -s reload
# while a peer sends; recovered: false after trimming; queued sends;
# close()), and its TypeScript declarations under tsc.  Prints "N passed,
# N failed"; exits non-zero on failure.
#
#   t/client/run.sh          (as root on Debian 12)
#
# Installs Debian's chromium, redis-server, curl and nodejs/npm, and the npm
# dev dependencies (ws, playwright-core, typescript), when missing; uses
# the module that `make` built (builds it when it is missing), or
# MODULE_SO.  nginx and Redis always stop.
#
# Environment: CLIENT_PORT (13600), CLIENT_REDIS_PORT (16600), NGINX_BIN
# (/usr/sbin/nginx), MODULE_SO (build/ngx_ws_relay_module.so), CHROMIUM
# (/usr/bin/chromium), CLIENT_TIMEOUT (seconds for the tests, 300).
# Logs: t/client/build/.

set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
port=${CLIENT_PORT:-13600}
redis_port=${CLIENT_REDIS_PORT:-16600}
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
        fail "port $p is in use (set CLIENT_PORT / CLIENT_REDIS_PORT)"
    fi
done

# --- nginx config: the example, with test ports and 2 workers ----------------
rm -rf "$prefix" "$out/redis"
mkdir -p "$prefix"/{logs,temp,modules,html} "$out/redis"
ln -sf "$module" "$prefix/modules/ngx_ws_relay_module.so"
ln -sfn "$top/client" "$prefix/html/client"

# as root in a tree its workers cannot read (under /root), they run as root
user=$(worker_user "$prefix/temp" "$top/client/ws-relay-client.js")
[ -n "$user" ] && say "nginx workers run as root: nobody cannot read $top"

sed -e "s/^worker_processes .*/worker_processes  2;${user:+\\n$user}/" \
    -e "s/listen  3000 reuseport;/listen  127.0.0.1:$port reuseport;/" \
    -e "s/ws_relay_redis  127.0.0.1:6379;/ws_relay_redis  127.0.0.1:$redis_port;/" \
    "$top/nginx.conf.example" > "$prefix/nginx.conf"

for want in 'worker_processes  2;' "listen  127.0.0.1:$port reuseport;" \
            "ws_relay_redis  127.0.0.1:$redis_port;" 'location /client/' \
            'ws_relay_history  size=100 ' 'ws_relay_drain  '; do
    grep -qF "$want" "$prefix/nginx.conf" \
        || fail "nginx.conf.example changed: cannot derive '$want'"
done

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

start_redis_on "$redis_port" "$out/redis" || fail "redis does not start"

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
say "nginx $($nginx -v 2>&1 | sed 's/.*: //') on $base, Redis on $redis_port," \
    "node $(node --version)"

# --- the tests ----------------------------------------------------------------
rc=0
CLIENT_BASE_URL=$base CHROMIUM=$chromium \
CLIENT_RELOAD_CMD="$nginx -p $prefix/ -c nginx.conf -s reload" \
    timeout "${CLIENT_TIMEOUT:-300}" node "$here/client.test.mjs" \
    | tee "$out/test.log" || rc=$?
if [ "$rc" -ne 0 ]; then
    say "nginx error.log (tail):"
    tail -20 "$prefix/logs/error.log" | sed 's/^/#   /'
    summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out/test.log" | tail -1 || true)
    if [ -z "$summary" ]; then
        echo "not ok - the test ended early (exit $rc$([ "$rc" -eq 124 ] \
              && echo ", timed out after ${CLIENT_TIMEOUT:-300} s"))"
        summary="$(grep -c '^ok ' "$out/test.log" || true) passed,"
        summary+=" $(( $(grep -c '^not ok ' "$out/test.log" || true) + 1 )) failed"
    fi
    echo "$summary"
fi
exit "$rc"
