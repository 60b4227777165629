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

# worker_user PATH...: the "user" line for an nginx that serves files or
# keeps temp files at PATH: "user root;" when nginx runs as root and its
# workers (nobody by default) cannot read every PATH, as when the tree is
# in root's home (/root is 0700); nothing otherwise, and the workers stay
# unprivileged.
worker_user() {
    local p
    [ "$(id -u)" -eq 0 ] || return 0
    for p in "$@"; do
        if ! runuser -u nobody -- test -r "$p" -a \( ! -d "$p" -o -x "$p" \) \
                2>/dev/null; then
            echo 'user root;'
            return 0
        fi
    done
}

# npm_deps DIR: Node.js and npm (Debian's nodejs and npm when either is
# missing), then DIR/node_modules as DIR/package-lock.json pins it. npm ci
# runs with --engine-strict, so a pinned package whose "engines" does not
# accept this node (Debian 12 ships Node 18) fails the install instead of
# the test; it runs again whenever the lock or the node changed since.
npm_deps() {
    local dir=$1 stamp
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        install_missing nodejs npm || return 1
    fi
    stamp="node $(node --version), lock $(sha256sum < "$dir/package-lock.json" | cut -c1-64)"
    [ "$(cat "$dir/node_modules/.installed-by-npm-deps" 2>/dev/null)" = "$stamp" ] \
        && return 0
    echo "# installing npm dependencies in $dir (node $(node --version), npm $(npm --version))"
    (cd "$dir" && npm ci --engine-strict --no-audit --no-fund --loglevel=error) \
        || return 1
    echo "$stamp" > "$dir/node_modules/.installed-by-npm-deps"
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

# --- Docker, without an image registry -------------------------------------

# docker_up LOG: dockerd, started when `docker info` fails (its output in
# LOG) and waited for, 60 s at most. Its pid goes in dockerd_pid, empty
# when a dockerd was running already (not ours to stop): see docker_down.
docker_up() {
    local log=$1 i
    dockerd_pid=
    command -v dockerd >/dev/null || install_missing docker.io || return 1
    docker info >/dev/null 2>&1 && return 0
    echo "# starting dockerd (log: $log)"
    dockerd >"$log" 2>&1 &
    dockerd_pid=$!
    for i in $(seq 1 60); do
        docker info >/dev/null 2>&1 && return 0
        kill -0 "$dockerd_pid" 2>/dev/null || break
        sleep 1
    done
    tail -20 "$log"
    return 1
}

# docker_down: stops the dockerd that docker_up started, unless
# KEEP_DOCKERD=1.
docker_down() {
    local i
    [ -n "${dockerd_pid:-}" ] && [ "${KEEP_DOCKERD:-0}" != 1 ] || return 0
    echo "# stopping dockerd ($dockerd_pid)"
    kill "$dockerd_pid" 2>/dev/null || true
    for i in $(seq 1 30); do
        kill -0 "$dockerd_pid" 2>/dev/null || break
        sleep 1
    done
    dockerd_pid=
}

# apt_mirror [security]: the host's Debian mirror (DEBIAN_MIRROR), or with
# "security" its security mirror (DEBIAN_SECURITY_MIRROR), from
# /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list.
apt_mirror() {
    local want=${1:-main} m
    if [ "$want" = security ]; then
        m=${DEBIAN_SECURITY_MIRROR:-}
    else
        m=${DEBIAN_MIRROR:-}
    fi
    if [ -z "$m" ] && [ -f /etc/apt/sources.list.d/debian.sources ]; then
        m=$(awk -v want="$want" '$1 == "URIs:" &&
                  (want == "security") == ($2 ~ /security/) { print $2; exit }' \
                /etc/apt/sources.list.d/debian.sources)
    fi
    if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
        m=$(awk -v want="$want" '$1 == "deb" && (want == "security") == ($0 ~ /security/) {
                     for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' \
                /etc/apt/sources.list)
    fi
    if [ -z "$m" ] && [ "$want" = security ]; then
        m=http://deb.debian.org/debian-security
    fi
    echo "${m:-http://deb.debian.org/debian}"
}

# debian_sources: the apt sources of the official debian:bookworm image
# (bookworm, bookworm-updates, bookworm-security), on the host's mirrors.
debian_sources() {
    cat <<_EOS_
Types: deb
URIs: $(apt_mirror)
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $(apt_mirror security)
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
_EOS_
}

# bookworm_image WORKDIR: the debian:bookworm image, made when it is
# missing with debootstrap (minbase, as the official image) from the
# host's mirror and `docker import`, with the official image's apt
# sources. Its root file system is built in WORKDIR (the path is in
# bookworm_rootfs until it is removed, for the caller's cleanup).
bookworm_image() {
    local work=$1 image=debian:bookworm
    docker image inspect "$image" >/dev/null 2>&1 && return 0
    install_missing debootstrap || return 1
    bookworm_rootfs=$(mktemp -d "$work/rootfs.XXXXXX")
    echo "# making $image with debootstrap from $(apt_mirror)"
    if ! debootstrap --variant=minbase bookworm "$bookworm_rootfs" \
             "$(apt_mirror)" >"$work/debootstrap.log" 2>&1; then
        tail -20 "$work/debootstrap.log"
        rm -rf "$bookworm_rootfs"; bookworm_rootfs=
        return 1
    fi
    rm -rf "$bookworm_rootfs"/var/cache/apt/archives/*.deb \
           "$bookworm_rootfs"/var/lib/apt/lists/*
    rm -f "$bookworm_rootfs/etc/apt/sources.list"
    debian_sources > "$bookworm_rootfs/etc/apt/sources.list.d/debian.sources"
    tar -C "$bookworm_rootfs" -c . | docker import - "$image" >/dev/null
    rm -rf "$bookworm_rootfs"; bookworm_rootfs=
    docker image inspect "$image" >/dev/null 2>&1
}

# probe_in CONTAINER PORT PATH|handshake: what a GET of PATH (or a
# WebSocket handshake with RFC 6455's sample key on /) gets from
# 127.0.0.1:PORT in the container within 2 s, with \r removed, through
# bash's /dev/tcp: a fresh container has no client installed for it
probe_in() {
    local c=$1 port=$2 req
    if [ "$3" != handshake ]; then
        req="GET $3 HTTP/1.0\\r\\nHost: 127.0.0.1\\r\\n\\r\\n"
    else
        req='GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n'
        req+='Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n'
        req+='Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n'
    fi
    docker exec "$c" bash -c "exec 3<>/dev/tcp/127.0.0.1/$port || exit 1
                              printf '$req' >&3
                              timeout 2 cat <&3" 2>/dev/null \
        | tr -d '\r' | tr '\0' ' ' || true
}

# TAP-style results of the check scripts, counted in $passed and $failed.
passed=0 failed=0
ok()     { passed=$((passed + 1)); echo "ok - $*"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $*"; }
say()    { echo "# $*"; }

# check_handshake PREFIX REPLY: the reply (headers with \r removed, then
# the first frames) to a handshake with RFC 6455's sample key is a 101
# with the matching Sec-WebSocket-Accept, followed by the welcome.
check_handshake() {
    local what=$1 hs=$2

    if head -1 <<<"$hs" | grep -q '^HTTP/1.1 101'; then
        ok "${what}WebSocket handshake: $(head -1 <<<"$hs")"
    else
        not_ok "${what}WebSocket handshake gets 101: $(head -1 <<<"$hs")"
    fi
    if grep -qi '^Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=$' \
            <<<"$hs"; then
        ok "${what}Sec-WebSocket-Accept is right"
    else
        not_ok "${what}Sec-WebSocket-Accept is right"
    fi
    if grep -aq '"type":"welcome"' <<<"$hs"; then
        ok "${what}welcome: $(grep -ao '{"type":"welcome"[^}]*}' <<<"$hs" \
                              | head -1)"
    else
        not_ok "${what}the welcome message after the handshake"
    fi
}
