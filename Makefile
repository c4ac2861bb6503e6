# mod_isr — build, test and demo targets.
#
#   make            build .libs/mod_isr.so with apxs
#   make deps       apt-get install what is missing (only when something is missing; needs root)
#   make test       deps + build + the pytest suite in tests/
#   make run        deps + build + demo origin on :8081 + httpd in the foreground on :8080
#   make install    module into `apxs -q LIBEXECDIR`, isr.load/isr.conf into mods-available
#   make uninstall  undo `make install`
#   make bench      bench/run.sh            make bench-peers   bench/install-peers.sh
#   make clean      remove build products and test caches

SHELL := /bin/bash

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
LIBS    ?= -lcurl

# --- packages ----------------------------------------------------------------
DEB_PACKAGES := apache2 apache2-dev apache2-utils libcurl4-openssl-dev python3-pytest curl openssl

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

.PHONY: all deps test run install uninstall bench bench-peers clean

all: $(MODULE)

$(MODULE): $(SRCS) $(HDRS) Makefile
	$(APXS) -c $(APXS_FLAGS) -o mod_isr.so $(SRCS) $(LIBS)

# Installs only what is missing. `dpkg-query` rather than `dpkg -s` so that a package that was
# removed but left its configuration behind ("deinstall ok config-files") counts as missing.
deps:
	@missing=""; \
	for p in $(DEB_PACKAGES); do \
	    dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q 'install ok installed' \
	        || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then \
	    echo "deps: all present ($(DEB_PACKAGES))"; exit 0; \
	fi; \
	echo "deps: missing:$$missing"; \
	if [ "$$(id -u)" != 0 ]; then \
	    echo "deps: not root, cannot install. Run as root:" >&2; \
	    echo "    apt-get update && apt-get install -y$$missing" >&2; \
	    exit 1; \
	fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
	    echo "deps: apt-get not found; install these packages by hand:$$missing" >&2; exit 1; \
	fi; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get update && apt-get install -y --no-install-recommends $$missing

# deps first, then the build, also under `make -j` (hence the sub-make).
test: deps
	@$(MAKE) --no-print-directory all
	$(PYTEST) $(PYTEST_ARGS) tests/

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

bench:
	bash bench/run.sh

bench-peers:
	bash bench/install-peers.sh

clean:
	rm -rf .libs src/.libs *.lo *.la *.slo *.o src/*.lo src/*.la src/*.slo src/*.o \
	       .pytest_cache tests/.pytest_cache tests/__pycache__ tests/*/__pycache__ \
	       "$(RUNDIR)"
