#!/usr/bin/env bash
# The benchmark suite: builds the module, wsload and wsfloor, starts Redis
# and two nginx instances (2 workers each, nginx.conf.example's directives)
# on test ports under bench/build/suite, runs the scenarios with
# bench/wsload, runs the chat, latency and connect scenarios against
# bench/wsfloor too (the floor: a bare relay with nginx's worker model,
# src/floor.c), stops everything it started, and writes bench/RESULTS.md
# and bench/results.json.
#
#   bench/run-suite.sh                   (or: make bench)
#
# Environment:
#   BENCH_PORT, BENCH_PORT2, BENCH_REDIS_PORT   ports (18080 18081 16399)
#   BENCH_FLOOR_PORT  wsfloor's port (18082)
#   BENCH_FLOOR       the scenarios whose runs are repeated against wsfloor,
#                     each right beside the module's ("2 3 4 7"; set and
#                     empty: none)
#   BENCH_SCENARIOS   which scenarios to run, e.g. "1 3" (default: all)
#   BENCH_DURATION    measured seconds per throughput/latency run (10)
#   BENCH_IDLE        idle-memory sizes as connections:processes
#                     ("1000:1 10000:1 30000:2")
#   BENCH_IDLE_DEFLATE  the same with permessage-deflate negotiated
#                     (scenario 8: "10000:1")
#   BENCH_DEFLATE_RATE  msgs/s of scenario 9's chat runs (5000)
#   BENCH_BUSY_ARGS   wsload options added to scenario 10's busy run
#   BENCH_HISTORY     scenario 11's ws_relay_history parameters
#                     ("size=1000 ttl=5m resume_unverified=on"; set and
#                     empty: no such directive, for a module without it)
#   BENCH_DRAIN       scenario 11's ws_relay_drain for the drained reloads
#                     (5s; the other reloads run with 0; set and empty:
#                     no ws_relay_drain directive at all)
#   BENCH_HISTORY_ROUNDS  scenario 11: rounds of each comparison (2)
#   BENCH_RELOAD_DURATION scenario 11: measured seconds of a reload run
#                     (50; the 5 reloads are 8 s apart from the 6th s)
#   BENCH_SHUTDOWN_TIMEOUT scenario 11's worker_shutdown_timeout (15s)
#   BENCH_HTTP_EXTRA  directives added to the http{} block, e.g.
#                     "request_pool_size 1k; connection_pool_size 256;"
#   BENCH_OUT         where RESULTS.md and results.json go (bench/)
#   BENCH_MODULE      a module .so to measure instead of building this tree
#                     (BENCH_MODULE_DESC: what it is, for the report)
#   BENCH_EXAMPLE     the nginx.conf.example to derive the configs from
#                     (default: this tree's; pass the one that goes with
#                     BENCH_MODULE)
#   BENCH_NO_INSTALL  set to 1 to never call apt-get
#   BENCH_QUIET_WAIT  on a shared machine: before the run and before each
#                     step, wait for other processes to use under 15% of
#                     it, up to this many seconds in all (0)
#
# Only loopback addresses are used.  Everything runs as the current user
# (root, to install packages and read every /proc/PID/smaps_rollup).

set -euo pipefail

bench=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$bench/.." && pwd)
. "$top/util/common.sh"

port=${BENCH_PORT:-18080}
port2=${BENCH_PORT2:-18081}
redis_port=${BENCH_REDIS_PORT:-16399}
floor_port=${BENCH_FLOOR_PORT:-18082}
floor_scenarios=${BENCH_FLOOR-2 3 4 7}
scenarios=${BENCH_SCENARIOS:-1 2 3 4 5 6 7 8 9 10 11}
dur=${BENCH_DURATION:-10}
idle_sizes=${BENCH_IDLE:-1000:1 10000:1 30000:2}
idle_deflate_sizes=${BENCH_IDLE_DEFLATE:-10000:1}
deflate_rate=${BENCH_DEFLATE_RATE:-5000}
busy_args=${BENCH_BUSY_ARGS:-}
history_params=${BENCH_HISTORY-size=1000 ttl=5m resume_unverified=on}
drain_window=${BENCH_DRAIN-5s}
history_rounds=${BENCH_HISTORY_ROUNDS:-2}
reload_dur=${BENCH_RELOAD_DURATION:-50}
shutdown_timeout=${BENCH_SHUTDOWN_TIMEOUT:-15s}
http_extra=${BENCH_HTTP_EXTRA:-}
out=${BENCH_OUT:-$bench}
module_so=${BENCH_MODULE:-$top/build/ngx_ws_relay_module.so}
example=$(realpath "${BENCH_EXAMPLE:-$top/nginx.conf.example}")

nginx=${NGINX_BIN:-/usr/sbin/nginx}
python=/usr/bin/python3
wsload=$bench/wsload
wsfloor=$bench/wsfloor
work=$bench/build/suite
runs=$work/runs            # one JSON per step, read by suite-report.py

# Per worker: the 30k scenario puts ~15k (reuseport is a hash, not a
# round robin, so allow for imbalance) on each of the two workers; the
# open-files limit is 20000 per process and cannot be raised here.
worker_rlimit=20000
worker_conns=19500
max_conns=19000

log() { printf '[suite %(%H:%M:%S)T] %s\n' -1 "$*"; }
die() { log "error: $*"; exit 1; }

# --------------------------------------------------------------- packages

# util/common.sh's install_missing; BENCH_NO_INSTALL=1: never apt-get
NO_INSTALL=${BENCH_NO_INSTALL:-0}

# ------------------------------------------------------ processes we own

redis_pid=
floor_pid=              # wsfloor's parent (its workers are its children)
nginx_pids=()           # masters, in start order
bg_pids=()              # wsload runs in the background
sampler_pid=            # scenario 10's /api/health sampler

stop_nginx() {          # $1: master pid
    local m=$1 i
    kill -QUIT "$m" 2>/dev/null || return 0
    for i in $(seq 100); do
        kill -0 "$m" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$m" 2>/dev/null; then
        log "nginx $m did not quit in 10 s: killing it"
        for i in $(ps -o pid= --ppid "$m" 2>/dev/null); do
            kill -KILL "$i" 2>/dev/null || true
        done
        kill -KILL "$m" 2>/dev/null || true
    fi
    wait "$m" 2>/dev/null || true
}

# wsload -p N forks N processes: each gets the signal (a signal to the
# parent alone would leave the children holding their connections)
stop_wsload() {         # $1 pid
    local k
    for k in $(ps -o pid= --ppid "$1" 2>/dev/null); do
        kill -INT "$k" 2>/dev/null || true
    done
    kill -INT "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

stop_all() {
    local p
    trap - EXIT INT TERM
    if [ -n "$sampler_pid" ]; then
        kill -TERM "$sampler_pid" 2>/dev/null || true
        wait "$sampler_pid" 2>/dev/null || true
        sampler_pid=
    fi
    for p in "${bg_pids[@]}"; do
        stop_wsload "$p"
    done
    bg_pids=()
    for p in "${nginx_pids[@]}"; do
        stop_nginx "$p"
    done
    nginx_pids=()
    stop_floor
    if [ -n "$redis_pid" ]; then
        kill -TERM "$redis_pid" 2>/dev/null || true
        wait "$redis_pid" 2>/dev/null || true
        redis_pid=
    fi
}

trap 'stop_all' EXIT
trap 'log interrupted; exit 130' INT TERM

start_redis() {
    start_redis_on "$redis_port" "$work/redis" \
        || die "redis did not start on port $redis_port"
}

stop_redis() {
    kill -TERM "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
    redis_pid=
}

# Directives a scenario adds to the main context, to http{} (after
# BENCH_HTTP_EXTRA) and to the server{} (before "location /"), on one line
# each, and sed expressions of its own; empty for the others.
main_extra=
http_scen_extra=
server_extra=
scen_sed=()

# nginx.conf.example with the test ports, 2 workers and limits sized for
# the 30k scenario, and without the example's history (scenario 11 adds
# its own location with it); every substitution is checked, so a changed
# example fails here rather than silently benchmarking something else.
write_conf() {          # $1 prefix dir, $2 port
    local dir=$1 p=$2 conf=$1/nginx.conf
    mkdir -p "$dir"/{logs,temp,modules,html}
    ln -sf "$module_so" "$dir/modules/ngx_ws_relay_module.so"
    sed -e "s/^worker_processes .*/worker_processes  2;\n$main_extra/" \
        -e "s/^worker_rlimit_nofile .*/worker_rlimit_nofile  $worker_rlimit;/" \
        -e "s/^\( *\)worker_connections .*/\1worker_connections  $worker_conns;/" \
        -e "s/listen  3000 reuseport;/listen  127.0.0.1:$p reuseport;/" \
        -e "s/ws_relay_redis  127.0.0.1:6379;/ws_relay_redis  127.0.0.1:$redis_port;/" \
        -e "s/ws_relay_max_connections  4000;/ws_relay_max_connections  $max_conns;/" \
        -e "s/^http {/http {\n    $http_extra\n    $http_scen_extra/" \
        -e "s|^        location / {|        $server_extra\n        location / {|" \
        -e "s/^\( *\)ws_relay_history .*;/\1ws_relay_history  off;/" \
        "${scen_sed[@]}" "$example" > "$conf"
    grep -q "^worker_processes  2;" "$conf" \
        && grep -q "worker_rlimit_nofile  $worker_rlimit;" "$conf" \
        && grep -q "worker_connections  $worker_conns;" "$conf" \
        && grep -q "listen  127.0.0.1:$p reuseport;" "$conf" \
        && grep -q "ws_relay_redis  127.0.0.1:$redis_port;" "$conf" \
        && grep -q "ws_relay_max_connections  $max_conns;" "$conf" \
        && grep -qF "$server_extra" "$conf" \
        || die "nginx.conf.example changed: cannot derive $conf"
}

start_nginx() {         # $1 prefix dir, $2 port; sets $master
    local dir=$1 p=$2
    port_free "$p" || die "port $p is in use"
    write_conf "$dir" "$p"
    "$nginx" -p "$dir/" -c nginx.conf -t -q
    "$nginx" -p "$dir/" -c nginx.conf -g 'daemon off;' &
    master=$!
    nginx_pids+=("$master")
    wait_port "$p" || die "nginx on port $p did not start"
    # the workers have connected to Redis once health says ok
    local i
    for i in $(seq 50); do
        curl -sf "http://127.0.0.1:$p/api/health" | grep -q '"status":"ok"' \
            && return 0
        sleep 0.1
    done
    die "nginx on port $p: /api/health is not ok"
}

stop_servers() {
    local p
    for p in "${nginx_pids[@]}"; do
        stop_nginx "$p"
    done
    nginx_pids=()
    stop_redis
    stop_floor
}

# The floor: wsfloor with as many workers as nginx has (worker_processes
# 2), started as nginx is (a child of this shell, its workers children of
# it), on its own port.  No Redis, no configuration.
floor_url="ws://127.0.0.1:$floor_port/"

in_floor() {            # $1 scenario number: is it run against the floor?
    case " $floor_scenarios " in *" $1 "*) return 0 ;; esac
    return 1
}

start_floor() {
    port_free "$floor_port" || die "port $floor_port is in use"
    "$wsfloor" -a 127.0.0.1 -p "$floor_port" -w 2 2>> "$work/floor.log" &
    floor_pid=$!
    wait_port "$floor_port" || die "wsfloor on port $floor_port did not start"
}

stop_floor() {
    [ -n "$floor_pid" ] || return 0
    kill -TERM "$floor_pid" 2>/dev/null || true
    wait "$floor_pid" 2>/dev/null || true
    floor_pid=
}

start_servers() {       # one instance (and Redis), or two with "two"
    rm -rf "$work/ngx1" "$work/ngx2" "$work/redis"
    start_redis
    start_nginx "$work/ngx1" "$port"
    master1=$master
    if [ "${1:-}" = two ]; then
        start_nginx "$work/ngx2" "$port2"
        master2=$master
    fi
}

# ------------------------------------------------------------ measuring

workers_of() { ps -o pid= --ppid "$1" | tr -d ' ' | sort -n | tr '\n' ' '; }

pss_kib() {             # sum of Pss over the given pids
    local p sum=0 v
    for p in "$@"; do
        v=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup")
        sum=$((sum + v))
    done
    echo "$sum"
}

rss_kib() {
    local p sum=0 v
    for p in "$@"; do
        v=$(awk '/^Rss:/ {print $2}' "/proc/$p/smaps_rollup")
        sum=$((sum + v))
    done
    echo "$sum"
}

meminfo_kib() { awk -v k="$1:" '$1 == k {print $2}' /proc/meminfo; }
sockstat_tcp_mem_pages() { awk '$1 == "TCP:" {for (i = 2; i < NF; i++) if ($i == "mem") print $(i+1)}' /proc/net/sockstat; }
cpu_line() { head -1 /proc/stat; }

# Every process's pid, ppid, CPU ticks (utime + stime) and its reaped
# children's ticks (cutime + cstime): the report takes the suite's own
# share (servers, wsload) from the machine's busy time to show how busy
# other processes kept it (this machine may be shared).
procsnap() {            # $1 output file
    "$python" -c '
import os
for p in os.listdir("/proc"):
    if p.isdigit():
        try:
            s = open("/proc/%s/stat" % p).read()
        except OSError:
            continue
        f = s.rsplit(")", 1)[1].split()
        print(p, f[1], int(f[11]) + int(f[12]), int(f[13]) + int(f[14]))' > "$1"
}

ours() { echo "$$ $redis_pid $floor_pid ${nginx_pids[*]} ${bg_pids[*]}"; }

# Scheduler figures of the nginx workers of every instance, of Redis and
# of wsfloor's workers, exact (/proc/PID/schedstat: ns on the CPU, ns
# waiting on the run queue, time slices): "nginx_run nginx_wait
# nginx_slices redis_run redis_wait redis_slices floor_run floor_wait
# floor_slices"
server_ns() {
    local m w a b c n1=0 n2=0 n3=0 f1=0 f2=0 f3=0
    for m in "${nginx_pids[@]}"; do
        for w in $(workers_of "$m"); do
            read -r a b c < "/proc/$w/schedstat" || continue
            n1=$((n1 + a)); n2=$((n2 + b)); n3=$((n3 + c))
        done
    done
    if [ -n "$floor_pid" ]; then
        for w in $(workers_of "$floor_pid"); do
            read -r a b c < "/proc/$w/schedstat" || continue
            f1=$((f1 + a)); f2=$((f2 + b)); f3=$((f3 + c))
        done
    fi
    a=0; b=0; c=0
    [ -z "$redis_pid" ] || read -r a b c < "/proc/$redis_pid/schedstat" \
        || { a=0; b=0; c=0; }
    echo "$n1 $n2 $n3 $a $b $c $f1 $f2 $f3"
}

# memory snapshot as a JSON object
mem_snapshot() {
    local w
    w=$(workers_of "$master1")
    # shellcheck disable=SC2086
    printf '{"nginx_workers_pss_kib":%s,"nginx_workers_rss_kib":%s,"nginx_master_pss_kib":%s,"redis_pss_kib":%s,"redis_rss_kib":%s,"slab_kib":%s,"slab_unreclaimable_kib":%s,"tcp_mem_pages":%s,"mem_available_kib":%s,"workers":"%s"}' \
        "$(pss_kib $w)" "$(rss_kib $w)" "$(pss_kib "$master1")" \
        "$(pss_kib "$redis_pid")" "$(rss_kib "$redis_pid")" \
        "$(meminfo_kib Slab)" "$(meminfo_kib SUnreclaim)" \
        "$(sockstat_tcp_mem_pages)" "$(meminfo_kib MemAvailable)" "$w"
}

# How busy other processes keep the machine, over 2 s, into quiet.json;
# with BENCH_QUIET_WAIT=S, wait for that to fall under 15% (before the
# run, and before each wsload step), S seconds in all at most.
wait_quiet() {
    local q0 others
    q0=$(date +%s)
    while :; do
        procsnap "$runs/quiet.ps0"; c0=$(cpu_line); sleep 2
        c1=$(cpu_line); procsnap "$runs/quiet.ps1"
        "$python" "$bench/suite-report.py" --runs "$runs" --quiet "$c0" "$c1" \
            "$$" > "$runs/quiet.json"
        others=$("$python" -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["others_pct"]))' "$runs/quiet.json")
        if [ "$others" -lt 15 ] || [ $(( $(date +%s) - q0 )) -ge "$quiet_wait" ]
        then
            quiet_wait=$(( quiet_wait - ($(date +%s) - q0) ))
            [ "$quiet_wait" -gt 0 ] || quiet_wait=0
            return 0
        fi
        log "other processes use ${others}% of the machine: waiting"
        sleep 5
    done
}

step=0
# Runs wsload in the foreground; records id, scenario, command, the
# machine's /proc/stat line before and after, and wsload's own JSON.
run_wsload() {          # $1 id, $2 scenario title, $3 label, rest: args
    local id=$1 scen=$2 label=$3 c0 c1 rc=0
    shift 3
    local js="$runs/$id.wsload.json"
    if [ "$quiet_wait" -gt 0 ]; then wait_quiet; fi
    log "$id: wsload $*"
    local s0 s1 t0 t1
    procsnap "$runs/$id.ps0"
    c0=$(cpu_line)
    s0=$(server_ns)
    t0=$(date +%s%N)
    "$wsload" "$@" --json "$js" -q > "$runs/$id.txt" 2>&1 || rc=$?
    t1=$(date +%s%N)
    s1=$(server_ns)
    c1=$(cpu_line)
    procsnap "$runs/$id.ps1"
    sed 's/^/    /' "$runs/$id.txt"
    record "$id" "$scen" "$label" "$rc" "$c0" "$c1" \
        "{\"procs\":[\"$id.ps0\",\"$id.ps1\"],\"ours\":\"$(ours)\",\"server_ns\":[[${s0// /,}],[${s1// /,}]],\"wall_ns\":$((t1 - t0)),\"idle_connections\":${idle_held:-0}}" "$*"
}

# run_wsload, then (when the scenario is in BENCH_FLOOR) the same against
# wsfloor as "floor-<id>": the module's URL becomes the floor's.  The two
# take turns at going first, so that a drift of the machine does not
# always favour the same one.
floor_turn=0
run_both() {            # as run_wsload
    local id=$1 scen=$2 label=$3 a args=()
    shift 3
    if ! in_floor "${scen%%.*}" || [ -z "$floor_pid" ]; then
        run_wsload "$id" "$scen" "$label" "$@"
        return 0
    fi
    for a in "$@"; do
        [ "$a" = "$url" ] && a=$floor_url
        args+=("$a")
    done
    floor_turn=$((1 - floor_turn))
    if [ "$floor_turn" = 1 ]; then
        run_wsload "$id" "$scen" "$label" "$@"
        run_wsload "floor-$id" "$scen" "$label, wsfloor" "${args[@]}"
    else
        run_wsload "floor-$id" "$scen" "$label, wsfloor" "${args[@]}"
        run_wsload "$id" "$scen" "$label" "$@"
    fi
}

start_floor_for() {     # $1 scenario number
    if in_floor "$1"; then start_floor; fi
}

record() {              # id scen label rc cpu0 cpu1 extra-json args
    local id=$1
    step=$((step + 1))
    # the command as run from the top of the tree
    set -- "${@:1:7}" "${8//$top\//}"
    "$python" - "$step" "$@" > "$runs/$id.step.json" <<'EOF'
import json, sys
_, seq, id_, scen, label, rc, c0, c1, extra, args = sys.argv
json.dump({"seq": int(seq), "id": id_, "scenario": scen, "label": label,
           "rc": int(rc),
           "cpu0": c0, "cpu1": c1, "extra": json.loads(extra),
           "command": "bench/wsload " + args}, sys.stdout)
EOF
}

# ------------------------------------------------------------- scenarios

url="ws://127.0.0.1:$port/"
url2="ws://127.0.0.1:$port2/"

# 1. Idle memory: PSS before and while the connections sit idle, and
# after they closed.  A fresh server for each size, so each starts from
# the same baseline.  With --deflate (scenario 8) every connection has
# negotiated permessage-deflate.
idle_memory() {         # $1 connections, $2 procs, $3 "" or --deflate
    local n=$1 procs=$2 opt=${3:-} id="idle-$1" before during after c0 c1 rc=0
    local scen="1. Idle memory" label="$n idle registered connections"
    if [ -n "$opt" ]; then
        id="idle-deflate-$n"
        scen="8. Idle memory, permessage-deflate"
        label="$label, deflate negotiated"
    fi
    local ready="$work/ready-$id" s0="$runs/$id.slab0" s1="$runs/$id.slab1" hold=$((n / 2000 + 12))
    start_servers
    sleep 1
    rm -f "$ready"
    before=$(mem_snapshot)
    cat /proc/slabinfo > "$s0"
    procsnap "$runs/$id.ps0"
    c0=$(cpu_line)
    local args="connect -u $url -n $n -p $procs --hold $hold --close-wait 15 --ready-file $ready${opt:+ $opt}"
    log "$id: wsload $args"
    # shellcheck disable=SC2086
    "$wsload" $args --json "$runs/$id.wsload.json" -q \
        > "$runs/$id.txt" 2>&1 &
    bg_pids+=($!)
    local i
    for i in $(seq $((hold * 10))); do
        [ -e "$ready" ] && break
        kill -0 "${bg_pids[-1]}" 2>/dev/null || break
        sleep 0.1
    done
    [ -e "$ready" ] || log "$id: connections not ready"
    c1=$(cpu_line)
    procsnap "$runs/$id.ps1"
    local ourpids
    ourpids=$(ours)
    sleep 3                   # let Redis and the workers settle
    during=$(mem_snapshot)
    cat /proc/slabinfo > "$s1"
    wait "${bg_pids[-1]}" || rc=$?
    unset 'bg_pids[-1]'
    sleep 1
    after=$(mem_snapshot)
    sed 's/^/    /' "$runs/$id.txt"
    record "$id" "$scen" "$label" "$rc" "$c0" "$c1" \
        "{\"connections\":$n,\"before\":$before,\"during\":$during,\"after_close\":$after,\"slabinfo\":[\"$id.slab0\",\"$id.slab1\"],\"procs\":[\"$id.ps0\",\"$id.ps1\"],\"ours\":\"$ourpids\",\"http_extra\":\"$http_extra\"}" \
        "$args"
    stop_servers
}

scenario_1() {
    local s
    for s in $idle_sizes; do
        idle_memory "${s%:*}" "${s#*:}"
    done
}

# 7. Cost with many idle connections: the same fixed-rate chat while 0,
# 10k or 28k registered connections sit idle; server CPU per message
# should not grow with them.  With 7 in BENCH_FLOOR each size runs on the
# floor too (its own idle connections), right after the module.
linear_run() {          # $1 id, $2 url, $3 idle connections, $4 label suffix
    local id=$1 u=$2 n=$3 procs ready i
    idle_held=$n
    if [ "$n" -gt 0 ]; then
        procs=$(( n > 15000 ? 2 : 1 ))
        ready="$work/ready-bg-$id"
        rm -f "$ready"
        log "holding $n idle connections on $u"
        "$wsload" connect -u "$u" -n "$n" -p "$procs" --hold 600 \
            --close-wait 15 --ready-file "$ready" -q \
            > "$runs/bg-$id.txt" 2>&1 &
        bg_pids+=($!)
        for i in $(seq 600); do
            [ -e "$ready" ] && break
            kill -0 "${bg_pids[-1]}" 2>/dev/null || break
            sleep 0.1
        done
        [ -e "$ready" ] || die "$n idle connections not set up"
        sleep 2
    fi
    run_wsload "$id" "7. Cost with idle connections" \
        "20000 msgs/s with $n idle connections$4" \
        chat -u "$u" -P 50 -r 20000 -d "$dur"
    if [ "$n" -gt 0 ]; then
        stop_wsload "${bg_pids[-1]}"
        unset 'bg_pids[-1]'
    fi
    idle_held=0
}

scenario_7() {
    local n
    for n in 0 10000 28000; do
        start_servers
        linear_run "linear-$n" "$url" "$n" ""
        stop_servers
        if in_floor 7; then
            start_floor
            linear_run "floor-linear-$n" "$floor_url" "$n" ", wsfloor"
            stop_floor
        fi
    done
}

scenario_2() {
    start_servers
    start_floor_for 2
    run_both hs-10000 "2. Handshake+register rate" "10k connections, 256 in progress" \
        connect -u "$url" -n 10000
    run_both hs-20000-c64 "2. Handshake+register rate" "20k connections, 64 in progress" \
        connect -u "$url" -n 20000 -c 64 -p 2
    stop_servers
}

scenario_3() {
    start_servers
    start_floor_for 3
    run_both chat-same "3. Chat, closed loop" "50 pairs x window 16, same worker" \
        chat -u "$url" -P 50 -w 16 -d "$dur" --placement same
    run_both chat-cross "3. Chat, closed loop" "50 pairs x window 16, cross worker" \
        chat -u "$url" -P 50 -w 16 -d "$dur" --placement cross
    run_both chat-1pair "3. Chat, closed loop" "1 pair x window 1, same worker" \
        chat -u "$url" -P 1 -w 1 -d 5 --placement same
    run_both chat-1pair-cross "3. Chat, closed loop" "1 pair x window 1, cross worker" \
        chat -u "$url" -P 1 -w 1 -d 5 --placement cross
    stop_servers
}

scenario_4() {
    local r
    start_servers
    start_floor_for 4
    # 5k twice: same and cross alternate, so a burst of steal or of
    # another load on the machine shows as a difference between rounds
    for r in 1000 5000 5000b 20000; do
        run_both "rate-$r-same" "4. Chat at a fixed rate" "${r%b} msgs/s, same worker" \
            chat -u "$url" -P 50 -r "${r%b}" -d "$dur" --placement same
        run_both "rate-$r-cross" "4. Chat at a fixed rate" "${r%b} msgs/s, cross worker" \
            chat -u "$url" -P 50 -r "${r%b}" -d "$dur" --placement cross
    done
    stop_servers
}

scenario_5() {
    start_servers
    run_wsload api-1000 "5. API send-to-user" "1000 req/s to 100 users" \
        api -u "$url" --users 100 -r 1000 -d "$dur"
    run_wsload api-5000 "5. API send-to-user" "5000 req/s to 100 users" \
        api -u "$url" --users 100 -r 5000 -d "$dur"
    run_wsload api-10000 "5. API send-to-user" "10000 req/s to 100 users" \
        api -u "$url" --users 100 -r 10000 -d "$dur" --api-conns 16
    run_wsload api-20000 "5. API send-to-user" "20000 req/s to 100 users" \
        api -u "$url" --users 100 -r 20000 -d "$dur" --api-conns 16
    stop_servers
}

scenario_6() {
    start_servers two
    run_wsload host2-rate-5000 "6. Two nginx instances, one Redis" "5000 msgs/s, receivers on the 2nd instance" \
        chat -u "$url" --peer-url "$url2" -P 50 -r 5000 -d "$dur"
    run_wsload host2-closed "6. Two nginx instances, one Redis" "50 pairs x window 16, receivers on the 2nd instance" \
        chat -u "$url" --peer-url "$url2" -P 50 -w 16 -d "$dur"
    stop_servers
}

# 8. Idle memory with permessage-deflate negotiated on every connection,
# measured as in scenario 1 and reported beside it.
scenario_8() {
    local s
    for s in $idle_deflate_sizes; do
        idle_memory "${s%:*}" "${s#*:}" --deflate
    done
}

# 9. CPU per compressed message: the same fixed-rate chat of 1 KiB texts
# (JSON-like padding, so above ws_relay_deflate_min_length and as
# compressible as chat traffic) without and with permessage-deflate, in
# two alternating rounds; server CPU per message and bytes on the wire.
# At a fixed rate each message also pays for its wake-ups; the closed-loop
# round ("sat", 50 pairs x window 16) shares them among many messages, so
# its difference is closer to the cost of zlib alone.
scenario_9() {
    local round mode opt load label
    start_servers
    for round in a b sat; do
        for mode in plain deflate; do
            opt=
            [ "$mode" = deflate ] && opt=--deflate
            if [ "$round" = sat ]; then
                load=(-w 16)
                label="1 KiB, 50 pairs x window 16, ${mode/plain/no deflate}, same worker"
            else
                load=(-r "$deflate_rate")
                label="$deflate_rate msgs/s of 1 KiB, ${mode/plain/no deflate}, same worker, round $round"
            fi
            run_wsload "cost-$mode-$round" "9. CPU per compressed message" \
                "$label" chat -u "$url" -P 50 "${load[@]}" -d "$dur" \
                --size 1024 --placement same ${opt:+"$opt"}
        done
    done
    stop_servers
}

# 10. One client must not stall a worker: wsload busy's bomber sends
# compressed bombs that each inflate to 1 MiB of JSON (a chat of a huge
# array of numbers, arrays nested without end, a chat whose array never
# closes) as fast as its socket takes them, while a victim on its worker
# pings every 20 ms and 4 cross-worker pairs chat.  Meanwhile /api/health
# every 0.5 s; before and after, /api/metrics (Redis reconnects, delivery
# timeouts); then the error log's lines of the run (Redis links dropped,
# "the worker was busy" warnings).  suite-report.py reads them as
# runs/busy.{health,metrics0,metrics1,errors}.
scenario_10() {
    local id=busy log mark i
    start_servers
    log=$work/ngx1/logs/error.log
    mark=$(stat -c %s "$log")
    curl -s -m 5 "http://127.0.0.1:$port/api/metrics" > "$runs/$id.metrics0" \
        || true

    # one line per sample: the time (ms) and the status, or "none"
    (
        while [ ! -e "$work/$id.stop" ]; do
            printf '%s %s\n' "$(date +%s%3N)" "$(curl -s -m 2 \
                "http://127.0.0.1:$port/api/health" \
                | sed -n 's/^{"status":"\([a-z]*\)".*/\1/p' | grep . \
                || echo none)"
            sleep 0.5
        done
    ) > "$runs/$id.health" &
    sampler_pid=$!

    # shellcheck disable=SC2086
    run_wsload "$id" "10. One busy client" \
        "1 MiB bombs as fast as the socket takes them; a ping every 20 ms on the bomber's worker; 4 cross-worker chat pairs" \
        busy -u "$url" -d "$dur" $busy_args

    touch "$work/$id.stop"
    wait "$sampler_pid" || true
    sampler_pid=

    # the bombs the worker had read before the bomber's reset may keep it
    # busy a while: wait for it, then let a late watchdog have its say
    for i in $(seq 60); do
        curl -sf -m 2 "http://127.0.0.1:$port/api/health" > /dev/null && break
        sleep 0.5
    done
    sleep 3
    curl -s -m 5 "http://127.0.0.1:$port/api/metrics" > "$runs/$id.metrics1" \
        || true
    tail -c +"$((mark + 1))" "$log" > "$runs/$id.errors"
    stop_servers
}

# 11. History and resume (issue 14).  One nginx, two WebSocket
# locations: "/" without history, "/h/" with ws_relay_history; the
# http{} has ws_relay_drain and the main context a worker_shutdown_timeout
# above it.  The same chat loads on both locations in alternating order
# (closed loop for throughput and p99, a fixed rate for the CPU per
# message), with Redis's INFO cpu/commandstats before and after each;
# then Redis memory per kept message (MEMORY USAGE of one user's stream
# after N messages); then the reload runs: 10k idle connections and 20
# chat pairs at 2000 msgs/s, all with --reconnect, while nginx reloads 5
# times, with the drain window and without it.  suite-report.py reads
# runs/hist-*.{redis0,redis1,redis,entry,reloads,errors,health}.

hist_url="ws://127.0.0.1:$port/h/"

redis_cli() { redis-cli -h 127.0.0.1 -p "$redis_port" "$@"; }

# Redis's INFO cpu, commandstats and memory, into a file
redis_stats() {         # $1 file
    { redis_cli INFO cpu; redis_cli INFO commandstats; redis_cli INFO memory
    } | tr -d '\r' > "$1"
}

# The example's own history (if any) is turned off, so that "/" has none;
# its ws_relay_drain and worker_shutdown_timeout are replaced, or added.
start_history_servers() {   # $1 ws_relay_drain
    scen_sed=(-e "s/^\( *\)ws_relay_history .*;/\1ws_relay_history  off;/")
    if grep -q "^worker_shutdown_timeout " "$example"; then
        scen_sed+=(-e "s/^worker_shutdown_timeout .*;/worker_shutdown_timeout  $shutdown_timeout;/")
    else
        main_extra="worker_shutdown_timeout  $shutdown_timeout;"
    fi
    if [ -z "$drain_window" ]; then
        :
    elif grep -q "^ *ws_relay_drain " "$example"; then
        scen_sed+=(-e "s/^\( *\)ws_relay_drain .*;/\1ws_relay_drain  $1;/")
    else
        http_scen_extra="ws_relay_drain  $1;"
    fi
    server_extra="location /h/ { ws_relay;${history_params:+ ws_relay_history  $history_params;} }"
    start_servers
    main_extra=
    http_scen_extra=
    server_extra=
    scen_sed=()
}

# run_wsload with Redis's counters before and after
run_hist() {            # $1 id, $2 label, rest: wsload args
    local id=$1 label=$2
    shift 2
    redis_stats "$runs/$id.redis0"
    run_wsload "$id" "11. History and resume" "$label" "$@"
    redis_stats "$runs/$id.redis1"
}

# What Redis keeps for one user: its stream and meta hash, and the first
# entry as stored.
redis_keep() {          # $1 id, $2 user
    local key="ws_relay:h:{$2}" meta="ws_relay:m:{$2}"
    {
        echo "key $key"
        echo "xlen $(redis_cli XLEN "$key")"
        echo "memory_usage $(redis_cli MEMORY USAGE "$key" SAMPLES 0)"
        echo "meta_memory_usage $(redis_cli MEMORY USAGE "$meta" SAMPLES 0)"
        echo "pttl $(redis_cli PTTL "$key")"
        echo "meta_pttl $(redis_cli PTTL "$meta")"
    } > "$runs/$1.redis"
    redis_cli XRANGE "$key" - + COUNT 1 > "$runs/$1.entry"
    redis_cli HGETALL "$meta" > "$runs/$1.meta"
}

wait_file() {           # $1 file, $2 seconds, $3 pid that must live
    local i
    for i in $(seq $(($2 * 10))); do
        [ -e "$1" ] && return 0
        kill -0 "$3" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# 10000 idle connections and 20 chat pairs at 2000 msgs/s, all with
# --reconnect, on one location, while nginx reloads 5 times, 8 s apart.
reload_run() {          # $1 id, $2 ws_relay_drain, $3 history on|off
    local id=$1 drain=$2 h=$3 u=$url rc=0 i c0 c1 s0 s1 t0 t1 ipid cpid
    local rdy="$work/ready-$1" crdy="$work/ready-$1-chat" log mark args
    [ "$h" = on ] && u=$hist_url
    start_history_servers "$drain"
    log=$work/ngx1/logs/error.log
    mark=$(stat -c %s "$log")
    rm -f "$rdy" "$crdy"
    if [ "$quiet_wait" -gt 0 ]; then wait_quiet; fi

    log "$id: 10000 idle connections, --reconnect"
    "$wsload" connect -u "$u" -n 10000 --hold 3600 --reconnect \
        --ready-file "$rdy" --json "$runs/$id-idle.wsload.json" -q \
        > "$runs/$id-idle.txt" 2>&1 &
    ipid=$!
    bg_pids+=("$ipid")
    wait_file "$rdy" 60 "$ipid" || die "$id: idle connections not set up"
    sleep 2

    args="chat -u $u -P 20 -r 2000 -d $reload_dur --warmup 2 --drain 10 --reconnect --ready-file $crdy"
    log "$id: wsload $args"
    procsnap "$runs/$id.ps0"
    c0=$(cpu_line)
    s0=$(server_ns)
    redis_stats "$runs/$id.redis0"
    t0=$(date +%s%N)
    # shellcheck disable=SC2086
    "$wsload" $args --json "$runs/$id.wsload.json" -q > "$runs/$id.txt" 2>&1 &
    cpid=$!
    bg_pids+=("$cpid")
    wait_file "$crdy" 30 "$cpid" || die "$id: chat pairs not set up"

    sleep 6
    : > "$runs/$id.reloads"
    for i in 1 2 3 4 5; do
        date +%s%3N >> "$runs/$id.reloads"
        "$nginx" -p "$work/ngx1/" -c nginx.conf -s reload
        [ "$i" = 5 ] || sleep 8
    done

    wait "$cpid" || rc=$?
    unset 'bg_pids[-1]'
    t1=$(date +%s%N)
    s1=$(server_ns)
    c1=$(cpu_line)
    procsnap "$runs/$id.ps1"
    redis_stats "$runs/$id.redis1"
    stop_wsload "$ipid"
    unset 'bg_pids[-1]'
    curl -s -m 5 "http://127.0.0.1:$port/api/health" > "$runs/$id.health" \
        || true
    tail -c +"$((mark + 1))" "$log" > "$runs/$id.errors"
    sed 's/^/    /' "$runs/$id.txt"
    record "$id" "11. History and resume" \
        "20 pairs at 2000 msgs/s with 10000 idle connections, 5 reloads, ws_relay_drain $drain, history $h" \
        "$rc" "$c0" "$c1" \
        "{\"procs\":[\"$id.ps0\",\"$id.ps1\"],\"ours\":\"$(ours)\",\"server_ns\":[[${s0// /,}],[${s1// /,}]],\"wall_ns\":$((t1 - t0)),\"idle_connections\":10000,\"reload_run\":{\"drain\":\"$drain\",\"history\":\"$h\",\"idle\":\"$id-idle.wsload.json\",\"idle_command\":\"bench/wsload connect -u $u -n 10000 --hold 3600 --reconnect --ready-file $rdy\",\"shutdown_timeout\":\"$shutdown_timeout\"}}" \
        "$args"
    stop_servers
}

scenario_11() {
    local r h order plc sz n u pfx what
    start_history_servers "$drain_window"
    for r in $(seq "$history_rounds"); do
        # alternate the order, so a drift of the machine shows as a
        # difference between rounds rather than between on and off
        order="off on"
        [ $((r % 2)) = 0 ] && order="on off"
        for plc in same cross; do
            for h in $order; do
                u=$url
                [ "$h" = on ] && u=$hist_url
                run_hist "hist-cl-$plc-$h-$r" \
                    "50 pairs x window 16, $plc worker, history $h, round $r" \
                    chat -u "$u" -P 50 -w 16 -d "$dur" --placement "$plc"
            done
        done
        for h in $order; do
            u=$url
            [ "$h" = on ] && u=$hist_url
            run_hist "hist-rate-$h-$r" \
                "5000 msgs/s, cross worker, history $h, round $r" \
                chat -u "$u" -P 50 -r 5000 -d "$dur" --placement cross
        done
    done

    # Redis memory per kept message: one pair, n messages (the history
    # keeps the last "size"), texts of the default length or padded
    for sz in 0 1024; do
        for n in 500 2000; do
            pfx="hm$sz-$n"
            what="texts of $sz bytes"
            [ "$sz" = 0 ] && what="short texts (\"<seq>:<ns>\")"
            run_hist "hist-mem-$sz-$n" \
                "$n messages to one user, $what, history on" \
                chat -u "$hist_url" -P 1 -t 1 -r "$((n / 2))" -d 2 --warmup 0 \
                --size "$sz" --id-prefix "$pfx"
            redis_keep "hist-mem-$sz-$n" "$pfx-0-0-r0"
        done
    done
    stop_servers

    for r in $(seq "$history_rounds"); do
        reload_run "hist-reload-drain-on-$r" "$drain_window" on
        reload_run "hist-reload-nodrain-on-$r" 0 on
    done
    reload_run "hist-reload-drain-off-1" "$drain_window" off
}

# ------------------------------------------------------------------ main

install_missing nginx nginx-dev libhiredis-dev libjansson-dev zlib1g-dev \
                gcc make redis-server python3 curl procps util-linux \
    || die "packages missing"
# one suite at a time: they would share $work (and the ports)
mkdir -p "$bench/build"
exec 9> "$bench/build/suite.lock"
flock -n 9 || die "another run of the suite holds $bench/build/suite.lock"

rm -rf "$work"
mkdir -p "$runs" "$out"

if [ -n "${BENCH_MODULE:-}" ]; then
    [ -f "$module_so" ] || die "no such module: $module_so"
    module_so=$(realpath "$module_so")
    module_desc="${BENCH_MODULE_DESC:-$module_so}"
    build_mod=
else
    module_desc="this tree at $(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo '?')"
    if [ -n "$(git -C "$top" status --porcelain -- ngx_ws_relay_module config 2>/dev/null)" ]; then
        module_desc="$module_desc, module sources modified"
    fi
    build_mod="make -C $top --no-print-directory module"
fi
log "building ${build_mod:+the module, }wsload and wsfloor (log: $work/build.log)"
{ ${build_mod:-true} && make -C "$bench" --no-print-directory wsload wsfloor; } \
    > "$work/build.log" 2>&1 \
    || { tail -30 "$work/build.log"; die "build failed"; }
log "module: $module_desc"

quiet_wait=${BENCH_QUIET_WAIT:-0}
wait_quiet
cp "$runs/quiet.json" "$runs/quiet-start.json"
log "CPU used by other processes before the run: $(cat "$runs/quiet.json")"

t0=$(date +%s)
for s in $scenarios; do
    log "scenario $s"
    "scenario_$s"
done
log "scenarios done in $(( $(date +%s) - t0 )) s"

"$python" "$bench/suite-report.py" --runs "$runs" --out "$out" \
    --nginx "$("$nginx" -v 2>&1 | sed 's/.*: //')" \
    --redis "$(redis-server --version | awk '{print $3}' | sed 's/v=//')" \
    --http-extra "$http_extra" --duration "$dur" --history "$history_params" \
    --module "$module_desc ($(sha256sum "$module_so" | cut -c1-12))" \
    --command "${BENCH_COMMAND:-make bench}"
log "wrote $out/RESULTS.md and $out/results.json"
