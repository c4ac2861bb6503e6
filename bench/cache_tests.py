#!/usr/bin/python3
"""Run the HTTP cache conformance suite (tests/cache-tests, cache-tests.fyi) against mod_isr
and peer caches, offline, on loopback ports.

    /usr/bin/python3 bench/cache_tests.py isr                       (what `make cache-tests` runs)
    /usr/bin/python3 bench/cache_tests.py isr --conf-extra 'ISRCacheControl Strict'
    /usr/bin/python3 bench/cache_tests.py all                       (isr + every installed peer)
    /usr/bin/python3 bench/cache_tests.py apache nginx varnish squid trafficserver

For each target: the suite's origin server (node test-engine/server/server.mjs) on a free
loopback port; the cache on another, with `/` proxied and cached to the origin; the suite's CLI
against the cache (bounded by --timeout). The raw results go to build/cache-tests/TARGET.json,
logs next to them; bench/cache_tests_score.mjs scores them with the suite's own
determineTestResult; build/cache-tests/summary.md is the table and the failure lists.

httpd (isr, apache) is started with tests/isr_env.py (temporary ServerRoot, -k start/stop);
the other peers run in the foreground from temporary configs and are stopped by PID. A peer that
is not installed is skipped (bench/install-peers.sh installs them). Standard library only.
"""

import argparse
import http.client
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_DIR = os.path.dirname(BENCH_DIR)
TESTS_DIR = os.path.join(REPO_DIR, "tests")
SUITE_SRC = os.path.join(TESTS_DIR, "cache-tests")
SUITE_COMMIT = "b55b8bd"
SCORER = os.path.join(BENCH_DIR, "cache_tests_score.mjs")
LOOPBACK = os.path.join(BENCH_DIR, "cache_tests_loopback.mjs")

sys.path.insert(0, TESTS_DIR)
import isr_env  # noqa: E402
from isr_env import HttpdEnv, free_port, MODULES_DIR  # noqa: E402

NODE = shutil.which("node") or "node"
NPM = shutil.which("npm") or "npm"


def log(msg):
    print("cache-tests: %s" % msg, flush=True)


def wait_port(port, deadline, proc=None):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


def wait_http(port, deadline, proc=None):
    """Until an HTTP request on port gets any answer that is not a 5xx (a cache that is up but
    cannot reach its backend yet answers 502/503)."""
    end = time.monotonic() + deadline
    last = None
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            return "exited with %s" % proc.returncode
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/cache-tests-ready-check", headers={"Connection": "close"})
            r = c.getresponse()
            r.read()
            c.close()
            last = r.status
            if r.status < 500:
                return None
        except (OSError, http.client.HTTPException) as e:
            last = str(e)
        time.sleep(0.2)
    return "no answer within %.0fs (last: %s)" % (deadline, last)


def descendants(pid):
    """PIDs of the live descendants of pid (by the ppid field of /proc/N/stat)."""
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] not in ("Z", "X"):
            kids.setdefault(int(fields[1]), []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in kids.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def stop_proc(proc, name, deadline=15.0):
    """SIGTERM the process we started (by its PID), wait, then SIGKILL it and any descendant
    that it left behind (by their PIDs)."""
    if proc is None:
        return
    kids = descendants(proc.pid)
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
        except OSError:
            pass
        try:
            proc.wait(deadline)
        except subprocess.TimeoutExpired:
            log("%s (pid %d) did not stop on SIGTERM, SIGKILL" % (name, proc.pid))
            proc.kill()
            proc.wait(5)
    end = time.monotonic() + 5
    while time.monotonic() < end and any(HttpdEnv.pid_alive(k) for k in kids):
        time.sleep(0.1)
    for k in kids:
        if HttpdEnv.pid_alive(k):
            try:
                os.kill(k, signal.SIGKILL)
            except OSError:
                pass


def chown_tree(path, user):
    if os.geteuid() != 0:
        return
    pw = pwd.getpwnam(user)
    for d, dirs, files in os.walk(path):
        os.chown(d, pw.pw_uid, pw.pw_gid)
        for f in files:
            os.chown(os.path.join(d, f), pw.pw_uid, pw.pw_gid)


def user_exists(user):
    try:
        pwd.getpwnam(user)
        return True
    except KeyError:
        return False


def version_of(cmd):
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=20)
        for line in p.stdout.splitlines():
            if line.strip():
                return line.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return "?"


# ------------------------------------------------------------------------------------- targets

class Target:
    name = "?"

    def __init__(self, workdir):
        self.workdir = workdir
        self.port = None
        self.proc = None
        self.logs = []  # files copied next to the results after the run

    def missing(self):
        """None if the target can run here, else why not."""
        return None

    def version(self):
        return "?"

    def start(self, origin_port):
        raise NotImplementedError

    def stop(self):
        stop_proc(self.proc, self.name)
        self.proc = None

    def spawn(self, argv, **kw):
        out = open(os.path.join(self.workdir, "stdout.log"), "wb")
        self.logs.append(os.path.join(self.workdir, "stdout.log"))
        try:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, **kw)
        finally:
            out.close()
        return self.proc


class HttpdTarget(Target):
    """httpd through tests/isr_env.py: temporary ServerRoot, -k start / -k stop."""

    def __init__(self, workdir):
        super().__init__(workdir)
        self.env = None

    def version(self):
        return version_of([isr_env.HTTPD, "-v"]).replace("Server version: ", "")

    def body(self, origin_port):
        raise NotImplementedError

    def start(self, origin_port):
        self.env = self.make_env()
        self.env.write_config(self.body(origin_port))
        rc, out = self.env.configtest()
        if rc != 0:
            raise RuntimeError("%s: apache2 -t failed:\n%s" % (self.name, out))
        self.env.start()
        self.port = self.env.port
        self.logs += [self.env.error_log, self.env.access_log, self.env.conf_path]

    def stop(self):
        if self.env is not None:
            try:
                self.env.stop()
            except RuntimeError as e:
                log("%s: %s" % (self.name, e))
                self.env.kill()

    def cleanup(self):
        if self.env is not None:
            self.env.cleanup()
            self.env = None


class IsrTarget(HttpdTarget):
    """httpd + this tree's mod_isr at `/`.

    The layout says what carries the suite's own control requests (PUT /config/UUID, which
    every test starts with; GET /state/UUID, which must not be cached):
      alone     (default) mod_isr alone at `/`: it proxies PUT like any other method and the
                origin's no-store keeps /state/ uncached.
      control   /config/ and /state/ go to the origin through mod_proxy with ISR Off;
                everything under /test/ (what the tests test) is mod_isr's.
      fallback  as control, and `ProxyPass /` too (mod_isr in front of mod_proxy).
    """
    name = "isr"
    LAYOUTS = ("alone", "control", "fallback")
    PROXY_MODS = ("proxy", "proxy_http")

    def __init__(self, workdir, conf_extra=(), layout="alone", label=None):
        super().__init__(workdir)
        self.conf_extra = list(conf_extra)
        self.layout = layout
        self.name = label or ("isr" if layout == "alone" else "isr-" + layout)

    def missing(self):
        if not isr_env.module_available():
            return "%s not built (make)" % isr_env.MODULE_PATH
        return None

    def version(self):
        try:
            rev = subprocess.run(["git", "-C", REPO_DIR, "describe", "--always", "--dirty"],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                 timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            rev = "?"
        extra = "; ".join(self.conf_extra)
        return "mod_isr %s, layout %s%s" % (rev, self.layout, (", " + extra) if extra else "")

    def make_env(self):
        return HttpdEnv(name="cachetests-isr", mpm="event", load_isr=True)

    def body(self, origin_port):
        extra = "".join("    %s\n" % l for l in self.conf_extra)
        origin = "http://127.0.0.1:%d" % origin_port
        text = ("ISRCacheZone cachetests 64M\n"
                "<Location />\n"
                "    ISR On\n"
                "    ISRBackend %s/\n"
                "    ISRCache cachetests\n"
                "%s"
                "</Location>\n" % (origin, extra))
        if self.layout == "alone":
            return text
        mods = "".join("LoadModule %s_module %s/mod_%s.so\n" % (m, MODULES_DIR, m)
                       for m in self.PROXY_MODS)
        ctl = "".join("<Location /%s/>\n"
                      "    ISR Off\n"
                      "    ProxyPass %s/%s/\n"
                      "</Location>\n" % (d, origin, d) for d in ("config", "state"))
        if self.layout == "fallback":
            ctl += 'ProxyPass "/" "%s/"\n' % origin
        return mods + text + ctl


class ApacheTarget(HttpdTarget):
    """httpd mod_cache + mod_cache_disk + mod_proxy_http, as the suite's docker/apache does
    (less CacheNegotiatedDocs, a mod_negotiation directive), plus CacheQuickHandler and
    CacheLock."""
    name = "apache"
    MODS = ("proxy", "proxy_http", "cache", "cache_disk")

    def missing(self):
        for m in self.MODS:
            if not os.path.isfile(os.path.join(MODULES_DIR, "mod_%s.so" % m)):
                return "mod_%s.so not in %s" % (m, MODULES_DIR)
        return None

    def version(self):
        return super().version() + " mod_cache_disk"

    def make_env(self):
        return HttpdEnv(name="cachetests-apache", mpm="event", load_isr=False)

    def body(self, origin_port):
        cache_root = os.path.join(self.env.root, "cache")
        os.makedirs(cache_root, exist_ok=True)
        chown_tree(cache_root, "www-data" if user_exists("www-data") else "root")
        lines = ["LoadModule %s_module %s/mod_%s.so" % (m, MODULES_DIR, m) for m in self.MODS]
        lines += [
            'ProxyPass "/" "http://127.0.0.1:%d/"' % origin_port,
            "CacheEnable disk /",
            'CacheRoot "%s"' % cache_root,
            "CacheDirLevels 5",
            "CacheDirLength 3",
            "CacheDefaultExpire 0",
            "CacheIgnoreNoLastMod On",
            "CacheStoreExpired On",
            "UseCanonicalName On",
            "CacheHeader On",
            "CacheDetailHeader On",
            "CacheQuickHandler On",
            "CacheLock On",
            'CacheLockPath "%s/lock"' % cache_root,
        ]
        return "\n".join(lines) + "\n"


class NginxTarget(Target):
    """nginx proxy_cache as in the suite's docker/nginx/nginx.conf."""
    name = "nginx"
    BIN = "/usr/sbin/nginx"

    def missing(self):
        return None if os.access(self.BIN, os.X_OK) else "%s not installed" % self.BIN

    def version(self):
        return version_of([self.BIN, "-v"]).replace("nginx version: ", "")

    def start(self, origin_port):
        w = self.workdir
        self.port = free_port()
        for d in ("cache", "tmp", "logs"):
            os.makedirs(os.path.join(w, d), exist_ok=True)
        user = "www-data" if user_exists("www-data") else "nobody"
        chown_tree(w, user)
        conf = os.path.join(w, "nginx.conf")
        with open(conf, "w") as f:
            f.write("""daemon off;
master_process on;
worker_processes 1;
%(user)s
pid %(w)s/nginx.pid;
error_log %(w)s/logs/error.log warn;
events { worker_connections 512; }
http {
    access_log %(w)s/logs/access.log;
    client_body_temp_path %(w)s/tmp/body;
    fastcgi_temp_path %(w)s/tmp/fastcgi;
    uwsgi_temp_path %(w)s/tmp/uwsgi;
    scgi_temp_path %(w)s/tmp/scgi;
    proxy_cache_path %(w)s/cache levels=1:2 keys_zone=my-cache:8m max_size=1000m inactive=600m;
    proxy_temp_path %(w)s/tmp/proxy;
    server {
        listen 127.0.0.1:%(port)d;
        location / {
            proxy_pass http://127.0.0.1:%(origin)d;
            proxy_cache my-cache;
            proxy_cache_revalidate on;
            proxy_http_version 1.1;
        }
    }
}
""" % dict(w=w, port=self.port, origin=origin_port,
           user=("user %s;" % user) if os.geteuid() == 0 else ""))
        self.logs += [conf, os.path.join(w, "logs", "error.log")]
        self.spawn([self.BIN, "-p", w, "-c", conf])


class VarnishTarget(Target):
    """varnishd with the built-in VCL and one backend (-b), in the foreground (-F)."""
    name = "varnish"
    BIN = "/usr/sbin/varnishd"

    def missing(self):
        return None if os.access(self.BIN, os.X_OK) else "%s not installed" % self.BIN

    def version(self):
        v = version_of([self.BIN, "-V"])
        return v.split(" revision")[0].strip("()").replace("varnishd (", "")

    def start(self, origin_port):
        w = self.workdir
        self.port = free_port()
        os.makedirs(os.path.join(w, "varnish"), exist_ok=True)
        os.chmod(w, 0o755)
        self.spawn([self.BIN, "-F", "-n", os.path.join(w, "varnish"),
                    "-a", "127.0.0.1:%d" % self.port, "-b", "127.0.0.1:%d" % origin_port,
                    "-T", "127.0.0.1:%d" % free_port(), "-s", "malloc,64m",
                    "-P", os.path.join(w, "varnishd.pid")])


class SquidTarget(Target):
    """squid as a reverse proxy (accel), as in the suite's docker/squid/squid.conf; memory cache
    only, no daemon (-N)."""
    name = "squid"
    BIN = "/usr/sbin/squid"

    def missing(self):
        return None if os.access(self.BIN, os.X_OK) else "%s not installed" % self.BIN

    def version(self):
        return version_of([self.BIN, "-v"]).replace("Squid Cache: Version ", "squid ")

    def start(self, origin_port):
        w = self.workdir
        self.port = free_port()
        user = "proxy" if user_exists("proxy") else "nobody"
        os.makedirs(os.path.join(w, "logs"), exist_ok=True)
        chown_tree(w, user)
        conf = os.path.join(w, "squid.conf")
        with open(conf, "w") as f:
            f.write("""http_port 127.0.0.1:%(port)d accel defaultsite=127.0.0.1 no-vhost
cache_peer 127.0.0.1 parent %(origin)d 0 no-query no-digest originserver default name=myAccel
cache_peer_access myAccel allow all
http_access allow all
shutdown_lifetime 1 second
connect_retries 3
cache_mem 64 MB
pid_filename %(w)s/squid.pid
cache_log %(w)s/logs/cache.log
access_log stdio:%(w)s/logs/access.log
cache_store_log none
netdb_filename none
coredump_dir %(w)s
pinger_enable off
icp_port 0
htcp_port 0
cache_effective_user %(user)s
""" % dict(w=w, port=self.port, origin=origin_port, user=user))
        self.logs += [conf, os.path.join(w, "logs", "cache.log")]
        self.spawn([self.BIN, "-N", "-f", conf])


class TrafficServerTarget(Target):
    """Apache Traffic Server: traffic_server in the foreground from a runroot made with
    traffic_layout, records as in the suite's docker/trafficserver/records.config."""
    name = "trafficserver"
    BIN = "/usr/bin/traffic_server"
    LAYOUT = "/usr/bin/traffic_layout"
    RECORDS = [
        "CONFIG proxy.config.http.server_ports STRING %(port)d",
        "CONFIG proxy.config.exec_thread.autoconfig INT 0",
        "CONFIG proxy.config.exec_thread.limit INT 2",
        "CONFIG proxy.config.accept_threads INT 1",
        "CONFIG proxy.config.task_threads INT 2",
        "CONFIG proxy.config.http.insert_request_via_str INT 1",
        "CONFIG proxy.config.http.insert_response_via_str INT 0",
        "CONFIG proxy.config.http.cache.http INT 1",
        "CONFIG proxy.config.http.cache.ignore_client_cc_max_age INT 1",
        "CONFIG proxy.config.http.normalize_ae INT 1",
        "CONFIG proxy.config.http.cache.cache_responses_to_cookies INT 1",
        "CONFIG proxy.config.http.cache.cache_urls_that_look_dynamic INT 1",
        "CONFIG proxy.config.http.cache.when_to_revalidate INT 0",
        "CONFIG proxy.config.http.cache.required_headers INT 2",
        "CONFIG proxy.config.http.cache.heuristic_min_lifetime INT 3600",
        "CONFIG proxy.config.http.cache.heuristic_max_lifetime INT 86400",
        "CONFIG proxy.config.http.cache.heuristic_lm_factor FLOAT 0.10",
        "CONFIG proxy.config.http.negative_caching_enabled INT 0",
        "CONFIG proxy.config.http.insert_client_ip INT 1",
        "CONFIG proxy.config.http.insert_squid_x_forwarded_for INT 1",
        "CONFIG proxy.config.cache.ram_cache.size INT 67108864",
        "CONFIG proxy.config.cache.limits.http.max_alts INT 5",
        "CONFIG proxy.config.cache.max_doc_size INT 0",
        "CONFIG proxy.config.url_remap.remap_required INT 1",
        "CONFIG proxy.config.url_remap.pristine_host_hdr INT 1",
        "CONFIG proxy.config.reverse_proxy.enabled INT 1",
        "CONFIG proxy.config.diags.debug.enabled INT 0",
        "CONFIG proxy.config.admin.user_id STRING %(user)s",
        "CONFIG proxy.config.http.wait_for_cache INT 2",
    ]

    def missing(self):
        for b in (self.BIN, self.LAYOUT):
            if not os.access(b, os.X_OK):
                return "%s not installed" % b
        return None

    def version(self):
        v = version_of([self.BIN, "-V"])
        parts = v.split()
        return "trafficserver %s" % parts[2] if len(parts) > 2 else v

    def start(self, origin_port):
        w = self.workdir
        root = os.path.join(w, "runroot")
        self.port = free_port()
        p = subprocess.run([self.LAYOUT, "init", "--path", root, "--copy-style=full"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=60)
        if p.returncode != 0:
            raise RuntimeError("traffic_layout init failed: %s" % p.stdout[-2000:])
        with open(os.path.join(root, "runroot.yaml")) as f:
            layout = dict(l.split(":", 1) for l in f.read().splitlines() if ":" in l)
        layout = {k.strip(): v.strip() for k, v in layout.items()}
        etc = layout.get("sysconfdir", os.path.join(root, "etc/trafficserver"))
        cachedir = layout.get("cachedir", os.path.join(root, "var/trafficserver"))
        for d in (etc, cachedir, layout.get("logdir", ""), layout.get("runtimedir", "")):
            if d:
                os.makedirs(d, exist_ok=True)
        user = "trafficserver" if user_exists("trafficserver") else "nobody"
        with open(os.path.join(etc, "records.config"), "w") as f:
            f.write("\n".join(r % dict(port=self.port, user=user) for r in self.RECORDS) + "\n")
        with open(os.path.join(etc, "remap.config"), "w") as f:
            f.write("map http://127.0.0.1:%d/ http://127.0.0.1:%d/\n" % (self.port, origin_port))
            f.write("map / http://127.0.0.1:%d/\n" % origin_port)
        with open(os.path.join(etc, "storage.config"), "w") as f:
            f.write("%s 256M\n" % cachedir)
        with open(os.path.join(etc, "ip_allow.yaml"), "w") as f:
            f.write("ip_allow:\n  - apply: in\n    ip_addrs: 127.0.0.1\n    action: allow\n"
                    "  - apply: out\n    ip_addrs: 127.0.0.1\n    action: allow\n")
        chown_tree(root, user)
        self.logs += [os.path.join(etc, "records.config"),
                      os.path.join(layout.get("logdir", root), "diags.log"),
                      os.path.join(layout.get("logdir", root), "traffic.out")]
        self.spawn([self.BIN, "--run-root=%s" % os.path.join(root, "runroot.yaml")])


TARGETS = {c.name: c for c in (IsrTarget, ApacheTarget, NginxTarget, VarnishTarget,
                               SquidTarget, TrafficServerTarget)}
PEERS = ["apache", "nginx", "varnish", "squid", "trafficserver"]


# ------------------------------------------------------------------------------------- the suite

def prepare_suite(out_dir, npm_timeout):
    """A copy of the vendored suite in build/cache-tests/suite (so that node_modules/undici can
    sit next to it, outside the repository), with undici installed from npm if possible."""
    suite = os.path.join(out_dir, "suite")
    os.makedirs(suite, exist_ok=True)
    for name in ("test-engine", "tests"):
        dst = os.path.join(suite, name)
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(os.path.join(SUITE_SRC, name), dst)
    for name in ("package.json", "LICENSE"):
        shutil.copy2(os.path.join(SUITE_SRC, name), os.path.join(suite, name))
    if os.path.isfile(os.path.join(suite, "node_modules", "undici", "package.json")):
        return suite, "present"
    log("npm install undici (for the interim-response tests) into %s" % suite)
    try:
        p = subprocess.run([NPM, "install", "--no-audit", "--no-fund", "--no-package-lock",
                            "--omit=dev", "--loglevel=error"], cwd=suite,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=npm_timeout)
        ok = p.returncode == 0
        out = p.stdout
    except (OSError, subprocess.SubprocessError) as e:
        ok, out = False, str(e)
    if not ok:
        log("npm install failed, the interim-response tests will fail: %s" % out[-500:])
        return suite, "missing (npm install failed)"
    return suite, "installed"


def start_origin(suite, workdir):
    port = free_port()
    pidfile = os.path.join(workdir, "origin.pid")
    env = dict(os.environ, npm_config_port=str(port), npm_config_protocol="http",
               npm_config_pidfile=pidfile)
    out = open(os.path.join(workdir, "origin.log"), "wb")
    try:
        proc = subprocess.Popen([NODE, "--import", LOOPBACK, "test-engine/server/server.mjs"],
                                cwd=suite, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    finally:
        out.close()
    if not wait_port(port, 15, proc):
        stop_proc(proc, "origin")
        raise RuntimeError("cache-tests origin server did not listen on %d" % port)
    return proc, port


def run_cli(suite, port, out_json, err_path, timeout):
    env = dict(os.environ, npm_config_base="http://127.0.0.1:%d" % port,
               npm_config_id="", npm_package_config_id="")
    t0 = time.monotonic()
    with open(out_json + ".tmp", "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen([NODE, "--no-warnings", "test-engine/cli.mjs"], cwd=suite,
                                env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            stop_proc(proc, "cli")
            raise RuntimeError("the suite's CLI did not finish within %ds" % timeout)
        finally:
            if proc.poll() is None:
                stop_proc(proc, "cli")
    elapsed = time.monotonic() - t0
    if proc.returncode != 0:
        raise RuntimeError("the suite's CLI exited with %d (see %s)" % (proc.returncode, err_path))
    with open(out_json + ".tmp") as f:
        data = json.load(f)
    if not isinstance(data, dict) or not data:
        raise RuntimeError("the suite's CLI printed no results")
    os.replace(out_json + ".tmp", out_json)
    return elapsed


def run_target(target, suite, out_dir, timeout):
    """Origin + cache + CLI for one target; everything started is stopped in finally."""
    origin = None
    started = False
    info = {"target": target.name, "version": target.version()}
    try:
        origin, origin_port = start_origin(suite, target.workdir)
        target.start(origin_port)
        started = True
        why = wait_http(target.port, 30, target.proc)
        if why:
            raise RuntimeError("%s on port %d: %s" % (target.name, target.port, why))
        log("%s (%s) on 127.0.0.1:%d, origin on 127.0.0.1:%d; running the suite (at most %ds)"
            % (target.name, info["version"], target.port, origin_port, timeout))
        out_json = os.path.join(out_dir, "%s.json" % target.name)
        info["seconds"] = run_cli(suite, target.port, out_json,
                                  os.path.join(out_dir, "%s.cli-stderr.log" % target.name),
                                  timeout)
        info["results"] = out_json
        with open(os.path.join(out_dir, "%s.info.json" % target.name), "w") as f:
            json.dump(info, f)
    finally:
        if started:
            target.stop()
        stop_proc(origin, "origin")
        logdir = os.path.join(out_dir, "%s.logs" % target.name)
        shutil.rmtree(logdir, ignore_errors=True)
        os.makedirs(logdir, exist_ok=True)
        for f in target.logs + [os.path.join(target.workdir, "origin.log")]:
            if os.path.isfile(f):
                dst = os.path.join(logdir, os.path.basename(f))
                if os.path.exists(dst):
                    dst = os.path.join(logdir, "%s-%s" % (os.path.basename(os.path.dirname(f)),
                                                          os.path.basename(f)))
                shutil.copyfile(f, dst)
        if hasattr(target, "cleanup"):
            target.cleanup()
    return info


# ------------------------------------------------------------------------------------- report

COLS = [("pass", "pass"), ("fail", "required fail"), ("optional_fail", "optional fail"),
        ("yes", "check yes"), ("no", "check no"), ("setup_fail", "setup fail"),
        ("harness_fail", "harness fail"), ("dependency_fail", "dependency fail"),
        ("retry", "retry")]


def score(files):
    p = subprocess.run([NODE, "--no-warnings", SCORER, "--json"] + files, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=120)
    if p.returncode != 0:
        raise RuntimeError("scoring failed: %s" % p.stderr)
    return json.loads(p.stdout)


def cell(sc, k):
    a, b = sc["counts"].get(k, 0), sc["noDeps"]["counts"].get(k, 0)
    return str(a) if k == "dependency_fail" else "%d [%d]" % (a, b)


def markdown(infos, scores, undici, skipped):
    out = ["# HTTP cache conformance (cache-tests.fyi suite, commit %s)" % SUITE_COMMIT, "",
           "Run %s with bench/cache_tests.py; counted with the suite's own "
           "`determineTestResult` (test-engine/lib/results.mjs, dependencies honoured). "
           "undici: %s." % (time.strftime("%Y-%m-%d %H:%M %Z"), undici), "",
           "Each cell: the suite's count (dependencies honoured, as cache-tests.fyi shows "
           "them) / [each test on its own result, as the CLI scores a single test].", "",
           "| target | version | tests | " + " | ".join(c[1] for c in COLS) + " | run s |",
           "|---|---|---:|" + "---:|" * len(COLS) + "---:|"]
    for info in infos:
        sc = scores.get(info["target"])
        if sc is None:
            out.append("| %s | %s | run failed: %s |" % (
                info["target"], info["version"],
                " ".join(info.get("error", "?").split()).replace("|", "\\|")))
            continue
        out.append("| %s | %s | %d | %s | %.0f |" % (
            info["target"], info["version"], sc["total"],
            " | ".join(cell(sc, k) for k, _ in COLS), info.get("seconds", 0)))
    for name, why in skipped:
        out.append("| %s | skipped: %s |" % (name, why))
    for info in infos:
        sc = scores.get(info["target"])
        if sc is None:
            continue
        counted = {f["id"] for f in sc["requiredFailures"]}
        own_fail = sc["noDeps"]["requiredFailures"]
        out += ["", "## %s: required failures (%d counted; %d on their own result)"
                % (info["target"], len(counted), len(own_fail)), "",
                "(dep) marks a test the suite counts as a dependency failure because a test "
                "in its depends_on did not pass."]
        suite = None
        for f in own_fail:
            if f["suite"] != suite:
                suite = f["suite"]
                out += ["", "**%s**" % suite, ""]
            out.append("- `%s`%s — %s" % (f["id"], "" if f["id"] in counted else " (dep)",
                                          f["detail"].replace("|", "\\|")))
        out += ["", "## %s: tests whose id contains 'stale'" % info["target"], "",
                "| test | suite result | own result | detail |", "|---|---|---|---|"]
        own = {f["id"]: f["result"] for f in sc["noDeps"]["stale"]}
        for f in sc["stale"]:
            out.append("| `%s` | %s | %s | %s |" % (f["id"], f["result"], own.get(f["id"], "?"),
                                                   f["detail"].replace("|", "\\|")))
    return "\n".join(out) + "\n"


def table(infos, scores, skipped):
    head = ["target", "tests"] + [c[1] for c in COLS]
    rows = []
    for info in infos:
        sc = scores.get(info["target"])
        if sc is None:
            rows.append([info["target"], "FAILED: %s" % info.get("error", "?").splitlines()[0]])
            continue
        rows.append([info["target"], str(sc["total"])] + [cell(sc, k) for k, _ in COLS])
    for name, why in skipped:
        rows.append([name, "skipped: %s" % why])
    w = [max(len(r[i]) for r in [head] + rows if len(r) > 2 or i == 0)
         for i in range(len(head))]
    lines = ["  ".join(h.rjust(w[i]) if i else h.ljust(w[i]) for i, h in enumerate(head))]
    for r in rows:
        if len(r) == 2:
            lines.append(r[0].ljust(w[0]) + "  " + r[1])
        else:
            lines.append("  ".join(c.rjust(w[i]) if i else c.ljust(w[i]) for i, c in enumerate(r)))
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("targets", nargs="*", default=["isr"],
                    help="isr, %s, peers (the installed ones), all (isr + peers)"
                         % ", ".join(PEERS))
    ap.add_argument("--conf-extra", action="append", default=[],
                    help="a directive line added inside <Location /> of the isr target "
                         "(repeatable; a value may also hold several lines separated by "
                         "newlines or a literal \\n)")
    ap.add_argument("--isr-layout", choices=IsrTarget.LAYOUTS, default="alone",
                    help="how the suite's control requests reach the origin past mod_isr "
                         "(see IsrTarget; default alone)")
    ap.add_argument("--label", help="result name of the isr target (default isr, or "
                                    "isr-LAYOUT for another layout)")
    ap.add_argument("--timeout", type=int, default=540,
                    help="seconds the suite's CLI may take per target (default 540)")
    ap.add_argument("--npm-timeout", type=int, default=180)
    ap.add_argument("--report-only", action="store_true",
                    help="run nothing: score the targets' existing OUT/TARGET.json again and "
                         "rewrite the summary")
    ap.add_argument("--out", default=os.path.join(REPO_DIR, "build", "cache-tests"))
    args = ap.parse_args(argv)

    names = []
    for t in args.targets:
        if t == "all":
            names += ["isr"] + PEERS
        elif t == "peers":
            names += PEERS
        elif t in TARGETS:
            names.append(t)
        elif not args.report_only:
            ap.error("unknown target %r" % t)
    names = list(dict.fromkeys(names))
    explicit = set(args.targets) - {"all", "peers"}
    extra = []
    for v in args.conf_extra:
        extra += [l.strip() for l in v.replace("\\n", "\n").splitlines() if l.strip()]

    out_dir = os.path.abspath(args.out)
    os.makedirs(out_dir, exist_ok=True)
    if not shutil.which(NODE):
        log("node not found")
        return 2
    infos, skipped, failed = [], [], []
    if args.report_only:
        labels = [args.label or ("isr" if args.isr_layout == "control" else
                                 "isr-" + args.isr_layout) if n == "isr" else n for n in names]
        labels += [t for t in args.targets if t not in TARGETS and t not in ("all", "peers")]
        for n in labels:
            f = os.path.join(out_dir, "%s.json" % n)
            if os.path.isfile(f):
                info = {"target": n, "version": "(earlier run)"}
                try:
                    with open(os.path.join(out_dir, "%s.info.json" % n)) as g:
                        info.update(json.load(g))
                except (OSError, ValueError):
                    pass
                info["results"] = f
                infos.append(info)
        names = []
        undici = "(earlier run)"
    else:
        suite, undici = prepare_suite(out_dir, args.npm_timeout)

    for name in names:
        workdir = tempfile.mkdtemp(prefix="cachetests-%s-" % name)
        os.chmod(workdir, 0o755)
        if name == "isr":
            target = IsrTarget(workdir, extra, args.isr_layout, args.label)
        else:
            target = TARGETS[name](workdir)
        why = target.missing()
        if why:
            log("%s: skipped: %s" % (target.name, why))
            skipped.append((target.name, why))
            if name in explicit:
                failed.append(name)
            shutil.rmtree(workdir, ignore_errors=True)
            continue
        try:
            info = run_target(target, suite, out_dir, args.timeout)
            log("%s: done in %.0fs -> %s" % (target.name, info["seconds"], info["results"]))
        except Exception as e:  # report it, go on with the next target
            log("%s: FAILED: %s" % (target.name, e))
            info = {"target": target.name, "version": target.version(), "error": str(e)}
            failed.append(name)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        infos.append(info)

    files = [i["results"] for i in infos if "results" in i]
    scores = score(files) if files else {}
    if files:
        p = subprocess.run([NODE, "--no-warnings", SCORER] + files, stdout=subprocess.PIPE,
                           text=True, timeout=120)
        with open(os.path.join(out_dir, "report.txt"), "w") as f:
            f.write(p.stdout)
        print(p.stdout)
    md = markdown(infos, scores, undici, skipped)
    with open(os.path.join(out_dir, "summary.md"), "w") as f:
        f.write(md)
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump({"suite_commit": SUITE_COMMIT, "undici": undici, "runs": infos,
                   "skipped": skipped, "scores": scores}, f, indent=1)
    print(table(infos, scores, skipped))
    log("summary: %s" % os.path.join(out_dir, "summary.md"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
