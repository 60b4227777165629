# Shell helpers shared by the test and check scripts; source it.

# Installs the Debian packages that are missing, in one apt-get call;
# with NO_INSTALL=1 it fails instead.
install_missing() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null \
            | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "${NO_INSTALL:-0}" = 1 ]; then
        echo "missing packages: ${missing[*]}" >&2
        return 1
    fi
    echo "# installing: ${missing[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        -o DPkg::Lock::Timeout=600 "${missing[@]}"
}

# port_free PORT: nothing listens on 127.0.0.1:PORT
port_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# wait_port PORT: until something listens on 127.0.0.1:PORT, 10 s at most
wait_port() {
    local i
    for i in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# start_redis_on PORT DIR: redis-server on 127.0.0.1:PORT without
# persistence, its log in DIR, as a child of the calling shell (its pid in
# redis_pid); fails when the port is taken or Redis does not answer.
start_redis_on() {
    local port=$1 dir=$2
    if ! port_free "$port"; then
        echo "port $port is in use" >&2
        return 1
    fi
    mkdir -p "$dir"
    redis-server --port "$port" --bind 127.0.0.1 --save '' \
                 --appendonly no --dir "$dir" --maxclients 10000 \
                 --logfile "$dir/redis.log" &
    redis_pid=$!
    wait_port "$port"
}
