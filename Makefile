# mod_isr — build, test and demo targets.
#
#   make            build .libs/mod_isr.so with apxs
#   make deps       apt-get install what is missing (only when something is missing; needs root)
#   make test       deps + build + the pytest suite in tests/ (the fast everyday target)
#   make check      what CI runs: make test, asan, fuzz, a short soak, deb-check
#   make asan       the module built with ASan+UBSan (build/asan/), the whole suite against it
#   make fuzz       build every fuzz/fuzz_*.c with libFuzzer, run each for FUZZ_SECONDS
#   make soak       SOAK_SECONDS (300) of mixed traffic, restarts and origin faults, checked
#   make run        deps + build + demo origin on :8081 + httpd in the foreground on :8080
#   make install    module into `apxs -q LIBEXECDIR`, isr.load/isr.conf into mods-available
#   make uninstall  undo `make install`
#   make deb        the Debian package libapache2-mod-isr (debian/), into dist/
#   make deb-check  make deb + lintian; as root also its install, a2enmod and purge on this machine
#   make bench      bench/run.sh            make bench-peers   bench/install-peers.sh
#   make cache-tests        the HTTP cache conformance suite (cache-tests.fyi) against mod_isr
#   make cache-tests-peers  the same against every installed peer cache too, one table
#   make clean      remove build products and test caches

SHELL := /bin/bash
comma := ,

# --- tools -------------------------------------------------------------------
# apxs is called apxs (or apxs2 on older Debian layouts); both are in apache2-dev.
APXS    ?= $(firstword $(shell command -v apxs apxs2 /usr/bin/apxs /usr/bin/apxs2 2>/dev/null) apxs)
APACHE2 ?= $(firstword $(shell command -v apache2 /usr/sbin/apache2 httpd 2>/dev/null) /usr/sbin/apache2)
# Debian's interpreter: the `python3` first on PATH may be another one without pytest.
PYTHON  ?= /usr/bin/python3
PYTEST  ?= $(PYTHON) -m pytest
PYTEST_ARGS ?= -v

# --- build -------------------------------------------------------------------
MODULE  := .libs/mod_isr.so
SRCS    := mod_isr.c $(sort $(wildcard src/*.c))
HDRS    := $(sort $(wildcard include/*.h src/*.h))
CWARN   := -Wc,-Wall -Wc,-Wextra -Wc,-Werror -Wc,-std=gnu11
APXS_FLAGS ?= -I include $(CWARN)
LIBS    ?= -lcurl -lz -lbrotlienc -lbrotlidec -lhiredis

# --- packages ----------------------------------------------------------------
DEB_PACKAGES := apache2 apache2-dev apache2-utils libcurl4-openssl-dev python3-pytest curl openssl \
                zlib1g-dev libbrotli-dev brotli strace python3-prometheus-client \
                chromium python3-websocket libhiredis-dev redis-server
# make fuzz: Debian's clang (14 on bookworm) with libFuzzer and its sanitizer runtimes.
FUZZ_PACKAGES := clang libfuzzer-14-dev libclang-rt-14-dev
# make deb: the tools, and the package's Build-Depends (debian/control).
DEB_BUILD_PACKAGES := debhelper dpkg-dev fakeroot build-essential lintian \
                      apache2-dev libcurl4-openssl-dev zlib1g-dev libbrotli-dev \
                      libhiredis-dev

# --- make asan ---------------------------------------------------------------
# A second build of the module in build/asan/ (sources symlinked there, so that libtool's
# objects do not replace those of the normal build). httpd itself is not instrumented: the
# harness preloads gcc's libasan into every httpd it starts (tests/isr_env.py, ISR_SANITIZE=1).
BUILD_DIR   := build
ASAN_DIR    := $(BUILD_DIR)/asan
ASAN_MODULE := $(ASAN_DIR)/.libs/mod_isr.so
SAN_FLAGS   := -fsanitize=address,undefined -fno-omit-frame-pointer
ASAN_REPORTS := $(CURDIR)/$(ASAN_DIR)/reports
# The unit programs (tests/unit) with the same sanitizers; halt at the first finding.
ASAN_UNIT_ENV := ASAN_OPTIONS=detect_leaks=0:halt_on_error=1:abort_on_error=0 \
                 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

# --- make fuzz ---------------------------------------------------------------
# Every fuzz/fuzz_NAME.c is a target: it #includes the .c files it tests; its seeds are in
# fuzz/corpus/NAME/ (read only: what the fuzzer finds goes to build/fuzz/corpus/NAME/), an
# optional dictionary is fuzz/NAME.dict, crash inputs go to build/fuzz/artifacts/NAME/.
CLANG        ?= $(firstword $(shell command -v clang-14 clang 2>/dev/null) clang)
FUZZ_DIR     := $(BUILD_DIR)/fuzz
FUZZ_NAMES   := $(patsubst fuzz/fuzz_%.c,%,$(sort $(wildcard fuzz/fuzz_*.c)))
FUZZ_BINS    := $(addprefix $(FUZZ_DIR)/fuzz_,$(FUZZ_NAMES))
FUZZ_SECONDS ?= 30
FUZZ_TIMEOUT ?= 10
FUZZ_RSS_MB  ?= 2048
FUZZ_ARGS    ?=
FUZZ_CFLAGS  := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
                -fno-omit-frame-pointer -Wall -Wextra -Werror -std=gnu11 -Iinclude \
                $(shell apr-1-config --cflags --cppflags --includes 2>/dev/null)
FUZZ_LIBS    := -lz -lbrotlienc -lbrotlidec \
                $(shell apu-1-config --link-ld --libs 2>/dev/null) \
                $(shell apr-1-config --link-ld --libs 2>/dev/null)

# --- make soak / make check ----------------------------------------------------
SOAK_SECONDS  ?= 300
SOAK_ARGS     ?=
CHECK_FUZZ_SECONDS ?= 15
CHECK_SOAK_SECONDS ?= 30

# --- make run ----------------------------------------------------------------
RUN_CONF    ?= $(CURDIR)/httpd-isr.conf
RUNDIR      ?= $(CURDIR)/run
ORIGIN      ?= tests/origin.py
ORIGIN_PORT ?= 8081
HTTPD_PORT  ?= 8080

# --- install -----------------------------------------------------------------
DESTDIR     ?=
LIBEXECDIR   = $(shell $(APXS) -q LIBEXECDIR)
MODS_AVAIL  ?= /etc/apache2/mods-available

.PHONY: all deps deps-fuzz deps-deb test check asan asan-build asan-unit fuzz fuzz-build soak \
        soak-short run install uninstall deb deb-check bench bench-peers cache-tests \
        cache-tests-peers clean

all: $(MODULE)

$(MODULE): $(SRCS) $(HDRS) Makefile
	$(APXS) -c $(APXS_FLAGS) -o mod_isr.so $(SRCS) $(LIBS)

# Installs only what is missing. `dpkg-query` rather than `dpkg -s` so that a package that was
# removed but left its configuration behind ("deinstall ok config-files") counts as missing.
define install_missing
	@missing=""; \
	for p in $(1); do \
	    dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q 'install ok installed' \
	        || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then \
	    echo "$@: all present ($(1))"; exit 0; \
	fi; \
	echo "$@: missing:$$missing"; \
	if [ "$$(id -u)" != 0 ]; then \
	    echo "$@: not root, cannot install. Run as root:" >&2; \
	    echo "    apt-get update && apt-get install -y$$missing" >&2; \
	    exit 1; \
	fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
	    echo "$@: apt-get not found; install these packages by hand:$$missing" >&2; exit 1; \
	fi; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get update && apt-get install -y --no-install-recommends $$missing
endef

deps:
	$(call install_missing,$(DEB_PACKAGES))

deps-fuzz:
	$(call install_missing,$(FUZZ_PACKAGES))

deps-deb:
	$(call install_missing,$(DEB_BUILD_PACKAGES))

# deps first, then the build, also under `make -j` (hence the sub-make).
test: deps
	@$(MAKE) --no-print-directory all
	$(PYTEST) $(PYTEST_ARGS) tests/

# What CI runs (.ci/run): the suite, the suite under ASan+UBSan, every fuzz target for
# CHECK_FUZZ_SECONDS, a CHECK_SOAK_SECONDS soak, and the Debian package built, linted, installed
# and purged. Sequential, so that failures read in order.
check:
	@$(MAKE) --no-print-directory test
	@$(MAKE) --no-print-directory asan
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(CHECK_FUZZ_SECONDS)
	@$(MAKE) --no-print-directory soak SOAK_SECONDS=$(CHECK_SOAK_SECONDS)
	@$(MAKE) --no-print-directory deb-check
	@echo "check: test, asan, fuzz, soak, deb"
	@echo "check: 5 passed, 0 failed"

# --- make asan ---------------------------------------------------------------
asan-build: $(ASAN_MODULE)

$(ASAN_MODULE): $(SRCS) $(HDRS) Makefile
	@rm -rf "$(ASAN_DIR)/src" "$(ASAN_DIR)/.libs" && mkdir -p "$(ASAN_DIR)/src"
	@for f in $(SRCS); do ln -sf "$(CURDIR)/$$f" "$(ASAN_DIR)/$$f"; done
	cd "$(ASAN_DIR)" && $(APXS) -c -I "$(CURDIR)/include" -I "$(CURDIR)/src" $(CWARN) \
	    -Wc,-O1 -Wc,-g $(addprefix -Wc$(comma),$(SAN_FLAGS)) $(addprefix -Wl$(comma),$(SAN_FLAGS)) \
	    -o mod_isr.so $(SRCS) $(LIBS)
	@ldd "$@" | grep -q libasan && ldd "$@" | grep -q libubsan \
	    || { echo "asan: $@ is not linked with libasan and libubsan" >&2; ldd "$@" >&2; exit 1; }
	@echo "asan: built $@ ($$(ldd "$@" | grep -oE 'lib(asan|ubsan)[^ ]*' | sort -u | tr '\n' ' '))"

# The store's unit and stress programs with the same sanitizers (they fork, share memory and
# SIGKILL writers: ASan follows each process).
asan-unit: deps
	$(MAKE) --no-print-directory -C tests/unit BUILD="$(CURDIR)/$(ASAN_DIR)/unit" \
	    CFLAGS="-O1 -g $(SAN_FLAGS)" all
	$(ASAN_UNIT_ENV) "$(CURDIR)/$(ASAN_DIR)/unit/test_store"
	$(ASAN_UNIT_ENV) "$(CURDIR)/$(ASAN_DIR)/unit/test_purge"
	$(ASAN_UNIT_ENV) "$(CURDIR)/$(ASAN_DIR)/unit/stress_store" -t 4
	$(ASAN_UNIT_ENV) "$(CURDIR)/$(ASAN_DIR)/unit/stress_store" -t 4 -z 256 -k 32

# The whole suite against the sanitized module. A report (or a sanitizer line in an error log)
# fails the test that first sees it; reports of all servers are also collected in
# build/asan/reports/, and any there fail the target even if no test noticed.
asan: deps
	@$(MAKE) --no-print-directory asan-build
	@rm -rf "$(ASAN_REPORTS)"
	@$(MAKE) --no-print-directory asan-unit
	ISR_SANITIZE=1 ISR_MODULE="$(CURDIR)/$(ASAN_MODULE)" ISR_SANITIZER_COLLECT="$(ASAN_REPORTS)" \
	    $(PYTEST) $(PYTEST_ARGS) tests/
	@if [ -n "$$(ls -A "$(ASAN_REPORTS)" 2>/dev/null)" ]; then \
	    echo "asan: sanitizer reports in $(ASAN_REPORTS):" >&2; \
	    head -n 40 "$(ASAN_REPORTS)"/* >&2; exit 1; \
	fi
	@echo "asan: no sanitizer reports"

# --- make fuzz ---------------------------------------------------------------
fuzz-build: deps deps-fuzz
	@$(MAKE) --no-print-directory $(FUZZ_BINS)

$(FUZZ_DIR)/fuzz_%: fuzz/fuzz_%.c $(wildcard src/*.c) $(HDRS) Makefile
	@mkdir -p "$(FUZZ_DIR)"
	$(CLANG) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_LIBS)

# Each target: the committed seeds plus what earlier runs found, for FUZZ_SECONDS; a crash,
# a leak, a sanitizer report, a timeout (FUZZ_TIMEOUT s per input) or more than FUZZ_RSS_MB
# fails it. All targets run; the target fails if any did.
fuzz: fuzz-build
	@test -n "$(FUZZ_NAMES)" || { echo "fuzz: no fuzz/fuzz_*.c" >&2; exit 1; }
	@failed=""; \
	for n in $(FUZZ_NAMES); do \
	    mkdir -p "$(FUZZ_DIR)/corpus/$$n" "$(FUZZ_DIR)/artifacts/$$n"; \
	    seeds=""; [ -d "fuzz/corpus/$$n" ] && seeds="fuzz/corpus/$$n"; \
	    dict=""; [ -f "fuzz/$$n.dict" ] && dict="-dict=fuzz/$$n.dict"; \
	    echo "fuzz: $$n for $(FUZZ_SECONDS) s"; \
	    if "$(FUZZ_DIR)/fuzz_$$n" -max_total_time=$(FUZZ_SECONDS) -timeout=$(FUZZ_TIMEOUT) \
	        -rss_limit_mb=$(FUZZ_RSS_MB) -print_final_stats=1 $$dict \
	        -artifact_prefix="$(FUZZ_DIR)/artifacts/$$n/" $(FUZZ_ARGS) \
	        "$(FUZZ_DIR)/corpus/$$n" $$seeds > "$(FUZZ_DIR)/$$n.log" 2>&1; then \
	        runs=$$(awk '/^stat::number_of_executed_units/ {print $$2}' "$(FUZZ_DIR)/$$n.log"); \
	        found=$$(ls "$(FUZZ_DIR)/corpus/$$n" | wc -l); \
	        echo "fuzz: $$n ok: $$runs runs, $$found inputs found (log $(FUZZ_DIR)/$$n.log)"; \
	    else \
	        echo "fuzz: $$n FAILED (log $(FUZZ_DIR)/$$n.log, inputs in $(FUZZ_DIR)/artifacts/$$n/)"; \
	        grep -E 'ERROR|runtime error|check failed|SUMMARY|Test unit written' \
	            "$(FUZZ_DIR)/$$n.log" | head -n 20; \
	        echo "fuzz: reproduce with  $(FUZZ_DIR)/fuzz_$$n $(FUZZ_DIR)/artifacts/$$n/<file>"; \
	        failed="$$failed $$n"; \
	    fi; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: failed:$$failed" >&2; exit 1; fi; \
	echo "fuzz: all ok ($(FUZZ_NAMES))"

# --- make soak ---------------------------------------------------------------
soak: deps
	@$(MAKE) --no-print-directory all
	$(PYTHON) tests/soak.py --seconds $(SOAK_SECONDS) $(SOAK_ARGS)

soak-short:
	@$(MAKE) --no-print-directory soak SOAK_SECONDS=$(CHECK_SOAK_SECONDS)

# The origin runs in the background (its PID is kept, it is killed on any exit of this recipe);
# httpd runs in the foreground, so Ctrl-C stops httpd and the trap then stops the origin.
run: deps
	@$(MAKE) --no-print-directory all
	@test -f "$(ORIGIN)" || { echo "run: $(ORIGIN) is missing (the demo origin)" >&2; exit 1; }
	@mkdir -p "$(RUNDIR)/htdocs"
	@set -u; \
	$(PYTHON) "$(ORIGIN)" --port $(ORIGIN_PORT) & origin=$$!; \
	trap 'kill $$origin 2>/dev/null; wait $$origin 2>/dev/null' EXIT; \
	trap 'exit 130' INT TERM HUP; \
	for i in $$(seq 1 50); do \
	    kill -0 $$origin 2>/dev/null || { echo "run: origin exited" >&2; exit 1; }; \
	    curl -s -o /dev/null --max-time 1 http://127.0.0.1:$(ORIGIN_PORT)/ && break; \
	    sleep 0.1; \
	done; \
	echo "run: origin (pid $$origin) on 127.0.0.1:$(ORIGIN_PORT); httpd on 127.0.0.1:$(HTTPD_PORT)"; \
	echo "run: try  curl -i localhost:$(HTTPD_PORT)/app/hello   (Ctrl-C stops both)"; \
	$(APACHE2) -DFOREGROUND -d "$(CURDIR)" -f "$(RUN_CONF)" \
	    -C 'Define ISR_ROOT "$(CURDIR)"' -C 'Define ISR_RUNDIR "$(RUNDIR)"' \
	    -C 'Define ISR_PORT $(HTTPD_PORT)' -C 'Define ISR_ORIGIN_PORT $(ORIGIN_PORT)'

install: all
	install -D -m 644 $(MODULE) "$(DESTDIR)$(LIBEXECDIR)/mod_isr.so"
	@if [ -d "$(DESTDIR)$(MODS_AVAIL)" ]; then \
	    echo install -m 644 dist/isr.load dist/isr.conf "$(DESTDIR)$(MODS_AVAIL)/"; \
	    install -m 644 dist/isr.load dist/isr.conf "$(DESTDIR)$(MODS_AVAIL)/"; \
	    echo "install: enable with  a2enmod isr && apache2ctl -t && systemctl reload apache2"; \
	else \
	    echo "install: $(MODS_AVAIL) not found; add to httpd.conf:"; \
	    echo "    LoadModule isr_module $(LIBEXECDIR)/mod_isr.so"; \
	fi

uninstall:
	@if [ -e "$(DESTDIR)/etc/apache2/mods-enabled/isr.load" ]; then \
	    echo "uninstall: run  a2dismod isr  first" >&2; exit 1; fi
	rm -f "$(DESTDIR)$(LIBEXECDIR)/mod_isr.so" \
	      "$(DESTDIR)$(MODS_AVAIL)/isr.load" "$(DESTDIR)$(MODS_AVAIL)/isr.conf"

# --- make deb / make deb-check -------------------------------------------------
# dpkg-buildpackage writes next to the source tree, so the package is built in a copy of the
# work tree in a temporary directory (what git tracks plus files it does not ignore: uncommitted
# changes are built, build products are not copied); the .deb files, .buildinfo and .changes
# replace any earlier ones in dist/. The version is debian/changelog's, which must be
# ISR_VERSION (include/isr.h). Builds without network and without running the test suite.
DEB_NAME := libapache2-mod-isr

deb: deps-deb
	@set -euo pipefail; \
	ver=$$(dpkg-parsechangelog -S Version); \
	src=$$(sed -n 's/^#define ISR_VERSION "\(.*\)"$$/\1/p' include/isr.h); \
	if [ "$$ver" != "$$src" ]; then \
	    echo "deb: debian/changelog is at $$ver, include/isr.h ISR_VERSION at $$src:" \
	         "add a changelog entry for $$src (dch -v $$src)" >&2; exit 1; \
	fi; \
	tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	mkdir "$$tmp/src"; \
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
	    git ls-files -z --cached --others --exclude-standard | \
	        while IFS= read -r -d '' f; do \
	            if [ -e "$$f" ] || [ -L "$$f" ]; then printf '%s\0' "$$f"; fi; \
	        done | \
	        tar -c --null -T - | tar -x -C "$$tmp/src"; \
	else \
	    tar -c --exclude-vcs --exclude=./$(BUILD_DIR) --exclude=./run --exclude='./dist/*_*' . | \
	        tar -x -C "$$tmp/src"; \
	fi; \
	echo "deb: dpkg-buildpackage -us -uc -b in $$tmp/src"; \
	(cd "$$tmp/src" && dpkg-buildpackage -us -uc -b); \
	out=$$(cd "$$tmp" && ls $(DEB_NAME)*_*.deb $(DEB_NAME)_*.buildinfo $(DEB_NAME)_*.changes); \
	rm -f dist/$(DEB_NAME)*_*.deb dist/$(DEB_NAME)_*.buildinfo dist/$(DEB_NAME)_*.changes; \
	for f in $$out; do mv "$$tmp/$$f" dist/; echo "deb: dist/$$f"; done

deb-check:
	@$(MAKE) --no-print-directory deb
	bash tests/deb_check.sh

bench:
	bash bench/run.sh

bench-peers:
	bash bench/install-peers.sh

# --- make cache-tests --------------------------------------------------------
# The vendored suite tests/cache-tests (http-tests/cache-tests, see its README.md) through a
# cache on loopback ports: bench/cache_tests.py starts the suite's origin, the cache and the
# suite's CLI; results and logs in build/cache-tests/, table in build/cache-tests/summary.md.
# CACHE_TESTS_CONF adds directive lines inside the isr target's <Location /> (several: "\n");
# by default Strict mode, the RFC 9111 shared cache the suite measures (CACHE_TESTS_CONF=
# measures the default On mode). CACHE_TESTS_ARGS goes to the runner as is (e.g.
# --isr-layout control). Not part of make check.
NODE ?= node
CACHE_TESTS_CONF ?= ISRCacheControl Strict
CACHE_TESTS_ARGS ?=
CACHE_TESTS_RUN = $(PYTHON) bench/cache_tests.py \
    $(if $(strip $(CACHE_TESTS_CONF)),--conf-extra '$(CACHE_TESTS_CONF)') $(CACHE_TESTS_ARGS)

cache-tests: deps
	@command -v $(NODE) >/dev/null 2>&1 || { echo "cache-tests: node (>= 18) is needed" >&2; exit 1; }
	@$(MAKE) --no-print-directory all
	$(CACHE_TESTS_RUN) isr

# Peers that are not installed are skipped (make bench-peers installs them).
cache-tests-peers: deps
	@command -v $(NODE) >/dev/null 2>&1 || { echo "cache-tests: node (>= 18) is needed" >&2; exit 1; }
	@$(MAKE) --no-print-directory all
	$(CACHE_TESTS_RUN) all

clean:
	rm -rf "$(BUILD_DIR)" .libs src/.libs *.lo *.la *.slo *.o src/*.lo src/*.la src/*.slo src/*.o \
	       .pytest_cache tests/.pytest_cache tests/__pycache__ tests/*/__pycache__ \
	       "$(RUNDIR)" dist/$(DEB_NAME)*_*.deb dist/$(DEB_NAME)_*.buildinfo dist/$(DEB_NAME)_*.changes
