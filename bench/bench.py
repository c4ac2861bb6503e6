#!/usr/bin/env python3
"""mod_isr benchmark driver (started by bench/run.sh, which builds the helpers first).

Starts a C origin and every target on its own 127.0.0.1 port, runs scenarios S1-S7 with wrk
and bench/.build/hload, and writes bench/results/<timestamp>.md (+ latest.md), an SVG chart
and bench/RESULTS.md. Every setting is an environment variable; see bench/README.md.
Only the Python standard library is used.
"""
import atexit
import datetime
import glob
import gzip
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import http.client

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
BUILD = os.path.join(BENCH, ".build")
T_START = time.time()


# ---------------------------------------------------------------- settings
def env(name, default):
    v = os.environ.get(name)
    return default if v is None or v == "" else v


def env_f(name, default):
    return float(env(name, default))


def env_i(name, default):
    return int(env(name, default))


CFG = {
    "targets": env("BENCH_TARGETS", "isr isr_quick isr_nofast null static mod_cache nginx varnish").split(),
    "scenarios": env("BENCH_SCENARIOS", "S1 S2 S3 S4 S5 S6 S7").split(),
    "wrk_threads": env_i("BENCH_WRK_THREADS", 1),
    "wrk_conns": env_i("BENCH_WRK_CONNS", 50),
    "duration": env_f("BENCH_DURATION", 5),
    "s1_sizes": [int(x) for x in env("S1_SIZES", "1024 65536").split()],
    "s1_rounds": env_i("S1_ROUNDS", 3),
    "s1_duration": env_f("S1_DURATION", 3),
    "s1_perf_duration": env_f("S1_PERF_DURATION", 3),
    "soak_targets": env("SOAK_TARGETS", "isr").split(),
    "soak_duration": env_f("SOAK_DURATION", 3),
    "s2_rounds": env_i("S2_ROUNDS", 3),
    "s2_conns": env_i("S2_CONNS", 50),
    "s2_window": env_f("S2_WINDOW", 1.5),
    "s2_delay": env_i("S2_DELAY_MS", 1000),
    "s2_ttl": env_i("S2_TTL", 1),
    "s3_conns": env_i("S3_CONNS", 200),
    "s3_delay": env_i("S3_DELAY_MS", 500),
    "s3_rounds": env_i("S3_ROUNDS", 3),
    "s4_keys": env_i("S4_KEYS", 10000),
    "s4_duration": env_f("S4_DURATION", env("BENCH_DURATION", 5)),
    "s5_keys": [int(x) for x in env("S5_KEYS", "100 10000 1000000").split()],
    "s5_targets": env("S5_TARGETS", "isr").split(),
    "s5_duration": env_f("S5_DURATION", env("BENCH_DURATION", 5)),
    "s5_bytes_per_key": env_i("S5_BYTES_PER_KEY", 2048),
    "s5_refresh_keys": env_i("S5_REFRESH_KEYS", 10000),
    "s7_targets": env("S7_TARGETS", "isr mod_cache nginx varnish").split(),
    "s7_duration": env_f("S7_DURATION", 15),
    "s7_keys": env_i("S7_KEYS", 8),
    "s7_size": env_i("S7_SIZE", 65536),
    "s7_rate": env_f("S7_RATE", 100),
    "s6_targets": env("S6_TARGETS", "isr isr_deflate mod_cache_deflate nginx varnish").split(),
    "s6_sizes": [int(x) for x in env("S6_SIZES", "1024 65536").split()],
    "s6_rounds": env_i("S6_ROUNDS", 3),
    "s6_duration": env_f("S6_DURATION", 3),
    "s6_docs": env("S6_DOCS", "/usr/share/doc/libaprutil1-dev/html /usr/share/doc/libapr1-dev/html").split(),
    "brotli": env("BROTLI", shutil.which("brotli") or "/usr/bin/brotli"),
    "fill_conns": env_i("BENCH_FILL_CONNS", 16),
    "isr_so": env("MOD_ISR", os.path.join(ROOT, ".libs", "mod_isr.so")),
    "isr_zone": env("ISR_ZONE_SIZE", "256M"),
    "isr_extra": env("ISR_EXTRA_CONF", ""),
    "isr_server": env("ISR_SERVER_CONF", ""),
    "cache_shm": env_i("MOD_CACHE_SHM_BYTES", 256 * 1024 * 1024),
    "nginx_zone": env("NGINX_KEYS_ZONE", "64m"),
    "varnish_mem": env("VARNISH_MALLOC", "256m"),
    "port_base": env_i("BENCH_PORT_BASE", 0),
    "keep": env("BENCH_KEEP", "0") == "1",
    "perf": env("BENCH_PERF", "1") == "1",
    "results": env("BENCH_RESULTS_DIR", os.path.join(BENCH, "results")),
    "httpd": env("APACHE2", shutil.which("apache2") or "/usr/sbin/apache2"),
    "modules": env("APACHE_MODULES", "/usr/lib/apache2/modules"),
    # the MPMs of the httpd targets: S1 runs every httpd target under each (the first as NAME, the
    # others as NAME@MPM, interleaved in the same rounds); S2-S7 run the first MPM's targets only
    "mpms": list(dict.fromkeys(env("BENCH_MPM", "event worker").split())),
    "nginx": env("NGINX", shutil.which("nginx") or "/usr/sbin/nginx"),
    "varnishd": env("VARNISHD", shutil.which("varnishd") or "/usr/sbin/varnishd"),
}
CFG["mpm"] = CFG["mpms"][0]  # the MPM of the targets of every scenario
# MPM settings shared by every httpd target (event and worker) (documented in bench/README.md)
MPM = """StartServers            4
ServerLimit             4
ThreadLimit             64
ThreadsPerChild         64
MaxRequestWorkers       256
MinSpareThreads         64
MaxSpareThreads         256
MaxConnectionsPerChild  0
KeepAlive               On
MaxKeepAliveRequests    0
KeepAliveTimeout        15
Timeout                 30
"""
LONG_CC = "max-age%3D86400"      # Cache-Control for the hit scenarios (urlencoded for cc=)
CACHING = ("isr", "isr_quick", "mod_cache", "nginx", "varnish")


def progress(msg):
    el = time.time() - T_START
    print("[%02d:%02d] %s" % (el // 60, el % 60, msg), flush=True)


# ---------------------------------------------------------------- processes
PROCS = []


class Proc:
    def __init__(self, name, argv, log, cwd=None, env_extra=None):
        self.name = name
        e = dict(os.environ)
        if env_extra:
            e.update(env_extra)
        self.logf = open(log, "ab")
        self.p = subprocess.Popen(argv, stdout=self.logf, stderr=subprocess.STDOUT, cwd=cwd,
                                  env=e, start_new_session=True)
        self.pid = self.p.pid
        PROCS.append(self)

    def alive(self):
        return self.p.poll() is None

    def stop(self, timeout=15):
        if self.alive():
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.p.wait(5)
        self.logf.close()
        if self in PROCS:
            PROCS.remove(self)


def stop_all():
    for p in list(reversed(PROCS)):
        try:
            p.stop()
        except Exception as ex:  # noqa
            print("warning: stopping %s: %s" % (p.name, ex), file=sys.stderr)


atexit.register(stop_all)


def _sig(signum, frame):
    stop_all()
    sys.exit(128 + signum)


signal.signal(signal.SIGINT, _sig)
signal.signal(signal.SIGTERM, _sig)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


NEXT_PORT = [CFG["port_base"]]


def alloc_port():
    if NEXT_PORT[0]:
        p = NEXT_PORT[0]
        NEXT_PORT[0] += 1
        return p
    return free_port()


def http_get(port, path, timeout=30):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), body
    finally:
        c.close()


def wait_port(port, proc, timeout=20):
    t = time.time()
    while time.time() - t < timeout:
        if proc is not None and not proc.alive():
            return False
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
            ppid = int(st[st.rindex(")") + 2:].split()[1])
            if ppid == pid:
                out.append(int(d))
        except (OSError, ValueError):
            pass
    return sorted(out)


def proc_mem(pid):
    """kB values from /proc/PID/status and smaps_rollup."""
    m = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "RssAnon", "RssShmem", "RssFile"):
                    m[k] = int(v.split()[0])
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("Pss", "Pss_Shmem", "Pss_Anon"):
                    m[k] = int(v.split()[0])
    except (OSError, ValueError):
        pass
    return m


def ctxt_switches(pids):
    """voluntary + involuntary context switches of every thread of the processes pids, so far"""
    n = 0
    for pid in pids:
        for st in glob.glob("/proc/%d/task/*/status" % pid):
            try:
                with open(st) as f:
                    for line in f:
                        if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                            n += int(line.split()[1])
            except (OSError, ValueError):
                pass
    return n


def mem_snapshot(pid):
    kids = children(pid)
    per = {c: proc_mem(c) for c in kids}
    parent = proc_mem(pid)
    pss = parent.get("Pss", 0) + sum(v.get("Pss", 0) for v in per.values())
    shm = parent.get("Pss_Shmem", 0) + sum(v.get("Pss_Shmem", 0) for v in per.values())
    return {"children": per, "parent": parent, "pss_total_kb": pss, "pss_shmem_kb": shm}


# ---------------------------------------------------------------- tools
def _raise_priority():
    # the latency client runs at a higher priority (when root) so that a busy machine delays the
    # servers, not the clock that measures them
    try:
        os.nice(-10)
    except OSError:
        pass


def run(argv, timeout, check=True, priority=False):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                       text=True, preexec_fn=_raise_priority if priority else None)
    if check and r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (argv[0], r.returncode, r.stderr.strip()[:500]))
    return r


def hload(port, path, conns=10, duration=None, n=None, keys=1, mode="fixed", once=False,
          timeout=30, latfile=None):
    argv = [os.path.join(BUILD, "hload"), "-p", str(port), "-u", path, "-c", str(conns),
            "-k", str(keys), "-m", mode, "-t", str(timeout)]
    if once:
        argv.append("-1")
    if duration:
        argv += ["-d", str(duration)]
    if n is not None:
        argv += ["-n", str(n)]
    if latfile:
        argv += ["-o", latfile]
    budget = (duration or 0) + timeout + 60 + (n or 0) / 2000.0
    r = run(argv, timeout=budget, priority=True)
    res = {}
    for kv in r.stdout.split():
        k, _, v = kv.partition("=")
        try:
            res[k] = float(v)
        except ValueError:
            res[k] = v
    return res


def parse_ms(s):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", s)
    if not m:
        return None
    v = float(m.group(1))
    return {"us": v / 1000, "ms": v, "s": v * 1000, "m": v * 60000}[m.group(2)]


def wrk(port, path, duration, script=None, env_extra=None, conns=None, threads=None, headers=()):
    conns = conns or CFG["wrk_conns"]
    threads = threads or CFG["wrk_threads"]
    argv = ["wrk", "-t", str(threads), "-c", str(conns), "-d", "%ds" % max(1, round(duration)),
            "--latency", "--timeout", "10s"]
    for h in headers:
        argv += ["-H", h]
    if script:
        argv += ["-s", script]
    argv.append("http://127.0.0.1:%d%s" % (port, path))
    e = dict(os.environ)
    if env_extra:
        e.update(env_extra)
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=duration + 120, env=e)
    out = r.stdout
    res = {"rps": 0.0, "requests": 0, "errors": 0, "non2xx": 0, "raw": out + r.stderr}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m:
        res["rps"] = float(m.group(1))
    m = re.search(r"(\d+) requests in ([\d.]+\w+)", out)
    if m:
        res["requests"] = int(m.group(1))
    for p in ("50", "75", "90", "99"):
        m = re.search(r"^\s+%s%%\s+(\S+)" % p, out, re.M)
        if m:
            res["p" + p] = parse_ms(m.group(1))
    m = re.search(r"Latency\s+(\S+)\s+(\S+)\s+(\S+)", out)
    if m:
        res["max"] = parse_ms(m.group(3))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        res["non2xx"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        res["errors"] = sum(int(x) for x in m.groups())
    return res


# ---------------------------------------------------------------- origin
class Origin:
    def __init__(self, work, page_file=None):
        self.port = alloc_port()
        argv = [os.path.join(BUILD, "origin"), "-p", str(self.port)]
        if page_file:
            argv += ["-f", page_file]  # html=1&off=N: S6's pages, Content-Type text/html
        self.proc = Proc("origin", argv, os.path.join(work, "logs", "origin.log"))
        if not wait_port(self.port, self.proc):
            raise RuntimeError("origin did not start")

    def count(self):
        return int(http_get(self.port, "/__count")[2])

    def stats(self):
        """the origin's /__stats counters (never reset) as a dict of ints"""
        body = http_get(self.port, "/__stats")[2].decode()
        return dict((k, int(v)) for k, v in (kv.split("=", 1) for kv in body.split()))

    def log_since(self, seq):
        body = http_get(self.port, "/__log?since=%d" % seq)[2].decode()
        out = []
        for line in body.splitlines():
            a, b = line.split()
            out.append((int(a), int(b) / 1e6))
        return out


# ---------------------------------------------------------------- targets
class Target:
    kind = "httpd"
    caching = False

    def __init__(self, name, work, origin):
        self.name = name
        self.work = work
        self.origin = origin
        self.port = alloc_port()
        self.proc = None
        self.note = ""
        self.mem = {}

    # URL of a cached object; ttl: "long" or "short"
    def url(self, key, size=1024, ttl="long", delay=0):
        pre = "/b/" if ttl == "long" else "/s/"
        cc = LONG_CC if ttl == "long" else "max-age%%3D%d" % CFG["s2_ttl"]
        q = "size=%d&cc=%s" % (size, cc)
        if delay:
            q += "&delay=%d" % delay
        return "%s%s?%s" % (pre, key, q)

    def start(self):
        raise NotImplementedError

    def stop(self):
        if self.proc:
            self.proc.stop()
            self.proc = None

    def pid(self):
        return self.proc.pid if self.proc else None

    def error_log(self):
        return None


HTTPD_COMMON = """# generated by bench/bench.py
ServerRoot "{work}"
DefaultRuntimeDir "{run}"
PidFile "{run}/httpd.pid"
Mutex file:{run} default
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
User www-data
Group www-data
ErrorLog "{logs}/{name}-error.log"
LogLevel warn
HostnameLookups Off
DocumentRoot "{docroot}"
LoadModule mpm_{mpm_name}_module {mods}/mod_mpm_{mpm_name}.so
LoadModule authz_core_module {mods}/mod_authz_core.so
LoadModule mime_module {mods}/mod_mime.so
TypesConfig /etc/mime.types
{mpm}
EnableMMAP Off
EnableSendfile On
<Directory />
    AllowOverride None
    Require all granted
</Directory>
"""


class Httpd(Target):
    mpm = None  # None: CFG["mpm"] (the first of BENCH_MPM); S1's extra instances set their own

    def conf_body(self):
        return ""

    def rundir(self):
        d = os.path.join(self.work, "run", self.name)
        os.makedirs(d, exist_ok=True)
        os.chmod(d, 0o777)
        return d

    def conf(self):
        d = dict(work=self.work, run=self.rundir(), name=self.name,
                 port=self.port, logs=os.path.join(self.work, "logs"),
                 docroot=os.path.join(self.work, "htdocs"), mods=CFG["modules"], mpm=MPM,
                 mpm_name=self.mpm or CFG["mpm"])
        return HTTPD_COMMON.format(**d) + self.conf_body()

    def start(self):
        path = os.path.join(self.work, "conf", self.name + ".conf")
        with open(path, "w") as f:
            f.write(self.conf())
        t = run([CFG["httpd"], "-t", "-f", path], timeout=30, check=False)
        if t.returncode != 0:
            raise RuntimeError("%s: config test failed: %s" % (self.name, (t.stderr + t.stdout).strip()[-800:]))
        self.proc = Proc(self.name, [CFG["httpd"], "-DFOREGROUND", "-f", path],
                         os.path.join(self.work, "logs", self.name + "-stdout.log"))
        if not wait_port(self.port, self.proc):
            raise RuntimeError("%s did not start; see %s" % (self.name, self.error_log()))
        # wait for every child to be up (StartServers 4)
        t0 = time.time()
        while len(children(self.proc.pid)) < 4 and time.time() - t0 < 10:
            time.sleep(0.05)

    def error_log(self):
        return os.path.join(self.work, "logs", self.name + "-error.log")


class IsrTarget(Httpd):
    caching = True

    def __init__(self, name, work, origin, zone=None, quick=False, loc_extra="", head=""):
        super().__init__(name, work, origin)
        self.zone = zone or CFG["isr_zone"]
        self.quick = quick
        self.loc_extra = loc_extra  # S6: more directives in both Locations
        self.head = head            # S6: more LoadModule lines

    def conf_body(self):
        o = self.origin.port
        extra = CFG["isr_extra"].replace("\\n", "\n")
        q = "    ISRQuickHandler On\n" if self.quick else ""
        q += "".join("    %s\n" % x for x in self.loc_extra.splitlines() if x.strip())
        return self.head + """LoadModule isr_module {so}
ISRCacheZone bench {zone}
{server}
<Location /b/>
    ISRBackend http://127.0.0.1:{o}/b/
    ISRCache bench
    ISRCacheTTL 86400s
    ISRStaleTTL 1h
{q}    {extra}
</Location>
<Location /s/>
    ISRBackend http://127.0.0.1:{o}/s/
    ISRCache bench
    ISRCacheTTL {ttl}s
    ISRStaleTTL 1h
{q}    {extra}
</Location>
""".format(so=CFG["isr_so"], zone=self.zone, o=o, ttl=CFG["s2_ttl"], extra=extra, q=q,
           server=CFG["isr_server"].replace("\\n", "\n"))


class NullTarget(Httpd):
    def conf_body(self):
        s = "LoadModule null_module %s\n" % os.path.join(BUILD, "mod_null.so")
        for size in sorted(set(CFG["s1_sizes"] + [1024])):
            s += "<Location /n/%d/>\n    NullSize %d\n</Location>\n" % (size, size)
        return s

    def url(self, key, size=1024, ttl="long", delay=0):
        return "/n/%d/%s" % (size, key)


class StaticTarget(Httpd):
    def url(self, key, size=1024, ttl="long", delay=0):
        if key.startswith("s4-") or key.startswith("s5-"):
            return "/f/keys/%s.bin" % key
        return "/f/%d.bin" % size


class ModCacheTarget(Httpd):
    caching = True
    extra = ""  # S6: appended to the configuration

    def conf_body(self):
        o = self.origin.port
        lock = os.path.join(self.work, "cachelock")
        return """LoadModule proxy_module {mods}/mod_proxy.so
LoadModule proxy_http_module {mods}/mod_proxy_http.so
LoadModule cache_module {mods}/mod_cache.so
LoadModule cache_socache_module {mods}/mod_cache_socache.so
LoadModule socache_shmcb_module {mods}/mod_socache_shmcb.so
CacheQuickHandler on
CacheLock on
CacheLockPath "{lock}"
CacheLockMaxAge 5
CacheStaleOnError on
CacheSocache shmcb:{run}/cache.shmcb({shm})
CacheSocacheMaxSize 102400
CacheEnable socache /b/
CacheEnable socache /s/
CacheHeader on
ProxyPass /b/ http://127.0.0.1:{o}/b/
ProxyPass /s/ http://127.0.0.1:{o}/s/
""".format(mods=CFG["modules"], lock=lock, run=self.rundir(),
           shm=CFG["cache_shm"], o=o) + self.extra


class NginxTarget(Target):
    kind = "nginx"
    caching = True
    http_extra = ""  # S6: directives added to the http block

    def start(self):
        w = os.path.join(self.work, self.name)
        for d in ("", "cache", "tmp", "logs"):
            os.makedirs(os.path.join(w, d), exist_ok=True)
            os.chmod(os.path.join(w, d), 0o777)
        conf = """# generated by bench/bench.py
worker_processes 2;
daemon off;
pid {w}/nginx.pid;
error_log {w}/logs/error.log warn;
user www-data;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
{extra}    client_body_temp_path {w}/tmp/body;
    proxy_temp_path {w}/tmp/proxy;
    fastcgi_temp_path {w}/tmp/fastcgi;
    uwsgi_temp_path {w}/tmp/uwsgi;
    scgi_temp_path {w}/tmp/scgi;
    proxy_cache_path {w}/cache levels=1:2 keys_zone=bench:{zone} max_size=4g inactive=1d use_temp_path=off;
    upstream origin {{ server 127.0.0.1:{o}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache bench;
            proxy_cache_use_stale updating error timeout http_500 http_502 http_503 http_504;
            proxy_cache_background_update on;
            proxy_cache_lock on;
            proxy_cache_lock_timeout 10s;
            proxy_cache_lock_age 10s;
            proxy_cache_revalidate on;
            add_header X-Cache-Status $upstream_cache_status;
        }}
    }}
}}
""".format(w=w, zone=CFG["nginx_zone"], o=self.origin.port, port=self.port,
           extra="".join("    %s\n" % x for x in self.http_extra.splitlines() if x.strip()))
        path = os.path.join(self.work, "conf", self.name + ".conf")
        with open(path, "w") as f:
            f.write(conf)
        t = run([CFG["nginx"], "-t", "-p", w, "-c", path], timeout=30, check=False)
        if t.returncode != 0:
            raise RuntimeError("nginx config test failed: " + (t.stderr + t.stdout)[-800:])
        self.proc = Proc(self.name, [CFG["nginx"], "-p", w, "-c", path],
                         os.path.join(self.work, "logs", self.name + "-stdout.log"))
        if not wait_port(self.port, self.proc):
            raise RuntimeError("nginx did not start")

    def error_log(self):
        return os.path.join(self.work, self.name, "logs", "error.log")


class VarnishTarget(Target):
    kind = "varnish"
    caching = True
    vbr_extra = ""  # S6: more statements in vcl_backend_response

    def start(self):
        vcl = os.path.join(self.work, "conf", self.name + ".vcl")
        with open(vcl, "w") as f:
            f.write("""vcl 4.1;
# generated by bench/bench.py
backend origin {
    .host = "127.0.0.1";
    .port = "%d";
    .connect_timeout = 3s;
    .first_byte_timeout = 10s;
}
sub vcl_backend_response {
    set beresp.grace = 1h;
%s}
""" % (self.origin.port, "".join("    %s\n" % x for x in self.vbr_extra.splitlines() if x.strip())))
        os.chmod(vcl, 0o644)
        ndir = os.path.join(self.work, self.name)
        self.proc = Proc(self.name, [CFG["varnishd"], "-F", "-n", ndir, "-a", "127.0.0.1:%d" % self.port,
                                     "-T", "127.0.0.1:0", "-f", vcl, "-s", "malloc,%s" % CFG["varnish_mem"]],
                         os.path.join(self.work, "logs", self.name + ".log"))
        if not wait_port(self.port, self.proc, timeout=30):
            raise RuntimeError("varnish did not start; see %s" % self.error_log())

    def error_log(self):
        return os.path.join(self.work, "logs", self.name + ".log")


# ---------------------------------------------------------------- helpers
def fmt(v, nd=1):
    if v is None:
        return "n/a"
    if isinstance(v, str):
        return v
    if isinstance(v, int):
        return "{:,}".format(v)
    if abs(v) >= 1000:
        return "{:,.0f}".format(v)
    return ("%." + str(nd) + "f") % v


def ratio(a, b):
    if a is None or b is None or not b:
        return None
    return a / b


def fr(x):
    return "n/a" if x is None else "%.2f×" % x


def percentile(sorted_vals, p):
    if not sorted_vals:
        return None
    i = int(p * (len(sorted_vals) - 1) + 0.5)
    return sorted_vals[min(i, len(sorted_vals) - 1)]


def lua_script(work):
    path = os.path.join(work, "keys.lua")
    with open(path, "w") as f:
        f.write("""-- random keys for wrk: BENCH_PRE .. k .. BENCH_POST, k uniform in [0, BENCH_KEYS)
local K = tonumber(os.getenv("BENCH_KEYS") or "1")
local pre = os.getenv("BENCH_PRE") or "/"
local post = os.getenv("BENCH_POST") or ""
local prebuild = (os.getenv("BENCH_LUA_PREBUILD") or "1") == "1"
local reqs = nil
function init(args)
    math.randomseed(os.time() + math.floor(os.clock() * 1000000))
    if prebuild and K <= 200000 then
        reqs = {}
        for i = 0, K - 1 do reqs[i + 1] = wrk.format("GET", pre .. i .. post) end
    end
end
function request()
    if reqs then return reqs[math.random(1, K)] end
    return wrk.format("GET", pre .. math.random(0, K - 1) .. post)
end
""")
    return path


def split_url(u, key):
    """u is a URL containing key, which ends in "0"; return (pre, post) around that digit"""
    i = u.index(key)
    return u[:i] + key[:-1], u[i + len(key):]


def warm(t, path, n=1):
    for _ in range(n):
        st, h, body = http_get(t.port, path)
    return st, h, body


def check_object(t, path, size):
    try:
        st, h, body = warm(t, path, 2)
    except Exception as ex:  # noqa
        return "error: %s" % ex
    problems = []
    if st != 200:
        problems.append("status %d" % st)
    if len(body) != size:
        problems.append("body %d bytes, expected %d" % (len(body), size))
    if t.name.startswith("isr") and h.get("x-isr-status", "").upper() != "HIT":
        problems.append("X-ISR-Status %r on second request (expected HIT)" % h.get("x-isr-status"))
    return "; ".join(problems)


# ---------------------------------------------------------------- S6 helpers
def s6_generated(n, seed=6):
    """n bytes of HTML-like text from a seeded PRNG: varied made-up words, headings, paragraphs,
    links, lists, code and tables (used when the Debian HTML docs are not installed)"""
    rng = random.Random(seed)
    syl = ["ba", "ce", "di", "fo", "gu", "ha", "je", "ki", "lo", "mu", "na", "pe", "qui", "ro", "sa",
           "te", "vu", "wa", "xe", "yo", "zi", "str", "ent", "ion", "al", "er", "ing", "or", "ph", "th"]
    vocab = ["".join(rng.choice(syl) for _ in range(rng.randint(1, 4))) for _ in range(3000)]
    vocab += ["the", "of", "and", "to", "a", "in", "is", "that", "for", "it", "with", "as", "on", "be"] * 40

    def words(k):
        return " ".join(rng.choice(vocab) for _ in range(k))
    out = ['<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>%s</title>\n'
           '<link rel="stylesheet" href="/css/site.css">\n</head>\n<body>\n<div id="page">\n' % words(4)]
    size = len(out[0])
    while size < n:
        r = rng.random()
        if r < 0.08:
            x = '<h2 id="%s">%s</h2>\n' % (rng.choice(vocab), words(rng.randint(2, 6)).capitalize())
        elif r < 0.55:
            parts = []
            for _ in range(rng.randint(2, 6)):
                w = words(rng.randint(4, 18))
                if rng.random() < 0.3:
                    w += ' <a href="/%s/%s.html">%s</a>' % (rng.choice(vocab), rng.choice(vocab), words(2))
                if rng.random() < 0.2:
                    w += " <code>%s_%s()</code>" % (rng.choice(vocab), rng.choice(vocab))
                parts.append(w.capitalize() + ".")
            x = "<p>%s</p>\n" % " ".join(parts)
        elif r < 0.75:
            x = '<ul class="%s">\n%s</ul>\n' % (rng.choice(vocab), "".join(
                '  <li><a href="#%s">%s</a></li>\n' % (rng.choice(vocab), words(rng.randint(1, 5)))
                for _ in range(rng.randint(2, 8))))
        elif r < 0.9:
            x = '<table class="memberdecls">\n%s</table>\n' % "".join(
                '<tr><td class="memItemLeft">%s</td><td class="memItemRight"><a href="#%x">%s</a> (%s)</td></tr>\n'
                % (rng.choice(vocab), rng.getrandbits(32), rng.choice(vocab), words(rng.randint(1, 4)))
                for _ in range(rng.randint(2, 6)))
        else:
            x = "<pre>%s</pre>\n" % "\n".join("    %s(%s);" % (rng.choice(vocab), ", ".join(
                rng.choice(vocab) for _ in range(rng.randint(1, 3)))) for _ in range(rng.randint(2, 6)))
        out.append(x)
        size += len(x)
    return "".join(out).encode()[:n]


def s6_pages(sizes, docs):
    """S6's pages: {size: (offset in the page file, bytes)} and where the text came from. The HTML
    documentation pages of the installed Debian packages (S6_DOCS, sorted *.html of each directory,
    the *_source.html code listings left out) are concatenated and cut into consecutive pages,
    the largest first (so it starts at the first page's <!DOCTYPE>); a seeded PRNG generates the
    text instead when they are missing or too short. Nothing is copied into the repository."""
    need = sum(sizes)
    data = bytearray()
    used = []
    for d in docs:
        for f in sorted(glob.glob(os.path.join(d, "*.html"))):
            if f.endswith("_source.html") or len(data) >= need:
                continue
            try:
                with open(f, "rb") as fh:
                    data += fh.read()
                used.append(f)
            except OSError:
                pass
    if len(data) >= need:
        src = "the HTML docs in %s (%d pages concatenated, code listings left out)" % (
            " and ".join(sorted(set(os.path.dirname(f) for f in used))), len(used))
    else:
        data = s6_generated(need)
        src = "generated HTML-like text (seeded PRNG; %s not installed)" % " / ".join(docs)
    pages, off = {}, 0
    for size in sorted(set(sizes), reverse=True):
        pages[size] = (off, bytes(data[off:off + size]))
        off += size
    return pages, src


def raw_get(port, path, headers=(), timeout=10):
    """One GET on its own keep-alive connection, framing parsed here so that the bytes on the wire
    are known: (status, {header: value} lower-case, body as received (transfer coding removed,
    content coding kept), bytes of the head, bytes of the body on the wire incl. chunk framing)."""
    s = socket.create_connection(("127.0.0.1", port), timeout)
    try:
        req = "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: bench-s6\r\n%s\r\n" % (
            path, port, "".join("%s\r\n" % h for h in headers))
        s.sendall(req.encode())
        buf = b""
        deadline = time.time() + timeout

        def more():
            if time.time() > deadline:
                raise OSError("timeout reading the response")
            c = s.recv(65536)
            if not c:
                raise OSError("connection closed early")
            return c
        while b"\r\n\r\n" not in buf:
            buf += more()
        i = buf.index(b"\r\n\r\n") + 4
        head, rest = buf[:i], buf[i:]
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {}
        for ln in lines[1:]:
            if ":" in ln:
                k, v = ln.split(":", 1)
                k = k.strip().lower()
                hdrs[k] = (hdrs[k] + ", " + v.strip()) if k in hdrs else v.strip()
        if "chunked" in hdrs.get("transfer-encoding", "").lower():
            body, wire, pos = b"", 0, 0
            while True:
                while b"\r\n" not in rest[pos:]:
                    rest += more()
                j = rest.index(b"\r\n", pos)
                n = int(rest[pos:j].split(b";")[0], 16)
                while len(rest) < j + 2 + n + 2:
                    rest += more()
                body += rest[j + 2:j + 2 + n]
                pos = j + 2 + n + 2
                if n == 0:  # no trailers expected; the final CRLF was read above
                    break
            wire = pos
        elif "content-length" in hdrs:
            n = int(hdrs["content-length"])
            while len(rest) < n:
                rest += more()
            body, wire = rest[:n], n
        else:
            body, wire = rest, len(rest)
        return status, hdrs, body, len(head), wire
    finally:
        s.close()


def s6_decode(coding, body):
    """the identity bytes of body in coding (gzip: Python's gzip; br: the brotli CLI)"""
    if coding in ("", "identity"):
        return body
    if coding in ("gzip", "x-gzip"):
        return gzip.decompress(body)
    if coding == "br":
        r = subprocess.run([CFG["brotli"], "-d", "-c"], input=body, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
        if r.returncode != 0:
            raise ValueError("brotli -d failed: %s" % r.stderr.decode(errors="replace").strip()[:200])
        return r.stdout
    raise ValueError("unknown Content-Encoding %r" % coding)


# S6: the requests (label, Accept-Encoding header or None) and the codings expected in return
S6_AE = (("gzip, br", "gzip, br"), ("gzip", "gzip"), ("identity", None))
S6_LEVELS = {
    "isr": "ISRCompress gzip br: gzip level 9, br level 10 (its defaults), made once at store time",
    "isr_deflate": "mod_deflate per hit, default DeflateCompressionLevel (zlib's default, 6)",
    "mod_cache_deflate": "mod_deflate, default DeflateCompressionLevel (zlib's default, 6)",
    "nginx": "gzip per hit, default gzip_comp_level 1",
    "varnish": "beresp.do_gzip: gzip once at store time, default gzip_level 6",
}


def s6_expected(name, ae):
    """codings a target must answer with: isr with ISRCompress prefers br (br wins ties with gzip);
    the others have gzip only; no Accept-Encoding means identity"""
    if ae is None:
        return ("identity",)
    if name == "isr" and "br" in ae:
        return ("br",)
    return ("gzip",)


def s6_hit(name, h):
    """the answer's cache status (HIT or what the target says)"""
    if name.startswith("isr"):
        return (h.get("x-isr-status") or "-").split()[0].upper()
    if name == "nginx":
        return (h.get("x-cache-status") or "-").upper()
    if name.startswith("mod_cache"):
        return (h.get("x-cache") or "-").split()[0].upper()
    if name == "varnish":
        return "HIT" if len((h.get("x-varnish") or "").split()) == 2 else "MISS"
    return "-"


# ---------------------------------------------------------------- scenarios
class Bench:
    def __init__(self):
        self.work = tempfile.mkdtemp(prefix="isr-bench-")
        os.chmod(self.work, 0o755)
        for d in ("run", "logs", "conf", "htdocs", "htdocs/f", "htdocs/f/keys", "cachelock"):
            os.makedirs(os.path.join(self.work, d), exist_ok=True)
        os.chmod(os.path.join(self.work, "cachelock"), 0o777)
        os.chmod(os.path.join(self.work, "run"), 0o777)
        self.runid = "%x" % int(time.time())
        self.res = {"S1": {}, "S2": {}, "S3": {}, "S4": {}, "S5": {}, "S5r": {}, "S6": {}, "S7": {},
                    "mem": {}, "checks": {}}
        self.notes = []
        self.targets = []
        self.s1_extra = []   # S1's extra instances (NAME@MPM, isr_nofast), stopped after S1
        self.s1_order = []   # S1's targets in the order of a round
        self.skipped = {}
        self.lua = lua_script(self.work)
        self.s6_file = None
        if "S6" in CFG["scenarios"]:
            # S6's pages, read (or generated) at run time into the work directory; the origin
            # serves them with html=1&off=N&size=N
            self.s6_pages, self.s6_source = s6_pages(CFG["s6_sizes"], CFG["s6_docs"])
            self.s6_file = os.path.join(self.work, "s6-pages.html")
            with open(self.s6_file, "wb") as f:
                for size in sorted(self.s6_pages, key=lambda x: self.s6_pages[x][0]):
                    f.write(self.s6_pages[size][1])
            os.chmod(self.s6_file, 0o644)

    # -- setup
    def make_files(self):
        for size in sorted(set(CFG["s1_sizes"] + [1024])):
            with open(os.path.join(self.work, "htdocs", "f", "%d.bin" % size), "wb") as f:
                f.write(bytes((97 + i % 26) for i in range(size)))
        if "S4" in CFG["scenarios"]:
            data = bytes((97 + i % 26) for i in range(1024))
            kd = os.path.join(self.work, "htdocs", "f", "keys")
            for k in range(CFG["s4_keys"]):
                with open(os.path.join(kd, "s4-%d.bin" % k), "wb") as f:
                    f.write(data)

    def new_target(self, name, label):
        """a target of kind name (see BENCH_TARGETS) called label, not started; None if unknown"""
        if name == "isr_quick":
            return IsrTarget(label, self.work, self.origin, quick=True)
        if name == "isr_nofast":
            return IsrTarget(label, self.work, self.origin, loc_extra="ISRFastPath Off")
        cls = {"isr": IsrTarget, "null": NullTarget, "static": StaticTarget, "mod_cache": ModCacheTarget,
               "nginx": NginxTarget, "varnish": VarnishTarget}.get(name)
        return cls(label, self.work, self.origin) if cls else None

    def start_one(self, t, name):
        try:
            t.start()
        except Exception as ex:  # noqa
            self.skipped[name] = "failed to start: %s" % str(ex)[:300]
            progress("%s: FAILED to start: %s" % (name, str(ex)[:300]))
            t.stop()
            return False
        progress("%s on 127.0.0.1:%d (pid %d%s)" % (
            name, t.port, t.pid(), (", %s MPM" % (t.mpm or CFG["mpm"])) if t.kind == "httpd" else ""))
        return True

    def start_targets(self):
        self.origin = Origin(self.work, self.s6_file)
        progress("origin on 127.0.0.1:%d" % self.origin.port)
        want = CFG["targets"]
        isr_ok = os.path.exists(CFG["isr_so"])
        quick_ok = fast_ok = False
        if isr_ok:
            with open(CFG["isr_so"], "rb") as f:
                so = f.read()
            quick_ok = b"ISRQuickHandler" in so
            fast_ok = b"ISRFastPath" in so
        for name in want:
            if name in ("isr", "isr_quick", "isr_nofast") and not isr_ok:
                self.skipped[name] = "mod_isr.so not built (%s)" % CFG["isr_so"]
                continue
            if name == "isr_quick" and not quick_ok:
                self.skipped[name] = "mod_isr has no ISRQuickHandler directive"
                continue
            if name == "isr_nofast":  # an S1 instance only (started below)
                continue
            if name == "nginx" and not os.path.exists(CFG["nginx"]):
                self.skipped[name] = "nginx not installed (make bench-peers)"
                continue
            if name == "varnish" and not os.path.exists(CFG["varnishd"]):
                self.skipped[name] = "varnish not installed (make bench-peers)"
                continue
            t = self.new_target(name, name)
            if not t:
                self.skipped[name] = "unknown target"
                continue
            t.base = name
            if self.start_one(t, name):
                self.targets.append(t)
        for t in self.targets:
            self.res["mem"].setdefault(t.name, {})["start"] = mem_snapshot(t.pid())
        # S1 only: every httpd target again under each further MPM (NAME@MPM), and isr_nofast (the
        # isr target under the event MPM with ISRFastPath Off); S1 interleaves them with the others
        # in the same rounds, and they are stopped after S1
        self.s1_extra = []
        self.s1_order = list(self.targets)
        if "S1" not in CFG["scenarios"]:
            if "isr_nofast" in want and isr_ok:
                self.skipped["isr_nofast"] = "runs in S1 only, which is not in BENCH_SCENARIOS"
            return
        order = []
        for t in self.targets:
            order.append(t)
            if t.kind != "httpd":
                continue
            variants = [(t.base, m) for m in CFG["mpms"][1:]]
            if t.base == "isr" and "isr_nofast" in want:
                if not fast_ok:
                    self.skipped["isr_nofast"] = "mod_isr has no ISRFastPath directive (%s)" % CFG["isr_so"]
                elif "event" not in CFG["mpms"]:
                    self.skipped["isr_nofast"] = "the fast path is the event MPM's; event is not in BENCH_MPM"
                else:
                    variants.insert(0, ("isr_nofast", "event"))
            for base, m in variants:
                label = base if m == CFG["mpm"] else "%s@%s" % (base, m)
                v = self.new_target(base, label)
                v.base, v.mpm = base, m
                if self.start_one(v, label):
                    self.s1_extra.append(v)
                    order.append(v)
        self.s1_order = order

    def stop_s1_extra(self):
        for t in self.s1_extra:
            self.log_tail(t)
            t.stop()
        if self.s1_extra:
            progress("S1 done: stopped its own instances (%s); S2-S7 run the %s MPM's targets only" % (
                " ".join(t.name for t in self.s1_extra), CFG["mpm"]))

    def log_tail(self, t):
        p = t.error_log()
        if p and os.path.exists(p):
            with open(p, errors="replace") as f:
                lines = f.read().splitlines()
            interesting = [l for l in lines if "AH00558" not in l and "AH10159" not in l and "AH00489" not in l
                           and "AH00094" not in l and "AH00491" not in l and "resuming normal" not in l
                           and "SIGTERM" not in l and "caught SIG" not in l]
            self.res.setdefault("logs", {})[t.name] = {"lines": len(lines), "tail": interesting[-8:]}

    def caching(self):
        return [t for t in self.targets if t.caching]

    def alive_check(self, t):
        if t.proc and not t.proc.alive():
            msg = "%s died (exit %s)" % (t.name, t.proc.p.returncode)
            self.notes.append(msg)
            progress("WARNING: " + msg)
            return False
        return True

    # -- S1
    def s1(self):
        d = CFG["s1_duration"]
        for size in CFG["s1_sizes"]:
            runs = {}
            for rnd in range(CFG["s1_rounds"]):
                for t in self.s1_order:
                    if not self.alive_check(t):
                        continue
                    path = t.url("s1-%d" % size, size)
                    if rnd == 0:
                        problem = check_object(t, path, size)
                        self.res["checks"]["S1 %d %s" % (size, t.name)] = problem
                        if problem:
                            progress("S1 %d B %s: CHECK: %s" % (size, t.name, problem))
                    progress("S1 %d B %s: wrk -t%d -c%d -d%ds (round %d/%d)" % (
                        size, t.name, CFG["wrk_threads"], CFG["wrk_conns"], d, rnd + 1, CFG["s1_rounds"]))
                    c0 = self.origin.count()
                    r = wrk(t.port, path, d)
                    r["origin_fetches"] = self.origin.count() - c0
                    runs.setdefault(t.name, []).append(r)
                    progress("    %s rps, p50 %s ms, p99 %s ms, errors %d, non-2xx %d" % (
                        fmt(r["rps"]), fmt(r.get("p50"), 3), fmt(r.get("p99"), 3), r["errors"], r["non2xx"]))
            for name, rs in runs.items():
                rs.sort(key=lambda x: x["rps"])
                med = rs[len(rs) // 2]
                med = dict(med)
                med.pop("raw", None)
                med["all_rps"] = [x["rps"] for x in rs]
                self.res["S1"].setdefault(size, {})[name] = med
        # which S1 row is which target under which MPM, in S1's order (None: not httpd)
        self.res["S1_targets"] = [{"name": t.name, "base": getattr(t, "base", t.name),
                                   "mpm": (t.mpm or CFG["mpm"]) if t.kind == "httpd" else None}
                                  for t in self.s1_order]

    # -- perf profile of the isr hit path
    def profile(self):
        t = next((x for x in self.targets if x.name == "isr"), None)
        if not t or not CFG["perf"] or not shutil.which("perf"):
            return
        kids = children(t.pid())
        if not kids:
            return
        path = t.url("s1-1024", 1024)
        data = os.path.join(self.work, "perf.data")
        progress("profile: perf record on isr children during wrk 1 KiB hits (%ds)" % 3)
        try:
            pr = subprocess.Popen(["perf", "record", "-F", "999", "-g", "-o", data, "-p",
                                   ",".join(map(str, kids)), "--", "sleep", "4"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            time.sleep(0.5)
            wrk(t.port, path, 3)
            pr.wait(30)
            rep = run(["perf", "report", "-i", data, "--stdio", "--no-children", "--sort", "dso,symbol",
                       "--percent-limit", "0.7", "-g", "none"], timeout=120, check=False)
            lines = [l for l in rep.stdout.splitlines() if l.strip() and not l.startswith("#")]
            self.res["profile"] = lines[:40]
            dso = run(["perf", "report", "-i", data, "--stdio", "--no-children", "--sort", "dso",
                       "-g", "none"], timeout=120, check=False)
            self.res["profile_dso"] = [l for l in dso.stdout.splitlines()
                                       if l.strip() and not l.startswith("#")][:15]
        except Exception as ex:  # noqa
            self.notes.append("perf profile failed: %s" % ex)

    # -- the event MPM's hit path per request: context switches and syscalls during 1 KiB hits
    HITPATH_EVENTS = ("context-switches", "cpu-migrations", "syscalls:sys_enter_futex",
                      "syscalls:sys_enter_epoll_wait", "syscalls:sys_enter_epoll_pwait", "raw_syscalls:sys_enter")

    def hitpath_tool(self):
        """("perf", events) when perf stat counts the tracepoints, else ("strace", None), else (None, why)"""
        if shutil.which("perf"):
            for evs in (self.HITPATH_EVENTS, self.HITPATH_EVENTS[:4]):
                r = run(["perf", "stat", "-x", ",", "-e", ",".join(evs), "--", "true"], timeout=30, check=False)
                if r.returncode == 0 and "not supported" not in r.stderr:
                    return "perf", evs
        if shutil.which("strace"):
            return "strace", None
        return None, "neither perf (with syscall tracepoints) nor strace works here"

    def hitpath(self):
        if not CFG["perf"]:
            return
        # isr under each MPM (isr, isr@worker, ...) and isr_nofast, in S1's order
        ts = [t for t in self.s1_order if getattr(t, "base", "") in ("isr", "isr_nofast")]
        if not ts:
            return
        tool, evs = self.hitpath_tool()
        out = self.res["hitpath"] = {"tool": tool, "size": 1024, "rows": {}}
        if tool is None:
            self.notes.append("hit path counts: %s" % evs)
            return
        d = CFG["s1_perf_duration"]
        for t in ts:
            if not self.alive_check(t):
                continue
            pids = children(t.pid())
            if not pids:
                continue
            path = t.url("s1-1024", 1024)
            data = os.path.join(self.work, "hitpath-%s.txt" % t.name.replace("@", "-"))
            progress("hit path: %s on %s (%d children) during wrk 1 KiB hits (%gs)" % (
                "perf stat" if tool == "perf" else "strace -c", t.name, len(pids), d))
            pr = None
            cs0 = ctxt_switches(pids)
            try:
                if tool == "perf":
                    argv = ["perf", "stat", "-x", ",", "-o", data, "-e", ",".join(evs), "-p",
                            ",".join(map(str, pids)), "--", "sleep", "%.1f" % (d + 0.6)]
                else:
                    # strace stops every thread at every syscall: only the counts per request mean
                    # something, not the rate; -f on a -p attaches every thread of the process
                    argv = ["strace", "-c", "-f", "-qq", "-o", data]
                    for pid in pids:
                        argv += ["-p", str(pid)]
                pr = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                time.sleep(0.3 if tool == "perf" else 1.0)
                w = wrk(t.port, path, d)
                if tool == "strace":
                    pr.send_signal(signal.SIGINT)
                pr.wait(30)
                with open(data) as f:
                    counts = self.hitpath_parse(tool, f.read())
                if "cs" not in counts:  # strace: the threads' own counters in /proc
                    counts["cs"] = ctxt_switches(pids) - cs0
                n = w["requests"] or 0
                row = {"requests": n, "rps": w["rps"], "errors": w["errors"] + w["non2xx"],
                       "mpm": t.mpm or CFG["mpm"], "counts": counts,
                       "per_request": dict((k, v / float(n)) for k, v in counts.items()) if n else {}}
                out["rows"][t.name] = row
                pq = row["per_request"]
                progress("    %s rps; per request: %s context switches, %s futex, %s epoll_wait, %s syscalls" % (
                    fmt(w["rps"]), fmt(pq.get("cs"), 2), fmt(pq.get("futex"), 2), fmt(pq.get("epoll"), 2),
                    fmt(pq.get("syscalls"), 2)))
            except Exception as ex:  # noqa
                self.notes.append("hit path counts of %s failed: %s" % (t.name, ex))
                if pr is not None and pr.poll() is None:
                    pr.kill()
                    pr.wait(5)

    @staticmethod
    def hitpath_parse(tool, text):
        """{cs, migrations, futex, epoll, syscalls} from perf stat -x, or strace -c output"""
        c = {}
        if tool == "perf":
            key = {"context-switches": "cs", "cpu-migrations": "migrations", "syscalls:sys_enter_futex": "futex",
                   "syscalls:sys_enter_epoll_wait": "epoll", "syscalls:sys_enter_epoll_pwait": "epoll",
                   "raw_syscalls:sys_enter": "syscalls"}
            for line in text.splitlines():
                f = line.split(",")
                if len(f) < 3 or f[2] not in key:
                    continue
                try:
                    v = int(float(f[0]))
                except ValueError:  # <not counted>: nothing ran
                    v = 0
                c[key[f[2]]] = c.get(key[f[2]], 0) + v
            return c
        for line in text.splitlines():
            f = line.split()
            if len(f) < 5 or not f[0][0].isdigit():
                continue
            try:
                calls = int(f[3])
            except ValueError:
                continue
            name = f[-1]
            if name == "total":
                c["syscalls"] = calls
            elif name.startswith("futex"):
                c["futex"] = c.get("futex", 0) + calls
            elif name.startswith("epoll_wait") or name.startswith("epoll_pwait"):
                c["epoll"] = c.get("epoll", 0) + calls
        return c

    # -- S2
    def s2(self):
        R, W, delay, ttl = CFG["s2_rounds"], CFG["s2_window"], CFG["s2_delay"], CFG["s2_ttl"]
        for t in self.caching():
            if not self.alive_check(t):
                continue
            # same-tool baseline: fresh hits on a long-TTL key
            base = t.url("s2base-%s" % self.runid)
            warm(t, base, 2)
            b = hload(t.port, base, conns=CFG["s2_conns"], duration=W, mode="fixed")
            lats = []
            fetch_times = []
            rounds = []
            for r in range(R):
                key = "s2-%s-%d" % (self.runid, r)
                path = t.url(key, 1024, ttl="short", delay=delay)
                progress("S2 %s: round %d/%d: warm (origin delay %d ms), wait for expiry, %d conns for %.1fs" % (
                    t.name, r + 1, R, delay, CFG["s2_conns"], W))
                warm(t, path, 1)
                landed = time.time()
                # max-age has 1 s resolution in the peers (Date header, ngx_time): wait TTL + 1.2 s
                time.sleep(max(0, landed + ttl + 1.2 - time.time()))
                c0 = self.origin.count()
                lf = os.path.join(self.work, "s2-%s-%d.lat" % (t.name, r))
                h = hload(t.port, path, conns=CFG["s2_conns"], duration=W, mode="fixed", latfile=lf,
                          timeout=15)
                time.sleep(0.05)
                log = self.origin.log_since(c0)
                fetch_times.append([x[1] for x in log])
                with open(lf) as f:
                    pairs = [tuple(int(v) for v in x.split()) for x in f if x.strip()]
                lr = [p[0] / 1000.0 for p in pairs]
                lats.extend(lr)
                # when the slow requests (> 50 ms) were sent, in seconds from the start of the window
                slow_at = sorted(round(p[1] / 1e6, 2) for p in pairs if p[0] > 50000)
                # expiries: group fetches; a fetch later than 0.9 x delay after the group's first
                # fetch starts a new group (a refreshed entry cannot expire sooner than that)
                groups = 0
                gstart = None
                for ft in sorted(x[1] for x in log):
                    if gstart is None or ft - gstart >= 0.9 * delay / 1000.0:
                        groups += 1
                        gstart = ft
                rounds.append({"fetches": len(log), "expiries": groups, "requests": int(h.get("requests", 0)),
                               "errors": int(h.get("errors", 0)), "non2xx": int(h.get("non2xx", 0)),
                               "p99": h.get("p99_ms"), "max": h.get("max_ms"),
                               "stale": int(h.get("isr_stale", 0)), "hit": int(h.get("isr_hit", 0)),
                               "miss": int(h.get("isr_miss", 0)), "versions": int(h.get("origin_seqs", 0)),
                               "slow_at": slow_at[:50], "slow": len(slow_at),
                               "fetch_at": [round(x[1] - log[0][1], 3) for x in log] if log else []})
                progress("    p99 %s ms, max %s ms, origin fetches %d in %d expiries, errors %d%s" % (
                    fmt(h.get("p99_ms"), 2), fmt(h.get("max_ms"), 1), len(log), groups,
                    int(h.get("errors", 0)) + int(h.get("non2xx", 0)),
                    (", %d requests > 50 ms sent at %s s" % (len(slow_at), " ".join(
                        "%.2f" % x for x in sorted(set(slow_at))[:12]))) if slow_at else ""))
            lats.sort()
            fetches = sum(x["fetches"] for x in rounds)
            exp = sum(x["expiries"] for x in rounds)
            self.res["S2"][t.name] = {
                "requests": len(lats), "p50": percentile(lats, 0.5), "p99": percentile(lats, 0.99),
                "max": lats[-1] if lats else None, "base_p99": b.get("p99_ms"), "base_max": b.get("max_ms"),
                "fetches": fetches, "expiries": exp, "per_expiry": (fetches / exp) if exp else None,
                "max_fetches_round": max(x["fetches"] for x in rounds) if rounds else None,
                "errors": sum(x["errors"] + x["non2xx"] for x in rounds), "rounds": rounds,
                "slow50": sum(1 for x in lats if x > 50.0),
            }

    # -- S3
    def s3(self):
        for t in self.caching():
            if not self.alive_check(t):
                continue
            rounds = []
            for r in range(CFG["s3_rounds"]):
                key = "herd-%s-%d" % (self.runid, r)
                path = t.url(key, 1024, delay=CFG["s3_delay"])
                c0 = self.origin.count()
                h = hload(t.port, path, conns=CFG["s3_conns"], once=True, timeout=15)
                time.sleep(0.05)
                f = self.origin.count() - c0
                rounds.append({"fetches": f, "errors": int(h.get("errors", 0)) + int(h.get("non2xx", 0)),
                               "max": h.get("max_ms"), "min": h.get("min_ms"), "p50": h.get("p50_ms"),
                               "requests": int(h.get("requests", 0))})
                progress("S3 %s round %d/%d: %d concurrent on a cold key (delay %d ms): %d origin fetches, "
                         "%d errors, slowest %s ms" % (t.name, r + 1, CFG["s3_rounds"], CFG["s3_conns"],
                                                       CFG["s3_delay"], f, rounds[-1]["errors"],
                                                       fmt(h.get("max_ms"), 1)))
            self.res["S3"][t.name] = {
                "rounds": rounds, "fetches_max": max(x["fetches"] for x in rounds),
                "fetches": [x["fetches"] for x in rounds], "errors": sum(x["errors"] for x in rounds),
                "slowest": max(x["max"] or 0 for x in rounds), "p50": max(x["p50"] or 0 for x in rounds)}

    # -- S4
    def s4(self):
        K = CFG["s4_keys"]
        d = CFG["s4_duration"]
        for t in self.targets:
            if not self.alive_check(t):
                continue
            key0 = "s4-0"
            u = t.url(key0, 1024)
            pre, post = split_url(u, key0)
            progress("S4 %s: warm %d keys" % (t.name, K))
            tw = time.time()
            c0 = self.origin.count()
            w = hload(t.port, pre + "{k}" + post, conns=CFG["fill_conns"], n=K, keys=K, mode="seq", timeout=30)
            warm_fetches = self.origin.count() - c0
            warm_s = time.time() - tw
            progress("S4 %s: wrk random over %d keys, %ds" % (t.name, K, d))
            c0 = self.origin.count()
            r = wrk(t.port, u, d, script=self.lua, env_extra={"BENCH_KEYS": str(K), "BENCH_PRE": pre,
                                                              "BENCH_POST": post})
            fetches = self.origin.count() - c0
            progress("S4 %s: wrk same script, 1 key, %ds" % (t.name, d))
            r1 = wrk(t.port, u, d, script=self.lua, env_extra={"BENCH_KEYS": "1", "BENCH_PRE": pre,
                                                               "BENCH_POST": post})
            hit = None
            if t.caching and r["requests"]:
                hit = max(0.0, 1.0 - fetches / float(r["requests"]))
            self.res["S4"][t.name] = {"rps": r["rps"], "p50": r.get("p50"), "p99": r.get("p99"),
                                      "requests": r["requests"], "fetches": fetches, "hit": hit,
                                      "rps_1key": r1["rps"], "errors": r["errors"] + r["non2xx"],
                                      "warm_s": warm_s, "warm_fetches": warm_fetches,
                                      "warm_errors": int(w.get("errors", 0)) + int(w.get("non2xx", 0))}
            progress("    %s rps (1 key: %s), hit ratio %s, origin fetches %d" % (
                fmt(r["rps"]), fmt(r1["rps"]), fmt(hit, 3), fetches))

    # -- S5 refresh throughput (every caching target)
    def s5_refresh(self):
        K = CFG["s5_refresh_keys"]
        d = CFG["s5_duration"]
        for t in self.caching():
            if not self.alive_check(t):
                continue
            key0 = "r-%s-0" % self.runid
            u = t.url(key0, 1024, ttl="short")
            pre, post = split_url(u, key0)
            progress("S5 refresh %s: warm %d short-TTL keys, let them expire, wrk random %ds" % (t.name, K, d))
            hload(t.port, pre + "{k}" + post, conns=CFG["fill_conns"], n=K, keys=K, mode="seq", timeout=30)
            time.sleep(CFG["s2_ttl"] + 1.2)
            c0 = self.origin.count()
            r = wrk(t.port, u, d, script=self.lua, env_extra={"BENCH_KEYS": str(K), "BENCH_PRE": pre,
                                                              "BENCH_POST": post})
            f = self.origin.count() - c0
            self.res["S5r"][t.name] = {"rps": r["rps"], "p50": r.get("p50"), "p99": r.get("p99"),
                                       "max": r.get("max"), "fetches": f, "refresh_rate": f / d,
                                       "errors": r["errors"] + r["non2xx"]}
            progress("    %s rps while refreshing, %s refreshes/s, p99 %s ms" % (
                fmt(r["rps"]), fmt(f / d), fmt(r.get("p99"), 2)))

    # -- S6: compressed hits (its own instances, started here and stopped at the end)
    def s6_targets(self):
        """the S6 instances wanted (S6_TARGETS whose base target is in BENCH_TARGETS and installed)"""
        mods = CFG["modules"]
        deflate = ("LoadModule filter_module %s/mod_filter.so\nLoadModule deflate_module %s/mod_deflate.so\n"
                   % (mods, mods))
        has_compress = False
        if os.path.exists(CFG["isr_so"]):
            with open(CFG["isr_so"], "rb") as f:
                has_compress = b"ISRCompress" in f.read()
        if not has_compress:
            self.notes.append("S6: mod_isr has no ISRCompress directive (%s): `isr` runs without it" %
                              CFG["isr_so"])
        base = {"isr": "isr", "isr_deflate": "isr", "mod_cache_deflate": "mod_cache", "nginx": "nginx",
                "varnish": "varnish"}
        out = []
        for name in CFG["s6_targets"]:
            b = base.get(name)
            if b is None:
                self.skipped["S6 " + name] = "unknown S6 target"
                continue
            if b not in CFG["targets"]:
                continue
            why = None
            if b == "isr" and not os.path.exists(CFG["isr_so"]):
                why = "mod_isr.so not built (%s)" % CFG["isr_so"]
            elif b == "nginx" and not os.path.exists(CFG["nginx"]):
                why = "nginx not installed (make bench-peers)"
            elif b == "varnish" and not os.path.exists(CFG["varnishd"]):
                why = "varnish not installed (make bench-peers)"
            if why:
                self.skipped["S6 " + name] = why
                continue
            label = "s6-" + name
            if name == "isr":
                t = IsrTarget(label, self.work, self.origin, zone="64M",
                              loc_extra="ISRCompress gzip br" if has_compress else "")
            elif name == "isr_deflate":
                t = IsrTarget(label, self.work, self.origin, zone="64M", head=deflate,
                              loc_extra=("ISRCompress Off\n" if has_compress else "") +
                              "AddOutputFilterByType DEFLATE text/html")
            elif name == "mod_cache_deflate":
                t = ModCacheTarget(label, self.work, self.origin)
                t.extra = deflate + "AddOutputFilterByType DEFLATE text/html\n"
            elif name == "nginx":
                t = NginxTarget(label, self.work, self.origin)
                # text/html is always in gzip_types (naming it again only warns); gzip_proxied
                # (default off) is about requests with a Via header, the bench's come direct
                t.http_extra = "gzip on;"
            else:
                t = VarnishTarget(label, self.work, self.origin)
                t.vbr_extra = "set beresp.do_gzip = true;"
            t.s6_name = name
            out.append(t)
        return out

    def s6(self):
        rounds, d = CFG["s6_rounds"], CFG["s6_duration"]
        sizes = CFG["s6_sizes"]
        res = self.res["S6"]
        res["source"] = self.s6_source
        res["pages"] = {}
        for size in sizes:
            off, page = self.s6_pages[size]
            res["pages"][size] = {"offset": off, "bytes": len(page),
                                  "gzip6": len(gzip.compress(page, 6)), "gzip9": len(gzip.compress(page, 9))}
        progress("S6 pages: %s; %s" % (self.s6_source, ", ".join(
            "%d B (offset %d)" % (sz, self.s6_pages[sz][0]) for sz in sizes)))
        ts = []
        for t in self.s6_targets():
            try:
                t.start()
            except Exception as ex:  # noqa
                self.skipped["S6 " + t.s6_name] = "failed to start: %s" % str(ex)[:300]
                progress("S6 %s: FAILED to start: %s" % (t.s6_name, str(ex)[:300]))
                t.stop()
                continue
            progress("S6 %s on 127.0.0.1:%d (pid %d): %s" % (t.s6_name, t.port, t.pid(), S6_LEVELS[t.s6_name]))
            ts.append(t)
        try:
            self.s6_run(ts, sizes, rounds, d, res)
            self.s6_profile(ts, res)
        finally:
            for t in ts:
                p = t.error_log()
                if p and os.path.exists(p):
                    with open(p, errors="replace") as f:
                        lines = [l for l in f.read().splitlines() if "AH00558" not in l and "AH00489" not in l
                                 and "AH00094" not in l and "AH00491" not in l and "caught SIG" not in l
                                 and "resuming normal" not in l and "SIGTERM" not in l
                                 and not l.startswith("Debug: ") and "Child launched OK" not in l
                                 and "said Child starts" not in l]
                    if lines:
                        res.setdefault("logs", {})[t.s6_name] = lines[-6:]
                t.stop()

    def s6_requests(self, t):
        return [(lab, ae) for lab, ae in S6_AE if ae is not None or t.s6_name == "isr"]

    def s6_run(self, ts, sizes, rounds, d, res):
        rows = res.setdefault("rows", {})
        # warm and check: every (target, size, request) answers 200 with the expected coding and a
        # body that decodes to the page; one that does not is FAIL and not measured
        for size in sizes:
            off, page = self.s6_pages[size]
            for t in ts:
                path = t.url("s6-%s-%d" % (self.runid, size), size) + "&html=1&off=%d" % off
                t.s6_path = getattr(t, "s6_path", {})
                t.s6_path[size] = path
                for lab, ae in self.s6_requests(t):
                    hh = ["Accept-Encoding: " + ae] if ae else []
                    r = {"ae": lab}
                    try:
                        for _ in range(2):  # the miss (and its variant), then a hit
                            raw_get(t.port, path, hh)
                        st, h, body, hl, wire = raw_get(t.port, path, hh)
                        ce = h.get("content-encoding", "identity").strip().lower() or "identity"
                        r.update({"status": st, "ce": ce, "body_bytes": len(body), "head_bytes": hl,
                                  "wire_bytes": hl + wire, "cache": s6_hit(t.s6_name, h),
                                  "vary": h.get("vary", ""), "etag": h.get("etag", ""),
                                  "chunked": "chunked" in h.get("transfer-encoding", "").lower()})
                        problems = []
                        if st != 200:
                            problems.append("status %d" % st)
                        exp = s6_expected(t.s6_name, ae)
                        if ce not in exp:
                            problems.append("Content-Encoding %s, expected %s" % (ce, " or ".join(exp)))
                        try:
                            dec = s6_decode(ce, body)
                            if dec != page:
                                problems.append("decodes to %d bytes that are not the %d-byte page" % (
                                    len(dec), len(page)))
                        except Exception as ex:  # noqa
                            problems.append("does not decode as %s: %s" % (ce, str(ex)[:120]))
                    except Exception as ex:  # noqa
                        problems = ["request failed: %s" % str(ex)[:200]]
                    r["check"] = "; ".join(problems)
                    rows.setdefault(size, {}).setdefault(t.s6_name, {})[lab] = r
                    self.res["checks"]["S6 %d %s %s" % (size, t.s6_name, lab)] = r["check"]
                    progress("S6 %d B %s, Accept-Encoding %s: %s%s" % (
                        size, t.s6_name, ae or "(none)",
                        "FAIL: " + r["check"] if r["check"] else "ok",
                        "" if "ce" not in r else " (%s, %d body bytes, %d on the wire, cache %s)" % (
                            r["ce"], r["body_bytes"], r["wire_bytes"], r["cache"])))
        # measure: rounds interleaved over targets and requests, median reported
        for size in sizes:
            runs = {}
            for rnd in range(rounds):
                for t in ts:
                    if not self.alive_check(t):
                        continue
                    for lab, ae in self.s6_requests(t):
                        row = rows[size][t.s6_name][lab]
                        if row["check"]:
                            continue
                        progress("S6 %d B %s, Accept-Encoding %s: wrk -t%d -c%d -d%ds (round %d/%d)" % (
                            size, t.s6_name, ae or "(none)", CFG["wrk_threads"], CFG["wrk_conns"], d,
                            rnd + 1, rounds))
                        c0 = self.origin.count()
                        w = wrk(t.port, t.s6_path[size], d, headers=["Accept-Encoding: " + ae] if ae else [])
                        w["origin_fetches"] = self.origin.count() - c0
                        w.pop("raw", None)
                        runs.setdefault((t.s6_name, lab), []).append(w)
                        progress("    %s rps, p50 %s ms, p99 %s ms, errors %d, non-2xx %d" % (
                            fmt(w["rps"]), fmt(w.get("p50"), 3), fmt(w.get("p99"), 3), w["errors"], w["non2xx"]))
            for (name, lab), rs in runs.items():
                med = dict(sorted(rs, key=lambda x: x["rps"])[len(rs) // 2])
                med["all_rps"] = [x["rps"] for x in rs]
                med["origin_fetches"] = sum(x["origin_fetches"] for x in rs)
                med["errors_all"] = sum(x["errors"] + x["non2xx"] for x in rs)
                rows[size][name][lab].update({"wrk": med})

    # S6's profile: where a 1 KiB hit's time goes, compressed and identity, and nginx's gzip per hit
    S6_PROFILE = (("isr", "gzip, br"), ("isr", "identity"), ("nginx", "gzip"), ("varnish", "gzip"))

    def s6_profile(self, ts, res):
        if not CFG["perf"] or not shutil.which("perf"):
            return
        size = min(CFG["s6_sizes"])
        out = res.setdefault("profile", {"size": size})
        for name, lab in self.S6_PROFILE:
            t = next((x for x in ts if x.s6_name == name), None)
            row = (res.get("rows", {}).get(size, {}).get(name, {}) or {}).get(lab)
            if not t or not row or row.get("check"):
                continue
            pids = children(t.pid()) or [t.pid()]
            ae = dict(S6_AE).get(lab)
            data = os.path.join(self.work, "perf-s6-%s-%s.data" % (name, lab.replace(", ", "-")))
            progress("S6 profile: perf record on %s (%d processes), %d B, Accept-Encoding %s (3 s)" % (
                name, len(pids), size, ae or "(none)"))
            try:
                pr = subprocess.Popen(["perf", "record", "-F", "999", "-g", "-o", data, "-p",
                                       ",".join(map(str, pids)), "--", "sleep", "4"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                time.sleep(0.5)
                w = wrk(t.port, t.s6_path[size], 3, headers=["Accept-Encoding: " + ae] if ae else [])
                pr.wait(30)
                dso = run(["perf", "report", "-i", data, "--stdio", "--no-children", "--sort", "dso",
                           "-g", "none"], timeout=120, check=False)
                sym = run(["perf", "report", "-i", data, "--stdio", "--no-children", "--sort", "dso,symbol",
                           "--percent-limit", "1.5", "-g", "none"], timeout=120, check=False)
                keep = lambda o, n: [l.rstrip() for l in o.splitlines() if l.strip() and not l.startswith("#")][:n]
                out["%s %s" % (name, lab)] = {"rps": w.get("rps"), "dso": keep(dso.stdout, 12),
                                              "symbols": keep(sym.stdout, 20)}
            except Exception as ex:  # noqa
                self.notes.append("S6 perf profile of %s failed: %s" % (name, ex))

    # -- S7: bytes from the origin per refresh, with and without a validator
    def s7(self):
        K, D, size, rate = CFG["s7_keys"], CFG["s7_duration"], CFG["s7_size"], CFG["s7_rate"]
        status_hdr = {"isr": "x-isr-status", "isr_quick": "x-isr-status", "nginx": "x-cache-status",
                      "mod_cache": "x-cache"}
        for t in self.caching():
            if t.name not in CFG["s7_targets"] or not self.alive_check(t):
                continue
            for mode in ("etag", "none"):
                keys = ["s7-%s-%s-%d" % (mode, self.runid, k) for k in range(K)]
                paths = [t.url(k, size, ttl="short") + ("&etag=1" if mode == "etag" else "") for k in keys]
                progress("S7 %s %s: %d keys of %d B, max-age %d s, %g req/s for %gs" % (
                    t.name, "with an ETag" if mode == "etag" else "without a validator", K, size,
                    CFG["s2_ttl"], rate, D))
                fill_bad = 0
                for pth in paths:  # the misses: stored with a full body, not counted as refreshes
                    st, h, body = http_get(t.port, pth)
                    if st != 200 or len(body) != size:
                        fill_bad += 1
                st0 = self.origin.stats()
                r = self.s7_load(t, paths, size, rate, D, status_hdr.get(t.name))
                time.sleep(0.5)  # let refreshes started at the end land
                st1 = self.origin.stats()
                d = dict((k, st1[k] - st0.get(k, 0)) for k in st1)
                f = d.get("fetches", 0)
                row = dict(r)
                row.update({"keys": K, "size": size, "fill_errors": fill_bad, "origin": d, "refreshes": f,
                            "s200": d.get("s200", 0), "s304": d.get("s304", 0), "other": d.get("other", 0),
                            "body_bytes": d.get("body_bytes", 0), "head_bytes": d.get("head_bytes", 0),
                            "inm": d.get("inm", 0), "ims": d.get("ims", 0),
                            "body_per_refresh": (d.get("body_bytes", 0) / float(f)) if f else None,
                            "bytes_per_refresh": ((d.get("body_bytes", 0) + d.get("head_bytes", 0)) / float(f))
                            if f else None})
                self.res["S7"].setdefault(t.name, {})[mode] = row
                progress("    %d requests (%d errors), %d origin fetches: %d × 200, %d × 304 (%d with "
                         "If-None-Match), %s body bytes = %s B per refresh; client got %s body bytes%s" % (
                             r["requests"], r["errors"], f, row["s200"], row["s304"], row["inm"],
                             fmt(row["body_bytes"]), fmt(row["body_per_refresh"], 0), fmt(r["client_bytes"]),
                             (", cache status %s" % " ".join("%s=%d" % kv for kv in sorted(r["cache_status"].items())))
                             if r["cache_status"] else ""))

    def s7_load(self, t, paths, size, rate, duration, status_hdr):
        """one keep-alive connection, round robin over paths at a steady rate; bounded in count and time"""
        n_max = int(rate * duration)
        t0 = time.time()
        deadline = t0 + duration + 10
        conn = None
        res = {"requests": 0, "errors": 0, "client_bytes": 0, "wrong_body": 0, "cache_status": {}}
        for i in range(n_max):
            now = time.time()
            if now > deadline:
                break
            due = t0 + i / rate
            if due > now:
                time.sleep(due - now)
            pth = paths[i % len(paths)]
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", t.port, timeout=10)
                conn.request("GET", pth)
                rr = conn.getresponse()
                body = rr.read()
                if rr.getheader("connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException):
                res["errors"] += 1
                if conn is not None:
                    conn.close()
                conn = None
                continue
            res["requests"] += 1
            res["client_bytes"] += len(body)
            if rr.status != 200:
                res["errors"] += 1
            elif len(body) != size:
                res["wrong_body"] += 1
            if status_hdr:
                v = (rr.getheader(status_hdr) or "-").split()[0].upper()
                res["cache_status"][v] = res["cache_status"].get(v, 0) + 1
        if conn is not None:
            conn.close()
        res["seconds"] = time.time() - t0
        return res

    # -- memory soak: the same mixed workload twice on new keys; the second pass must not grow the heap
    def soak(self):
        K = CFG["s4_keys"]
        d = CFG["soak_duration"]
        for t in self.targets:
            if t.name not in CFG["soak_targets"] or not self.alive_check(t):
                continue
            snaps = [mem_snapshot(t.pid())]
            reqs = []
            for p in (1, 2):
                progress("memory soak %s pass %d/2: fill %d keys, random hits %gs, %d stale keys refreshed "
                         "under random hits %gs, a %d-client herd" % (t.name, p, K, d, K, d, CFG["s3_conns"]))
                n = 0
                key0 = "m%d-%s-0" % (p, self.runid)
                for ttl in ("long", "short"):
                    u = t.url(key0, 1024, ttl=ttl)
                    pre, post = split_url(u, key0)
                    w = hload(t.port, pre + "{k}" + post, conns=CFG["fill_conns"], n=K, keys=K, mode="seq")
                    n += int(w.get("requests", 0))
                    if ttl == "short":
                        time.sleep(CFG["s2_ttl"] + 1.2)
                    r = wrk(t.port, u, d, script=self.lua, env_extra={"BENCH_KEYS": str(K), "BENCH_PRE": pre,
                                                                      "BENCH_POST": post})
                    n += r["requests"]
                h = hload(t.port, t.url("mh%d-%s" % (p, self.runid), 1024, delay=100), conns=CFG["s3_conns"],
                          once=True, timeout=15)
                n += int(h.get("requests", 0))
                time.sleep(CFG["s2_ttl"] + 0.5)  # let the last refreshes land
                snaps.append(mem_snapshot(t.pid()))
                reqs.append(n)

            def anon(s):
                return sum(v.get("RssAnon", 0) for v in s["children"].values())
            per_child = [snaps[2]["children"].get(c, {}).get("RssAnon", 0) -
                         snaps[1]["children"].get(c, {}).get("RssAnon", 0) for c in snaps[2]["children"]]
            self.res.setdefault("soak", {})[t.name] = {
                "anon": [anon(x) for x in snaps], "requests": reqs, "per_child_growth2": per_child,
                "children": len(snaps[2]["children"]),
                "pids_same": sorted(snaps[1]["children"]) == sorted(snaps[2]["children"])}
            progress("    children's heap (RssAnon) %s kB; second pass grew %+d kB (%s per child) over %s requests" % (
                " → ".join(str(anon(x)) for x in snaps), anon(snaps[2]) - anon(snaps[1]),
                " ".join("%+d" % g for g in per_child), fmt(reqs[1])))

    # -- S5 scaling (separate instance per key count)
    def s5(self):
        d = CFG["s5_duration"]
        for name in CFG["s5_targets"]:
            base = next((t for t in self.targets if t.name == name), None)
            if base is None:
                continue
            for N in CFG["s5_keys"]:
                label = "%s-s5-%d" % (name, N)
                zone_bytes = N * CFG["s5_bytes_per_key"] + 32 * 1024 * 1024
                if name == "isr":
                    t = IsrTarget(label, self.work, self.origin, zone="%dK" % (zone_bytes // 1024))
                elif name == "nginx":
                    t = NginxTarget(label, self.work, self.origin)
                elif name == "varnish":
                    t = VarnishTarget(label, self.work, self.origin)
                else:
                    t = type(base)(label, self.work, self.origin)
                try:
                    t.start()
                except Exception as ex:  # noqa
                    self.notes.append("S5 %s: failed to start: %s" % (label, ex))
                    progress("S5 %s: failed to start: %s" % (label, str(ex)[:300]))
                    t.stop()
                    continue
                try:
                    self.s5_one(t, name, N, zone_bytes, d)
                finally:
                    t.stop()

    def s5_one(self, t, name, N, zone_bytes, d):
        u = t.url("s5-0", 1024)
        pre, post = split_url(u, "s5-0")
        # touch the instance once so that every child has mapped its modules
        warm(t, "/", 1)
        m0 = mem_snapshot(t.pid())
        progress("S5 %s: fill %d keys (zone %d MiB)" % (name, N, zone_bytes >> 20))
        tf = time.time()
        c0 = self.origin.count()
        w = hload(t.port, pre + "{k}" + post, conns=CFG["fill_conns"], n=N, keys=N, mode="seq", timeout=30)
        fill_s = time.time() - tf
        fill_fetches = self.origin.count() - c0
        m1 = mem_snapshot(t.pid())
        progress("S5 %s %d keys: filled in %.1fs (%s/s), wrk random hits %ds" % (
            name, N, fill_s, fmt(N / fill_s), d))
        c0 = self.origin.count()
        # the same Lua path (wrk.format per request) for every key count
        r = wrk(t.port, u, d, script=self.lua, env_extra={"BENCH_KEYS": str(N), "BENCH_PRE": pre,
                                                          "BENCH_POST": post, "BENCH_LUA_PREBUILD": "0"})
        f = self.origin.count() - c0
        m2 = mem_snapshot(t.pid())
        key_len = len("http://127.0.0.1:%d" % self.origin.port + u) if name.startswith("isr") else len(u)
        # the zone is shared memory: its touched pages are the growth of the summed Pss_Shmem
        per_entry = (m1["pss_shmem_kb"] - m0["pss_shmem_kb"]) * 1024.0 / N
        hit = max(0.0, 1.0 - f / float(r["requests"])) if r["requests"] else None
        anon0 = sum(v.get("RssAnon", 0) for v in m1["children"].values())
        anon1 = sum(v.get("RssAnon", 0) for v in m2["children"].values())
        self.res["S5"].setdefault(name, {})[N] = {
            "rps": r["rps"], "p50": r.get("p50"), "p99": r.get("p99"), "hit": hit, "fetches": f,
            "fill_s": fill_s, "fill_rate": N / fill_s if fill_s else None, "fill_fetches": fill_fetches,
            "fill_errors": int(w.get("errors", 0)) + int(w.get("non2xx", 0)),
            "zone_bytes": zone_bytes, "pss_before_kb": m0["pss_total_kb"], "pss_filled_kb": m1["pss_total_kb"],
            "pss_after_kb": m2["pss_total_kb"], "shm_before_kb": m0["pss_shmem_kb"],
            "shm_filled_kb": m1["pss_shmem_kb"], "per_entry": per_entry, "key_len": key_len, "body": 1024,
            "overhead": per_entry - key_len - 1024, "anon_filled_kb": anon0, "anon_after_kb": anon1,
            "children": len(m2["children"]), "errors": r["errors"] + r["non2xx"]}
        progress("    %s rps, p50 %s ms, p99 %s ms, hit ratio %s, %.0f B/entry (Pss)" % (
            fmt(r["rps"]), fmt(r.get("p50"), 3), fmt(r.get("p99"), 3), fmt(hit, 4), per_entry))

    # -- teardown
    def finish(self):
        for t in self.targets:
            if t.proc and t.proc.alive():
                self.res["mem"][t.name]["end"] = mem_snapshot(t.pid())
        for t in self.targets:
            self.log_tail(t)
        for t in self.targets + self.s1_extra:
            t.stop()
        self.origin.proc.stop()

    def run(self):
        progress("work dir %s; targets: %s" % (self.work, " ".join(CFG["targets"])))
        self.make_files()
        self.start_targets()
        for n, why in self.skipped.items():
            progress("skip %s: %s" % (n, why))
        sc = CFG["scenarios"]
        steps = [("S1", self.s1), ("S1", self.profile), ("S1", self.hitpath), ("S1", self.stop_s1_extra),
                 ("S2", self.s2), ("S3", self.s3),
                 ("S4", self.s4), ("S5", self.s5_refresh), ("S5", self.soak), ("S6", self.s6),
                 ("S7", self.s7)]
        for name, fn in steps:
            if name in sc:
                try:
                    fn()
                except Exception as ex:  # noqa
                    import traceback
                    traceback.print_exc()
                    self.notes.append("%s (%s) aborted: %s" % (name, fn.__name__, ex))
                for t in self.targets:
                    if t.proc and t.proc.alive():
                        self.res["mem"][t.name]["after_" + fn.__name__] = mem_snapshot(t.pid())
        for t in self.targets:
            if t.proc and t.proc.alive():
                self.res["mem"][t.name]["before_S5"] = mem_snapshot(t.pid())
        self.finish_main = True
        # S5 scaling runs separate instances; stop the main ones first to free CPU and memory,
        # but take their end-of-run memory snapshot before
        if "S5" in sc:
            for t in self.targets:
                if t.proc and t.proc.alive():
                    self.res["mem"][t.name]["end"] = mem_snapshot(t.pid())
            try:
                self.s5()
            except Exception as ex:  # noqa
                import traceback
                traceback.print_exc()
                self.notes.append("S5 aborted: %s" % ex)
        self.finish()


# ---------------------------------------------------------------- report
def versions():
    v = {}
    try:
        v["httpd"] = run([CFG["httpd"], "-v"], 10, False).stdout.splitlines()[0].split(":", 1)[1].strip()
    except Exception:  # noqa
        pass
    try:
        v["nginx"] = run([CFG["nginx"], "-v"], 10, False).stderr.strip().split("/")[-1]
    except Exception:  # noqa
        pass
    try:
        v["varnish"] = run([CFG["varnishd"], "-V"], 10, False).stderr.splitlines()[0]
    except Exception:  # noqa
        pass
    try:
        v["wrk"] = run(["wrk", "-v"], 10, False).stdout.splitlines()[0]
    except Exception:  # noqa
        pass
    return v


S7_MODES = (("etag", "ETag"), ("none", "none"))


def s7_reading(b):
    """one line per S7 result: isr's with/without figures, and any target that served wrong bodies"""
    R = b.res["S7"]
    out = []
    for n in [t.name for t in b.targets if t.name in R]:
        e, o = R[n].get("etag"), R[n].get("none")
        if not (e and o):
            continue
        te = (e["body_bytes"] + e["head_bytes"]) / float(e["refreshes"]) if e["refreshes"] else None
        to = (o["body_bytes"] + o["head_bytes"]) / float(o["refreshes"]) if o["refreshes"] else None
        rr = ratio(to, te)
        out.append("`%s`: with an ETag %d of %d refreshes were 304s, %s body bytes per refresh (%s B with the "
                   "head), against %s (%s) without a validator: %s fewer bytes from the origin" % (
                       n, e["s304"], e["refreshes"], fmt(e["body_per_refresh"], 0), fmt(te, 0),
                       fmt(o["body_per_refresh"], 0), fmt(to, 0), "n/a" if rr is None else "%.0f×" % rr))
    for n in [t.name for t in b.targets if t.name in R]:
        for m, lab in S7_MODES:
            r = R[n].get(m)
            if r and (r["wrong_body"] or r["errors"] or r["fill_errors"]):
                out.append("**`%s` (validator: %s): %d of %d answers had a body that is not %d bytes, %d "
                           "errors, %d failed fills**" % (n, lab, r["wrong_body"], r["requests"], r["size"],
                                                          r["errors"], r["fill_errors"]))
    return out


S6_ORDER = ("isr", "isr_deflate", "mod_cache_deflate", "nginx", "varnish")


def s6_row(R, size, name, lab):
    return R["S6"].get("rows", {}).get(size, {}).get(name, {}).get(lab)


def s6_rps(R, size, name, lab):
    r = s6_row(R, size, name, lab)
    return r["wrk"]["rps"] if r and not r["check"] and r.get("wrk") else None


def s6_round_ratios(R, size, a, b):
    """per-round ratios of two S6 rows' req/s (a, b: (target, request)); the steps of one round run
    within seconds of each other, so these cancel much of a noisy machine's drift"""
    ra, rb = s6_row(R, size, *a), s6_row(R, size, *b)
    xa = ((ra or {}).get("wrk") or {}).get("all_rps", [])
    xb = ((rb or {}).get("wrk") or {}).get("all_rps", [])
    return [x / y for x, y in zip(xa, xb) if y]


def s6_per_round(rs):
    return " (per round %s)" % " ".join("%.2f" % x for x in rs) if len(rs) > 1 else ""


def s6_targets_met(R):
    """S6's targets for isr: [(what, met|None, figures)]"""
    out = []
    for size in CFG["s6_sizes"]:
        if size not in R["S6"].get("rows", {}):
            continue
        lab = "%d KiB" % (size // 1024) if size % 1024 == 0 else "%d B" % size
        idn = s6_rps(R, size, "isr", "identity")
        comp = [(ae, s6_rps(R, size, "isr", ae)) for ae, _ in S6_AE[:2]]
        fails = [(n, x, s6_row(R, size, n, x)["check"]) for n in S6_ORDER for x, _ in S6_AE
                 if s6_row(R, size, n, x) and s6_row(R, size, n, x)["check"]]
        isr_fails = [f for f in fails if f[0] == "isr"]
        if isr_fails or s6_row(R, size, "isr", "gzip") is not None:
            out.append(("S6 %s: isr answers each Accept-Encoding with its coding (br for `gzip, br`), "
                        "bodies decode to the page" % lab, not isr_fails,
                        "; ".join("%s: FAIL: %s" % (x, c) for _, x, c in isr_fails) or "ok (%s)" % ", ".join(
                            "%s → %s" % (x, s6_row(R, size, "isr", x)["ce"]) for x, _ in S6_AE
                            if s6_row(R, size, "isr", x))))
        if idn and all(v for _, v in comp):
            rs = [(ae, v / idn) for ae, v in comp]
            out.append(("S6 %s: isr compressed hit ≥ 0.9× its identity hit req/s" % lab,
                        all(x >= 0.9 for _, x in rs),
                        "; ".join("`%s` %s = %.2f×%s" % (ae, fmt(v), x, s6_per_round(s6_round_ratios(
                            R, size, ("isr", ae), ("isr", "identity")))) for (ae, v), (_, x) in zip(comp, rs)) +
                        " of identity %s req/s" % fmt(idn)))
        for peer, need, what in (("nginx", 3.0, "nginx (gzip per hit)"), ("varnish", 1.0, "varnish (do_gzip)")):
            pr = [(ae, v, s6_rps(R, size, peer, ae)) for ae, v in comp]
            if all(v and p for _, v, p in pr):
                out.append(("S6 %s: isr ≥ %.1f× %s req/s" % (lab, need, what),
                            all(v / p >= need for _, v, p in pr),
                            "; ".join("`%s` %s vs %s = %.2f×%s" % (ae, fmt(v), fmt(p), v / p, s6_per_round(
                                s6_round_ratios(R, size, ("isr", ae), (peer, ae)))) for ae, v, p in pr)))
        g = s6_row(R, size, "isr", "gzip")
        br = s6_row(R, size, "isr", "gzip, br")
        dg = s6_row(R, size, "isr_deflate", "gzip")
        if g and br and dg and not (g["check"] or br["check"] or dg["check"]):
            out.append(("S6 %s: isr gzip bytes ≤ mod_deflate's (default level), br smaller still" % lab,
                        g["body_bytes"] <= dg["body_bytes"] and br["ce"] == "br" and br["body_bytes"] < g["body_bytes"],
                        "page %s B: isr gzip %s B, br %s B; mod_deflate gzip %s B; nginx %s B; varnish %s B" % (
                            fmt(size), fmt(g["body_bytes"]), fmt(br["body_bytes"]), fmt(dg["body_bytes"]),
                            fmt((s6_row(R, size, "nginx", "gzip") or {}).get("body_bytes")),
                            fmt((s6_row(R, size, "varnish", "gzip") or {}).get("body_bytes")))))
    return out


def s6_tables(b, full=True):
    """markdown lines for S6: per page size one table (full: every column)"""
    R = b.res
    S = R["S6"]
    L = []
    A = L.append
    A("## S6 — compressed hits: HTML pages with `Accept-Encoding`")
    A("")
    A("Pages: %s (%s; nothing of it is in the repository), served by the origin as `text/html` "
      "(`html=1&off=N&size=N`) with `max-age=86400`. Each target is its own instance, warmed, then "
      "checked with one request per `Accept-Encoding` (status 200, the coding asked for, the body "
      "decodes to the page: gzip with Python's gzip, br with `brotli -d`); a target that fails is FAIL "
      "and not measured. Then wrk -t%d -c%d -d%gs with the header, %d round(s) interleaved, median "
      "(the targets below also give the ratio in each round: the steps of a round are seconds apart). "
      "*body B*: the body as received (content-coded, transfer coding removed); *wire B*: the whole "
      "response on a keep-alive connection (head, chunk framing). *× page* = body / page size." % (
          S.get("source", "?"), ", ".join("%s B at offset %s" % (fmt(int(k)), fmt(v["offset"]))
                                          for k, v in sorted(S.get("pages", {}).items(), key=lambda x: int(x[0]))),
          CFG["wrk_threads"], CFG["wrk_conns"], CFG["s6_duration"], CFG["s6_rounds"]))
    A("")
    A("Compression: " + "; ".join("`%s` %s" % (n, S6_LEVELS[n]) for n in S6_ORDER) + ".")
    A("")
    names = [n for n in S6_ORDER if any(n in S.get("rows", {}).get(sz, {}) for sz in S.get("rows", {}))]
    for size in CFG["s6_sizes"]:
        rows = S.get("rows", {}).get(size)
        if not rows:
            continue
        A("### %s page" % ("%d KiB" % (size // 1024) if size % 1024 == 0 else "%d B" % size))
        A("")
        if full:
            A("| target | Accept-Encoding | check | Content-Encoding | body B | × page | wire B | requests/s "
              "(median) | each round | p50 ms | p99 ms | errors | cache | origin fetches | isr × this |")
            A("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|")
        else:
            A("| target | Accept-Encoding | Content-Encoding | body B | wire B | requests/s | p99 ms | isr × this |")
            A("|---|---|---|---:|---:|---:|---:|---:|")
        for n in names:
            for lab, ae in S6_AE:
                r = rows.get(n, {}).get(lab)
                if not r:
                    continue
                w = r.get("wrk") or {}
                mine = s6_rps(R, size, "isr", lab)
                rel = fr(ratio(mine, w.get("rps"))) if n != "isr" and w else ""
                ce = r.get("ce", "n/a")
                if full:
                    A("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                        n, "`%s`" % ae if ae else "(none)", "**FAIL**: " + r["check"] if r["check"] else "ok",
                        ce, fmt(r.get("body_bytes")), fmt(ratio(r.get("body_bytes"), size), 3),
                        fmt(r.get("wire_bytes")), fmt(w.get("rps")) if w else "n/a",
                        " ".join(fmt(x) for x in w.get("all_rps", [])), fmt(w.get("p50"), 3),
                        fmt(w.get("p99"), 3), w.get("errors_all", 0) if w else "n/a", r.get("cache", "-"),
                        w.get("origin_fetches", 0) if w else "n/a", rel))
                else:
                    A("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
                        n, "`%s`" % ae if ae else "(none)", ("**FAIL** (%s)" % ce) if r["check"] else ce,
                        fmt(r.get("body_bytes")), fmt(r.get("wire_bytes")), fmt(w.get("rps")) if w else "n/a",
                        fmt(w.get("p99"), 3) if w else "n/a", rel))
        A("")
    prof = S.get("profile") or {}
    if full and len(prof) > 1:
        A("### Where a %d B hit's time goes (perf, the target's processes, 3 s of wrk)" % prof["size"])
        A("")
        for k, v in prof.items():
            if k == "size":
                continue
            A("`%s` (%s req/s while profiled), by DSO, then the top symbols:" % (k, fmt(v.get("rps"))))
            A("")
            A("```")
            L.extend(v.get("dso", []))
            A("")
            L.extend(v.get("symbols", []))
            A("```")
            A("")
    met = s6_targets_met(R)
    if met and full:
        for what, ok, fig in met:
            A("- %s: %s — %s" % (what, "—" if ok is None else ("**met**" if ok else "**not met**"), fig))
        A("")
    if S.get("logs") and full:
        for n, lines in S["logs"].items():
            A("`%s` error log (last lines):" % n)
            A("")
            A("```")
            L.extend(l[:300] for l in lines)
            A("```")
            A("")
    return L


def size_label(size):
    return "%d KiB" % (size // 1024) if size % 1024 == 0 else "%d B" % size


def s1_rows(b):
    """S1's targets in S1's order: [{name, base, mpm}] (mpm None for nginx and varnish)"""
    return b.res.get("S1_targets") or [{"name": t.name, "base": t.name,
                                         "mpm": CFG["mpm"] if t.kind == "httpd" else None} for t in b.targets]


def s1_name(b, base, mpm):
    """the S1 row of target base under mpm (None: not in the run)"""
    return next((x["name"] for x in s1_rows(b) if x["base"] == base and x["mpm"] == mpm), None)


def s1_by_mpm(b):
    """markdown lines: S1 by MPM (every httpd target under each MPM of BENCH_MPM, the peers alongside)
    and the ratios between MPMs and with the peers"""
    R = b.res
    S = R["S1"]
    rows = s1_rows(b)
    mpms = CFG["mpms"]
    if not S or (len(mpms) < 2 and not any(x["base"] == "isr_nofast" for x in rows)):
        return []
    sizes = [sz for sz in CFG["s1_sizes"] if sz in S]
    first = CFG["mpm"]
    L = []
    A = L.append
    A("## S1 by MPM")
    A("")
    A("Every httpd target under each MPM of `BENCH_MPM` (%s), in the same S1 rounds as nginx and Varnish "
      "(median of %d). `NAME@MPM` is NAME under that MPM; `isr_nofast` is `isr` under the event MPM with "
      "`ISRFastPath Off`. S2–S7 run the %s MPM's targets only. *× %s* is the row's req/s over the same "
      "target's under the %s MPM." % (", ".join(mpms), CFG["s1_rounds"], first, first, first))
    A("")
    A("| target | MPM | " + " | ".join("%s req/s | %s p99 ms | %s × %s" % (size_label(sz), size_label(sz),
                                                                           size_label(sz), first)
                                        for sz in sizes) + " |")
    A("|---|---|" + "---:|---:|---:|" * len(sizes))
    for x in rows:
        cells = []
        for sz in sizes:
            r = S[sz].get(x["name"], {})
            ref = S[sz].get(s1_name(b, x["base"], first) or "", {}).get("rps") if x["mpm"] else None
            cells += [fmt(r.get("rps")), fmt(r.get("p99"), 3),
                      fr(ratio(r.get("rps"), ref)) if x["mpm"] and x["mpm"] != first else "—"]
        A("| %s | %s | %s |" % (x["name"], x["mpm"] or "—", " | ".join(cells)))
    A("")
    # ratios: isr between MPMs, the fast path, isr under each MPM against the peers
    isr = [(m, s1_name(b, "isr", m)) for m in mpms if s1_name(b, "isr", m)]
    pairs = []
    if isr and isr[0][0] == first:
        for m, n in isr[1:]:
            pairs.append(("`%s` (%s) ÷ `%s` (%s)" % (isr[0][1], first, n, m), isr[0][1], n))
    nofast = s1_name(b, "isr_nofast", "event")
    ev = s1_name(b, "isr", "event")
    if nofast and ev:
        pairs.append(("`%s` (event, fast path on) ÷ `%s` (fast path off)" % (ev, nofast), ev, nofast))
    for peer in ("nginx", "varnish"):
        if not any(peer in S[sz] for sz in sizes):
            continue
        for m, n in isr:
            pairs.append(("`%s` (%s) ÷ %s" % (n, m, peer), n, peer))
        if nofast:
            pairs.append(("`%s` (event, fast path off) ÷ %s" % (nofast, peer), nofast, peer))
    if pairs:
        A("| ratio (req/s) | " + " | ".join(size_label(sz) for sz in sizes) + " |")
        A("|---|" + "---:|" * len(sizes))
        for lab, a, c in pairs:
            A("| %s | %s |" % (lab, " | ".join(fr(ratio(S[sz].get(a, {}).get("rps"), S[sz].get(c, {}).get("rps")))
                                               for sz in sizes)))
        A("")
    return L


HITPATH_COLS = (("cs", "context switches"), ("futex", "futex"), ("epoll", "epoll_wait"),
                ("syscalls", "all syscalls"), ("migrations", "CPU migrations"))


def hitpath_tables(b):
    """markdown lines: the event MPM's hit path per request (context switches, futex, epoll_wait)"""
    H = b.res.get("hitpath")
    if not H or not H.get("rows"):
        return []
    rows = H["rows"]
    cols = [(k, lab) for k, lab in HITPATH_COLS if any(k in r["counts"] for r in rows.values())]
    L = []
    A = L.append
    A("## Event MPM hit path per request")
    A("")
    if H["tool"] == "perf":
        how = ("`perf stat` (software events and syscall tracepoints: `syscalls:sys_enter_futex`, "
               "`sys_enter_epoll_wait` + `sys_enter_epoll_pwait`, `raw_syscalls:sys_enter`) on every child")
    else:
        how = ("`strace -c -f` on every child (perf's syscall tracepoints were not available); strace stops "
               "each thread at each syscall and slows the server several times over: only the counts per "
               "request mean something, not the rate. Context switches from the threads' "
               "`/proc/PID/task/*/status`, which count strace's own stops too (read them as an upper "
               "bound, comparable between rows only)")
    A("%s during %g s of wrk -t%d -c%d on the S1 1 KiB key, counts divided by the requests wrk "
      "reported (the count window starts %s s before wrk, idle)." % (
          how, CFG["s1_perf_duration"], CFG["wrk_threads"], CFG["wrk_conns"],
          "0.3" if H["tool"] == "perf" else "1"))
    A("")
    A("| target | MPM | requests | req/s | " + " | ".join("%s / request" % lab for _, lab in cols) + " |")
    A("|---|---|---:|---:|" + "---:|" * len(cols))
    for n, r in rows.items():
        pq = r["per_request"]
        A("| %s | %s | %s | %s | %s |" % (n, r["mpm"], fmt(r["requests"]), fmt(r["rps"]),
                                        " | ".join(fmt(pq.get(k), 3) for k, _ in cols)))
    A("")
    line = hitpath_reading(b)
    if line:
        A("Reading: " + line)
        A("")
    return L


def hitpath_reading(b):
    H = b.res.get("hitpath") or {}
    rows = H.get("rows", {})
    ev, nofast = s1_name(b, "isr", "event"), s1_name(b, "isr_nofast", "event")
    wk = s1_name(b, "isr", "worker")

    def pq(n, k):
        return rows.get(n, {}).get("per_request", {}).get(k)

    def cmp(a, c):
        return ", ".join("%s %s vs %s" % (lab, fmt(pq(a, k), 2), fmt(pq(c, k), 2))
                         for k, lab in HITPATH_COLS[:3] if pq(a, k) is not None and pq(c, k) is not None)
    out = []
    if ev in rows and nofast in rows:
        out.append("per request, the fast path on (`%s`) vs off (`%s`): %s" % (ev, nofast, cmp(ev, nofast)))
    if ev in rows and wk in rows:
        out.append("event (`%s`) vs worker (`%s`): %s" % (ev, wk, cmp(ev, wk)))
    return "; ".join(out) + "." if out else ""


def report(b, elapsed):
    R = b.res
    names = [t.name for t in b.targets]
    ts = datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    L = []
    A = L.append
    A("# mod_isr benchmark — %s" % ts)
    A("")
    A("Machine: %s, %d cores, kernel %s. Run took %.0f s." % (platform.node() and "Linux" or "?",
                                                         os.cpu_count(), platform.release(), elapsed))
    vv = versions()
    A("Software: " + "; ".join("%s %s" % (k, v) for k, v in vv.items()) + ".")
    A("")
    A("Settings: wrk -t%d -c%d; S1 %d rounds × %g s (median), other wrk steps %g s; S2 %d rounds × %g s window, %d conns, origin delay %d ms, "
      "TTL %d s; S3 %d concurrent, origin delay %d ms, %d rounds; S4 %d keys, %g s; S5 keys %s (%s), %g s. "
      "httpd: %s, StartServers 4, ThreadsPerChild 64, MaxRequestWorkers 256, KeepAlive On, "
      "MaxKeepAliveRequests 0, LogLevel warn, no access log, EnableMMAP Off, EnableSendfile On. "
      "See bench/README.md." % (
          CFG["wrk_threads"], CFG["wrk_conns"], CFG["s1_rounds"], CFG["s1_duration"], CFG["duration"],
          CFG["s2_rounds"], CFG["s2_window"],
          CFG["s2_conns"], CFG["s2_delay"], CFG["s2_ttl"], CFG["s3_conns"], CFG["s3_delay"],
          CFG["s3_rounds"], CFG["s4_keys"], CFG["s4_duration"], " ".join(map(str, CFG["s5_keys"])),
          " ".join(CFG["s5_targets"]), CFG["s5_duration"],
          ("%s MPM" % CFG["mpm"]) if len(CFG["mpms"]) == 1 else
          "%s MPM (S1 also %s: `NAME@MPM`; S2–S7 %s only)" % (CFG["mpm"], " and ".join(CFG["mpms"][1:]),
                                                             CFG["mpm"])))
    A("")
    A("Targets: " + ", ".join("`%s` :%d" % (t.name, t.port) for t in b.targets) + ".")
    if b.s1_extra:
        A("S1 only: " + ", ".join("`%s` :%d (%s MPM%s)" % (t.name, t.port, t.mpm, ", `ISRFastPath Off`"
                                                          if t.base == "isr_nofast" else "")
                                  for t in b.s1_extra) + ".")
    for n, why in b.skipped.items():
        A("Skipped `%s`: %s." % (n, why))
    bad = {k: v for k, v in R["checks"].items() if v}
    if bad:
        A("")
        A("**Response checks that failed:** " + "; ".join("%s: %s" % kv for kv in bad.items()))
    if b.notes:
        A("")
        A("**Notes:** " + "; ".join(b.notes))
    A("")

    def col_ratio(val, ref):
        return fr(ratio(val, ref))

    # S1
    if R["S1"]:
        A("## S1 — hit throughput")
        A("")
        if len(CFG["mpms"]) > 1:
            A("Every httpd target also runs under the %s MPM (`NAME@MPM`), in the same rounds; *× null* and "
              "*× mod_cache* compare a row with `null` and `mod_cache` under the same MPM." % (
                  ", ".join(CFG["mpms"][1:])))
            A("")
        s1r = s1_rows(b)
        for size, rows in R["S1"].items():
            A("### %s body" % size_label(size))
            A("")
            A("| target | requests/s (median) | each round | p50 ms | p99 ms | errors | × null | × mod_cache | "
              "origin fetches |")
            A("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
            for x in s1r:
                n = x["name"]
                if n not in rows:
                    continue
                r = rows[n]
                m = x["mpm"] or CFG["mpm"]
                nul = rows.get(s1_name(b, "null", m) or "", {}).get("rps")
                mc = rows.get(s1_name(b, "mod_cache", m) or "", {}).get("rps")
                A("| %s | %s | %s | %s | %s | %d | %s | %s | %d |" % (
                    n, fmt(r["rps"]), " ".join(fmt(v) for v in r.get("all_rps", [])), fmt(r.get("p50"), 3), fmt(r.get("p99"), 3), r["errors"] + r["non2xx"],
                    col_ratio(r["rps"], nul), col_ratio(r["rps"], mc), r.get("origin_fetches", 0)))
            A("")
        L.extend(s1_by_mpm(b))
    L.extend(hitpath_tables(b))
    if R.get("profile"):
        A("### Profile of the isr 1 KiB hit path (perf, all isr children, by DSO)")
        A("")
        A("```")
        L.extend(R.get("profile_dso", []))
        A("```")
        A("")
        A("Top symbols:")
        A("")
        A("```")
        L.extend(R["profile"])
        A("```")
        A("")
    # S2
    if R["S2"]:
        A("## S2 — stale serving (origin delay %d ms, TTL %d s)" % (CFG["s2_delay"], CFG["s2_ttl"]))
        A("")
        A("All requests in a %.1f s window that starts when the entry is stale (%d rounds, %d connections, "
          "hload: every request counted, including those in flight at the end). *hit p99* is the same tool "
          "on a fresh key. Fetches are grouped into expiries by time (a fetch more than 0.9 × delay after "
          "the group's first starts a new expiry)." % (CFG["s2_window"], CFG["s2_rounds"], CFG["s2_conns"]))
        A("")
        A("| target | requests | p50 ms | p99 ms | max ms | > 50 ms | hit p99 ms | p99 / hit p99 | "
          "p99 / S1 p99 | origin fetches | expiries | fetches / expiry | errors | p99 × mod_cache |")
        A("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        mc = R["S2"].get("mod_cache", {}).get("p99")
        s1 = R["S1"].get(1024, {})
        for n in names:
            r = R["S2"].get(n)
            if not r:
                A("| %s | n/a (no origin) |||||||||||||" % n)
                continue
            A("| %s | %d | %s | %s | %s | %d | %s | %s | %s | %d | %d | %s | %d | %s |" % (
                n, r["requests"], fmt(r["p50"], 3), fmt(r["p99"], 3), fmt(r["max"], 1), r["slow50"],
                fmt(r["base_p99"], 3), fr(ratio(r["p99"], r["base_p99"])),
                fr(ratio(r["p99"], s1.get(n, {}).get("p99"))), r["fetches"], r["expiries"],
                fmt(r["per_expiry"], 2), r["errors"], fr(ratio(r["p99"], mc))))
        A("")
        slow = [(n, R["S2"][n]) for n in names if R["S2"].get(n) and R["S2"][n]["slow50"]]
        if slow:
            A("Requests over 50 ms, by round: when they were sent (seconds after the window opened; the "
              "refresh was requested at about 0 and lands about %.1f s later):" % (CFG["s2_delay"] / 1000.0))
            A("")
            for n, r in slow:
                A("- `%s`: " % n + "; ".join("round %d: %d at %s" % (i + 1, x.get("slow", 0), " ".join(
                    "%.2f" % v for v in sorted(set(x.get("slow_at", [])))[:15]) or "-")
                    for i, x in enumerate(r["rounds"])))
            A("")
    # S3
    if R["S3"]:
        A("## S3 — thundering herd (%d concurrent requests on a cold key, origin delay %d ms)" % (
            CFG["s3_conns"], CFG["s3_delay"]))
        A("")
        A("| target | origin fetches per round | client errors | median client ms | slowest client ms | "
          "slowest − delay ms |")
        A("|---|---:|---:|---:|---:|---:|")
        for n in names:
            r = R["S3"].get(n)
            if not r:
                A("| %s | n/a (no origin) ||||| " % n)
                continue
            A("| %s | %s | %d | %s | %s | %s |" % (n, ", ".join(map(str, r["fetches"])), r["errors"],
                                                    fmt(r["p50"], 1), fmt(r["slowest"], 1),
                                                    fmt(r["slowest"] - CFG["s3_delay"], 1)))
        A("")
    # S4
    if R["S4"]:
        A("## S4 — %d distinct keys, warmed, then hit at random" % CFG["s4_keys"])
        A("")
        A("wrk with a Lua script choosing a random key per request; *1 key* is the same script on one key "
          "(same client cost). Hit ratio = 1 − origin fetches / requests.")
        A("")
        A("| target | requests/s | p50 ms | p99 ms | hit ratio | 1 key req/s | × 1 key | × own S1 1 KiB | "
          "× null | × mod_cache | warm-up s |")
        A("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        nul = R["S4"].get("null", {}).get("rps")
        mc = R["S4"].get("mod_cache", {}).get("rps")
        for n in names:
            r = R["S4"].get(n)
            if not r:
                continue
            s1 = R["S1"].get(1024, {}).get(n, {}).get("rps")
            A("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %.1f |" % (
                n, fmt(r["rps"]), fmt(r["p50"], 3), fmt(r["p99"], 3),
                fmt(r["hit"], 3) if r["hit"] is not None else "n/a", fmt(r["rps_1key"]),
                fr(ratio(r["rps"], r["rps_1key"])), fr(ratio(r["rps"], s1)), fr(ratio(r["rps"], nul)),
                fr(ratio(r["rps"], mc)), r["warm_s"]))
        A("")
    # S5
    if R["S5r"] or R["S5"]:
        A("## S5 — scaling")
        A("")
    if R["S5r"]:
        A("### Refresh throughput: %d keys with TTL %d s, all stale, random hits for %g s" % (
            CFG["s5_refresh_keys"], CFG["s2_ttl"], CFG["s5_duration"]))
        A("")
        A("Every key can be refreshed at most once per TTL after its refresh lands, so the demand is bounded "
          "by about %s refreshes/s; a rate near that bound means the refresher kept up (raise "
          "S5_REFRESH_KEYS to look for the ceiling)." % fmt(CFG["s5_refresh_keys"] / float(CFG["s2_ttl"])))
        A("")
        A("| target | requests/s | p50 ms | p99 ms | max ms | origin fetches | refreshes/s | errors | "
          "req/s × mod_cache |")
        A("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        mc = R["S5r"].get("mod_cache", {}).get("rps")
        for n in names:
            r = R["S5r"].get(n)
            if not r:
                continue
            A("| %s | %s | %s | %s | %s | %d | %s | %d | %s |" % (
                n, fmt(r["rps"]), fmt(r["p50"], 3), fmt(r["p99"], 3), fmt(r["max"], 1), r["fetches"],
                fmt(r["refresh_rate"]), r["errors"], fr(ratio(r["rps"], mc))))
        A("")
    if R["S5"]:
        A("### Hit latency and memory by number of cached keys (a fresh instance per row, zone = keys × "
          "%d B + 32 MiB)" % CFG["s5_bytes_per_key"])
        A("")
        A("Memory per entry = growth of the instance's shared memory while filling (Pss_Shmem summed over "
          "parent and children, so each page counts once; the zone's untouched pages cost nothing), divided "
          "by the keys; overhead = that minus key and body bytes (key = the default cache key, the backend "
          "URL). Small key counts are dominated by page granularity and index pages; read the largest.")
        A("")
        A("| target | keys | fill req/s | requests/s | p50 ms | p99 ms | p50 × 100 keys | hit ratio | "
          "B/entry | overhead B | child RssAnon filled → after hits (kB) |")
        A("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for n, rows in R["S5"].items():
            first = rows.get(min(rows)) if rows else None
            for N, r in sorted(rows.items()):
                A("| %s | %s | %s | %s | %s | %s | %s | %s | %.0f | %.0f | %d → %d |" % (
                    n, fmt(N), fmt(r["fill_rate"]), fmt(r["rps"]), fmt(r["p50"], 3), fmt(r["p99"], 3),
                    fr(ratio(r["p50"], first["p50"])), fmt(r["hit"], 4), r["per_entry"], r["overhead"],
                    r["anon_filled_kb"], r["anon_after_kb"]))
        A("")
    if R.get("soak"):
        A("### Memory soak: the same mixed workload twice (%d-key fill + random hits, %d stale keys refreshed "
          "under random hits, a %d-client herd), new keys each pass" % (CFG["s4_keys"], CFG["s4_keys"],
                                                                         CFG["s3_conns"]))
        A("")
        A("| target | children's RssAnon start → pass 1 → pass 2 (kB) | requests per pass | pass 2 growth per "
          "child (kB) | same children |")
        A("|---|---|---|---|---|")
        for n, r in R["soak"].items():
            A("| %s | %s | %s | %s | %s |" % (n, " → ".join(map(str, r["anon"])),
                                             " / ".join(fmt(x) for x in r["requests"]),
                                             " ".join("%+d" % x for x in r["per_child_growth2"]),
                                             "yes" if r["pids_same"] else "no"))
        A("")
    # S6
    if R.get("S6", {}).get("rows"):
        L.extend(s6_tables(b, full=True))
    # S7
    if R.get("S7"):
        A("## S7 — bytes from the origin per refresh, with and without a validator")
        A("")
        A("%d keys of %d B with `max-age=%d` and a stale window (isr: `ISRStaleTTL 1h`), filled first (the "
          "misses are not counted), then requested round robin at %g requests/s on one keep-alive "
          "connection for %g s; every origin fetch in that time is a refresh. *ETag*: the origin's answers "
          "carry a strong ETag (`etag=1`) and a matching `If-None-Match` gets a 304 without a body; "
          "*none*: no validator (no ETag, no Last-Modified). Origin figures from its `/__stats` counters; "
          "*client body bytes* is what the target served; *wrong bodies* counts 200s whose body was not "
          "%d bytes." % (CFG["s7_keys"], CFG["s7_size"], CFG["s2_ttl"], CFG["s7_rate"], CFG["s7_duration"],
                         CFG["s7_size"]))
        A("")
        A("| target | validator | requests | refreshes | 200 | 304 | with If-None-Match | origin body bytes | "
          "body B / refresh | head B / refresh | client body bytes | wrong bodies | errors | cache status |")
        A("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for n in names:
            for m, lab in S7_MODES:
                r = R["S7"].get(n, {}).get(m)
                if not r:
                    continue
                f = r["refreshes"]
                A("| %s | %s | %d | %d | %d | %d | %d | %s | %s | %s | %s | %d | %d | %s |" % (
                    n, lab, r["requests"], f, r["s200"], r["s304"], r["inm"], fmt(r["body_bytes"]),
                    fmt(r["body_per_refresh"], 0), fmt(r["head_bytes"] / float(f) if f else None, 0),
                    fmt(r["client_bytes"]), r["wrong_body"], r["errors"] + r["fill_errors"],
                    " ".join("%s %d" % kv for kv in sorted(r["cache_status"].items())) or "-"))
        A("")
        for line in s7_reading(b):
            A("- " + line)
        A("")
    # memory
    if R["mem"]:
        A("## Memory per child over the run (RssAnon = private heap, kB)")
        A("")
        A("Growth is counted from after S3 (the scenario that puts the most threads to work: %d "
          "concurrent requests) to the end of the main run (S4 and the S5 refresh test add several hundred "
          "thousand requests); a child whose heap keeps growing with requests leaks." % CFG["s3_conns"])
        A("")
        A("| target | children | at start | after S1 | after S3 | at end | growth after S3 | "
          "Pss total start → end (MiB) |")
        A("|---|---:|---|---|---|---|---:|---|")
        for n in names:
            m = R["mem"].get(n, {})
            if "start" not in m:
                continue

            def anon(s):
                return [v.get("RssAnon", 0) for _, v in sorted(s["children"].items())] if s else []
            st, a1, en = anon(m.get("start")), anon(m.get("after_s1")), anon(m.get("end"))
            a3 = anon(m.get("after_s3")) or a1
            growth = (sum(en) - sum(a3)) if en and a3 else None
            A("| %s | %d | %s | %s | %s | %s | %s | %.0f → %s |" % (
                n, len(st), " ".join(map(str, st)), " ".join(map(str, a1)), " ".join(map(str, a3)),
                " ".join(map(str, en)),
                ("%+d" % growth) if growth is not None else "n/a", m["start"]["pss_total_kb"] / 1024.0,
                ("%.0f" % (m["end"]["pss_total_kb"] / 1024.0)) if m.get("end") else "n/a"))
        A("")
    if R.get("logs"):
        noisy = {k: v for k, v in R["logs"].items() if v["tail"]}
        if noisy:
            A("## Error-log excerpts (LogLevel warn)")
            A("")
            for n, v in noisy.items():
                A("`%s` (%d lines):" % (n, v["lines"]))
                A("")
                A("```")
                L.extend(l[:300] for l in v["tail"])
                A("```")
                A("")
    return "\n".join(L) + "\n"


def chart(b, out_base):
    """S1 requests/s (1 KiB and 64 KiB) and S2 p99/max latency per target, as SVG via gnuplot."""
    if not shutil.which("gnuplot"):
        return None
    R = b.res
    names = [t.name for t in b.targets]
    sizes = list(R["S1"].keys())
    d1 = out_base + "-s1.dat"
    d2 = out_base + "-s2.dat"
    with open(d1, "w") as f:
        f.write("# target " + " ".join("%dB" % s for s in sizes) + "\n")
        for n in [x["name"] for x in s1_rows(b)]:
            f.write(n + " " + " ".join("%.0f" % R["S1"][s].get(n, {}).get("rps", 0) for s in sizes) + "\n")
    s2names = [n for n in names if n in R["S2"]]
    with open(d2, "w") as f:
        f.write("# target p50 p99 max\n")
        for n in s2names:
            r = R["S2"][n]
            f.write("%s %.3f %.3f %.3f\n" % (n, max(r["p50"] or 0.001, 0.001), max(r["p99"] or 0.001, 0.001),
                                             max(r["max"] or 0.001, 0.001)))
    svg = out_base + ".svg"
    ncol1 = len(sizes)
    if not sizes and not s2names:
        return None
    plot1 = ", ".join("'%s' using %d:xtic(1) title '%s' " % (d1, i + 2, "%d KiB" % (s // 1024) if s % 1024 == 0
                                                              else "%d B" % s)
                      for i, s in enumerate(sizes))
    gp = """set terminal svg size 1100,480 dynamic noenhanced font 'sans,11'
set output '{svg}'
set multiplot layout 1,2 title 'mod_isr benchmark {ts}'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set key top right
set grid ytics
set xtics rotate by -30
set title 'S1 hit throughput (requests/s)'
set yrange [0:*]
plot {plot1}
set title 'S2 latency in the stale window (ms, log scale)'
set logscale y
set yrange [0.01:*]
plot '{d2}' using 2:xtic(1) title 'p50', '' using 3 title 'p99', '' using 4 title 'max'
unset multiplot
""".format(svg=svg, ts=datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), plot1=plot1, d2=d2)
    if not s2names:
        gp = gp.replace("set multiplot layout 1,2", "set multiplot layout 1,1")
        gp = gp[:gp.index("set title 'S2")] + "unset multiplot\n"
    elif not sizes:
        gp = gp.replace("set multiplot layout 1,2", "set multiplot layout 1,1")
        gp = gp[:gp.index("set title 'S1")] + gp[gp.index("set title 'S2"):]
    gpf = out_base + ".gp"
    with open(gpf, "w") as f:
        f.write(gp)
    r = run(["gnuplot", gpf], timeout=60, check=False)
    if r.returncode != 0:
        print("gnuplot failed: " + r.stderr, file=sys.stderr)
        return None
    _ = ncol1
    return svg


def targets_summary(b):
    """The issue's targets for mod_isr: list of (target, met|not met|n/a, figures)."""
    R = b.res
    out = []

    def s1(n, size):
        return R["S1"].get(size, {}).get(n, {})

    for isr in [n for n in ("isr", "isr_quick") if n in [t.name for t in b.targets]]:
        tag = "" if isr == "isr" else " (`%s`)" % isr
        for size, need_mc in ((1024, 1.0), (65536, 1.2)):
            if size not in R["S1"]:
                continue
            a, nul, mc = s1(isr, size).get("rps"), s1("null", size).get("rps"), s1("mod_cache", size).get("rps")
            rn, rm = ratio(a, nul), ratio(a, mc)
            lab = "%d KiB" % (size // 1024)
            if rn is not None:
                out.append(("S1 %s: isr ≥ 0.9× null req/s%s" % (lab, tag), rn >= 0.9,
                            "%s vs %s req/s = %.2f×" % (fmt(a), fmt(nul), rn)))
            if rm is not None:
                out.append(("S1 %s: isr ≥ %.1f× mod_cache req/s%s" % (lab, need_mc, tag), rm >= need_mc,
                            "%s vs %s req/s = %.2f×" % (fmt(a), fmt(mc), rm)))
    if "isr" in R["S2"]:
        r = R["S2"]["isr"]
        hp = s1("isr", 1024).get("p99")
        base = r["base_p99"]
        out.append(("S2: p99 in the stale window ≤ 2× the S1 hit p99", (r["p99"] or 1e9) <= 2 * (hp or 0),
                    "p99 %s ms vs S1 (wrk) hit p99 %s ms = %s; same-tool hit p99 %s ms = %s" % (
                        fmt(r["p99"], 3), fmt(hp, 3), fr(ratio(r["p99"], hp)), fmt(base, 3),
                        fr(ratio(r["p99"], base)))))
        out.append(("S2: no request slower than 50 ms", (r["max"] or 1e9) <= 50,
                    "max %s ms, %d requests over 50 ms of %d" % (fmt(r["max"], 1), r["slow50"], r["requests"])))
        out.append(("S2: exactly 1 origin fetch per expiry", r["fetches"] == r["expiries"] and r["expiries"] > 0,
                    "%d fetches in %d expiries (worst round %d fetches)" % (
                        r["fetches"], r["expiries"], r["max_fetches_round"] or 0)))
    if "isr" in R["S3"]:
        r = R["S3"]["isr"]
        out.append(("S3: exactly 1 origin fetch, 0 client errors", r["fetches_max"] == 1 and r["errors"] == 0
                    and min(r["fetches"]) == 1,
                    "fetches per round %s, %d errors" % (", ".join(map(str, r["fetches"])), r["errors"])))
        out.append(("S3: slowest client ≤ origin delay + 100 ms", r["slowest"] <= CFG["s3_delay"] + 100,
                    "slowest %s ms (delay %d ms)" % (fmt(r["slowest"], 1), CFG["s3_delay"])))
    if "isr" in R["S4"]:
        r = R["S4"]["isr"]
        own = s1("isr", 1024).get("rps")
        out.append(("S4: ≥ 0.9× its own S1 1 KiB rate", (ratio(r["rps"], own) or 0) >= 0.9,
                    "%s vs %s req/s = %s (same Lua script on 1 key: %s)" % (
                        fmt(r["rps"]), fmt(own), fr(ratio(r["rps"], own)), fr(ratio(r["rps"], r["rps_1key"])))))
        out.append(("S4: hit ratio 100%", r["hit"] == 1.0,
                    "%.4f (%d origin fetches in %d requests)" % (r["hit"] or 0, r["fetches"], r["requests"])))
    if R["S5"].get("isr"):
        rows = R["S5"]["isr"]
        ks = sorted(rows)
        lo, hi = rows[ks[0]], rows[ks[-1]]
        rr = ratio(hi["p50"], lo["p50"])
        out.append(("S5: hit latency flat (within 10%%) from %s to %s keys" % (fmt(ks[0]), fmt(ks[-1])),
                    rr is not None and rr <= 1.10,
                    "p50 %s → %s ms (%s), p99 %s → %s ms, req/s %s → %s" % (
                        fmt(lo["p50"], 3), fmt(hi["p50"], 3), fr(rr), fmt(lo["p99"], 3), fmt(hi["p99"], 3),
                        fmt(lo["rps"]), fmt(hi["rps"]))))
        big = rows[ks[-1]]
        out.append(("S5: per-entry overhead < 256 B beyond key and body", big["overhead"] < 256,
                    "%.0f B/entry measured at %s keys (key %d B + body %d B + overhead %.0f B)" % (
                        big["per_entry"], fmt(ks[-1]), big["key_len"], big["body"], big["overhead"])))
        hits = ", ".join("%s: %.4f" % (fmt(k), rows[k]["hit"] or 0) for k in ks)
        out.append(("S5: every key held (hit ratio 1.0 when the zone is sized for them)",
                    all(rows[k]["hit"] == 1.0 for k in ks), hits))
    m = R["mem"].get("isr")
    ref = m and (m.get("after_s3") or m.get("after_s1"))
    sk = R.get("soak", {}).get("isr")
    if sk:
        g = sk["anon"][2] - sk["anon"][1]
        nchild = max(1, sk["children"])
        out.append(("Memory of each child flat: a second identical pass of fills, hits, refreshes and a herd "
                    "grows no child's heap by more than 512 kB",
                    max(sk["per_child_growth2"] or [0]) <= 512 and sk["pids_same"],
                    "children's RssAnon %s kB (start → pass 1 → pass 2); pass 2 (%s requests): %s kB per child; "
                    "from after S3 to the end of the main run %s" % (
                        " → ".join(map(str, sk["anon"])), fmt(sk["requests"][1]),
                        " ".join("%+d" % x for x in sk["per_child_growth2"]),
                        ("%+d kB per child" % ((sum(v.get("RssAnon", 0) for v in m["end"]["children"].values()) -
                                                sum(v.get("RssAnon", 0) for v in ref["children"].values())) // nchild))
                        if ref and m.get("end") else "n/a")))
    elif ref and m.get("end"):
        a = sum(v.get("RssAnon", 0) for v in ref["children"].values())
        e = sum(v.get("RssAnon", 0) for v in m["end"]["children"].values())
        nchild = max(1, len(m["end"]["children"]))
        out.append(("Memory of each child flat under the whole run (< 1 MiB growth per child after S3)",
                    (e - a) / nchild < 1024,
                    "children's RssAnon after S3 %d kB → end %d kB (%+d kB per child)" % (a, e, (e - a) // nchild)))
    if R["S5r"].get("isr"):
        r = R["S5r"]["isr"]
        out.append(("Refreshes per second sustained (reported)", None,
                    "%s refreshes/s while serving %s req/s, p99 %s ms" % (fmt(r["refresh_rate"]), fmt(r["rps"]),
                                                                        fmt(r["p99"], 2))))
    e = R.get("S7", {}).get("isr", {}).get("etag")
    if e:
        out.append(("S7: with a validator every refresh is a 304 without a body, and every answer the "
                    "full body", e["refreshes"] > 0 and e["s304"] == e["refreshes"] and e["body_bytes"] == 0
                    and not e["wrong_body"] and not e["errors"],
                    "%d refreshes: %d × 304, %d × 200, %s origin body bytes (without a validator: %s B per "
                    "refresh); %d wrong bodies" % (
                        e["refreshes"], e["s304"], e["s200"], fmt(e["body_bytes"]),
                        fmt(R["S7"]["isr"].get("none", {}).get("body_per_refresh"), 0), e["wrong_body"])))
    out.extend(s6_targets_met(R))
    # beat the peers on S2, S3, S4
    peers = [n for n in ("mod_cache", "nginx", "varnish") if n in [t.name for t in b.targets]]
    if "isr" in R["S2"] and peers:
        ok = all((R["S2"]["isr"]["max"] or 1e9) < (R["S2"].get(p, {}).get("max") or 1e9) and
                 R["S2"]["isr"]["slow50"] <= R["S2"][p]["slow50"] for p in peers if p in R["S2"])
        out.append(("S2: beats every peer on the slowest request (max, requests over 50 ms)", ok, "; ".join(
            "%s max %s ms, %d over 50 ms" % (p, fmt(R["S2"][p]["max"], 1), R["S2"][p]["slow50"])
            for p in ["isr"] + peers if p in R["S2"])))
        ok = all((ratio(R["S2"]["isr"]["p99"], R["S2"]["isr"]["base_p99"]) or 1e9) <=
                 (ratio(R["S2"][p]["p99"], R["S2"][p]["base_p99"]) or 1e9) for p in peers if p in R["S2"])
        out.append(("S2: p99 in the stale window relative to its own hit p99 no worse than any peer's", ok,
                    "; ".join("%s %s ms = %s" % (p, fmt(R["S2"][p]["p99"], 2),
                                                 fr(ratio(R["S2"][p]["p99"], R["S2"][p]["base_p99"])))
                              for p in ["isr"] + peers if p in R["S2"])))
    if "isr" in R["S3"] and peers:
        me = R["S3"]["isr"]
        ok = all(me["fetches_max"] <= R["S3"][p]["fetches_max"] and me["slowest"] <= R["S3"][p]["slowest"]
                 and me["errors"] <= R["S3"][p]["errors"] for p in peers if p in R["S3"])
        out.append(("S3: beats every peer (fetches, errors, slowest)", ok, "; ".join(
            "%s %s fetches / slowest %s ms" % (p, ",".join(map(str, R["S3"][p]["fetches"])),
                                               fmt(R["S3"][p]["slowest"], 1))
            for p in ["isr"] + peers if p in R["S3"])))
    if "isr" in R["S4"] and peers:
        me = R["S4"]["isr"]
        ok = all((me["hit"] or 0) >= (R["S4"][p]["hit"] or 0) for p in peers if p in R["S4"])
        out.append(("S4: hit ratio at least every peer's", ok, "; ".join(
            "%s %s" % (p, fmt(R["S4"][p]["hit"], 3)) for p in ["isr"] + peers if p in R["S4"])))
    return out


def results_md(b, detail_name, svg_rel, elapsed):
    L = []
    A = L.append
    ts = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    A("# mod_isr benchmark results")
    A("")
    A("Generated by `make bench` (bench/run.sh) on %s, %d cores, in %.0f s. Full tables: "
      "[results/latest.md](results/latest.md) (this run: [results/%s](results/%s)). How to rerun and "
      "every setting: [README.md](README.md)." % (ts, os.cpu_count(), elapsed, detail_name, detail_name))
    A("")
    if b.skipped:
        A("Not in this run: " + "; ".join("`%s` (%s)" % kv for kv in b.skipped.items()) + ".")
        A("")
    if svg_rel:
        A("![S1 requests/s and S2 latency per target](%s)" % svg_rel)
        A("")
    summ = targets_summary(b)
    if summ:
        A("## Targets for mod_isr (issue 4; S6: issue 9), measured in this run")
        A("")
        A("| target | result | figures |")
        A("|---|---|---|")
        for what, ok, fig in summ:
            A("| %s | %s | %s |" % (what, "—" if ok is None else ("**met**" if ok else "**not met**"), fig))
        A("")
    else:
        A("mod_isr was not part of this run, so no target could be checked.")
        A("")
    # short S1/S2 overview
    R = b.res
    if R["S1"]:
        A("## Overview")
        A("")
        sizes = list(R["S1"].keys())
        hdr = "| target | " + " | ".join("S1 %s req/s" % ("%d KiB" % (s // 1024)) for s in sizes)
        hdr += " | S2 p99 / max ms | S2 fetches/expiry | S3 fetches | S3 slowest ms | S4 req/s | S4 hit ratio |"
        A(hdr)
        A("|---|" + "---:|" * (len(sizes) + 6))
        for t in b.targets:
            n = t.name
            cells = [fmt(R["S1"][s].get(n, {}).get("rps")) for s in sizes]
            s2 = R["S2"].get(n)
            s3 = R["S3"].get(n)
            s4 = R["S4"].get(n)
            cells.append("%s / %s" % (fmt(s2["p99"], 2), fmt(s2["max"], 1)) if s2 else "n/a")
            cells.append(fmt(s2["per_expiry"], 2) if s2 else "n/a")
            cells.append(",".join(map(str, s3["fetches"])) if s3 else "n/a")
            cells.append(fmt(s3["slowest"], 1) if s3 else "n/a")
            cells.append(fmt(s4["rps"]) if s4 else "n/a")
            cells.append(fmt(s4["hit"], 3) if s4 and s4["hit"] is not None else "n/a")
            A("| %s | %s |" % (n, " | ".join(cells)))
        A("")
        L.extend(s1_by_mpm(b))
    L.extend(hitpath_tables(b))
    if R.get("S6", {}).get("rows"):
        L.extend(s6_tables(b, full=False))
    if R.get("S7"):
        A("## S7 — bytes from the origin per refresh")
        A("")
        A("%d keys of %d KiB, `max-age=%d` plus a stale window, %g req/s for %g s; the origin's answers "
          "with a strong ETag (304 on a matching `If-None-Match`) or with no validator. Full table in the "
          "results file." % (CFG["s7_keys"], CFG["s7_size"] // 1024, CFG["s2_ttl"], CFG["s7_rate"],
                             CFG["s7_duration"]))
        A("")
        A("| target | validator | refreshes | 200 / 304 | origin body bytes | body B / refresh | "
          "client body bytes |")
        A("|---|---|---:|---:|---:|---:|---:|")
        for t in b.targets:
            for m, lab in S7_MODES:
                r = R["S7"].get(t.name, {}).get(m)
                if r:
                    A("| %s | %s | %d | %d / %d | %s | %s | %s |" % (
                        t.name, lab, r["refreshes"], r["s200"], r["s304"], fmt(r["body_bytes"]),
                        fmt(r["body_per_refresh"], 0), fmt(r["client_bytes"])))
        A("")
        for line in s7_reading(b):
            A("- " + line)
        A("")
    A("## Reading this run")
    A("")
    A("- wrk, hload and every server share %d cores, and the machine may be running other work: compare "
      "ratios within the run. S1 reports the median of %d interleaved rounds and lists every round in "
      "results/latest.md; the spread between rounds is the noise floor of a ratio." % (os.cpu_count(),
                                                                                     CFG["s1_rounds"]))
    A("- S2's slow requests are listed with the time they were sent. A stall of every connection at once, "
      "also seen in the fresh-hit baseline (*hit p99* / base max in the JSON), is the machine pausing the "
      "client or the server, not the cache; a stall tied to the refresh lands about %.1f s into the window."
      % (CFG["s2_delay"] / 1000.0))
    A("")
    if R.get("profile_dso"):
        A("## Where the time goes on an isr hit (perf, isr children, 1 KiB hits)")
        A("")
        A("```")
        L.extend(R["profile_dso"][:12])
        A("```")
        A("")
        A("Top symbols are in the full results file.")
        A("")
    notes = os.path.join(BENCH, "RESULTS-notes.md")
    if os.path.exists(notes):
        with open(notes) as f:
            A(f.read())
    return "\n".join(L) + "\n"


def main():
    b = Bench()
    try:
        b.run()
    finally:
        stop_all()
    elapsed = time.time() - T_START
    os.makedirs(CFG["results"], exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = os.path.join(CFG["results"], stamp)
    with open(base + ".json", "w") as f:
        json.dump({"config": CFG, "results": b.res, "skipped": b.skipped, "notes": b.notes}, f, indent=1,
                  default=str)
    svg = chart(b, base)
    md = report(b, elapsed)
    if svg:
        md = md.replace("\n## S1", "\n![S1 requests/s and S2 latency](%s)\n\n## S1" % os.path.basename(svg), 1)
    with open(base + ".md", "w") as f:
        f.write(md)
    shutil.copyfile(base + ".md", os.path.join(CFG["results"], "latest.md"))
    svg_rel = None
    if svg:
        shutil.copyfile(svg, os.path.join(CFG["results"], "latest.svg"))
        # latest.md must point at latest.svg
        with open(os.path.join(CFG["results"], "latest.md")) as f:
            t = f.read()
        with open(os.path.join(CFG["results"], "latest.md"), "w") as f:
            f.write(t.replace(os.path.basename(svg), "latest.svg"))
        svg_rel = "results/latest.svg"
    if os.path.abspath(CFG["results"]) == os.path.abspath(os.path.join(BENCH, "results")):
        with open(os.path.join(BENCH, "RESULTS.md"), "w") as f:
            f.write(results_md(b, stamp + ".md", svg_rel, elapsed))
        progress("wrote %s" % os.path.join(BENCH, "RESULTS.md"))
    progress("wrote %s.md, %s" % (base, os.path.join(CFG["results"], "latest.md")))
    if CFG["keep"]:
        progress("kept work dir %s" % b.work)
    else:
        shutil.rmtree(b.work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
