#!/usr/bin/env bash
# permessage-deflate interop: Node's ws (npm) and Python's websockets
# (Debian python3-websockets, /usr/bin/python3) against the module. Each
# client negotiates the extension (every parameter, declined offers),
# sends compressed and plain messages of several sizes, fragmented
# compressed ones, repeats (no context takeover either way), and
# receives a compressed fan-out on several connections of one user.
# Prints "N passed, N failed"; exits non-zero on failure.
#
#   t/interop/run.sh          (as root on Debian 12)
#
# Installs Debian's nodejs/npm and python3-websockets when missing, and ws
# from package-lock.json; uses the module that `make` built (builds it when it
# is missing), or MODULE_SO. nginx (one worker, no Redis) runs with its
# own prefix under t/interop/build/ and always stops.
#
# Environment: INTEROP_PORT (13590), NGINX_BIN (/usr/sbin/nginx),
# MODULE_SO (build/ngx_ws_relay_module.so), INTEROP_TIMEOUT (seconds per
# client, 120).

set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
port=${INTEROP_PORT:-13590}
nginx=${NGINX_BIN:-/usr/sbin/nginx}
python=/usr/bin/python3
out=$here/build
prefix=$out/nginx

. "$top/util/common.sh"

fail() { echo "not ok - $*"; echo "0 passed, 1 failed"; exit 1; }

# --- what it needs -----------------------------------------------------------
"$python" -c 'import websockets' 2>/dev/null || install_missing python3-websockets

npm_deps "$here" || fail "npm dependencies do not install (see above)"

module=${MODULE_SO:-$top/build/ngx_ws_relay_module.so}
if [ ! -f "$module" ] && [ -z "${MODULE_SO:-}" ]; then
    make -C "$top" --no-print-directory module >/dev/null
fi
[ -f "$module" ] || fail "no module at $module"
module=$(cd "$(dirname "$module")" && pwd)/$(basename "$module")

if ! port_free "$port"; then
    fail "port $port is in use (set INTEROP_PORT)"
fi

# --- nginx: one worker, no Redis ---------------------------------------------
rm -rf "$prefix"
mkdir -p "$prefix"/{conf,logs,temp}
user=
[ "$(id -u)" -eq 0 ] && user='user root;'

cat > "$prefix/conf/nginx.conf" <<_EOC_
load_module $module;
$user
worker_processes  1;
error_log  $prefix/logs/error.log info;
pid        $prefix/logs/nginx.pid;

events {
    worker_connections  1024;
}

http {
    access_log  $prefix/logs/access.log;
    client_body_temp_path  $prefix/temp/client_body;
    proxy_temp_path        $prefix/temp/proxy;
    fastcgi_temp_path      $prefix/temp/fastcgi;
    uwsgi_temp_path        $prefix/temp/uwsgi;
    scgi_temp_path         $prefix/temp/scgi;

    server {
        listen  127.0.0.1:$port;

        location = /ws {
            ws_relay;
        }

        location = /ws-nodeflate {
            ws_relay;
            ws_relay_deflate off;
        }
    }
}
_EOC_

nginx_pid=
stop() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$nginx_pid" ]; then
        kill -TERM "$nginx_pid" 2>/dev/null || true
        wait "$nginx_pid" 2>/dev/null || true
    fi
    exit "$rc"
}
trap stop EXIT
trap 'exit 130' INT TERM

"$nginx" -p "$prefix/" -c conf/nginx.conf -t -q || fail "nginx -t"
"$nginx" -p "$prefix/" -c conf/nginx.conf -g 'daemon off;' &
nginx_pid=$!

for _ in $(seq 1 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    kill -0 "$nginx_pid" 2>/dev/null || break
    sleep 0.1
done
(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null \
    || { tail -20 "$prefix/logs/error.log"; fail "nginx does not listen on $port"; }
say "nginx $($nginx -v 2>&1 | sed 's/.*: //') on 127.0.0.1:$port," \
    "ws $(node -p 'require("'"$here"'/node_modules/ws/package.json").version')," \
    "websockets $("$python" -c 'import websockets; print(websockets.__version__)')"

# --- the clients -------------------------------------------------------------
passed=0 failed=0

run_client() {
    local name=$1; shift
    local log=$out/$name.log rc=0 summary
    say "$name"
    INTEROP_PORT=$port timeout "${INTEROP_TIMEOUT:-120}" "$@" > "$log" 2>&1 || rc=$?
    grep -v -E '^[0-9]+ passed, [0-9]+ failed$' "$log" || true
    summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -1 || true)
    if [ -z "$summary" ]; then
        echo "not ok - $name ended early (exit $rc$([ "$rc" -eq 124 ] \
              && echo ", timed out"))"
        passed=$((passed + $(grep -c '^ok ' "$log" || true)))
        failed=$((failed + $(grep -c '^not ok ' "$log" || true) + 1))
        return
    fi
    passed=$((passed + ${summary%% passed*}))
    summary=${summary#*passed, }
    failed=$((failed + ${summary%% failed}))
}

run_client node node "$here/node_client.js"
run_client python "$python" "$here/python_client.py"

# --- the server's log ----------------------------------------------------------
if grep -E '\[(alert|crit|error|emerg)\]' "$prefix/logs/error.log" > "$out/errors.log"; then
    echo "not ok - error.log has errors:"
    sed 's/^/#   /' "$out/errors.log" | head -20
    failed=$((failed + 1))
else
    echo "ok - error.log has no [error], [crit] or [alert] lines"
    passed=$((passed + 1))
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
