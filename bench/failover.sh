#!/usr/bin/env bash
# The delivery gap during a Redis Sentinel failover (issue 15).
#
# Each run starts its own Redis master, a replica of it and three
# sentinels (quorum 2, down-after-milliseconds 1000, failover-timeout
# 5000, as t/lib/WsRelay/Sentinel.pm), and nginx with 2 workers and
# `ws_relay_redis sentinel=... master=...`; bench/wsload sends chats at a
# fixed rate between pairs whose two ends are on different workers, and
# logs every chat sent, received and answered (--events). After a few
# seconds of traffic the master is killed (SIGKILL: "kill") or the
# sentinels are told to switch (SENTINEL FAILOVER: "planned"), and the
# script polls SENTINEL get-master-addr-by-name until it names the
# replica. bench/failover-report.py then reads the log: the gap in
# cross-worker delivery, what was reported delivered:false, what was
# lost, doubled or out of order. Each variant runs with history off
# ("off"), with `ws_relay_history size=1000;` ("on") and with
# `ws_relay_history size=1000 resume_unverified=on;` ("unverified": wsload
# claims its user ids with "register", and only then do the connections
# of a worker that lost its subscriber link catch up from the history),
# FAILOVER_RUNS times, in alternating order; then a summary (min / median
# / max). With history, the chats lost though answered delivered or
# queued are looked up in the receivers' history (XRANGE) before the
# servers stop.
#
#   bench/failover.sh
#
# Environment (defaults in brackets):
#   FAILOVER_RUNS      rounds; each runs every variant and history [3]
#   FAILOVER_VARIANTS  "kill planned", or one of them
#   FAILOVER_HISTORY   "off on unverified", or some of them
#   FAILOVER_PORT      first of the 6 ports, all on 127.0.0.1 [2300]:
#                      nginx, master, replica, then the 3 sentinels
#   FAILOVER_PAIRS     chat pairs, each across the two workers [20]
#   FAILOVER_RATE      msgs/s in total over the pairs [1000]
#   FAILOVER_AT        seconds of traffic before the fault [5]
#   FAILOVER_DURATION  seconds of traffic in all [20]
#   FAILOVER_MODULE    the module [build/ngx_ws_relay_module.so]
#   FAILOVER_OUT       where every run's files and the summary go
#                      [bench/build/failover]
#
# Needs: make (the module), redis-server 7 (also run as the sentinels:
# redis-server <conf> --sentinel), redis-cli, curl, /usr/sbin/nginx,
# /usr/bin/python3. Stops everything it started, however it ends.

set -euo pipefail

bench=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$bench/.." && pwd)
. "$top/util/common.sh"

rounds=${FAILOVER_RUNS:-3}
variants=${FAILOVER_VARIANTS:-kill planned}
histories=${FAILOVER_HISTORY:-off on unverified}
base=${FAILOVER_PORT:-2300}
pairs=${FAILOVER_PAIRS:-20}
rate=${FAILOVER_RATE:-1000}
fault_at=${FAILOVER_AT:-5}
duration=${FAILOVER_DURATION:-20}
module_so=$(realpath "${FAILOVER_MODULE:-$top/build/ngx_ws_relay_module.so}")
out=${FAILOVER_OUT:-$bench/build/failover}

nginx=${NGINX_BIN:-/usr/sbin/nginx}
python=/usr/bin/python3
wsload=$bench/wsload
name=mymaster

nginx_port=$base
master_port=$((base + 1))
replica_port=$((base + 2))
sentinel_ports=($((base + 3)) $((base + 4)) $((base + 5)))
sentinels=$(printf '127.0.0.1:%s,' "${sentinel_ports[@]}")
sentinels=${sentinels%,}

log() { printf '[failover %(%H:%M:%S)T] %s\n' -1 "$*"; }
die() { log "error: $*"; exit 1; }
now_ns() { date +%s%N; }

for v in $variants; do
    case $v in kill|planned) ;; *) die "FAILOVER_VARIANTS: kill or planned, not $v" ;; esac
done
for h in $histories; do
    case $h in off|on|unverified) ;;
    *) die "FAILOVER_HISTORY: off, on or unverified, not $h" ;; esac
done

[ -f "$module_so" ] || die "$module_so is missing: run make first"
[ -x "$python" ] || die "$python is missing"
[ -x "$nginx" ] || die "$nginx is missing (Debian: nginx)"
command -v redis-server >/dev/null && command -v redis-cli >/dev/null \
    || die "redis-server and redis-cli are needed (Debian: redis-server)"
command -v curl >/dev/null || die "curl is needed"
make -s -C "$bench" wsload >/dev/null


# ------------------------------------------------------ processes we own

declare -A redis_pids=()    # port -> pid
nginx_master=
wsload_pid=

stop_nginx() {
    local i
    [ -n "$nginx_master" ] || return 0
    kill -QUIT "$nginx_master" 2>/dev/null || true
    for i in $(seq 100); do
        kill -0 "$nginx_master" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$nginx_master" 2>/dev/null; then
        for i in $(ps -o pid= --ppid "$nginx_master" 2>/dev/null); do
            kill -KILL "$i" 2>/dev/null || true
        done
        kill -KILL "$nginx_master" 2>/dev/null || true
    fi
    wait "$nginx_master" 2>/dev/null || true
    nginx_master=
}

stop_redis_set() {
    local port pid i
    for port in "${!redis_pids[@]}"; do
        kill -TERM "${redis_pids[$port]}" 2>/dev/null || true
    done
    for port in "${!redis_pids[@]}"; do
        pid=${redis_pids[$port]}
        for i in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    redis_pids=()
}

stop_all() {
    if [ -n "$wsload_pid" ]; then
        kill -INT "$wsload_pid" 2>/dev/null || true
        wait "$wsload_pid" 2>/dev/null || true
        wsload_pid=
    fi
    stop_nginx
    stop_redis_set
}

trap 'trap - EXIT INT TERM; stop_all' EXIT
trap 'log interrupted; exit 130' INT TERM


# ------------------------------------------------------------- Redis set

rcli() { timeout 2 redis-cli -h 127.0.0.1 -p "$@"; }

# a Redis (no persistence) or, with a .conf as $2, a sentinel
start_redis() {         # $1 port, $2 dir, more redis-server arguments
    local port=$1 dir=$2 i
    shift 2
    port_free "$port" || die "port $port is in use"
    if [ "${1:-}" = --sentinel-conf ]; then
        redis-server "$2" --sentinel &
    else
        redis-server --port "$port" --bind 127.0.0.1 --save '' \
            --appendonly no --dir "$dir" --dbfilename "dump-$port.rdb" \
            --logfile "$dir/redis-$port.log" --daemonize no \
            --protected-mode no "$@" &
    fi
    redis_pids[$port]=$!
    for i in $(seq 50); do
        [ "$(rcli "$port" PING 2>/dev/null)" = PONG ] && return 0
        sleep 0.1
    done
    die "redis on port $port did not answer (see $dir)"
}

write_sentinel_conf() { # $1 port, $2 dir
    cat > "$2/sentinel-$1.conf" <<EOF
port $1
bind 127.0.0.1
protected-mode no
daemonize no
dir $2
logfile $2/sentinel-$1.log
sentinel resolve-hostnames no
sentinel monitor $name 127.0.0.1 $master_port 2
sentinel down-after-milliseconds $name 1000
sentinel failover-timeout $name 5000
sentinel parallel-syncs $name 1
EOF
}

# a field of SENTINEL MASTER / a replica's entry (redis-cli's raw
# output: name and value on alternate lines)
field() { awk -v k="$1" 'NR % 2 == 1 && $0 == k { getline; print; exit }'; }

# every sentinel sees the master, the other two sentinels and the replica
# with its link up; the replica has all of the master's data
sentinels_ready() {
    local s m r
    for s in "${sentinel_ports[@]}"; do
        m=$(rcli "$s" SENTINEL MASTER "$name" 2>/dev/null) || return 1
        [ "$(field flags <<<"$m")" = master ] || return 1
        [ "$(field port <<<"$m")" = "$master_port" ] || return 1
        [ "$(field num-other-sentinels <<<"$m")" = 2 ] || return 1
        r=$(rcli "$s" SENTINEL REPLICAS "$name" 2>/dev/null) || return 1
        [ "$(field port <<<"$r")" = "$replica_port" ] || return 1
        [ "$(field master-link-status <<<"$r")" = ok ] || return 1
    done
    m=$(rcli "$master_port" INFO replication | tr -d '\r')
    r=$(rcli "$replica_port" INFO replication | tr -d '\r')
    grep -q '^master_link_status:up' <<<"$r" || return 1
    [ "$(sed -n 's/^master_repl_offset://p' <<<"$m")" \
      = "$(sed -n 's/^slave_repl_offset://p' <<<"$r")" ]
}

start_redis_set() {     # $1 dir
    local dir=$1 s i
    start_redis "$master_port" "$dir"
    start_redis "$replica_port" "$dir" --replicaof 127.0.0.1 "$master_port"
    for s in "${sentinel_ports[@]}"; do
        write_sentinel_conf "$s" "$dir"
        start_redis "$s" "$dir" --sentinel-conf "$dir/sentinel-$s.conf"
    done
    for i in $(seq 300); do
        sentinels_ready && return 0
        sleep 0.1
    done
    die "the sentinel set is not ready after 30 s (see $dir)"
}

# the port the sentinels name for the master: the first that answers
sentinel_master_port() {
    local s a
    for s in "${sentinel_ports[@]}"; do
        a=$(timeout 1 redis-cli -h 127.0.0.1 -p "$s" SENTINEL \
                get-master-addr-by-name "$name" 2>/dev/null) || continue
        a=$(sed -n 2p <<<"$a")
        [ -n "$a" ] && { echo "$a"; return 0; }
    done
    return 1
}


# ----------------------------------------------------------------- nginx

write_nginx_conf() {    # $1 prefix dir, $2 history: off|on|unverified
    local dir=$1 hist=
    case $2 in
    on)         hist='ws_relay_history  size=1000;' ;;
    unverified) hist='ws_relay_history  size=1000 resume_unverified=on;' ;;
    esac
    mkdir -p "$dir"/{logs,temp}
    cat > "$dir/nginx.conf" <<EOF
load_module  $module_so;
worker_processes  2;
error_log  logs/error.log  info;
pid        logs/nginx.pid;
$(worker_user "$module_so" "$dir")

events {
    worker_connections  1024;
}

http {
    access_log  off;
    client_body_temp_path  temp/client_body;
    proxy_temp_path        temp/proxy;
    fastcgi_temp_path      temp/fastcgi;
    uwsgi_temp_path        temp/uwsgi;
    scgi_temp_path         temp/scgi;

    ws_relay_redis  sentinel=$sentinels master=$name;

    server {
        listen  127.0.0.1:$nginx_port reuseport;

        location / {
            ws_relay;
            $hist
        }

        location = /api/health  { ws_relay_api health; }
        location = /api/metrics { ws_relay_api metrics; }
    }
}
EOF
}

start_nginx() {         # $1 prefix dir, $2 history
    local dir=$1 i
    port_free "$nginx_port" || die "port $nginx_port is in use"
    write_nginx_conf "$dir" "$2"
    "$nginx" -p "$dir/" -c nginx.conf -t -q
    "$nginx" -p "$dir/" -c nginx.conf -g 'daemon off;' &
    nginx_master=$!
    wait_port "$nginx_port" || die "nginx did not start (see $dir/logs)"
    # both workers on the master: health says ok
    for i in $(seq 100); do
        curl -sf "http://127.0.0.1:$nginx_port/api/health" \
            | grep -q '"status":"ok"' && return 0
        sleep 0.1
    done
    die "nginx: /api/health is not ok (see $dir/logs)"
}


# ------------------------------------------------------------------ runs

# one run: fresh servers, traffic, the fault at fault_at s, the polls
run_one() {             # $1 variant, $2 history, $3 round
    local variant=$1 hist=$2 round=$3 dir t_fault t_prom port i rc
    dir=$out/runs/$round-$variant-history-$hist
    rm -rf "$dir"
    mkdir -p "$dir/redis"
    log "round $round: $variant, history $hist"

    start_redis_set "$dir/redis"
    start_nginx "$dir/nginx" "$hist"

    local cmd=("$wsload" chat -u "ws://127.0.0.1:$nginx_port/" -P "$pairs"
               -r "$rate" -t 1 --placement cross --warmup 0
               -d "$duration" --drain 5 --events "$dir/events.txt"
               --json "$dir/wsload.json" --ready-file "$dir/ready")
    echo "${cmd[*]#$top/}" > "$dir/command.txt"
    "${cmd[@]}" > "$dir/wsload.txt" 2>&1 &
    wsload_pid=$!

    for i in $(seq 300); do
        [ -f "$dir/ready" ] && break
        kill -0 "$wsload_pid" 2>/dev/null || break
        sleep 0.1
    done
    [ -f "$dir/ready" ] || die "wsload did not set up its pairs (see $dir/wsload.txt)"

    sleep "$fault_at"

    t_fault=$(now_ns)
    if [ "$variant" = kill ]; then
        # disowned first: bash would report the job as "Killed"
        disown "${redis_pids[$master_port]}"
        kill -KILL "${redis_pids[$master_port]}"
        unset "redis_pids[$master_port]"
    else
        rcli "${sentinel_ports[0]}" SENTINEL FAILOVER "$name" > "$dir/failover-reply.txt"
    fi

    # until a sentinel names another master (30 s at most)
    t_prom=
    for i in $(seq 1000); do
        port=$(sentinel_master_port) || port=
        if [ -n "$port" ] && [ "$port" != "$master_port" ]; then
            t_prom=$(now_ns)
            break
        fi
        sleep 0.02
    done

    rc=0
    wait "$wsload_pid" || rc=$?
    wsload_pid=
    [ "$rc" -le 1 ] || log "wsload exited with $rc (see $dir/wsload.txt)"

    if [ "$hist" != off ]; then
        "$python" "$bench/failover-report.py" check "$dir" \
            $([ "$variant" = planned ] && echo "$master_port") "$replica_port" \
            > "$dir/kept-check.json" || true
    fi
    curl -sf "http://127.0.0.1:$nginx_port/api/metrics" > "$dir/metrics.txt" || true
    curl -sf "http://127.0.0.1:$nginx_port/api/health" > "$dir/health.json" || true
    rcli "$replica_port" ROLE > "$dir/replica-role.txt" 2>&1 || true

    cat > "$dir/run.json" <<EOF
{"variant":"$variant","history":"$hist","round":$round,
 "t_fault_ns":$t_fault,"t_promoted_ns":${t_prom:-null},
 "new_master_port":${port:-null},"old_master_port":$master_port,
 "pairs":$pairs,"rate":$rate,"fault_at":$fault_at,"duration":$duration,
 "loadavg":"$(cut -d' ' -f1-3 /proc/loadavg)"}
EOF

    stop_nginx
    stop_redis_set

    "$python" "$bench/failover-report.py" run "$dir" | sed 's/^/    /'
}

mkdir -p "$out/runs"
rm -rf "$out/runs"; mkdir -p "$out/runs"

module_desc="$(sha256sum "$module_so" | cut -c1-12)"
log "module $module_so (sha256 $module_desc), ports $base-$((base + 5))"

for round in $(seq "$rounds"); do
    # alternate the order from one round to the next
    order=()
    for v in $variants; do
        for h in $histories; do
            order+=("$v:$h")
        done
    done
    if [ $((round % 2)) -eq 0 ]; then
        for ((i = ${#order[@]} - 1; i >= 0; i--)); do
            run_one "${order[$i]%%:*}" "${order[$i]##*:}" "$round"
        done
    else
        for o in "${order[@]}"; do
            run_one "${o%%:*}" "${o##*:}" "$round"
        done
    fi
done

"$python" "$bench/failover-report.py" summary "$out" | tee "$out/summary.md"
log "done: $out/summary.md, $out/summary.json, every run under $out/runs"
