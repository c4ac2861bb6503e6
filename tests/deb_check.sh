#!/usr/bin/env bash
# make deb-check: lintian on the package `make deb` put in dist/ (any E: fails, warnings are
# printed), then, as root, its install and removal on this machine:
#   1. apt-get install ./dist/...deb, a2enmod isr, apache2ctl -t, apache2ctl -M lists
#      isr_module, a2dismod isr, apt-get purge: nothing of the package is left;
#   2. install, a2enmod isr, apt-get purge with the module still enabled (the package's prerm
#      disables it): nothing is left either, no mods-enabled link.
# The system's apache2 service is never started: the install runs under a policy-rc.d that
# denies service starts (one is written if the machine has none, and removed at the end; one
# of the machine's own that would allow apache2 to start is a refusal). The package, or any
# file it installs, already on the machine (`make install`) is a refusal too: this script
# purges what it installs and would destroy it. Ends with one PASS or FAIL line.
set -euo pipefail
cd "$(dirname "$0")/.."

pkg=libapache2-mod-isr
ver=$(dpkg-parsechangelog -S Version)
arch=$(dpkg --print-architecture)
deb=dist/${pkg}_${ver}_${arch}.deb
changes=dist/${pkg}_${ver}_${arch}.changes
policy=/usr/sbin/policy-rc.d
mods=/etc/apache2/mods
# Everything the package installs, and what a2enmod/a2dismod and the maintainer scripts keep.
files=(/usr/lib/apache2/modules/mod_isr.so "$mods-available/isr.load" "$mods-available/isr.conf"
       /usr/bin/isrctl "$mods-enabled/isr.load" "$mods-enabled/isr.conf" "/usr/share/doc/$pkg")
statefiles=(/var/lib/apache2/module/{enabled,disabled}_by_{admin,maint}/isr)
apt=(apt-get -q -y -o Dpkg::Use-Pty=0 -o DPkg::Lock::Timeout=300)
export DEBIAN_FRONTEND=noninteractive

fail() { echo "deb-check: FAIL: $*" >&2; exit 1; }
step() { echo "== deb-check: $*"; }

present() {  # the package's files and state that exist now, one a line
    local f
    for f in "${files[@]}" "${statefiles[@]}"; do
        if [ -e "$f" ] || [ -L "$f" ]; then echo "$f"; fi
    done
}

pkg_status() {  # empty when dpkg has no record, else e.g. "install ok installed"
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true
}

assert_gone() {
    local left status
    left=$(present)
    [ -z "$left" ] || fail "left behind after purge ($1): $(tr '\n' ' ' <<<"$left")"
    status=$(pkg_status)
    case "$status" in
        ""|*" not-installed") ;;
        *) fail "dpkg status after purge ($1): $status" ;;
    esac
    if dpkg -s "$pkg" >/dev/null 2>&1; then fail "dpkg -s still knows $pkg ($1)"; fi
    if dpkg -L "$pkg" >/dev/null 2>&1; then fail "dpkg -L still lists files of $pkg ($1)"; fi
    echo "deb-check: nothing left ($1): no module, no mods-available/mods-enabled files," \
         "no a2enmod state, dpkg: not installed"
}

if [ ! -f "$deb" ] || [ ! -f "$changes" ]; then
    fail "$deb or $changes not found (make deb builds them)"
fi
start=$SECONDS

# --- lintian ------------------------------------------------------------------
step "lintian $changes"
lrc=0
lout=$(lintian --display-info "$changes" 2>&1) || lrc=$?
lout=$(grep -v 'running with root privileges is not recommended' <<<"$lout" || true)
[ -z "$lout" ] || printf '%s\n' "$lout"
errors=$(grep -c '^E: ' <<<"$lout" || true)
warnings=$(grep -c '^W: ' <<<"$lout" || true)
[ "$errors" = 0 ] || fail "lintian: $errors error(s)"
[ "$lrc" = 0 ] || fail "lintian exited $lrc without an error tag"
echo "deb-check: lintian: 0 errors, $warnings warning(s)"

if [ "$(id -u)" != 0 ]; then
    echo "deb-check: PASS: $deb built, lintian clean of errors;" \
         "install and removal not tested (not root)"
    exit 0
fi

# --- refusals -----------------------------------------------------------------
status=$(pkg_status)
case "$status" in
    ""|*" not-installed") ;;
    *) fail "refusing: $pkg is on this machine ($status); deb-check installs and purges it." \
            "Remove it first: apt-get purge $pkg" ;;
esac
before=$(present)
[ -z "$before" ] || fail "refusing: files of the package exist already (make install?):" \
    "$(tr '\n' ' ' <<<"$before"); deb-check would purge them. Remove them first (a2dismod isr;" \
    "make uninstall) or run deb-check as a user other than root"

own_policy=0
installed=0
cleanup() {
    if [ "$installed" = 1 ]; then
        echo "deb-check: purging $pkg after a failure" >&2
        "${apt[@]}" purge "$pkg" </dev/null >/dev/null 2>&1 || true
    fi
    if [ "$own_policy" = 1 ]; then rm -f "$policy"; fi
}
trap cleanup EXIT
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# deb-check (mod_isr): no service starts while it runs\nexit 101\n' \
        > "$policy"
    chmod 755 "$policy"
    own_policy=1
fi
for action in start restart reload; do
    prc=0; "$policy" apache2 "$action" >/dev/null 2>&1 || prc=$?
    [ "$prc" = 101 ] || fail "refusing: $policy allows 'apache2 $action' (exit $prc);" \
        "deb-check never starts the system's apache2"
done

# --- 1: install, enable, check, disable, purge ----------------------------------
step "apt-get install ./$deb"
installed=1
"${apt[@]}" install "./$deb" </dev/null
status=$(pkg_status)
[ "$status" = "install ok installed" ] || fail "dpkg status after install: $status"
for f in "${files[@]:0:4}"; do
    [ -f "$f" ] || fail "$f missing after install"
done
[ ! -e "$mods-enabled/isr.load" ] || fail "the install enabled the module (expected: a2enmod)"

step "a2enmod isr; apache2ctl -t; apache2ctl -M"
a2enmod isr
apache2ctl -t || fail "apache2ctl -t with isr enabled"
modules=$(apache2ctl -M 2>/dev/null) || fail "apache2ctl -M"
grep -q '^ *isr_module ' <<<"$modules" || fail "apache2ctl -M does not list isr_module"
echo "deb-check: apache2ctl -M: $(grep '^ *isr_module ' <<<"$modules" | sed 's/^ *//')"
[ -x /usr/bin/isrctl ] || fail "/usr/bin/isrctl is not executable"
isrctl frobnicate 2>/dev/null && fail "isrctl accepted an unknown operation"

step "a2dismod isr; apt-get purge $pkg"
a2dismod isr
[ ! -e "$mods-enabled/isr.load" ] || fail "$mods-enabled/isr.load after a2dismod"
"${apt[@]}" purge "$pkg" </dev/null
installed=0
assert_gone "a2dismod, then purge"

# --- 2: purge with the module enabled -------------------------------------------
step "apt-get install ./$deb; a2enmod isr; apt-get purge $pkg (module still enabled)"
installed=1
"${apt[@]}" install "./$deb" </dev/null
a2enmod isr
"${apt[@]}" purge "$pkg" </dev/null
installed=0
assert_gone "purge with the module enabled"

echo "deb-check: PASS: $deb: lintian 0 errors ($warnings warnings), installed, enabled," \
     "apache2ctl -t ok, isr_module loaded, purged twice leaving nothing ($((SECONDS - start)) s)"
