#!/usr/bin/env bash
# Publishes per second through 1 shard vs 3 shards (issue 15).
#
# Starts three Redis set-ups side by side, each with its own nginx
# (2 workers, nginx.conf.example's directives with test ports, the
# module of this tree):
#
#   plain  one Redis, `ws_relay_redis 127.0.0.1:P;` (PUBLISH, SUBSCRIBE)
#   c1     a Redis Cluster of 1 master owning all 16384 slots
#   c3     a Redis Cluster of 3 masters (no replicas)
#
# (`ws_relay_redis cluster=...;`: SPUBLISH, SSUBSCRIBE on the master of
# each user's slot).  Every nginx has "/" without history and "/h/" with
# `ws_relay_history size=100;`.  Then, round after round (the set-ups take
# turns at going first), cross-worker chat with many distinct users
# (200 pairs) in a closed loop and at a fixed rate, on "/" and on "/h/",
# with before and after each run: INFO cpu and INFO commandstats of
# every Redis node, /proc/PID/stat of the nginx workers and of every
# Redis, /proc/stat; and once the connections are set up, the channels
# each node holds (PUBSUB SHARDCHANNELS / CHANNELS).  cluster-report.py
# turns that into min/median/max over the rounds: messages/s, Redis CPU
# per message on each node, how the messages spread over the nodes,
# nginx CPU per message; it writes the section "Redis Cluster: 1 shard vs
# 3 shards" of bench/RESULTS.md and bench/results-cluster.json.
#
#   make && make -C bench && bench/cluster.sh
#
# Ports (all on 127.0.0.1, from CLUSTER_PORT_BASE, 2400): plain Redis
# base+1; c1 base+11 (cluster bus base+12); c3 base+21..23 (buses
# base+31..33); nginx base+80 (plain), base+81 (c1), base+83 (c3).
#
# Environment:
#   CLUSTER_RUNS       rounds (3)
#   CLUSTER_DURATION   measured seconds per run (10)
#   CLUSTER_PAIRS      chat pairs, each user id unique (200)
#   CLUSTER_WINDOW     closed loop: messages in flight per pair (4)
#   CLUSTER_RATE       the fixed rate, msgs/s in all (5000)
#   CLUSTER_LOADS      "closed rate" (either or both)
#   CLUSTER_HISTORY    ws_relay_history parameters of "/h/" (size=100)
#   CLUSTER_HISTORY_MODES  "off on": runs on "/", on "/h/", or both
#   CLUSTER_SETUPS     "plain c1 c3" (any of them)
#   CLUSTER_PORT_BASE  2400
#   CLUSTER_IDLE       seconds of the idle baseline before the runs (10)
#   CLUSTER_MODULE     the module .so (build/ngx_ws_relay_module.so)
#   CLUSTER_RESULTS    the RESULTS.md whose section is written
#                      (bench/RESULTS.md; set and empty: none)
#   CLUSTER_JSON       every figure (bench/results-cluster.json; set and
#                      empty: only under bench/build/cluster)
#
# Everything it starts is a child of this shell and is stopped when it
# ends, however it ends.  Nothing is installed: it needs redis-server and
# redis-cli (7.0+), nginx, curl and python3.

set -euo pipefail

bench=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$bench/.." && pwd)
. "$top/util/common.sh"

rounds=${CLUSTER_RUNS:-3}
dur=${CLUSTER_DURATION:-10}
pairs=${CLUSTER_PAIRS:-200}
window=${CLUSTER_WINDOW:-4}
rate=${CLUSTER_RATE:-5000}
loads=${CLUSTER_LOADS:-closed rate}
history=${CLUSTER_HISTORY:-size=100}
hmodes=${CLUSTER_HISTORY_MODES:-off on}
setups=${CLUSTER_SETUPS:-plain c1 c3}
base=${CLUSTER_PORT_BASE:-2400}
idle=${CLUSTER_IDLE:-10}
module_so=$(realpath "${CLUSTER_MODULE:-$top/build/ngx_ws_relay_module.so}")
results=${CLUSTER_RESULTS-$bench/RESULTS.md}
json_out=${CLUSTER_JSON-$bench/results-cluster.json}

nginx=${NGINX_BIN:-/usr/sbin/nginx}
python=/usr/bin/python3
wsload=$bench/wsload
work=$bench/build/cluster
runs=$work/runs

log() { printf '[cluster %(%H:%M:%S)T] %s\n' -1 "$*"; }
# the servers' commands as run, paths from the top of the tree, for the report
said() { echo "$*" | sed "s|$top/||g" >> "$work/commands.txt"; }
die() { log "error: $*"; exit 1; }

# ------------------------------------------------------------------ ports

declare -A nodes ngx_port        # set-up -> "port ..." / its nginx's port
nodes[plain]="$((base + 1))"
nodes[c1]="$((base + 11))"
nodes[c3]="$((base + 21)) $((base + 22)) $((base + 23))"
ngx_port[plain]=$((base + 80))
ngx_port[c1]=$((base + 81))
ngx_port[c3]=$((base + 83))
declare -A bus                   # a cluster node's port -> its bus port
bus[$((base + 11))]=$((base + 12))
bus[$((base + 21))]=$((base + 31))
bus[$((base + 22))]=$((base + 32))
bus[$((base + 23))]=$((base + 33))

# ------------------------------------------------------ processes we own

redis_pids=()           # every redis-server we started
declare -A redis_pid    # port -> pid
declare -A master       # set-up -> nginx master pid
sampler_pid=
wsload_pid=

stop_nginx() {          # $1 master pid
    local m=$1 i
    kill -QUIT "$m" 2>/dev/null || return 0
    for i in $(seq 150); do
        kill -0 "$m" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$m" 2>/dev/null; then
        log "nginx $m did not quit in 15 s: killing it and its workers"
        for i in $(ps -o pid= --ppid "$m" 2>/dev/null); do
            kill -KILL "$i" 2>/dev/null || true
        done
        kill -KILL "$m" 2>/dev/null || true
    fi
    wait "$m" 2>/dev/null || true
}

stop_all() {
    local p
    trap - EXIT INT TERM
    if [ -n "$sampler_pid" ]; then
        kill -TERM "$sampler_pid" 2>/dev/null || true
        wait "$sampler_pid" 2>/dev/null || true
        sampler_pid=
    fi
    if [ -n "$wsload_pid" ]; then
        kill -INT "$wsload_pid" 2>/dev/null || true
        wait "$wsload_pid" 2>/dev/null || true
        wsload_pid=
    fi
    for p in "${master[@]}"; do
        stop_nginx "$p"
    done
    master=()
    for p in "${redis_pids[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
    done
    for p in "${redis_pids[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    redis_pids=()
}

trap 'stop_all' EXIT
trap 'log interrupted; exit 130' INT TERM

# ------------------------------------------------------------------ Redis

rcli() { redis-cli -h 127.0.0.1 -p "$@"; }

start_redis_node() {    # $1 port, $2 dir, rest: more redis-server options
    local p=$1 dir=$2
    shift 2
    port_free "$p" || die "port $p is in use"
    mkdir -p "$dir"
    said redis-server --port "$p" --bind 127.0.0.1 --save "''" --appendonly no \
        --dir "$dir" --logfile "$dir/redis.log" --maxclients 10000 "$@"
    redis-server --port "$p" --bind 127.0.0.1 --save '' --appendonly no \
                 --dir "$dir" --logfile "$dir/redis.log" \
                 --maxclients 10000 "$@" &
    redis_pids+=($!)
    redis_pid[$p]=$!
    wait_port "$p" || die "redis did not start on port $p (log: $dir/redis.log)"
}

start_cluster_node() {  # $1 port
    local b
    b=${bus[$1]}
    port_free "$b" || die "port $b (cluster bus) is in use"
    start_redis_node "$1" "$work/redis-$1" --cluster-enabled yes \
        --cluster-config-file nodes.conf --cluster-port "$b"
}

# until every node says cluster_state:ok and knows $2 masters, 10 s
wait_cluster() {        # $1 "ports", $2 masters
    local i p ok
    for i in $(seq 100); do
        ok=1
        for p in $1; do
            rcli "$p" CLUSTER INFO | tr -d '\r' \
                | grep -q '^cluster_state:ok$' || ok=0
            [ "$(rcli "$p" CLUSTER SLOTS | grep -c '^[0-9]*$')" -ge 1 ] || ok=0
        done
        [ "$ok" = 1 ] && [ "$(rcli "${1%% *}" CLUSTER NODES | grep -c master)" -eq "$2" ] \
            && return 0
        sleep 0.1
    done
    return 1
}

start_setup_redis() {   # $1 set-up
    local p
    case $1 in
    plain)
        start_redis_node "${nodes[plain]}" "$work/redis-${nodes[plain]}"
        ;;
    c1)
        p=${nodes[c1]}
        start_cluster_node "$p"
        said redis-cli -p "$p" CLUSTER ADDSLOTSRANGE 0 16383
        rcli "$p" CLUSTER ADDSLOTSRANGE 0 16383 > /dev/null
        wait_cluster "$p" 1 || die "the 1-master cluster on $p is not ok"
        rcli "$p" CLUSTER NODES | tr -d '\r' > "$work/nodes-c1.txt"
        ;;
    c3)
        for p in ${nodes[c3]}; do
            start_cluster_node "$p"
        done
        # shellcheck disable=SC2046
        said redis-cli --cluster create $(printf '127.0.0.1:%s ' ${nodes[c3]}) \
            --cluster-replicas 0 --cluster-yes
        # shellcheck disable=SC2046
        redis-cli --cluster create $(printf '127.0.0.1:%s ' ${nodes[c3]}) \
            --cluster-replicas 0 --cluster-yes > "$work/redis-c3-create.log" 2>&1 \
            || { cat "$work/redis-c3-create.log"; die "redis-cli --cluster create failed"; }
        wait_cluster "${nodes[c3]}" 3 || die "the 3-master cluster is not ok"
        rcli "${nodes[c3]%% *}" CLUSTER NODES | tr -d '\r' > "$work/nodes-c3.txt"
        ;;
    esac
}

redis_directive() {     # $1 set-up: ws_relay_redis's arguments
    if [ "$1" = plain ]; then
        echo "127.0.0.1:${nodes[plain]}"
    else
        echo "cluster=$(printf '127.0.0.1:%s,' ${nodes[$1]} | sed 's/,$//')"
    fi
}

# ------------------------------------------------------------------ nginx

# nginx.conf.example with 2 workers, the test port, this set-up's
# ws_relay_redis, the example's own history off, and "/h/" with
# CLUSTER_HISTORY; every substitution is checked.
write_conf() {          # $1 prefix dir, $2 port, $3 ws_relay_redis arguments
    local dir=$1 p=$2 r=$3 conf=$1/nginx.conf
    local hloc="location /h/ { ws_relay; ws_relay_history  $history; }"
    mkdir -p "$dir"/{logs,temp,modules,html}
    ln -sf "$module_so" "$dir/modules/ngx_ws_relay_module.so"
    sed -e "s/^worker_processes .*/worker_processes  2;/" \
        -e "s/listen  3000 reuseport;/listen  127.0.0.1:$p reuseport;/" \
        -e "s/ws_relay_redis  127.0.0.1:6379;/ws_relay_redis  $r;/" \
        -e "s/^\( *\)ws_relay_history .*;/\1ws_relay_history  off;/" \
        -e "s|^        location / {|        $hloc\n        location / {|" \
        "$top/nginx.conf.example" > "$conf"
    grep -q "^worker_processes  2;" "$conf" \
        && grep -q "listen  127.0.0.1:$p reuseport;" "$conf" \
        && grep -qF "ws_relay_redis  $r;" "$conf" \
        && grep -qF "$hloc" "$conf" \
        || die "nginx.conf.example changed: cannot derive $conf"
}

start_setup_nginx() {   # $1 set-up
    local s=$1 p=${ngx_port[$1]} dir=$work/ngx-$1 i h
    port_free "$p" || die "port $p is in use"
    write_conf "$dir" "$p" "$(redis_directive "$s")"
    "$nginx" -p "$dir/" -c nginx.conf -t -q
    said "$nginx" -p "$dir/" -c nginx.conf -g "'daemon off;'"
    "$nginx" -p "$dir/" -c nginx.conf -g 'daemon off;' &
    master[$s]=$!
    wait_port "$p" || die "nginx on port $p did not start"
    for i in $(seq 100); do
        h=$(curl -sf "http://127.0.0.1:$p/api/health" || true)
        if grep -q '"status":"ok"' <<<"$h"; then
            log "$s: nginx on $p ($(redis_directive "$s")), health ok"
            echo "$h" > "$work/health-$s.json"
            return 0
        fi
        sleep 0.1
    done
    die "nginx on port $p: /api/health is not ok: $h"
}

workers_of() { ps -o pid= --ppid "$1" | tr -d ' ' | sort -n | tr '\n' ' '; }

# ------------------------------------------------------------- measuring

# utime stime cutime cstime of a process, in clock ticks
ticks() {
    local s
    s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo "0 0 0 0"; return 0; }
    s=${s##*) }
    # shellcheck disable=SC2086
    set -- $s
    echo "${12} ${13} ${14} ${15}"
}

# Everything before or after a run, as lines the report reads:
#   wall NS | cpu ... (/proc/stat) | self TICKS (this shell, its reaped
#   children: wsload, redis-cli) | redis PORT PID TICKS | worker SETUP PID
#   TICKS | info PORT <INFO cpu and commandstats line>
snap() {                # $1 file
    local s p w
    {
        echo "wall $(date +%s%N)"
        head -1 /proc/stat
        echo "self $(ticks $$)"
        for s in $setups; do
            for p in ${nodes[$s]}; do
                echo "redis $p ${redis_pid[$p]} $(ticks "${redis_pid[$p]}")"
                { rcli "$p" INFO cpu; rcli "$p" INFO commandstats; } \
                    | tr -d '\r' | grep ':' | sed "s/^/info $p /"
            done
            for w in $(workers_of "${master[$s]}"); do
                echo "worker $s $w $(ticks "$w")"
            done
        done
    } > "$1"
}

# Once the run's connections are set up (wsload's ready file): the
# channels on each node of the set-up.  A user's channel is on the node
# that owns its slot, and so are its publications; the node channels
# (ws_relay:n:<worker>) take the acks.
sampler() {             # $1 set-up, $2 ready file, $3 output
    local i p
    for i in $(seq 600); do
        [ -e "$2" ] && break
        sleep 0.1
    done
    [ -e "$2" ] || exit 0
    for p in ${nodes[$1]}; do
        if [ "$1" = plain ]; then
            rcli "$p" PUBSUB CHANNELS 'ws_relay:*'
        else
            rcli "$p" PUBSUB SHARDCHANNELS 'ws_relay:*'
        fi | sed "s/^/$p /"
    done > "$3.tmp"
    mv "$3.tmp" "$3"
}

index=$runs/index.tsv
run_one() {             # $1 id, $2 set-up, $3 closed|rate, $4 off|on, $5 round
    local id=$1 s=$2 load=$3 h=$4 r=$5 url rc=0 log mark
    local ready=$runs/$id.ready js=$runs/$id.wsload.json
    local args
    url="ws://127.0.0.1:${ngx_port[$s]}/"
    [ "$h" = on ] && url="${url}h/"
    if [ "$load" = closed ]; then
        args=(chat -u "$url" -P "$pairs" -w "$window" -d "$dur" --placement cross)
    else
        args=(chat -u "$url" -P "$pairs" -r "$rate" -d "$dur" --placement cross)
    fi
    log "$id: bench/wsload ${args[*]}"
    printf '%s\t%s\t%s\t%s\t%s\tbench/wsload %s\n' \
        "$id" "$s" "$load" "$h" "$r" "${args[*]}" >> "$index"
    log=$work/ngx-$s/logs/error.log
    mark=$(stat -c %s "$log")
    rm -f "$ready"
    snap "$runs/$id.snap0"
    sampler "$s" "$ready" "$runs/$id.channels" &
    sampler_pid=$!
    "$wsload" "${args[@]}" --ready-file "$ready" --json "$js" -q \
        > "$runs/$id.txt" 2>&1 &
    wsload_pid=$!
    wait "$wsload_pid" || rc=$?
    wsload_pid=
    snap "$runs/$id.snap1"
    wait "$sampler_pid" 2>/dev/null || true
    sampler_pid=
    echo "$rc" > "$runs/$id.rc"
    tail -c +"$((mark + 1))" "$log" > "$runs/$id.errors"
    sed -n -e 's/^/    /' -e '/msgs\/s\|sent \|lost\|latency  /p' "$runs/$id.txt"
    [ "$rc" = 0 ] || log "$id: wsload exited with $rc"
    if grep -v '\[notice\]\|\[info\]' "$runs/$id.errors" | grep -q .; then
        log "$id: the error log has:"
        grep -v '\[notice\]\|\[info\]' "$runs/$id.errors" | head -20 | sed 's/^/    /'
    fi
}

# ------------------------------------------------------------------- main

for c in redis-server redis-cli curl "$nginx" "$python"; do
    command -v "$c" > /dev/null || die "$c is missing"
done
[ -x "$wsload" ] || die "no $wsload: make -C bench"
[ -f "$module_so" ] || die "no module $module_so: make"
for s in $setups; do
    [ -n "${nodes[$s]:-}" ] || die "unknown set-up $s (plain, c1, c3)"
done
for p in $(for s in $setups; do echo ${nodes[$s]} ${ngx_port[$s]}; done) "${bus[@]}"; do
    { [ "$p" -ge 2400 ] && [ "$p" -le 2499 ]; } \
        || die "port $p is outside 2400-2499: lower CLUSTER_PORT_BASE"
done

mkdir -p "$bench/build"
exec 9> "$bench/build/cluster.lock"
flock -n 9 || die "another run holds $bench/build/cluster.lock"
rm -rf "$work"
mkdir -p "$runs"
: > "$index"

# the module: the last commit of its sources, and the .so's hash
module_desc="$(git -C "$top" log -1 --format=%h -- ngx_ws_relay_module config 2>/dev/null || echo '?')"
if [ -n "$(git -C "$top" status --porcelain -- ngx_ws_relay_module config 2>/dev/null)" ]; then
    module_desc="$module_desc, module sources modified"
fi
module_desc="$module_desc ($(sha256sum "$module_so" | cut -c1-12))"

for s in $setups; do
    start_setup_redis "$s"
    start_setup_nginx "$s"
done
sleep 2

# what every Redis and nginx costs with no load: the cluster buses'
# gossip, the workers' probes and pings, the slot maps they ask for
log "idle baseline, $idle s"
snap "$runs/idle.snap0"
sleep "$idle"
snap "$runs/idle.snap1"

t0=$(date +%s)
set -- $setups
nset=$#
for r in $(seq "$rounds"); do
    # the set-ups take turns at going first
    order=()
    for i in $(seq 0 $((nset - 1))); do
        j=$(( (i + r - 1) % nset + 1 ))
        order+=("${!j}")
    done
    for load in $loads; do
        for h in $hmodes; do
            for s in "${order[@]}"; do
                run_one "$s-$load-h$h-$r" "$s" "$load" "$h" "$r"
            done
        done
    done
done
log "runs done in $(( $(date +%s) - t0 )) s"

for s in $setups; do
    curl -sf "http://127.0.0.1:${ngx_port[$s]}/api/health" > "$work/health-$s-end.json" || true
    cp "$work/ngx-$s/logs/error.log" "$work/error-$s.log"
done

"$python" "$bench/cluster-report.py" --work "$work" \
    --results "$results" --json "$json_out" \
    --setups "$setups" --nodes "$(for s in $setups; do echo "$s:${nodes[$s]// /,}"; done | tr '\n' ' ')" \
    --nginx "$("$nginx" -v 2>&1 | sed 's/.*nginx\///')" \
    --redis "$(redis-server --version | awk '{print $3}' | sed 's/v=//')" \
    --module "$module_desc" --history "$history" \
    --command "${CLUSTER_COMMAND:-bench/cluster.sh}"
log "wrote $work/section.md${results:+, the section of $results}${json_out:+, $json_out}"
