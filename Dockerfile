# ngx_ws_relay_module in a container: Debian's nginx with the module, the
# example config, the demo page and the client library it imports.
#
#   docker build -t ngx-ws-relay .                 # nginx + module (default)
#   docker build -t ngx-ws-relay-redis --target redis .   # a Redis from Debian
#   docker compose up --build                      # both, see compose.yaml
#
# Stages: "build" compiles the module against the image's own nginx (the
# same recipe as the Makefile), "redis" is a plain Redis for registry-less
# setups, the last stage is the runtime image.

# --- build: the module, against this image's nginx -------------------------
FROM debian:bookworm AS build

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        nginx nginx-dev libhiredis-dev libjansson-dev zlib1g-dev gcc make \
        libc6-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY config ./config
COPY ngx_ws_relay_module ./ngx_ws_relay_module

# nginx-dev ships the headers, the build system and conf_flags (the exact
# configure flags of Debian's nginx, a bash array), so the module is binary
# compatible.
SHELL ["/bin/bash", "-c"]
RUN cp -r /usr/share/nginx/src /build \
 && cd /build \
 && . ./conf_flags \
 && ./configure "${NGX_CONF_FLAGS[@]}" --add-dynamic-module=/src \
 && make -f objs/Makefile modules \
 && cp objs/ngx_ws_relay_module.so /ngx_ws_relay_module.so

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

# --- runtime: nginx + the module + the example config + the demo and client
FROM debian:bookworm

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        nginx libhiredis0.14 libjansson4 \
 && rm -rf /var/lib/apt/lists/* \
 && ln -sf /dev/stdout /var/log/nginx/access.log \
 && ln -sf /dev/stderr /var/log/nginx/error.log

COPY --from=build /ngx_ws_relay_module.so /usr/lib/nginx/modules/
COPY nginx.conf.example /etc/nginx/nginx.conf.example
COPY demo /usr/share/nginx/html/demo
COPY client/ws-relay-client.js /usr/share/nginx/html/client/

# The example config, adapted: nginx's prefix here is /usr/share/nginx
# (modules/ -> /usr/lib/nginx/modules, html/), logs go to stderr/stdout,
# Redis is the host "redis" (resolved when nginx starts: start Redis first),
# and the API also answers the Docker networks (172.16.0.0/12), which is
# where requests from the host come from.  Publish the port on 127.0.0.1
# only (compose.yaml does), or mount your own /etc/nginx/nginx.conf.
ARG REDIS_ADDR=redis:6379
RUN sed -e 's|^error_log .*|error_log  stderr  notice;|' \
        -e 's|^pid .*|pid        /run/nginx.pid;|' \
        -e 's|access_log  logs/access.log;|access_log  /dev/stdout;|' \
        -e "s|ws_relay_redis  127.0.0.1:6379;|ws_relay_redis  ${REDIS_ADDR};|" \
        -e 's|^\( *\)allow  ::1;|&\n\1allow  172.16.0.0/12;  # Docker networks (the host)|' \
        /etc/nginx/nginx.conf.example > /etc/nginx/nginx.conf \
 && grep -q "ws_relay_redis  ${REDIS_ADDR};" /etc/nginx/nginx.conf \
 && grep -q 'allow  172.16.0.0/12;' /etc/nginx/nginx.conf \
 && ! grep -q '^[^#]*logs/' /etc/nginx/nginx.conf \
 && mkdir -p /usr/share/nginx/temp

EXPOSE 3000
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
