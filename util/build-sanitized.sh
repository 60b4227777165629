#!/usr/bin/env bash
# Builds nginx from Debian's nginx source with the module compiled in
# statically, for memory checking:
#
#   util/build-sanitized.sh asan       ASan + UBSan     -> build/asan/sbin/nginx
#   util/build-sanitized.sh valgrind   plain -O1 -g     -> build/valgrind/sbin/nginx
#
# Both are built --with-compat, --with-debug and the http modules the tests
# use, with -DNGX_DEBUG_PALLOC=1 so that every pool allocation is a malloc
# of its own (bounds errors inside pools become visible to ASan/memcheck).
#
# The source is Debian's (patches applied): `apt-get source nginx/bookworm`
# into build/nginx-src/, after adding deb-src lines (a sources file of its
# own) when apt has none. NGINX_SOURCE=/path/to/nginx-1.22.1 uses an
# existing tree instead.
#
# EXTRA_CC_OPT is appended to the compiler flags; BUILD_NAME (default: the
# flavour) names the output directory under build/.
#
# Re-running rebuilds only what changed (make tracks the module sources);
# configure runs again when its flags or the module's `config` change.

set -euo pipefail

flavour=${1:-asan}
top=$(cd "$(dirname "$0")/.." && pwd)
build=$top/build
out=$build/${BUILD_NAME:-$flavour}
jobs=${JOBS:-$(nproc)}

case $flavour in
asan)
    cc_opt="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined"
    cc_opt+=" -fno-sanitize-recover=undefined"
    # recoverable so that util/ubsan.supp can apply; UBSAN_OPTIONS=
    # halt_on_error=1 keeps what is not suppressed fatal
    cc_opt+=" -fsanitize-recover=nonnull-attribute -DNGX_DEBUG_PALLOC=1"
    ld_opt="-fsanitize=address,undefined"
    ;;
valgrind)
    cc_opt="-O1 -g -fno-omit-frame-pointer -DNGX_DEBUG_PALLOC=1"
    ld_opt=""
    ;;
*)
    echo "usage: $0 asan|valgrind" >&2
    exit 2
    ;;
esac

cc_opt+=${EXTRA_CC_OPT:+ $EXTRA_CC_OPT}

log() { echo "build-sanitized: $*"; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# apt needs deb-src lines for `apt-get source`; add them next to the deb
# lines already configured, in a file of our own.
ensure_deb_src() {
    if grep -rqsE '^\s*(Types:.*\bdeb-src\b|deb-src\s)' \
            /etc/apt/sources.list /etc/apt/sources.list.d/; then
        return 0
    fi

    log "adding deb-src lines to apt's sources"

    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        sed -E 's/^Types:.*/Types: deb-src/' \
            /etc/apt/sources.list.d/debian.sources \
            | as_root tee /etc/apt/sources.list.d/ws-relay-deb-src.sources \
            >/dev/null
    elif [ -f /etc/apt/sources.list ]; then
        sed -nE 's/^\s*deb\s/deb-src /p' /etc/apt/sources.list \
            | as_root tee /etc/apt/sources.list.d/ws-relay-deb-src.list \
            >/dev/null
    else
        echo "build-sanitized: no apt sources to derive deb-src lines from" >&2
        exit 1
    fi

    as_root apt-get update -q
}

install_missing() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null \
            | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing ${missing[*]}"
    as_root apt-get update -q
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q \
        -o DPkg::Lock::Timeout=600 "${missing[@]}"
}

# Debian's nginx source, patched: build/nginx-src/nginx-<version>
fetch_source() {
    if [ -n "${NGINX_SOURCE:-}" ]; then
        src=$(cd "$NGINX_SOURCE" && pwd)
        return 0
    fi

    src=$(ls -d "$build"/nginx-src/nginx-[0-9]*/ 2>/dev/null | head -1 || true)
    src=${src%/}
    if [ -n "$src" ] && [ -x "$src/configure" ]; then
        return 0
    fi

    install_missing dpkg-dev
    ensure_deb_src

    rm -rf "$build/nginx-src.tmp"
    mkdir -p "$build/nginx-src.tmp"
    log "apt-get source nginx/bookworm"
    # deb-src lines present but their Sources lists never fetched: update
    (cd "$build/nginx-src.tmp" && apt-get source -q nginx/bookworm) || {
        as_root apt-get update -q
        (cd "$build/nginx-src.tmp" && apt-get source -q nginx/bookworm)
    }
    rm -rf "$build/nginx-src"
    mv "$build/nginx-src.tmp" "$build/nginx-src"

    src=$(ls -d "$build"/nginx-src/nginx-[0-9]*/ | head -1)
    src=${src%/}
}

install_missing gcc make libpcre2-dev libssl-dev zlib1g-dev \
    libhiredis-dev libjansson-dev $([ "$flavour" = valgrind ] && echo valgrind)
fetch_source

tree=$out/nginx
conf_args=(
    --prefix="$out"
    --conf-path="$out/conf/nginx.conf"
    --error-log-path=stderr
    --http-log-path="$out/logs/access.log"
    --pid-path="$out/logs/nginx.pid"
    --lock-path="$out/logs/nginx.lock"
    --http-client-body-temp-path="$out/temp/body"
    --http-proxy-temp-path="$out/temp/proxy"
    --http-fastcgi-temp-path="$out/temp/fastcgi"
    --http-uwsgi-temp-path="$out/temp/uwsgi"
    --http-scgi-temp-path="$out/temp/scgi"
    --with-compat
    --with-debug
    --with-pcre-jit
    --with-http_ssl_module
    --with-http_realip_module
    --with-http_auth_request_module
    --with-http_stub_status_module
    --with-cc-opt="$cc_opt"
    --with-ld-opt="$ld_opt"
    --add-module="$top"
)

# configure again when the flags, the source or the module's config change
stamp="$src ${conf_args[*]} $(md5sum < "$top/config")"

if [ ! -f "$tree/objs/Makefile" ] || [ "$(cat "$tree/.configured" 2>/dev/null)" != "$stamp" ]
then
    log "configuring $flavour nginx from $src"
    rm -rf "$tree"
    mkdir -p "$out"
    cp -a "$src" "$tree"
    (cd "$tree" && ./configure "${conf_args[@]}") > "$out/configure.log" 2>&1 || {
        tail -30 "$out/configure.log" >&2
        exit 1
    }
    printf '%s' "$stamp" > "$tree/.configured"
fi

log "building $flavour nginx"
make -C "$tree" -f objs/Makefile -j"$jobs" > "$out/make.log" 2>&1 || {
    grep -E 'error|Error' -A3 "$out/make.log" | head -60 >&2
    exit 1
}

mkdir -p "$out/sbin" "$out/logs" "$out/temp" "$out/conf"
cp "$tree/objs/nginx" "$out/sbin/nginx.tmp"
mv -f "$out/sbin/nginx.tmp" "$out/sbin/nginx"
log "$out/sbin/nginx"
