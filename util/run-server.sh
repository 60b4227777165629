#!/usr/bin/env bash
# Runs nginx with the module on nginx.conf.example, with a local Redis,
# in the foreground; Ctrl-C stops both.
#
#   PORT=3000 REDIS_PORT=6379 RUN_DIR=build/run util/run-server.sh

set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
port=${PORT:-3000}
redis_port=${REDIS_PORT:-6379}
run_dir=$(mkdir -p "${RUN_DIR:-$top/build/run}" && cd "${RUN_DIR:-$top/build/run}" && pwd)
nginx=${NGINX_BIN:-/usr/sbin/nginx}

mkdir -p "$run_dir"/{logs,temp,modules,html,redis}
ln -sf "$top/build/ngx_ws_relay_module.so" "$run_dir/modules/"
ln -sfn "$top/demo" "$run_dir/html/demo"
ln -sfn "$top/client" "$run_dir/html/client"

. "$top/util/common.sh"

# as root in a tree its workers cannot read (under /root), they run as root
user=$(worker_user "$run_dir/temp" "$top/demo/index.html" \
                   "$top/client/ws-relay-client.js")
[ -n "$user" ] && echo "nginx workers run as root: nobody cannot read $top"

sed -e "s/listen  3000 reuseport;/listen  $port reuseport;/" \
    -e "s/ws_relay_redis  127.0.0.1:6379;/ws_relay_redis  127.0.0.1:$redis_port;/" \
    ${user:+-e "/^worker_processes /a $user"} \
    "$top/nginx.conf.example" > "$run_dir/nginx.conf"

redis_pid=
stop() {
    trap - EXIT INT TERM
    [ -f "$run_dir/logs/nginx.pid" ] && "$nginx" -p "$run_dir/" -c nginx.conf -s quit 2>/dev/null || true
    [ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null || true
}
trap stop EXIT INT TERM

redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
             --dir "$run_dir/redis" --logfile '' &
redis_pid=$!

"$nginx" -p "$run_dir/" -c nginx.conf -t -q

echo "ws relay: ws://127.0.0.1:$port/  API: http://127.0.0.1:$port/api/health" \
     " demo: http://127.0.0.1:$port/demo/  (Ctrl-C stops)"

"$nginx" -p "$run_dir/" -c nginx.conf -g "daemon off; error_log stderr notice;" &
wait $!
