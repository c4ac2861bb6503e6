#!/bin/sh
# Install the peer caches the benchmark compares mod_isr with (nginx, varnish) and the ones the
# HTTP cache conformance suite also runs against (squid, trafficserver; bench/cache_tests.py)
# from Debian, without leaving their system services enabled or running: the benchmark and the
# conformance runner start their own instances on loopback ports and stop them by PID.
#
#   sh bench/install-peers.sh        (as root; `make bench-peers` runs it)
set -eu

if [ "$(id -u)" != 0 ]; then
    echo "install-peers.sh: must run as root (apt-get)" >&2
    exit 1
fi

# Keep the packages' maintainer scripts from starting the services during the install:
# a policy-rc.d that answers 101 ("action forbidden") is what invoke-rc.d consults.
# Only add one if the machine has none, and remove only the one we added.
POLICY=/usr/sbin/policy-rc.d
ADDED_POLICY=
if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$POLICY"
    chmod 755 "$POLICY"
    ADDED_POLICY=1
fi
cleanup() { if [ -n "$ADDED_POLICY" ]; then rm -f "$POLICY"; fi; }
trap cleanup EXIT INT TERM

export DEBIAN_FRONTEND=noninteractive
need=
command -v nginx    >/dev/null 2>&1 || need="$need nginx-light"
command -v varnishd >/dev/null 2>&1 || [ -x /usr/sbin/varnishd ] || need="$need varnish"
[ -x /usr/sbin/squid ] || need="$need squid"
[ -x /usr/bin/traffic_server ] || need="$need trafficserver"
if [ -n "$need" ]; then
    echo "install-peers: apt-get install$need"
    apt-get update -qq || true
    # nginx-light has the proxy and proxy_cache modules and fewer dependencies than nginx
    # (fall back to the nginx package if a mirror lacks it).
    if ! apt-get install -y -q --no-install-recommends $need; then
        need=$(echo "$need" | sed 's/nginx-light/nginx/')
        apt-get install -y -q --no-install-recommends $need
    fi
else
    echo "install-peers: nginx, varnish, squid and trafficserver already installed"
fi

# Do not leave the services enabled at boot.
if command -v systemctl >/dev/null 2>&1; then
    for unit in nginx varnish varnishncsa squid trafficserver; do
        systemctl disable "$unit" >/dev/null 2>&1 || true
        # stop only if systemd is actually running and the unit is active
        if [ -d /run/systemd/system ] && systemctl is-active --quiet "$unit" 2>/dev/null; then
            systemctl stop "$unit" || true
        fi
    done
fi
if command -v update-rc.d >/dev/null 2>&1; then
    for s in nginx varnish varnishncsa squid trafficserver; do
        [ -e "/etc/init.d/$s" ] && update-rc.d "$s" disable >/dev/null 2>&1 || true
    done
fi

# If a package started its daemon anyway (no systemd, no policy-rc.d), stop it through the
# pid file it wrote — never by process name.
for pidfile in /run/nginx.pid /run/varnishd.pid /run/varnish.pid /run/varnishncsa/varnishncsa.pid \
               /run/squid.pid /run/trafficserver/server.lock /run/trafficserver/manager.lock; do
    if [ -s "$pidfile" ]; then
        pid=$(cat "$pidfile")
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            echo "install-peers: stopping service started by the package (pid $pid from $pidfile)"
            kill -TERM "$pid" 2>/dev/null || true
        fi
    fi
done

nginx -v 2>&1 | sed 's/^/install-peers: /'
/usr/sbin/varnishd -V 2>&1 | head -1 | sed 's/^/install-peers: /'
/usr/sbin/squid -v 2>&1 | head -1 | sed 's/^/install-peers: /'
/usr/bin/traffic_server -V 2>&1 | grep -m1 -i 'traffic' | sed 's/^/install-peers: /'
