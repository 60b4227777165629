# ngx_ws_relay_module: build, test and run.
#
#   make          build the dynamic module: build/ngx_ws_relay_module.so
#   make test     run every test suite (installs missing packages)
#   make run      nginx + a local Redis on nginx.conf.example, foreground
#   make fuzz     run the libFuzzer targets for a bounded time
#   make e2e      the demo page in headless Chromium (part of make test)
#   make client-test  the client library in Node and in headless Chromium
#                     (part of make test)
#   make deb      the Debian package: build/deb/libnginx-mod-http-ws-relay_*.deb
#   make deb-check     build it, lint it, install, use and purge it in new
#                      debian:bookworm containers (Docker)
#   make docker-check  build the images, run them, check health + handshake
#   make fresh-check   make test and make run in new debian:bookworm
#                      containers on the committed tree (Docker)
#   make test-asan      the t/ suites against nginx built with ASan, UBSan
#                       and LeakSanitizer, the module compiled in (in CI)
#   make test-valgrind  the t/ suites with nginx under valgrind (slow)
#   make bench    the benchmark suite: bench/RESULTS.md, bench/results.json
#   make soak     the soak test, about 8 minutes: bench/SOAK.md, bench/soak.json

SHELL := /bin/bash

NGINX_SRC   ?= /usr/share/nginx/src
NGINX_BIN   ?= /usr/sbin/nginx
BUILD       := $(CURDIR)/build
NGX_BUILD   := $(BUILD)/nginx
MODULE_SO   := $(BUILD)/ngx_ws_relay_module.so
SOURCES     := config $(wildcard ngx_ws_relay_module/*.[ch])

# Debian packages each target needs; installed when missing.
BUILD_PKGS  := nginx nginx-dev libhiredis-dev libjansson-dev zlib1g-dev \
               libdeflate-dev gcc make
TEST_PKGS   := redis-server libtest-base-perl libtest-longstring-perl \
               libio-socket-ssl-perl openssl
FUZZ_PKGS   := clang libclang-rt-14-dev
DEB_PKGS    := $(BUILD_PKGS) build-essential debhelper dpkg-dev

TEST_PORT       ?= 1984
TEST_REDIS_PORT ?= 6399
FUZZ_SECONDS    ?= 60

# The Debian package, its version from VERSION, built in a copy of what it
# needs (dpkg-buildpackage writes into the tree and next to it).
VERSION     := $(shell cat VERSION)
DEB_NAME    := libnginx-mod-http-ws-relay
DEB_DIR     := $(BUILD)/deb
DEB         := $(DEB_DIR)/$(DEB_NAME)_$(VERSION)_$(shell dpkg --print-architecture).deb
DEB_SOURCES := VERSION config nginx.conf.example README.md ngx_ws_relay_module \
               debian client

.PHONY: all module deps test-deps test test-asan test-valgrind run fuzz \
        e2e client-test deb deb-check docker-check fresh-check bench soak \
        clean

all: module

module: $(MODULE_SO)

define install_missing
	@missing=$$(for p in $(1); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null \
	        | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	    echo "installing:" $$missing; \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -q -o DPkg::Lock::Timeout=600 $$missing; \
	fi
endef

deps:
	$(call install_missing,$(BUILD_PKGS))

test-deps: deps
	$(call install_missing,$(TEST_PKGS))

# configured aside, then moved into place: a build never sees half a tree
$(NGX_BUILD)/objs/Makefile: config
	@$(MAKE) --no-print-directory deps
	@mkdir -p $(BUILD)
	@tmp=$$(mktemp -d $(BUILD)/nginx.XXXXXX) \
	 && cp -rT $(NGINX_SRC) $$tmp && cd $$tmp && . ./conf_flags \
	 && { ./configure "$${NGX_CONF_FLAGS[@]}" \
	          --add-dynamic-module=$(CURDIR) > configure.log 2>&1 \
	      || { cat configure.log; rm -rf $$tmp; exit 1; }; } \
	 && rm -rf $(NGX_BUILD) && mv $$tmp $(NGX_BUILD)

# the configured tree, by the name t/unit and fuzz/ ask for
$(NGX_BUILD)/Makefile: $(NGX_BUILD)/objs/Makefile

$(MODULE_SO): $(NGX_BUILD)/objs/Makefile $(SOURCES)
	$(MAKE) -C $(NGX_BUILD) -f objs/Makefile modules
	cp $(NGX_BUILD)/objs/ngx_ws_relay_module.so $@.tmp && mv -f $@.tmp $@

test: test-deps module
	$(MAKE) -C t/unit test
	$(MAKE) -C bench test
	TEST_NGINX_BINARY=$(NGINX_BIN) \
	TEST_NGINX_LOAD_MODULES=$(MODULE_SO) \
	TEST_NGINX_SERVER_PORT=$(TEST_PORT) \
	TEST_NGINX_REDIS_PORT=$(TEST_REDIS_PORT) \
	PERL5LIB=$${PERL5LIB:+$$PERL5LIB:}$(CURDIR)/t/lib \
	    prove -r t/
	MODULE_SO=$(MODULE_SO) t/interop/run.sh
	$(MAKE) e2e
	$(MAKE) client-test

# TESTS="t/001-handshake.t ..." runs only those files
TESTS ?=

test-asan: test-deps
	TEST_NGINX_SERVER_PORT=$(TEST_PORT) TEST_NGINX_REDIS_PORT=$(TEST_REDIS_PORT) \
	    util/test-sanitized.sh asan $(TESTS)

test-valgrind: test-deps
	TEST_NGINX_SERVER_PORT=$(TEST_PORT) TEST_NGINX_REDIS_PORT=$(TEST_REDIS_PORT) \
	    util/test-sanitized.sh valgrind $(TESTS)

e2e: test-deps module
	MODULE_SO=$(MODULE_SO) t/e2e/run.sh

client-test: test-deps module
	MODULE_SO=$(MODULE_SO) t/client/run.sh

deb: $(DEB)

$(DEB): $(SOURCES) VERSION nginx.conf.example README.md \
        $(shell find debian -type f)
	$(call install_missing,$(DEB_PKGS))
	rm -rf $(DEB_DIR) && mkdir -p $(DEB_DIR)/src
	cp -r $(DEB_SOURCES) $(DEB_DIR)/src/
	cd $(DEB_DIR)/src && dpkg-buildpackage -b -us -uc
	@test -f $@ && echo "built $@"

deb-check:
	util/deb-check.sh

docker-check:
	util/docker-check.sh

fresh-check:
	util/fresh-debian-check.sh

bench: test-deps module
	$(MAKE) -C bench wsload
	bench/run-suite.sh

soak: test-deps module
	$(call install_missing,curl python3)
	$(MAKE) -C bench wsload
	bench/soak.sh

run: test-deps module
	util/run-server.sh

fuzz: module
	$(call install_missing,$(FUZZ_PKGS))
	$(MAKE) -C fuzz run SECONDS=$(FUZZ_SECONDS)

clean:
	rm -rf $(BUILD) t/servroot* t/e2e/build t/client/build
	$(MAKE) -C bench clean
