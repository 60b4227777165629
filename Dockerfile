# ngx_ws_relay_module in a container: Debian's nginx with the module, the
# example config, the demo page and the client library it imports.
#
#   docker build -t ngx-ws-relay .                 # nginx + module (default)
#   docker build -t ngx-ws-relay-redis --target redis .   # a Redis from Debian
#   docker compose up --build                      # both, see compose.yaml
#
# Stages: "build" makes the Debian package (libnginx-mod-http-ws-relay, as
# `make deb` does) against the image's own nginx, "redis" is a plain Redis
# for registry-less setups, the last stage is the runtime image, which
# installs the package with apt.

# --- build: the Debian package, against this image's nginx ------------------
FROM debian:bookworm AS build

# the build packages are those debian/control names
WORKDIR /src/pkg
COPY debian/control ./debian/control
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get build-dep -y --no-install-recommends ./ \
 && rm -rf /var/lib/apt/lists/*

COPY VERSION config nginx.conf.example README.md ./
COPY ngx_ws_relay_module ./ngx_ws_relay_module
COPY debian ./debian

# in /src: libnginx-mod-http-ws-relay_<VERSION>_<arch>.deb (and -dbgsym)
RUN dpkg-buildpackage -b -us -uc

# --- redis: a Redis server (compose.yaml builds it; redis:7 does as well) ---
FROM debian:bookworm AS redis

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        redis-server \
 && rm -rf /var/lib/apt/lists/*

USER redis
EXPOSE 6379
# No persistence: the relay keeps only live state in Redis.
CMD ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", \
     "--save", "", "--appendonly", "no", "--dir", "/tmp", "--logfile", ""]

# --- runtime: nginx + the module (the package) + the example config + the
#     demo and client
FROM debian:bookworm

# apt pulls nginx (the ABI the module was built for) and the libraries
COPY --from=build /src/libnginx-mod-http-ws-relay_*.deb /tmp/
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        /tmp/libnginx-mod-http-ws-relay_*.deb \
 && rm -rf /var/lib/apt/lists/* /tmp/*.deb \
 && ln -sf /dev/stdout /var/log/nginx/access.log \
 && ln -sf /dev/stderr /var/log/nginx/error.log

COPY demo /usr/share/nginx/html/demo
COPY client/ws-relay-client.js /usr/share/nginx/html/client/

# The example config as the package ships it, adapted: the module is
# loaded the Debian way (the package's link in /etc/nginx/modules-enabled),
# nginx's prefix here is /usr/share/nginx (html/), logs go to
# stderr/stdout, Redis is the host "redis" (resolved when nginx starts:
# start Redis first), and the API also answers the Docker networks
# (172.16.0.0/12), which is where requests from the host come from.
# Publish the port on 127.0.0.1 only (compose.yaml does), or mount your own
# /etc/nginx/nginx.conf.
ARG REDIS_ADDR=redis:6379
RUN sed -e 's|^load_module modules/ngx_ws_relay_module.so;|include  /etc/nginx/modules-enabled/*.conf;|' \
        -e 's|^error_log .*|error_log  stderr  notice;|' \
        -e 's|^pid .*|pid        /run/nginx.pid;|' \
        -e 's|access_log  logs/access.log;|access_log  /dev/stdout;|' \
        -e "s|ws_relay_redis  127.0.0.1:6379;|ws_relay_redis  ${REDIS_ADDR};|" \
        -e 's|^\( *\)allow  ::1;|&\n\1allow  172.16.0.0/12;  # Docker networks (the host)|' \
        /usr/share/doc/libnginx-mod-http-ws-relay/nginx.conf.example \
        > /etc/nginx/nginx.conf \
 && grep -q '^include  /etc/nginx/modules-enabled/\*.conf;' /etc/nginx/nginx.conf \
 && ! grep -q '^load_module' /etc/nginx/nginx.conf \
 && grep -q "ws_relay_redis  ${REDIS_ADDR};" /etc/nginx/nginx.conf \
 && grep -q 'allow  172.16.0.0/12;' /etc/nginx/nginx.conf \
 && ! grep -q '^[^#]*logs/' /etc/nginx/nginx.conf \
 && mkdir -p /usr/share/nginx/temp

EXPOSE 3000
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
