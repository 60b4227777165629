#!/usr/bin/env bash
# The Debian package on a fresh Debian 12, in new debian:bookworm containers:
#
#   1. build: `make deb` on a clean copy of the committed tree (`git
#      archive`), with only `make` installed beforehand; lintian finds no
#      error in the package (its warnings and notes are printed); the
#      package depends on the nginx ABI it was built against, on
#      libhiredis0.14 and libjansson4, and ships the README's server block;
#   2. install: in another new container, `apt-get install ./<the .deb>`
#      pulls nginx and the libraries, enables the module through
#      /etc/nginx/modules-enabled and triggers nginx's reload; the stock
#      /etc/nginx/nginx.conf plus the README's conf.d server block passes
#      `nginx -t`; nginx starts and answers /api/health with "status":"ok"
#      (a Redis runs in the container) and a WebSocket handshake with 101,
#      the right Sec-WebSocket-Accept and the welcome message;
#   3. purge: with the server block removed (as the README says), `apt-get
#      purge` leaves no file and no link of the package, and nginx passes
#      `nginx -t`, starts and serves its default site; then install,
#      remove (the link set aside, nginx -t still passing), install again
#      (the module enabled again) and purge.
#
# Containers are always removed; dockerd is started when it is not
# running (and stopped at the end, unless KEEP_DOCKERD=1); debian:bookworm
# is made with debootstrap when it is missing (as util/docker-check.sh).
# Inside a container everything uses its own ports (its own network
# namespace); nothing is published on the host. Prints "N passed, N
# failed"; exits non-zero on failure. Run as root on Debian 12.
#
#   util/deb-check.sh          # or: make deb-check
#
# Environment: REF (the commit to build, HEAD), DEB (a .deb to check
# instead of building one: step 1 then only lints it), BUILD_TIMEOUT
# (seconds for `make deb`, 1800), KEEP_DOCKERD (0). Logs: build/deb-check/.

set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
ref=${REF:-HEAD}
work=$top/build/deb-check
image=debian:bookworm
name=ws-relay-deb-$$
src=/root/ngx_ws_relay_module
pkg=libnginx-mod-http-ws-relay
docdir=/usr/share/doc/$pkg
link=/etc/nginx/modules-enabled/50-mod-http-ws-relay.conf
loadconf=/usr/share/nginx/modules-available/mod-http-ws-relay.conf
so=/usr/lib/nginx/modules/ngx_ws_relay_module.so
block=/etc/nginx/conf.d/ws-relay.conf

. "$top/util/common.sh"

mkdir -p "$work"
rm -f "$work"/*.log "$work"/*.deb "$work/src.tar"

containers=() dockerd_pid= bookworm_rootfs=
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ ${#containers[@]} -gt 0 ]; then
        docker rm -f "${containers[@]}" >/dev/null 2>&1 || true
    fi
    [ -n "$bookworm_rootfs" ] && rm -rf "$bookworm_rootfs"
    docker_down
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the tree: what is committed ---------------------------------------------
commit=$(git -C "$top" rev-parse --verify "$ref^{commit}")
if [ "$ref" = HEAD ] && [ -n "$(git -C "$top" status --porcelain --untracked-files=no)" ]; then
    say "the work tree has uncommitted changes: they are not checked"
fi
git -C "$top" archive --format=tar "$commit" > "$work/src.tar"
version=$(git -C "$top" show "$commit:VERSION")
say "checking $(git -C "$top" log -1 --format='%h %s' "$commit"), VERSION $version"

# the server block of the README's "Installing the Debian package"
readme=$(git -C "$top" show "$commit:README.md")
readme_block=$(awk '/^## Installing the Debian package/ { s = 1 }
                    s && /^```nginx$/ { b = 1; next }
                    b && /^```$/ { exit }
                    b { print }' <<<"$readme")
if [ -n "$readme_block" ]; then
    ok "the README shows the conf.d server block ($(wc -l <<<"$readme_block") lines)"
else
    not_ok "the README shows the conf.d server block"; exit 1
fi

# --- docker and the base image ------------------------------------------------
docker_up "$work/dockerd.log" || exit 1
bookworm_image "$work" || exit 1
say "base image: $image $(docker image inspect -f '{{.Id}}' "$image" | cut -c1-19)"

# new_container NAME: a new idle debian:bookworm container
new_container() {
    containers+=("$1")
    docker run -d --name "$1" "$image" sleep infinity >/dev/null
}

# in_c CONTAINER COMMAND...: runs a shell command in the container
in_c() {
    local c=$1
    shift
    docker exec "$c" bash -c "$*"
}

# apt_in CONTAINER LOG ARGS...: apt-get ARGS in the container, in /root
# (where the .deb is), its output in $work/LOG
apt_in() {
    local c=$1 log=$work/$2
    shift 2
    docker exec -w /root -e DEBIAN_FRONTEND=noninteractive "$c" \
        apt-get -y -q -o DPkg::Lock::Timeout=600 "$@" >>"$log" 2>&1
}

# --- 1. build and lint ----------------------------------------------------------
c=$name-build
new_container "$c"
apt_in "$c" build-setup.log update
if [ -n "${DEB:-}" ]; then
    deb=$(basename "$DEB")
    cp "$DEB" "$work/$deb"
    say "checking $DEB instead of building one"
else
    docker exec -i "$c" bash -c "mkdir -p $src && tar -x -C $src" < "$work/src.tar"
    apt_in "$c" build-setup.log install make \
        || { tail -20 "$work/build-setup.log"; exit 1; }
    say "make deb (log: $work/make-deb.log)"
    start=$SECONDS rc=0
    timeout "${BUILD_TIMEOUT:-1800}" docker exec "$c" bash -c "cd $src && make deb" \
        > "$work/make-deb.log" 2>&1 || rc=$?
    deb=${pkg}_${version}_$(in_c "$c" 'dpkg --print-architecture').deb
    if [ "$rc" -eq 0 ] && docker cp "$c:$src/build/deb/$deb" "$work/$deb" 2>/dev/null; then
        ok "make deb on a fresh Debian 12 builds $deb ($((SECONDS - start)) s)"
    else
        not_ok "make deb builds $deb (exit $rc)"
        tail -30 "$work/make-deb.log" | sed 's/^/#   /'
        exit 1
    fi
fi

docker cp "$work/$deb" "$c:/root/$deb"
apt_in "$c" build-setup.log install --no-install-recommends lintian \
    || { tail -20 "$work/build-setup.log"; exit 1; }
# every tag, notes and experimental ones too; exit 1 means errors, more
# means lintian itself failed
rc=0
in_c "$c" "lintian --pedantic --display-info --display-experimental /root/$deb" \
    > "$work/lintian.log" 2>&1 || rc=$?
tags=$(grep -E '^[EWIPX]: ' "$work/lintian.log" || true)
errors=$(grep -c '^E: ' <<<"$tags" || true)
lintian_version=$(in_c "$c" 'lintian --version' | awk '{ print $2 }') || true
if [ "$rc" -eq 0 ] && [ "$errors" -eq 0 ]; then
    ok "lintian $lintian_version --pedantic: no error ($(grep -c . <<<"$tags" || true) tags)"
else
    not_ok "lintian $lintian_version: no error ($errors errors, exit $rc)"
    grep -v -E '^[EWIPXN]: ' "$work/lintian.log" | sed 's/^/#   /' || true
fi
if [ -n "$tags" ]; then
    sed 's/^/#   /' <<<"$tags"
fi

# the ABI of the nginx it was built against (or, for DEB, of bookworm's)
abi=$(in_c "$c" "dpkg-query -W -f='\${Provides}' nginx" 2>/dev/null \
          | grep -o 'nginx-abi-[^ ,]*' || true)
[ -n "$abi" ] || abi=$(in_c "$c" 'apt-cache show nginx' \
                           | grep -o 'nginx-abi-[^ ,]*' | sort -u | head -1 || true)
[ -n "$abi" ] || abi="nginx-abi-(none provided by nginx)"
docker rm -f "$c" >/dev/null

depends=$(dpkg-deb -f "$work/$deb" Depends)
say "Depends: $depends"
for d in "$abi" libhiredis0.14 libjansson4; do
    if grep -Eq "(^|, )$d( |,|$)" <<<"$depends"; then
        ok "the package depends on $d"
    else
        not_ok "the package depends on $d"
    fi
done

contents=$(dpkg-deb -c "$work/$deb" | awk '{ print $6 }')
for f in "$so" "$loadconf" "$docdir/README.Debian" "$docdir/nginx.conf.example" \
         "$docdir/ws-relay.conf" "$docdir/copyright" "$docdir/changelog.gz"; do
    if grep -qx "\\.$f" <<<"$contents"; then
        ok "the package ships $f"
    else
        not_ok "the package ships $f"
    fi
done

# the server block: the README's, the one shipped, the one README.Debian shows
shipped=$(dpkg-deb --fsys-tarfile "$work/$deb" | tar -xO ".$docdir/ws-relay.conf")
if [ "$shipped" = "$readme_block" ]; then
    ok "$docdir/ws-relay.conf is the README's server block"
else
    not_ok "$docdir/ws-relay.conf is the README's server block"
    diff <(echo "$readme_block") <(echo "$shipped") | sed 's/^/#   /' || true
fi
# (README.Debian's indented lines unindented, blank lines kept, others cut)
shown=$(dpkg-deb --fsys-tarfile "$work/$deb" | tar -xO ".$docdir/README.Debian" \
            | awk '/^    / { print substr($0, 5); next }
                   /^$/ { print; next }
                   { print "--" }')
if [[ "$shown" == *"$readme_block"* ]]; then
    ok "README.Debian shows the same server block"
else
    not_ok "README.Debian shows the same server block"
fi

# --- 2. install and use -----------------------------------------------------------
c=$name-run
new_container "$c"
docker cp "$work/$deb" "$c:/root/$deb"
apt_in "$c" install.log update

installed() {   # installed CONTAINER PACKAGE
    docker exec "$1" dpkg-query -W -f='${Status}' "$2" 2>/dev/null \
        | grep -q 'install ok installed'
}

before=
for p in nginx libhiredis0.14 libjansson4; do
    installed "$c" "$p" && before+=" $p"
done
[ -z "$before" ] || say "already in the image:$before"

if apt_in "$c" install.log install --no-install-recommends "./$deb"; then
    ok "apt-get install ./$deb"
else
    not_ok "apt-get install ./$deb"; tail -20 "$work/install.log" | sed 's/^/#   /'; exit 1
fi
for p in nginx libhiredis0.14 libjansson4; do
    if installed "$c" "$p"; then
        ok "it pulled $p ($(docker exec "$c" dpkg-query -W -f='${Version}' "$p"))"
    else
        not_ok "it pulled $p"
    fi
done
if grep -q '^Processing triggers for nginx' "$work/install.log"; then
    ok "the install triggers nginx's reload (nginx-reload)"
else
    not_ok "the install triggers nginx's reload (nginx-reload)"
fi

# enabled MODE: the module's link is MODE: "on" (the link to the load
# file), "removed" (set aside as .removed) or "gone" (neither)
enabled() {
    local got
    got=$(in_c "$c" "if [ -L $link ]; then echo on \$(readlink $link);
                     elif [ -L $link.removed ]; then echo removed;
                     else echo gone; fi")
    case $1 in
        on) [ "$got" = "on $loadconf" ] ;;
        *)  [ "$got" = "$1" ] ;;
    esac
}

if enabled on; then
    ok "enabled: $link -> $loadconf"
else
    not_ok "enabled: $link -> $loadconf"
fi
loadline=$(in_c "$c" "cat $loadconf") || loadline=
if [ "$loadline" = 'load_module modules/ngx_ws_relay_module.so;' ]; then
    ok "$loadconf: $loadline"
else
    not_ok "$loadconf holds the load_module line: $loadline"
fi

# the stock nginx.conf: unchanged since nginx-common installed it, and it
# includes modules-enabled/ and conf.d/
stock_sum=$(in_c "$c" "dpkg-query -W -f='\${Conffiles}' nginx-common" \
                | awk '$1 == "/etc/nginx/nginx.conf" { print $2 }') || stock_sum=
if [ -n "$stock_sum" ] \
   && [ "$(in_c "$c" 'md5sum < /etc/nginx/nginx.conf' | cut -c1-32 || true)" = "$stock_sum" ] \
   && in_c "$c" "grep -q '^include /etc/nginx/modules-enabled/\*.conf;' /etc/nginx/nginx.conf
                 grep -q '^[[:space:]]*include /etc/nginx/conf.d/\*.conf;' /etc/nginx/nginx.conf"; then
    ok "/etc/nginx/nginx.conf is the stock one (includes modules-enabled/ and conf.d/)"
else
    not_ok "/etc/nginx/nginx.conf is the stock one"
fi

# nginx_start: starts nginx (Debian's paths, as its init script does);
# nginx_stop: stops it, if it runs, and waits until its master removed
# the pid file (the container's first process, a plain sleep, reaps
# nothing: the master stays a zombie, which kill -0 cannot tell)
nginx_stop() {
    in_c "$c" 'pid=$(cat /run/nginx.pid 2>/dev/null) || exit 0
               kill -QUIT "$pid" 2>/dev/null || exit 0
               for i in $(seq 100); do [ -e /run/nginx.pid ] || exit 0; sleep 0.1; done
               exit 1'
}
nginx_start() {
    in_c "$c" 'nginx' > "$work/nginx-start.log" 2>&1
}
nginx_t() {   # nginx_t LOG
    in_c "$c" 'nginx -t' > "$work/$1" 2>&1
}

docker exec -i "$c" bash -c "cat > $block" <<<"$readme_block"
if nginx_t nginx-t-block.log; then
    ok "nginx -t: the stock nginx.conf plus the README's block in $block"
else
    not_ok "nginx -t: the stock nginx.conf plus the README's block"
    sed 's/^/#   /' "$work/nginx-t-block.log"
fi

if apt_in "$c" redis.log install --no-install-recommends redis-server \
   && in_c "$c" "redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' \
                     --appendonly no --dir /tmp --logfile /tmp/redis.log
                 for i in \$(seq 50); do [ \"\$(redis-cli ping 2>/dev/null)\" = PONG ] && exit 0; sleep 0.1; done
                 exit 1"; then
    ok "redis-server runs in the container (127.0.0.1:6379)"
else
    not_ok "redis-server runs in the container"
fi

nginx_stop || true
if nginx_start; then
    ok "nginx starts with the module"
else
    not_ok "nginx starts with the module"; sed 's/^/#   /' "$work/nginx-start.log"
fi

health=
for _ in $(seq 1 50); do
    health=$(probe_in "$c" 3000 /api/health)
    grep -q '"status":"ok"' <<<"$health" && break
    sleep 0.2
done
if grep -q '"status":"ok"' <<<"$health"; then
    ok "GET /api/health: $(tail -1 <<<"$health" | cut -c1-120)..."
else
    not_ok "GET /api/health answers \"status\":\"ok\": $(tail -1 <<<"$health")"
fi

check_handshake "" "$(probe_in "$c" 3000 handshake)"

# --- 3. purge, then remove and install again ------------------------------------
# what_is_left: the package's files and links still on disk
what_is_left() {
    in_c "$c" "for f in $so $loadconf $link $link.removed $docdir; do
                   [ -e \$f ] || [ -L \$f ] && echo \$f
               done; true" | xargs
}

# the README's order: the block goes, nginx reloads, then the package
if in_c "$c" "rm $block && nginx -s reload" > "$work/reload.log" 2>&1; then
    ok "the server block removed, nginx reloaded"
else
    not_ok "the server block removed, nginx reloaded"; sed 's/^/#   /' "$work/reload.log"
fi
if apt_in "$c" purge.log purge "$pkg"; then
    ok "apt-get purge $pkg"
else
    not_ok "apt-get purge $pkg"; tail -20 "$work/purge.log" | sed 's/^/#   /'
fi
left=$(what_is_left)
if [ -z "$left" ] && ! docker exec "$c" dpkg-query -W "$pkg" >/dev/null 2>&1; then
    ok "purged: no file, no link, no dpkg record of the package"
else
    not_ok "purged: no file, no link, no dpkg record (left: ${left:-the dpkg record})"
fi
if nginx_t nginx-t-purged.log; then
    ok "nginx -t passes after the purge"
else
    not_ok "nginx -t passes after the purge"; sed 's/^/#   /' "$work/nginx-t-purged.log"
fi
if nginx_stop && nginx_start \
   && head -1 <<<"$(probe_in "$c" 80 /)" | grep -q '^HTTP/1.1 200'; then
    ok "nginx starts after the purge and serves its default site"
else
    not_ok "nginx starts after the purge and serves its default site"
    sed 's/^/#   /' "$work/nginx-start.log"
fi
if [ -z "$(probe_in "$c" 3000 /api/health)" ]; then
    ok "nothing answers on 3000 any more"
else
    not_ok "nothing answers on 3000 any more"
fi
nginx_stop || true

# remove keeps the link aside, a new install brings it back
if apt_in "$c" cycle.log install "./$deb" && enabled on; then
    ok "installed again: enabled"
else
    not_ok "installed again: enabled"
fi
if apt_in "$c" cycle.log remove "$pkg" && enabled removed \
   && [ "$(what_is_left)" = "$link.removed" ]; then
    ok "apt-get remove: the link set aside as $link.removed, no file left"
else
    not_ok "apt-get remove: the link set aside, no file left (left: $(what_is_left))"
fi
if nginx_t nginx-t-removed.log; then
    ok "nginx -t passes after apt-get remove"
else
    not_ok "nginx -t passes after apt-get remove"; sed 's/^/#   /' "$work/nginx-t-removed.log"
fi
if apt_in "$c" cycle.log install "./$deb" && enabled on; then
    ok "installed after remove: enabled again"
else
    not_ok "installed after remove: enabled again"
fi
if apt_in "$c" cycle.log purge "$pkg" && [ -z "$(what_is_left)" ]; then
    ok "apt-get purge after that: nothing left"
else
    not_ok "apt-get purge after that: nothing left (left: $(what_is_left))"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
