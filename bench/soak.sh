#!/usr/bin/env bash
# The soak test: nginx (2 workers, nginx.conf.example's directives) and
# Redis on test ports under bench/build/soak, then, in cycles, chat across
# workers and mixed chat with bench/wsload, and rounds of
# connect/register/disconnect; Redis is restarted twice on the way (once
# with SHUTDOWN NOSAVE during a chat run, once with SIGKILL while a
# connect round holds its users, who leave before Redis is back). The
# RSS of every worker is sampled all along. At the
# end: connection and user counts must be back to zero, Redis must hold
# no channel or presence of a user who left, no worker may have died, and
# the workers' RSS must level off. Writes bench/SOAK.md and
# bench/soak.json; exits non-zero when a check fails. Stops everything it
# started, however it ends.
#
#   bench/soak.sh            (or: make soak)
#
# Environment (defaults in brackets):
#   SOAK_PORT, SOAK_REDIS_PORT    ports [18391 16491], loopback only
#   SOAK_CYCLES        cycles of chat + connect rounds + mixed chat [10];
#                      Redis is restarted in cycles N/3 and 2N/3
#   SOAK_CHAT_S        seconds of cross-worker chat per cycle [25]
#   SOAK_MIXED_S       seconds of mixed chat (any placement) per cycle [15]
#   SOAK_PAIRS         chat pairs [50], window 16 each
#   SOAK_RESTART_RATE  msgs/s of the open-loop chat run Redis is shut down
#                      in [10000]
#   SOAK_CONNECT_N     connections per connect round [5000]
#   SOAK_CONNECT_ROUNDS  connect rounds per cycle [4]
#   SOAK_MIN_MESSAGES  chat messages to reach in all [1000000]
#   SOAK_MIN_CYCLES    connect/register/disconnect cycles to reach [200000]
#   SOAK_SAMPLE_S      seconds between RSS samples [3]
#   SOAK_MAX_S         no new step starts after this many seconds [1500]
#   SOAK_LEVEL_KIB, SOAK_LEVEL_PCT  RSS levels off when each worker's
#                      median idle RSS in the last quarter of the run is at
#                      most max(KIB, PCT% of it) above the second quarter's
#                      [2048 5]
#   SOAK_OUT           where SOAK.md and soak.json go [bench/]
#   SOAK_MODULE        the module to test [build/ngx_ws_relay_module.so]
#                      (SOAK_MODULE_DESC: what it is, for the report)

set -euo pipefail

bench=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$bench/.." && pwd)
. "$top/util/common.sh"

port=${SOAK_PORT:-18391}
redis_port=${SOAK_REDIS_PORT:-16491}
cycles=${SOAK_CYCLES:-10}
chat_s=${SOAK_CHAT_S:-25}
mixed_s=${SOAK_MIXED_S:-15}
pairs=${SOAK_PAIRS:-50}
restart_rate=${SOAK_RESTART_RATE:-10000}
conn_n=${SOAK_CONNECT_N:-5000}
conn_rounds=${SOAK_CONNECT_ROUNDS:-4}
min_msgs=${SOAK_MIN_MESSAGES:-1000000}
min_cycles=${SOAK_MIN_CYCLES:-200000}
sample_s=${SOAK_SAMPLE_S:-3}
max_s=${SOAK_MAX_S:-1500}
level_kib=${SOAK_LEVEL_KIB:-2048}
level_pct=${SOAK_LEVEL_PCT:-5}
out=${SOAK_OUT:-$bench}
module_so=${SOAK_MODULE:-$top/build/ngx_ws_relay_module.so}
if [ -n "${SOAK_MODULE:-}" ]; then
    module_desc=${SOAK_MODULE_DESC:-the module $SOAK_MODULE}
else
    module_desc="the module of commit $(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo '?')"
    git -C "$top" diff --quiet HEAD -- config ngx_ws_relay_module 2>/dev/null \
        || module_desc="$module_desc with uncommitted changes"
fi

nginx=${NGINX_BIN:-/usr/sbin/nginx}
python=/usr/bin/python3
wsload=$bench/wsload
work=$bench/build/soak
prefix=$work/nginx
steps=$work/steps
url=ws://127.0.0.1:$port/
api=http://127.0.0.1:$port/api

command_line="bench/soak.sh"
for v in SOAK_PORT SOAK_REDIS_PORT SOAK_CYCLES SOAK_CHAT_S SOAK_MIXED_S \
         SOAK_PAIRS SOAK_RESTART_RATE SOAK_CONNECT_N SOAK_CONNECT_ROUNDS SOAK_MIN_MESSAGES \
         SOAK_MIN_CYCLES SOAK_SAMPLE_S SOAK_MAX_S SOAK_LEVEL_KIB SOAK_LEVEL_PCT; do
    [ -n "${!v:-}" ] && command_line="$v=${!v} $command_line"
done

log() { printf '[soak %(%H:%M:%S)T] %s\n' -1 "$*"; }
die() { log "error: $*"; exit 1; }
now() { date +%s.%N; }

[ -f "$module_so" ] || die "$module_so is missing: run make first"
[ -x "$python" ] || die "$python is missing"
command -v redis-server >/dev/null && command -v redis-cli >/dev/null \
    || die "redis-server and redis-cli are needed (Debian: redis-server)"
command -v curl >/dev/null || die "curl is needed"
make -s -C "$bench" wsload >/dev/null


# ------------------------------------------------------ processes we own

redis_pid=
master=
sampler_pid=
bg_pid=

stop_all() {
    trap - EXIT INT TERM
    local i
    if [ -n "$bg_pid" ]; then
        kill -TERM "$bg_pid" 2>/dev/null || true
        wait "$bg_pid" 2>/dev/null || true
    fi
    if [ -n "$sampler_pid" ]; then
        kill -TERM "$sampler_pid" 2>/dev/null || true
        wait "$sampler_pid" 2>/dev/null || true
    fi
    if [ -n "$master" ]; then
        kill -QUIT "$master" 2>/dev/null || true
        for i in $(seq 100); do
            kill -0 "$master" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$master" 2>/dev/null; then
            for i in $(ps -o pid= --ppid "$master" 2>/dev/null); do
                kill -KILL "$i" 2>/dev/null || true
            done
            kill -KILL "$master" 2>/dev/null || true
        fi
        wait "$master" 2>/dev/null || true
    fi
    if [ -n "$redis_pid" ]; then
        kill -TERM "$redis_pid" 2>/dev/null || true
        wait "$redis_pid" 2>/dev/null || true
    fi
}

trap 'stop_all' EXIT
trap 'log interrupted; exit 130' INT TERM

start_redis() {
    start_redis_on "$redis_port" "$work/redis" \
        || die "redis did not start on port $redis_port"
}

rcli() { redis-cli -p "$redis_port" "$@"; }

# until every worker has Redis again (health "ok"); prints the seconds
wait_health() {
    local t0 i
    t0=$(now)
    for i in $(seq 300); do
        if curl -sf "$api/health" | grep -q '"status":"ok"'; then
            awk -v a="$(now)" -v b="$t0" 'BEGIN { printf "%.2f\n", a - b }'
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# $1: shutdown (SHUTDOWN NOSAVE) or kill (SIGKILL); Redis comes back
# empty, on the same port, after a second
restart_redis() {
    local how=$1 t0 back
    t0=$(now)
    log "redis: restart by $how"
    if [ "$how" = shutdown ]; then
        rcli shutdown nosave >/dev/null 2>&1 || true
    else
        kill -KILL "$redis_pid"
    fi
    wait "$redis_pid" 2>/dev/null || true
    redis_pid=
    sleep 1
    start_redis
    if back=$(wait_health); then
        log "redis: back, workers connected again after ${back} s"
    else
        back=-1
        aborted="the workers were not all back on Redis 30 s after the restart by $how"
        log "error: $aborted: stopping the schedule here"
    fi
    echo "$how $t0 $back" >> "$work/redis-restarts.txt"
}

write_conf() {
    local conf=$prefix/nginx.conf
    mkdir -p "$prefix"/{logs,temp,modules,html}
    cp "$module_so" "$prefix/modules/ngx_ws_relay_module.so"
    sed -e "s/^worker_processes .*/worker_processes  2;/" \
        -e "s/listen  3000 reuseport;/listen  127.0.0.1:$port reuseport;/" \
        -e "s/ws_relay_redis  127.0.0.1:6379;/ws_relay_redis  127.0.0.1:$redis_port;/" \
        -e "s/ws_relay_max_connections  4000;/ws_relay_max_connections  9000;/" \
        "$top/nginx.conf.example" > "$conf"
    grep -q "^worker_processes  2;" "$conf" \
        && grep -q "listen  127.0.0.1:$port reuseport;" "$conf" \
        && grep -q "ws_relay_redis  127.0.0.1:$redis_port;" "$conf" \
        && grep -q "ws_relay_max_connections  9000;" "$conf" \
        || die "nginx.conf.example changed: cannot derive $conf"
}

worker_pids() { ps -o pid= --ppid "$master" 2>/dev/null | tr -s ' \n' ' '; }

start_nginx() {
    port_free "$port" || die "port $port is in use"
    write_conf
    "$nginx" -p "$prefix/" -c nginx.conf -t -q
    "$nginx" -p "$prefix/" -c nginx.conf -g 'daemon off;' &
    master=$!
    wait_port "$port" || die "nginx did not start"
    wait_health >/dev/null || die "/api/health is not ok"
}

# every $sample_s seconds: time, worker pid, VmRSS (KiB), and the
# connections open then
sampler() {
    local t p rss conns
    trap 'exit 0' TERM
    # a server that stops answering must not stop the sampling
    set +e +o pipefail
    while :; do
        t=$(now)
        conns=$(curl -sf -m 2 "$api/connections" \
                | grep -o '"activeConnections":[0-9]*' | cut -d: -f2)
        for p in $(worker_pids); do
            rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null) \
                || continue
            [ -n "$rss" ] && echo "$t $p $rss ${conns:--1}"
        done
        sleep "$sample_s"
    done >> "$work/rss.txt"
}

# the workers' RSS with nothing connected: after each step ("s<n>") and
# each cycle ("c<n>")
idle_sample() {         # $1 label
    local i p
    for i in $(seq 100); do
        curl -sf -m 2 "$api/connections" | grep -q '"activeConnections":0,' \
            && break
        sleep 0.1
    done
    for p in $(worker_pids); do
        echo "$1 $(now) $p $(awk '/^VmRSS:/ {print $2}' "/proc/$p/status")"
    done >> "$work/idle.txt"
}


# ------------------------------------------------------------- the steps

step_no=0
msgs=0                  # chat messages received, all runs
conn_cycles=0           # connections registered and closed, all rounds
t_start=

# a step: its wsload JSON and a line in steps.txt:
#   n kind label start end rc redis_event
run_step() {            # $1 kind, $2 label, $3 redis event ("" or how),
                        # then the wsload arguments
    local kind=$1 label=$2 event=$3 n f t0 t1 rc=0
    shift 3
    step_no=$((step_no + 1))
    n=$(printf '%03d' "$step_no")
    f=$steps/$n-$kind
    t0=$(now)
    if [ -n "$event" ]; then
        # the restart falls in the middle of the run: after some seconds,
        # or ("how:ready") once every connection is registered
        if [ "${event#*:}" = ready ]; then
            set -- "$@" --ready-file "$f.ready"
        fi
        "$wsload" "$@" --json "$f.json" > "$f.txt" 2>&1 &
        bg_pid=$!
        if [ "${event#*:}" = ready ]; then
            local i
            for i in $(seq 600); do
                [ -e "$f.ready" ] && break
                kill -0 "$bg_pid" 2>/dev/null || break
                sleep 0.1
            done
        else
            sleep "$(( ${event#*:} ))"
        fi
        restart_redis "${event%%:*}"
        wait "$bg_pid" || rc=$?
        bg_pid=
    else
        # in the background, so that a TERM is handled at once
        "$wsload" "$@" --json "$f.json" > "$f.txt" 2>&1 &
        bg_pid=$!
        wait "$bg_pid" || rc=$?
        bg_pid=
    fi
    t1=$(now)
    echo "$n $kind $label $t0 $t1 $rc ${event%%:*}" >> "$work/steps.txt"
    [ -f "$f.json" ] || die "step $n ($kind) wrote no result: $(tail -3 "$f.txt")"
    local got
    got=$("$python" -c 'import json,sys; c=json.load(open(sys.argv[1]))["counters"]; print(c["received"] if sys.argv[2]=="chat" else c["close_clean"])' "$f.json" "$kind")
    if [ "$kind" = chat ]; then
        msgs=$((msgs + got))
    else
        conn_cycles=$((conn_cycles + got))
    fi
    idle_sample "s$n"
    log "step $n $kind $label: $(grep -m1 -E 'msgs/s received|registered in' "$f.txt" | sed 's/^ *//') [rc $rc]; total $msgs messages, $conn_cycles connect cycles"
}

chat_step() {           # $1 placement, $2 seconds, $3 redis event
    run_step chat "$1" "${3:-}" chat -u "$url" -P "$pairs" -w 16 \
             -d "$2" --warmup 1 --drain 3 --placement "$1" -q
}

# open loop at $restart_rate msgs/s: the pairs go on sending through the
# restart, so what is lost tells how long the users of the connections
# open across it went unrouted
chat_rate_step() {      # $1 placement, $2 seconds, $3 redis event
    run_step chat "$1" "${3:-}" chat -u "$url" -P "$pairs" \
             -r "$restart_rate" -d "$2" --warmup 1 --drain 3 \
             --placement "$1" -q
}

connect_step() {        # $1 redis event, $2 seconds to hold [0]
    run_step connect "$conn_n" "${1:-}" connect -u "$url" -n "$conn_n" \
             --hold "${2:-0}" --close-wait 5 -q
}

aborted=

over_time() {
    [ -n "$aborted" ] && return 0
    awk -v a="$(now)" -v b="$t_start" -v m="$max_s" 'BEGIN { exit !(a - b > m) }'
}


# ------------------------------------------------------------------ run

rm -rf "$work"
mkdir -p "$work/redis" "$steps"
: > "$work/steps.txt"
: > "$work/rss.txt"
: > "$work/idle.txt"
: > "$work/redis-restarts.txt"

log "nginx $("$nginx" -v 2>&1 | sed 's/.*: //'), $(redis-server --version | cut -d' ' -f3), 2 workers on 127.0.0.1:$port, Redis on $redis_port"
start_redis
start_nginx
pids_start=$(worker_pids)
t_start=$(now)
idle_sample c0

sampler &
sampler_pid=$!

cycle_shutdown=$(( (cycles + 2) / 3 ))
cycle_kill=$(( (2 * cycles + 2) / 3 ))
[ "$cycle_kill" -gt "$cycle_shutdown" ] || cycle_kill=$((cycle_shutdown + 1))

for c in $(seq "$cycles"); do
    over_time && break
    log "cycle $c of $cycles"

    # Redis SHUTDOWN NOSAVE in the middle of a cross-worker chat run
    if [ "$c" = "$cycle_shutdown" ]; then
        chat_rate_step cross "$chat_s" "shutdown:$((chat_s / 2))"
    else
        chat_step cross "$chat_s"
    fi

    for r in $(seq "$conn_rounds"); do
        [ -n "$aborted" ] && break
        # Redis killed once the second connect round has all its users
        # registered; they leave 1 s later, while Redis is still away
        if [ "$c" = "$cycle_kill" ] && [ "$r" = 2 ]; then
            connect_step "kill:ready" 1
        else
            connect_step
        fi
    done

    [ -n "$aborted" ] && break
    chat_step any "$mixed_s"
    idle_sample "c$c"
done

# top up to the targets, within the time bound
while [ "$msgs" -lt "$min_msgs" ] && ! over_time; do
    chat_step cross "$chat_s"
done
while [ "$conn_cycles" -lt "$min_cycles" ] && ! over_time; do
    connect_step
done
idle_sample end

kill -TERM "$sampler_pid" 2>/dev/null || true
wait "$sampler_pid" 2>/dev/null || true
sampler_pid=
t_end=$(now)


# ------------------------------------------------------- the end state

log "checking the end state"
for i in $(seq 150); do
    curl -sf -m 2 "$api/connections" > "$work/connections.json" || true
    grep -q '"activeConnections":0,' "$work/connections.json" \
        && ! grep -q '"users":[1-9]' "$work/connections.json" && break
    sleep 0.1
done
# presence writes travel after the last close: give them a moment
sleep 2
curl -sf -m 5 "$api/connections" > "$work/connections.json" || true
curl -sf -m 5 "$api/health" > "$work/health.json" || true
curl -sf -m 5 "$api/metrics" > "$work/metrics.txt" || true
echo "$aborted" > "$work/aborted.txt"

# (redis-cli --raw prints an empty array as an empty line)
{
    rcli --raw PUBSUB CHANNELS 'ws_relay:u:*' | grep -v '^$' > "$work/channels.txt" || true
    echo "channels $(wc -l < "$work/channels.txt")"
    head -20 "$work/channels.txt" | sed 's/^/channel /'
    rcli --raw --scan --pattern 'ws_relay:*' | grep -v '^$' | sort | while read -r k; do
        type=$(rcli --raw TYPE "$k")
        case $type in
            set)  size=$(rcli --raw SCARD "$k") ;;
            zset) size=$(rcli --raw ZCARD "$k") ;;
            *)    size=- ;;
        esac
        echo "key $k $type $size"
    done
    for node in $(rcli --raw ZRANGE ws_relay:nodes 0 -1); do
        echo "node $node $(rcli --raw PUBSUB NUMSUB "ws_relay:n:$node" | tail -1)"
    done
    echo "dbsize $(rcli --raw DBSIZE)"
} > "$work/redis-state.txt"

pids_end=$(worker_pids)

"$python" "$bench/soak-report.py" --work "$work" --out "$out" \
    --t-start "$t_start" --t-end "$t_end" \
    --pids-start "$pids_start" --pids-end "$pids_end" \
    --min-messages "$min_msgs" --min-cycles "$min_cycles" \
    --level-kib "$level_kib" --level-pct "$level_pct" \
    --restart-rate "$restart_rate" \
    --command "$command_line" --module "$module_desc" \
    --nginx "$("$nginx" -v 2>&1 | sed 's/.*: //')" \
    --redis "$(redis-server --version | cut -d' ' -f3 | sed 's/v=//')"
