#!/bin/bash
# mod_isr benchmark: `make bench` runs this. Builds the helpers (origin, hload, mod_null) into
# bench/.build/, then bench/bench.py starts the origin and every target on 127.0.0.1 and runs
# S1-S7. Settings are environment variables (bench/README.md lists them all), e.g.
#
#   BENCH_DURATION=10 S2_ROUNDS=5 bench/run.sh
#   BENCH_TARGETS="isr null mod_cache" BENCH_SCENARIOS="S1 S4" bench/run.sh
#   BENCH_SCENARIOS=S6 bench/run.sh        # compressed hits only (about 4 minutes)
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
BUILD="$BENCH_DIR/.build"
CC=${CC:-cc}
APXS=${APXS:-$(command -v apxs || command -v apxs2 || echo apxs)}
PYTHON=${PYTHON:-$(command -v python3 || echo /usr/bin/python3)}

log() { printf '[bench] %s\n' "$*"; }

# --- tools this needs (installed with apt-get when missing and we are root) ------------------
missing=()
command -v wrk >/dev/null 2>&1      || missing+=(wrk)
command -v apache2 >/dev/null 2>&1 || [ -x /usr/sbin/apache2 ] || missing+=(apache2)
command -v "$APXS" >/dev/null 2>&1  || missing+=(apache2-dev)
command -v gnuplot >/dev/null 2>&1  || missing+=(gnuplot-nox)
command -v "$PYTHON" >/dev/null 2>&1 || missing+=(python3)
command -v curl >/dev/null 2>&1     || missing+=(curl)
case " ${BENCH_SCENARIOS:-S6} " in  # S6 (in the default list) decodes br answers with the brotli CLI
    *" S6 "*) command -v brotli >/dev/null 2>&1 || missing+=(brotli) ;;
esac
command -v "$CC" >/dev/null 2>&1    || missing+=(gcc)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        log "installing ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" \
            || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"; }
    else
        log "missing: ${missing[*]} (install them, or run as root)"; exit 1
    fi
fi
APXS=$(command -v apxs || command -v apxs2 || echo "$APXS")

# --- helpers -----------------------------------------------------------------------------------
mkdir -p "$BUILD"
build() {  # build OUT SRC CMD...: rebuild when the source is newer
    local out=$1 src=$2; shift 2
    if [ ! -e "$out" ] || [ "$src" -nt "$out" ]; then
        log "building $(basename "$out")"
        "$@"
    fi
}
build "$BUILD/origin" "$BENCH_DIR/origin.c" \
    "$CC" -O2 -Wall -Wextra -Werror -pthread -o "$BUILD/origin" "$BENCH_DIR/origin.c"
build "$BUILD/hload" "$BENCH_DIR/hload.c" \
    "$CC" -O2 -Wall -Wextra -Werror -o "$BUILD/hload" "$BENCH_DIR/hload.c" -lm
if [ ! -e "$BUILD/mod_null.so" ] || [ "$BENCH_DIR/mod_null.c" -nt "$BUILD/mod_null.so" ]; then
    log "building mod_null.so"
    tmp=$(mktemp -d)
    cp "$BENCH_DIR/mod_null.c" "$tmp/"
    (cd "$tmp" && "$APXS" -c -Wc,-O2 -Wc,-Wall -Wc,-Wextra -Wc,-Werror mod_null.c >/dev/null)
    cp "$tmp/.libs/mod_null.so" "$BUILD/mod_null.so"
    rm -rf "$tmp"
fi

# --- mod_isr -----------------------------------------------------------------------------------
MOD_ISR=${MOD_ISR:-$ROOT/.libs/mod_isr.so}
# `make` is incremental: the run measures the module as the tree has it now.
if [ "$MOD_ISR" = "$ROOT/.libs/mod_isr.so" ] && [ -f "$ROOT/Makefile" ] \
   && [ "${BENCH_BUILD_ISR:-1}" = 1 ]; then
    log "building mod_isr (make -C $ROOT)"
    make -C "$ROOT" >/dev/null || log "make failed: the isr target will be skipped"
fi
export MOD_ISR
if [ -e "$MOD_ISR" ]; then log "mod_isr: $MOD_ISR"; else log "mod_isr: not built, isr is skipped"; fi
for p in nginx varnishd; do
    command -v $p >/dev/null 2>&1 || [ -x /usr/sbin/$p ] || log "$p not installed: skipped (make bench-peers installs it)"
done

exec "$PYTHON" "$BENCH_DIR/bench.py" "$@"
