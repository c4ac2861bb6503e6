#!/usr/bin/env python3
"""mod_isr cluster benchmark (issue 12): three httpd servers sharing one Redis second tier.

    /usr/bin/python3 bench/cluster.py [--quick] [--keys K] [--max-age S] [--expiries N] ...
    /usr/bin/python3 bench/cluster.py --check      # only: does the module accept redis= ?
    /usr/bin/python3 bench/cluster.py --hits-only --hit-rounds 7   # only the hit comparison
    /usr/bin/python3 bench/cluster.py --quick --harness-test  # this script, on a module without redis=

--quick takes about 25 s (100 keys, max-age 3 s, 3 expiries, no three-server baseline), the full
run about 75 s on 2 cores (200 keys, max-age 4 s, 5 expiries, baseline on three servers without
redis=). Every request carries the same Host (HOST below), as through a load balancer: the host
is part of the cache key, so servers asked under their own 127.0.0.1:PORT would share nothing.

Starts on 127.0.0.1, each on a free port: one redis-server (--save '' --appendonly no), the C
origin (bench/origin.c), three httpd servers with mod_isr (ISR_MODULE, default
/tmp/isr-snap/mod_isr.so; each with its own ServerRoot) whose zone names the Redis server
(`ISRCacheZone pages 64M redis=redis://127.0.0.1:PORT/0`), and one to three servers with the
same configuration without redis= (the baseline). All servers front the same origin and request
the same URLs, so the cluster shares one key space of K keys.

What it measures:

  herd     cold keys requested by the three servers at the same instant: origin fetches per key
           (target 1.00)
  warm     server 1 fetches the K keys; then servers 2 and 3 request each key once: hit ratio
           (X-ISR-Status: HIT), tier-2 hits (Cache-Status `detail=redis`), origin fetches
           (target: 0)
  expiry   all three servers under load on all K keys for several freshness periods: origin
           fetches per key per expiry across the cluster (target 1.00). Fetches come from the
           origin's counter; expiries from the versions clients saw (X-Origin-Seq of every
           answer, timed by the origin's /__log): the versions of a key fetched less than half a
           freshness period apart are one expiry. Without Redis the same load shows about 3.00
  hits     wrk -t1 -c50 on one fresh key, on a server with redis= and on the same configuration
           without it, interleaved rounds, median; Redis's command counter over the run with
           redis= (the hit path sends nothing to Redis: ~0 commands per request)
  purge    a purge on server 1: how long until servers 2 and 3 report its sequence in
           <admin>/status, and whether server 3 then misses a purged key

Writes bench/results/<timestamp>-cluster.json and .md (BENCH_RESULTS_DIR elsewhere) and prints
the table. Every load loop is bounded in requests and in time; every process it starts is
stopped by its PID (also on Ctrl-C). Reuses bench.py's process, port and wrk helpers; needs wrk,
apache2, redis-server, redis-cli and a C compiler (for bench/.build/origin when it is missing).
"""
import argparse
import datetime
import hashlib
import http.client
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH)
import bench as B  # noqa: E402  (process helpers, free ports, wrk, the httpd base config)

progress = B.progress
DEFAULT_SO = "/tmp/isr-snap/mod_isr.so"
# Every request carries this Host, whatever server it goes to, as behind a load balancer: the
# host httpd resolves is sent to the backend as X-Forwarded-Host and is part of the cache key,
# so with each server's own 127.0.0.1:PORT no two servers would share a key.
HOST = "www.cluster.test:80"


def get(port, path, timeout=30):
    """B.http_get with the cluster's Host"""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path, headers={"Host": HOST})
        r = c.getresponse()
        body = r.read()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), body
    finally:
        c.close()


# ---------------------------------------------------------------- setup helpers
def origin_binary(work):
    """bench/.build/origin when it is up to date, else a fresh build in the work directory"""
    src = os.path.join(BENCH, "origin.c")
    built = os.path.join(B.BUILD, "origin")
    if os.path.exists(built) and os.path.getmtime(built) >= os.path.getmtime(src):
        return B.BUILD
    d = os.path.join(work, "build")
    os.makedirs(d, exist_ok=True)
    cc = os.environ.get("CC", "cc")
    B.run([cc, "-O2", "-Wall", "-Wextra", "-pthread", "-o", os.path.join(d, "origin"), src],
          timeout=120)
    return d


def module_info(so):
    with open(so, "rb") as f:
        data = f.read()
    st = os.stat(so)
    return {"path": so, "sha256": hashlib.sha256(data).hexdigest()[:16], "bytes": len(data),
            "mtime": datetime.datetime.fromtimestamp(st.st_mtime).strftime("%Y-%m-%d %H:%M:%S")}


def check_module(so, work):
    """(ok, message): does `apache2 -t` accept a zone with redis= with this module?"""
    if not os.path.exists(so):
        return False, "%s does not exist" % so
    conf = os.path.join(work, "check.conf")
    run = os.path.join(work, "check-run")
    os.makedirs(run, exist_ok=True)
    with open(conf, "w") as f:
        f.write("""ServerRoot "{w}"
DefaultRuntimeDir "{run}"
PidFile "{run}/httpd.pid"
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
ErrorLog "{run}/error.log"
LoadModule mpm_event_module {mods}/mod_mpm_event.so
LoadModule authz_core_module {mods}/mod_authz_core.so
LoadModule isr_module {so}
ISRCacheZone pages 64M redis=redis://127.0.0.1:{rport}/0 redis_timeout=200ms
""".format(w=work, run=run, port=B.free_port(), mods=B.CFG["modules"], so=so,
           rport=B.free_port()))
    r = B.run([B.CFG["httpd"], "-t", "-f", conf], timeout=30, check=False)
    out = (r.stdout + r.stderr).strip()
    return r.returncode == 0, out[-600:]


class Redis:
    def __init__(self, work):
        self.port = B.alloc_port()
        self.dir = os.path.join(work, "redis")
        os.makedirs(self.dir, exist_ok=True)
        argv = [os.environ.get("REDIS_SERVER", shutil.which("redis-server") or "/usr/bin/redis-server"),
                "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", self.dir, "--daemonize", "no", "--logfile", ""]
        self.proc = B.Proc("redis", argv, os.path.join(work, "logs", "redis.log"))
        t0 = time.time()
        while time.time() - t0 < 10:
            if not self.proc.alive():
                raise RuntimeError("redis-server exited; see %s/logs/redis.log" % work)
            try:
                if self.cmd("PING").strip() == "PONG":
                    return
            except Exception:  # noqa
                pass
            time.sleep(0.05)
        raise RuntimeError("redis-server did not answer PING")

    @property
    def url(self):
        return "redis://127.0.0.1:%d/0" % self.port

    def cmd(self, *args):
        r = subprocess.run([os.environ.get("REDIS_CLI", shutil.which("redis-cli") or "/usr/bin/redis-cli"),
                            "-h", "127.0.0.1", "-p", str(self.port)] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=10)
        return r.stdout

    def info(self, section="stats"):
        out = {}
        for line in self.cmd("INFO", section).splitlines():
            k, sep, v = line.strip().partition(":")
            if sep:
                try:
                    out[k] = int(v)
                except ValueError:
                    out[k] = v
        return out

    def commands(self):
        return self.info("stats").get("total_commands_processed", 0)

    def commandstats(self):
        """{command: calls}"""
        out = {}
        for k, v in self.info("commandstats").items():
            if k.startswith("cmdstat_") and isinstance(v, str):
                calls = dict(x.split("=", 1) for x in v.split(",") if "=" in x).get("calls")
                if calls is not None:
                    out[k[len("cmdstat_"):]] = int(calls)
        return out

    def stop(self):
        self.proc.stop()


class Server(B.Httpd):
    """one httpd with mod_isr, its own ServerRoot (root/NAME) and port"""

    def __init__(self, name, root, origin, so, redis_url, opts):
        work = os.path.join(root, name)
        for d in ("run", "logs", "conf", "htdocs"):
            os.makedirs(os.path.join(work, d), exist_ok=True)
        os.chmod(work, 0o755)
        os.chmod(os.path.join(work, "run"), 0o777)
        super().__init__(name, work, origin)
        self.so = so
        self.redis_url = redis_url
        self.opts = opts

    def conf_body(self):
        o = self.origin.port
        zone = "ISRCacheZone pages %s" % self.opts.zone_size
        if self.redis_url:
            zone += " redis=%s" % self.redis_url
            if self.opts.redis_timeout:
                zone += " redis_timeout=%s" % self.opts.redis_timeout
        loc = """<Location /{p}/>
    ISRBackend http://127.0.0.1:{o}/{p}/
    ISRCache pages
    ISRCacheTTL {ttl}s
    ISRStaleTTL 1h
{extra}</Location>
"""
        extra = "".join("    %s\n" % x for x in self.opts.extra.split("\\n") if x.strip())
        return ("LoadModule authz_host_module {mods}/mod_authz_host.so\n"
                "LoadModule isr_module {so}\n{zone}\n").format(mods=B.CFG["modules"], so=self.so, zone=zone) + \
            loc.format(p="s", o=o, ttl=self.opts.max_age, extra=extra) + \
            loc.format(p="c", o=o, ttl=3600, extra=extra) + \
            loc.format(p="h", o=o, ttl=86400, extra=extra) + \
            "<Location /isr-admin>\n    SetHandler isr-admin\n    Require ip 127.0.0.1\n</Location>\n"

    def status(self):
        try:
            st, h, body = B.http_get(self.port, "/isr-admin/status", timeout=5)
            return json.loads(body.decode()) if st == 200 else {"http_status": st}
        except Exception as ex:  # noqa
            return {"error": str(ex)}


def find_field(obj, names):
    """the first value of a key in names anywhere in a JSON tree (depth first), or None"""
    if isinstance(obj, dict):
        for n in names:
            if n in obj:
                return obj[n]
        for v in obj.values():
            r = find_field(v, names)
            if r is not None:
                return r
    elif isinstance(obj, list):
        for v in obj:
            r = find_field(v, names)
            if r is not None:
                return r
    return None


def zone_obj(doc, zone="pages"):
    """the object of `zone` in a status or operation answer ({"zones": [...]}), or {}"""
    for z in (doc or {}).get("zones") or []:
        if isinstance(z, dict) and z.get("zone") == zone:
            return z
    return {}


SEQ_FIELDS = ("applied_seq", "cluster_seq", "last_seq")


def applied_seq(status):
    """the cluster operation sequence a server reports having applied (zone `pages`)"""
    v = find_field(zone_obj(status), SEQ_FIELDS[:2])
    if v is None:
        v = find_field(status, SEQ_FIELDS[:2])
    if v is None:
        v = zone_obj(status).get("last_seq")
    return v


# ---------------------------------------------------------------- clients
class Tally:
    """what the clients saw: answers by server and status, versions (X-Origin-Seq) per key"""

    def __init__(self):
        self.lock = threading.Lock()
        self.by = defaultdict(Counter)       # server name -> Counter of labels
        self.seqs = defaultdict(set)         # key -> origin seqs seen
        self.served = defaultdict(Counter)   # (key, seq) -> Counter of servers that answered it
        self.errors = Counter()
        self.requests = 0
        self.no_seq = 0

    def add(self, server, key, status, h):
        isr = (h.get("x-isr-status") or "-").upper()
        cs = h.get("cache-status") or ""
        seq = h.get("x-origin-seq")
        with self.lock:
            self.requests += 1
            c = self.by[server]
            c["requests"] += 1
            if status != 200:
                c["status_%d" % status] += 1
            c[isr] += 1
            if "detail=redis" in cs:
                c["redis"] += 1
                c[isr + "+redis"] += 1
            if "collapsed" in cs:
                c["collapsed"] += 1
            if seq and seq.isdigit():
                self.seqs[key].add(int(seq))
                self.served[(key, int(seq))][server] += 1
            else:
                self.no_seq += 1

    def err(self, server, what):
        with self.lock:
            self.errors["%s: %s" % (server, what)] += 1
            self.by[server]["errors"] += 1


def one_get(conn_box, port, path, timeout):
    c = conn_box[0]
    if c is None:
        c = conn_box[0] = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path, headers={"Host": HOST})
        r = c.getresponse()
        r.read()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders())
    except Exception:
        try:
            c.close()
        finally:
            conn_box[0] = None
        raise


def run_threads(fns):
    ts = [threading.Thread(target=f, daemon=True) for f in fns]
    for t in ts:
        t.start()
    return ts


def join_all(ts, deadline):
    for t in ts:
        t.join(max(0.1, deadline - time.time()))
    return sum(1 for t in ts if t.is_alive())


def pass_once(server, keys, url, tally, threads, timeout=15, max_seconds=60):
    """each key requested once on server, spread over `threads` keep-alive connections"""
    deadline = time.time() + max_seconds
    chunks = [keys[i::threads] for i in range(threads)]

    def work(chunk):
        box = [None]
        for k in chunk:
            if time.time() > deadline:
                tally.err(server.name, "pass deadline")
                return
            try:
                st, h = one_get(box, server.port, url(k), timeout)
                tally.add(server.name, k, st, h)
            except Exception as ex:  # noqa
                tally.err(server.name, type(ex).__name__)
        if box[0]:
            box[0].close()

    left = join_all(run_threads([lambda c=c: work(c) for c in chunks]), deadline + timeout + 5)
    if left:
        tally.err(server.name, "%d pass threads still running" % left)


def load(servers, keys, url, tally, seconds, threads, max_requests, timeout=10, seed=12):
    """every server under load on every key: `threads` connections per server, each going over
    the keys in its own shuffled order, until `seconds` pass or max_requests are made in all"""
    deadline = time.time() + seconds
    per_thread = max(1, max_requests // (len(servers) * threads))

    def work(server, i):
        rnd = random.Random(seed * 1000 + i)
        order = list(keys)
        box = [None]
        n = 0
        while n < per_thread and time.time() < deadline:
            rnd.shuffle(order)
            for k in order:
                if n >= per_thread or time.time() >= deadline:
                    break
                n += 1
                try:
                    st, h = one_get(box, server.port, url(k), timeout)
                    tally.add(server.name, k, st, h)
                except Exception as ex:  # noqa
                    tally.err(server.name, type(ex).__name__)
        if box[0]:
            box[0].close()

    fns = []
    for si, s in enumerate(servers):
        for i in range(threads):
            fns.append(lambda s=s, i=si * 100 + i: work(s, i))
    left = join_all(run_threads(fns), deadline + timeout + 5)
    if left:
        tally.err("load", "%d threads still running" % left)


def herd(servers, keys, url, tally, timeout=15):
    """each key requested by every server at the same instant (one thread per server and key)"""
    barrier = threading.Barrier(len(servers) * len(keys), timeout=timeout)

    def work(s, k):
        box = [None]
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            pass
        try:
            st, h = one_get(box, s.port, url(k), timeout)
            tally.add(s.name, k, st, h)
        except Exception as ex:  # noqa
            tally.err(s.name, type(ex).__name__)
        if box[0]:
            box[0].close()

    fns = [lambda s=s, k=k: work(s, k) for k in keys for s in servers]
    left = join_all(run_threads(fns), time.time() + 2 * timeout + 5)
    if left:
        tally.err("herd", "%d threads still running" % left)


# ---------------------------------------------------------------- scenario steps
def groups_of(seqs, when, max_age):
    """seqs (sorted) grouped by origin arrival time: less than max_age / 2 apart is one group"""
    g = []
    for x in seqs:
        if g and when[x] - when[g[-1][0]] < max_age / 2.0:
            g[-1].append(x)
        else:
            g.append([x])
    return g


def expiries(tally, log, lo, hi, max_age):
    """How many times each key expired during the load (versions with seqs in (lo, hi]): per
    server, the versions it answered with, fetched less than max_age / 2 apart counting as one;
    a key's expiries are the most any server went through (every server sees every expiry of a
    key it is asked for; without a shared tier each sees its own fetches, whose times drift
    apart). Also, across the servers, the expiries that had more than one fetch."""
    when = dict(log)
    total = 0
    dup_groups = 0
    dups = []
    seen = set()
    per_key = []
    for k, seqs in tally.seqs.items():
        s = sorted(x for x in seqs if lo < x <= hi and x in when)
        seen.update(s)
        by_server = defaultdict(list)
        for x in s:
            for srv in tally.served.get((k, x), {}):
                by_server[srv].append(x)
        n = max((len(groups_of(v, when, max_age)) for v in by_server.values()), default=0)
        total += n
        per_key.append(n)
        for x in groups_of(s, when, max_age):
            if len(x) > 1:
                dup_groups += 1
                if len(dups) < 50:
                    dups.append({"key": k, "fetches": [
                        {"seq": y, "after_ms": round((when[y] - when[x[0]]) * 1000, 1),
                         "served_by": dict(tally.served.get((k, y), {}))} for y in x]})
    return {"expiries": total, "expiries_with_several_visible_fetches": dup_groups,
            "fetches_seen_by_clients": len(seen),
            "expiries_per_key_min": min(per_key) if per_key else None,
            "expiries_per_key_max": max(per_key) if per_key else None,
            "several_fetches_examples": dups}


def cluster_run(label, servers, origin, redis, opts, prefix):
    """herd, warm + first passes, expiry load on `servers` (the first one warms)"""
    res = {"servers": [s.name for s in servers]}
    K = opts.keys
    keys = ["%s%d" % (prefix, i) for i in range(K)]

    def url_s(k):
        return "/s/%s?size=%d&delay=%d&cc=max-age%%3D%d%%2C%%20stale-while-revalidate%%3D3600" % (
            k, opts.size, opts.delay, opts.max_age)

    def url_c(k):
        return "/c/%s?size=%d&delay=%d&cc=max-age%%3D3600" % (k, opts.size, opts.herd_delay)

    # -- herd: cold keys, every server at once
    if opts.herd_keys:
        hk = ["%sh%d" % (prefix, i) for i in range(opts.herd_keys)]
        t = Tally()
        c0 = origin.count()
        t0 = time.time()
        herd(servers, hk, url_c, t)
        time.sleep(0.3)
        f = origin.count() - c0
        res["herd"] = {"keys": len(hk), "requests": t.requests, "fetches": f,
                       "fetches_per_key": f / len(hk), "seconds": time.time() - t0,
                       "by_server": {k: dict(v) for k, v in t.by.items()}, "errors": dict(t.errors)}
        progress("%s herd: %d keys x %d servers at once: %d origin fetches (%.2f per key)" % (
            label, len(hk), len(servers), f, f / len(hk)))

    # -- warm on server 1, then a first pass on each other server
    t = Tally()
    cmd0 = redis.commands() if redis else None
    c0 = origin.count()
    t0 = time.time()
    pass_once(servers[0], keys, url_s, t, opts.warm_threads)
    warm_s = time.time() - t0
    c1 = origin.count()
    res["warm"] = {"server": servers[0].name, "keys": K, "fetches": c1 - c0, "seconds": warm_s,
                   "answers": dict(t.by[servers[0].name])}
    progress("%s warm: %s fetched %d keys in %.2f s (%d origin fetches)" % (
        label, servers[0].name, K, warm_s, c1 - c0))
    res["first_pass"] = {}
    for s in servers[1:]:
        cp = origin.count()
        tp = time.time()
        pass_once(s, keys, url_s, t, opts.warm_threads)
        time.sleep(0.1)
        fetched = origin.count() - cp
        a = t.by[s.name]
        n = a["requests"] or 1
        res["first_pass"][s.name] = {
            "requests": a["requests"], "hit": a["HIT"], "stale": a["STALE"], "miss": a["MISS"],
            "tier2": a["redis"], "hit_ratio": a["HIT"] / n, "tier2_ratio": a["redis"] / n,
            "served_without_origin": (a["requests"] - fetched) / n, "origin_fetches": fetched,
            "seconds": time.time() - tp, "since_warm_began": time.time() - t0,
            "answers": dict(a)}
        progress("%s first pass on %s: HIT %d/%d (%.1f%%), detail=redis %d, STALE %d, MISS %d, "
                 "origin fetches %d" % (label, s.name, a["HIT"], a["requests"], 100.0 * a["HIT"] / n,
                                        a["redis"], a["STALE"], a["MISS"], fetched))
    if time.time() - t0 > opts.max_age:
        res["first_pass_note"] = ("the passes took longer than max-age (%.1f s > %d s): answers "
                                  "after expiry are STALE" % (time.time() - t0, opts.max_age))
    if redis:
        res["warm"]["redis_commands"] = redis.commands() - cmd0

    # -- every server under load on every key for several expiries
    t = Tally()
    secs = opts.expiries * opts.max_age + 0.5
    c0 = origin.count()
    cmd0 = redis.commands() if redis else None
    cst0 = redis.commandstats() if redis else None
    t0 = time.time()
    load(servers, keys, url_s, t, secs, opts.load_threads, opts.max_requests)
    load_s = time.time() - t0
    time.sleep(opts.delay / 1000.0 + 0.5)   # refreshes under way land
    c1 = origin.count()
    cmd1 = redis.commands() if redis else None
    cst1 = redis.commandstats() if redis else None
    # one more look at every key on every server: the versions they hold now (seqs <= c1 count;
    # any refresh this starts has a later seq and is not counted)
    tail = Tally()
    for s in servers:
        pass_once(s, keys, url_s, tail, opts.warm_threads)
    with t.lock:
        for k, v in tail.seqs.items():
            t.seqs[k].update(v)
    log = origin.log_since(c0)
    g = expiries(t, log, c0, c1, opts.max_age)
    fetches = c1 - c0
    r = {"seconds": load_s, "requests": t.requests, "rps": t.requests / load_s if load_s else None,
         "fetches": fetches, "answers_without_x_origin_seq": t.no_seq,
         "by_server": {k: dict(v) for k, v in t.by.items()}, "errors": dict(t.errors)}
    r.update(g)
    r["fetches_per_key_per_expiry"] = fetches / g["expiries"] if g["expiries"] else None
    r["expiries_per_key"] = g["expiries"] / K
    r["fetches_not_seen_by_clients"] = fetches - g["fetches_seen_by_clients"]
    if redis:
        r["redis_commands"] = cmd1 - cmd0
        r["redis_commands_per_request"] = (cmd1 - cmd0) / t.requests if t.requests else None
        r["redis_commandstats"] = {k: v - cst0.get(k, 0) for k, v in cst1.items()
                                   if v - cst0.get(k, 0) > 0}
    res["expiry"] = r
    progress("%s expiry load: %d requests in %.1f s on %d servers; %d origin fetches, %d expiries "
             "(%.2f per key): %s fetches per key per expiry" % (
                 label, t.requests, load_s, len(servers), fetches, g["expiries"], g["expiries"] / K,
                 B.fmt(r["fetches_per_key_per_expiry"], 2)))
    return res


def hit_throughput(with_redis, without, redis, opts):
    """wrk on one fresh key: a server with redis= against the same config without"""
    path = "/h/hot?size=%d&cc=max-age%%3D86400" % opts.hit_size
    res = {"path": path, "rounds": {with_redis.name: [], without.name: []}, "checks": {}}
    for s in (with_redis, without):
        get(s.port, path)
        st, h, body = get(s.port, path)
        res["checks"][s.name] = {"status": st, "x-isr-status": h.get("x-isr-status"),
                                 "cache-status": h.get("cache-status"), "bytes": len(body)}
        if st != 200 or (h.get("x-isr-status") or "").upper() != "HIT":
            res["checks"][s.name]["problem"] = "not a HIT on the second request"
    res["redis_commands_during"] = []
    time.sleep(1)  # background refreshes started by the last look at the keys land
    for rnd in range(opts.hit_rounds):
        for s in (with_redis, without):
            c0 = redis.commands() if (redis and s is with_redis) else None
            w = B.wrk(s.port, path, opts.hit_duration, conns=50, threads=1, headers=("Host: " + HOST,))
            w.pop("raw", None)
            w["loadavg"] = os.getloadavg()[0]
            if c0 is not None:
                d = redis.commands() - c0 - 1  # INFO counts itself: one call falls inside
                res["redis_commands_during"].append({"commands": d, "requests": w["requests"]})
            res["rounds"][s.name].append(w)
            progress("hits round %d: %s %s req/s (p99 %s ms, errors %d, non-2xx %d)" % (
                rnd + 1, s.name, B.fmt(w["rps"]), B.fmt(w.get("p99"), 2), w["errors"], w["non2xx"]))
    if redis:
        c0 = redis.commands()
        time.sleep(opts.hit_duration)
        # INFO counts itself: one of the two calls falls inside the interval
        res["redis_commands_idle"] = {"commands": redis.commands() - c0 - 1, "seconds": opts.hit_duration}
    for s in (with_redis, without):
        rs = res["rounds"][s.name]
        res[s.name] = {"rps_median": statistics.median([x["rps"] for x in rs]),
                       "p99_median": statistics.median([x.get("p99") or 0 for x in rs]),
                       "errors": sum(x["errors"] + x["non2xx"] for x in rs)}
    res["ratio"] = B.ratio(res[with_redis.name]["rps_median"], res[without.name]["rps_median"])
    # the ratio within each round (the two runs of a round are back to back), median over rounds:
    # steadier than the ratio of the medians when other work comes and goes
    res["ratio_per_round"] = [B.ratio(a["rps"], b["rps"]) for a, b in
                              zip(res["rounds"][with_redis.name], res["rounds"][without.name])]
    res["ratio_rounds_median"] = statistics.median([x for x in res["ratio_per_round"] if x] or [0])
    res["with"] = with_redis.name
    res["without"] = without.name
    return res


def purge_check(servers, opts, prefix):
    """purge one key's URL prefix on server 1; time until the others report the new sequence"""
    before = {s.name: applied_seq(s.status()) for s in servers}
    k = "%s0" % prefix
    path = "/s/%s?size=%d&delay=%d&cc=max-age%%3D%d%%2C%%20stale-while-revalidate%%3D3600" % (
        k, opts.size, opts.delay, opts.max_age)
    c = http.client.HTTPConnection("127.0.0.1", servers[0].port, timeout=10)
    t0 = time.time()
    try:
        c.request("POST", "/isr-admin/purge", body="prefix=/s/%s&zone=pages" % k,
                  headers={"Content-Type": "application/x-www-form-urlencoded"})
        r = c.getresponse()
        body = r.read().decode(errors="replace")
    finally:
        c.close()
    res = {"answer_status": r.status, "answer": body[:400], "before": before, "seen_after_s": {}}
    try:
        a = zone_obj(json.loads(body))
        seq = a.get("cluster_seq", a.get("seq"))
    except ValueError:
        seq = None
    res["seq"] = seq
    pending = {s.name: s for s in servers[1:]}
    deadline = t0 + 5
    while pending and time.time() < deadline:
        for name, s in list(pending.items()):
            v = applied_seq(s.status())
            if v is not None and v != before[name] and (seq is None or v >= seq):
                res["seen_after_s"][name] = time.time() - t0
                del pending[name]
        time.sleep(0.01)
    for name in pending:
        res["seen_after_s"][name] = None
    res["after"] = {s.name: applied_seq(s.status()) for s in servers}
    # the purged key on the last server: a MISS (the entry is gone there too)
    st, h, _ = get(servers[-1].port, path)
    res["last_server_after"] = {"status": st, "x-isr-status": h.get("x-isr-status"),
                                "cache-status": h.get("cache-status")}
    return res


# ---------------------------------------------------------------- report
def table(rows):
    out = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    for r in rows[1:]:
        out.append("| " + " | ".join(str(x) for x in r) + " |")
    return "\n".join(out)


def pct(x):
    return "n/a" if x is None else "%.1f%%" % (100.0 * x)


def report(R, opts):
    c = R.get("cluster", {})
    b = R.get("baseline", {})
    h = R.get("hits", {})
    lines = ["# mod_isr cluster bench (issue 12)", "",
             "%s; module `%s` (sha256 %s…, %s); %d keys of %d bytes, max-age %d s with "
             "stale-while-revalidate 1 h, origin delay %d ms; %d CPUs; %s mode; %.0f s." % (
                 R["when"], R["module"]["path"], R["module"]["sha256"], R["module"]["mtime"],
                 opts.keys, opts.size, opts.max_age, opts.delay, os.cpu_count(),
                 "quick" if opts.quick else "full", R["elapsed"]),
             "", "Load average (1 min) at start and end: %s, %s (above the CPU count, other work shared "
             "the machine: throughput figures are noisy)." % (
                 B.fmt(R.get("loadavg_start"), 2), B.fmt(R.get("loadavg_end"), 2)), ""]
    hasb = bool(b)
    head = ["figure", "3 servers, NO redis= (--harness-test)" if opts.harness_test else "3 servers + Redis"] + \
        (["3 servers, no Redis"] if hasb else []) + ["target"]
    rows = [head]

    def row(name, fc, fb, target):
        rows.append([name, fc] + ([fb] if hasb else []) + [target])

    e, eb = c.get("expiry", {}), b.get("expiry", {})
    if e:
        row("origin fetches per key per expiry (all servers under load)",
            "**%s**" % B.fmt(e.get("fetches_per_key_per_expiry"), 2),
            B.fmt(eb.get("fetches_per_key_per_expiry"), 2), "1.00")
        row("… fetches / expiries seen (expiries per key)",
            "%s / %s (%s)" % (B.fmt(e.get("fetches")), B.fmt(e.get("expiries")), B.fmt(e.get("expiries_per_key"), 2)),
            "%s / %s (%s)" % (B.fmt(eb.get("fetches")), B.fmt(eb.get("expiries")),
                              B.fmt(eb.get("expiries_per_key"), 2)) if eb else "", "")
    if "herd" in c:
        row("cold key, all servers at once: origin fetches per key",
            "**%s**" % B.fmt(c["herd"]["fetches_per_key"], 2),
            B.fmt(b["herd"]["fetches_per_key"], 2) if "herd" in b else "", "1.00")
    for i, name in enumerate(c.get("servers", [])[1:]):
        fp = c["first_pass"].get(name, {})
        fb = {}
        if hasb and len(b.get("servers", [])) > i + 1:
            fb = b["first_pass"].get(b["servers"][i + 1], {})
        row("server %d first pass after server 1 warmed: HIT ratio (tier-2 `detail=redis`)" % (i + 2),
            "**%s** (%s)" % (pct(fp.get("hit_ratio")), pct(fp.get("tier2_ratio"))),
            "%s (%s)" % (pct(fb.get("hit_ratio")), pct(fb.get("tier2_ratio"))) if fb else "", "100%")
        row("… origin fetches during that pass", B.fmt(fp.get("origin_fetches")),
            B.fmt(fb.get("origin_fetches")) if fb else "", "0")
    if h:
        wn, won = h["with"], h["without"]
        rows.append(["hit throughput, 1 fixed fresh key (wrk -t1 -c50, median of %d)" % len(h["rounds"][wn]),
                     "%s req/s (redis=)" % B.fmt(h[wn]["rps_median"])] +
                    (["%s req/s (no redis=)" % B.fmt(h[won]["rps_median"])] if hasb else []) +
                    ["ratio **%s**, per round %s (≥ 0.95)" % (
                        B.fr(h["ratio"]), B.fr(h.get("ratio_rounds_median")))])
        if not hasb:
            rows.append(["… same config without redis=", "%s req/s" % B.fmt(h[won]["rps_median"]), ""])
        d = h.get("redis_commands_during") or []
        if d:
            n = sum(x["requests"] for x in d)
            cmds = sum(x["commands"] for x in d)
            idle = h.get("redis_commands_idle") or {}
            rows.append(["Redis commands during the redis= hit runs", "%s for %s requests (idle: %s in %s s)" % (
                B.fmt(cmds), B.fmt(n), B.fmt(idle.get("commands")), B.fmt(idle.get("seconds"), 0))] +
                ([""] if hasb else []) + ["~0 per request"])
    p = R.get("purge")
    if p:
        seen = ", ".join("%s %s" % (k, ("%.0f ms" % (v * 1000)) if v is not None else "not seen in 5 s")
                         for k, v in p["seen_after_s"].items())
        rows.append(["purge on server 1 reported by the others' status", seen] + ([""] if hasb else []) +
                    ["< 1 s"])
        rows.append(["… then the purged key on server 3", "%s" % p["last_server_after"].get("x-isr-status")] +
                    ([""] if hasb else []) + ["MISS"])
    lines += [table(rows), ""]

    # details
    lines += ["## Expiry load, per server", ""]
    for lab, X in (("3 servers + Redis", c), ("3 servers, no Redis", b)):
        e = X.get("expiry")
        if not e:
            continue
        rr = [["server", "requests", "HIT", "STALE", "MISS", "detail=redis", "errors"]]
        for s, a in sorted(e["by_server"].items()):
            rr.append([s, B.fmt(a.get("requests", 0)), B.fmt(a.get("HIT", 0)), B.fmt(a.get("STALE", 0)),
                       B.fmt(a.get("MISS", 0)), B.fmt(a.get("redis", 0)), B.fmt(a.get("errors", 0))])
        lines += ["**%s**: %s requests in %.1f s (%s req/s); %s origin fetches, %s expiries (per key "
                  "%s–%s), %s expiries with more than one visible fetch, %s fetches no client saw%s." % (
                      lab, B.fmt(e["requests"]), e["seconds"], B.fmt(e["rps"]), B.fmt(e["fetches"]),
                      B.fmt(e["expiries"]), e.get("expiries_per_key_min"), e.get("expiries_per_key_max"),
                      B.fmt(e["expiries_with_several_visible_fetches"]), B.fmt(e["fetches_not_seen_by_clients"]),
                      ("; Redis: %s commands (%s per request)" % (
                          B.fmt(e["redis_commands"]), B.fmt(e["redis_commands_per_request"], 2)))
                      if "redis_commands" in e else ""), "", table(rr), ""]
        if e.get("errors"):
            lines += ["errors: `%s`" % json.dumps(e["errors"]), ""]
        ex = e.get("several_fetches_examples") or []
        if ex:
            lines += ["Expiries with more than one origin fetch (first %d; each fetch: ms after the first, "
                      "servers that answered with it): %s" % (min(len(ex), 8), "; ".join(
                          "%s: %s" % (d["key"], ", ".join("+%s ms %s" % (f["after_ms"], "/".join(sorted(f["served_by"])) or "-")
                                                          for f in d["fetches"])) for d in ex[:8])), ""]
        if e.get("redis_commandstats"):
            lines += ["Redis commands during the load: " + ", ".join(
                "%s %s" % (k, B.fmt(v)) for k, v in sorted(e["redis_commandstats"].items(), key=lambda x: -x[1])), ""]
    if h:
        lines += ["## Hit throughput rounds", "",
                  table([["server", "req/s per round", "p99 ms per round", "errors"]] +
                        [[s, ", ".join(B.fmt(x["rps"]) for x in h["rounds"][s]),
                          ", ".join(B.fmt(x.get("p99"), 2) for x in h["rounds"][s]),
                          B.fmt(sum(x["errors"] + x["non2xx"] for x in h["rounds"][s]))]
                         for s in (h["with"], h["without"])]), "",
                  "Checks (second request on the key): `%s`" % json.dumps(h["checks"]), ""]
    for k in ("first_pass_note",):
        if k in c:
            lines += ["Note: " + c[k], ""]
    lines += ["How: `bench/cluster.py%s` (see its docstring). Fetches come from the origin's counter, "
              "expiries from the versions (X-Origin-Seq) clients saw: per server, versions of a key "
              "fetched less than max-age/2 apart are one expiry; a key's expiries are the most any server saw." % (" --quick" if opts.quick else ""), ""]
    return "\n".join(lines)


# ---------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a run of well under 2 minutes")
    ap.add_argument("--check", action="store_true", help="only check that the module accepts redis=")
    ap.add_argument("--keys", type=int)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--max-age", type=int)
    ap.add_argument("--expiries", type=int)
    ap.add_argument("--delay", type=int, default=50, help="origin delay (ms) of the key space")
    ap.add_argument("--herd-keys", type=int)
    ap.add_argument("--herd-delay", type=int, default=300)
    ap.add_argument("--load-threads", type=int, default=4, help="client connections per server")
    ap.add_argument("--warm-threads", type=int, default=16)
    ap.add_argument("--max-requests", type=int, default=2000000)
    ap.add_argument("--hit-rounds", type=int)
    ap.add_argument("--hit-duration", type=float, default=3)
    ap.add_argument("--hit-size", type=int, default=1024)
    ap.add_argument("--baseline", dest="baseline", action="store_true", default=None,
                    help="also run the scenario on three servers without redis= (default in full mode)")
    ap.add_argument("--no-baseline", dest="baseline", action="store_false")
    ap.add_argument("--zone-size", default="64M")
    ap.add_argument("--redis-timeout", default="", help="redis_timeout= of the zone (module default)")
    ap.add_argument("--extra", default=os.environ.get("ISR_EXTRA_CONF", ""),
                    help="directives added to every Location (\\n separates lines)")
    ap.add_argument("--keep", action="store_true", default=B.CFG["keep"])
    ap.add_argument("--hits-only", action="store_true",
                    help="only the hit throughput comparison (and the purge check); more --hit-rounds "
                         "make it steadier on a busy machine")
    ap.add_argument("--harness-test", action="store_true",
                    help="test this script with a module without redis=: the cluster servers get no "
                         "redis= (expect about 3 fetches per expiry and no tier-2 hits)")
    opts = ap.parse_args()
    q = opts.quick
    for k, full, quick in (("keys", 200, 100), ("max_age", 4, 3), ("expiries", 5, 3),
                           ("herd_keys", 20, 10), ("hit_rounds", 3, 2)):
        if getattr(opts, k) is None:
            setattr(opts, k, quick if q else full)
    if opts.baseline is None:
        opts.baseline = not q
    if q:
        opts.hit_duration = min(opts.hit_duration, 2)

    so = os.environ.get("ISR_MODULE", DEFAULT_SO)
    root = tempfile.mkdtemp(prefix="isr-cluster-")
    os.chmod(root, 0o755)
    os.makedirs(os.path.join(root, "logs"), exist_ok=True)
    ok, msg = check_module(so, root)
    if opts.harness_test and not opts.check:
        ok = True
    if opts.check or not ok:
        print("%s: redis= %s%s" % (so, "accepted" if ok else "NOT accepted", "" if ok else "\n" + msg))
        shutil.rmtree(root, ignore_errors=True)
        return 0 if ok else 2

    # the module as it is now: a copy, so a new snapshot during the run changes nothing
    so_copy = os.path.join(root, "mod_isr.so")
    shutil.copyfile(so, so_copy)
    os.chmod(so_copy, 0o755)
    R = {"when": datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S"), "module": module_info(so),
         "options": vars(opts), "loadavg_start": os.getloadavg()[0]}
    t_start = time.time()
    servers = []
    try:
        B.BUILD = origin_binary(root)
        origin = B.Origin(root)
        progress("origin on 127.0.0.1:%d" % origin.port)
        redis = Redis(root)
        progress("redis-server on 127.0.0.1:%d (pid %d)" % (redis.port, redis.proc.pid))
        cl = [Server("isr%d" % i, root, origin, so_copy, None if opts.harness_test else redis.url, opts)
              for i in (1, 2, 3)]
        nb = [Server("noredis%d" % i, root, origin, so_copy, None, opts)
              for i in ((1, 2, 3) if opts.baseline and not opts.hits_only else (1,))]
        for s in cl + nb:
            s.start()
            servers.append(s)
            progress("%s on 127.0.0.1:%d (pid %d)%s" % (s.name, s.port, s.pid(),
                                                        " redis=" + s.redis_url if s.redis_url else ""))
        time.sleep(0.5)  # the bus threads subscribe
        if not opts.hits_only:
            R["cluster"] = cluster_run("redis", cl, origin, redis, opts, "k")
        if opts.baseline and not opts.hits_only:
            R["baseline"] = cluster_run("no-redis", nb, origin, None, opts, "b")
        R["hits"] = hit_throughput(cl[0], nb[0], redis, opts)
        R["purge"] = purge_check(cl, opts, "k")
        progress("purge on %s seen by %s" % (cl[0].name, R["purge"]["seen_after_s"]))
        R["status"] = {s.name: s.status() for s in cl + nb[:1]}
        R["redis_dbsize"] = redis.cmd("DBSIZE").strip()
        R["redis_info_stats"] = redis.info("stats")
        R["error_logs"] = {}
        for s in servers:
            try:
                with open(s.error_log(), errors="replace") as f:
                    lines = f.read().splitlines()
                R["error_logs"][s.name] = {"lines": len(lines), "last": lines[-15:]}
            except OSError:
                pass
    finally:
        B.stop_all()
    R["elapsed"] = time.time() - t_start
    R["loadavg_end"] = os.getloadavg()[0]

    out_dir = B.CFG["results"]
    os.makedirs(out_dir, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = os.path.join(out_dir, stamp + "-cluster" + ("-quick" if q else "") + ("-hits" if opts.hits_only else ""))
    with open(base + ".json", "w") as f:
        json.dump(R, f, indent=1, default=str)
    md = report(R, opts)
    with open(base + ".md", "w") as f:
        f.write(md + "\n")
    print()
    print(md)
    progress("wrote %s.md and .json" % base)
    if opts.keep:
        progress("kept %s" % root)
    else:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
