"""Review of issue 12 (the Redis second tier): purges that a server loses or undoes, leases left
behind by a slow Redis, pooled connections Redis closed, garbage in Redis, catch-up.

Each test builds a small cluster (servers with the same ServerName, asked with the same Host,
sharing one redis-server started by this module). Tests named *_bug_* show a problem found in
review: they fail until it is fixed. The others confirm a property.
"""

import json
import os
import re
import signal
import struct
import threading
import time
import urllib.parse
from contextlib import contextmanager

import pytest

import isr_env
from isr_env import cache_status
from redis_env import RedisServer, redis_available

HOST = "cluster.example"
HOST_HEADER = HOST + ":80"

CONF = """
ServerName %(host)s:80
ISRCacheZone %(zone)s 8M redis=redis://127.0.0.1:%(port)d/0%(zone_opts)s
<Location /isr-admin>
    SetHandler isr-admin
    Require ip 127.0.0.1
</Location>
<Location /r/>
    ISRBackend @ORIGIN@/
    ISRCache %(zone)s
    ISRCacheTTL 1h
    ISRStaleTTL 1h
</Location>
"""

# One child per server: which child's connections and state a request meets is known.
ONE_CHILD = {"StartServers": 1, "ServerLimit": 1, "MaxRequestWorkers": 25,
             "MinSpareThreads": 1, "MaxSpareThreads": 25, "ThreadsPerChild": 25}


# ---------------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def redis_server():
    if not redis_available():
        pytest.skip("redis-server not installed")
    srv = RedisServer().start()
    yield srv
    srv.cleanup()


@pytest.fixture()
def redis(redis_server):
    if not redis_server.running():
        redis_server.start()
    else:
        # A test may have stopped it (SIGSTOP) or changed its idle timeout.
        try:
            os.kill(redis_server.proc.pid, signal.SIGCONT)
        except OSError:
            pass
    redis_server.command("CONFIG", "SET", "timeout", "0")
    redis_server.command("FLUSHALL")
    yield redis_server
    if redis_server.running():
        try:
            os.kill(redis_server.proc.pid, signal.SIGCONT)
        except OSError:
            pass
        try:
            redis_server.command("CONFIG", "SET", "timeout", "0")
        except Exception:
            pass


# ---------------------------------------------------------------------------------- helpers

def poll(fetch, cond, deadline=10.0, interval=0.1):
    end = time.monotonic() + deadline
    v = fetch()
    while not cond(v) and time.monotonic() < end:
        time.sleep(interval)
        v = fetch()
    return v


def get(e, path, **kw):
    h = {"Host": HOST_HEADER}
    h.update(kw.pop("headers", None) or {})
    return e.get(path, headers=h, **kw)


def status(e, zone):
    r = e.get("/isr-admin/status?zone=" + zone)
    assert r.status == 200, "%s: status: %s" % (e.name, r)
    zones = [z for z in json.loads(r.body)["zones"] if z["zone"] == zone]
    assert len(zones) == 1, r
    return zones[0]


def tier(e, zone):
    z = status(e, zone)
    assert isinstance(z.get("redis"), dict), "%s: no \"redis\" object in %r" % (e.name, z)
    return z["redis"]


def purge(e, zone, op="purge", timeout=15.0, **params):
    body = urllib.parse.urlencode(params, doseq=True).encode()
    r = e.post("/isr-admin/" + op, body=body, timeout=timeout)
    try:
        a = json.loads(r.body)
    except ValueError:
        return r.status, None, r.body
    zs = [z for z in a.get("zones", []) if z.get("zone") == zone]
    return r.status, (zs[0] if zs else None), a


def make_server(env_factory, redis, zone, name, zone_opts="", mpm_conf=None, before=None):
    e = env_factory(name, conf=CONF % {"host": HOST, "zone": zone, "port": redis.port,
                                       "zone_opts": zone_opts},
                    mpm_conf=mpm_conf)
    if before:
        before(e)
    return e


def wait_connected(e, zone, deadline=10):
    t = poll(lambda: tier(e, zone), lambda t: t.get("connected") is True, deadline=deadline)
    assert t.get("connected") is True, "%s: tier not connected: %r" % (e.name, t)
    return t


def cluster(env_factory, redis, zone, n, name, zone_opts="", mpm_conf=None):
    out = []
    for i in range(n):
        e = make_server(env_factory, redis, zone, "%s-%d" % (name, i), zone_opts, mpm_conf)
        e.start()
        out.append(e)
    for e in out:
        wait_connected(e, zone)
    return out


def entry_keys(redis, zone, needle):
    """Entry keys (isr:{ZONE}:GEN:e:<cache key>) whose cache key holds needle (bytes)."""
    prefix = ("isr:{%s}:" % zone).encode()
    return [k for k in redis.scan("isr:*")
            if k.startswith(prefix) and b":e:" in k and needle in k]


def lease_keys(redis, zone, needle):
    prefix = ("isr:{%s}:l:" % zone).encode()
    return [k for k in redis.scan("isr:*") if k.startswith(prefix) and needle in k]


def local_ports_of(pids):
    """Local TCP ports of the sockets the processes pids hold (from /proc)."""
    inodes = set()
    for pid in pids:
        d = "/proc/%d/fd" % pid
        try:
            names = os.listdir(d)
        except OSError:
            continue
        for n in names:
            try:
                link = os.readlink(os.path.join(d, n))
            except OSError:
                continue
            m = re.match(r"socket:\[(\d+)\]", link)
            if m:
                inodes.add(m.group(1))
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if len(cols) > 9 and cols[9] in inodes:
                ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return ports


def cut_bus(redis, e):
    """Kill (CLIENT KILL ID) the pub/sub connections of server e only; how many."""
    ports = local_ports_of(e.child_pids())
    listing = redis.command("CLIENT", "LIST", "TYPE", "pubsub").decode()
    n = 0
    for line in listing.splitlines():
        f = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
        port = int(f.get("addr", ":0").rsplit(":", 1)[1])
        if port in ports:
            n += redis.command("CLIENT", "KILL", "ID", f["id"])
    return n


@contextmanager
def redis_frozen(redis):
    """redis-server stopped (SIGSTOP by its PID): connections are accepted by the kernel but
    nothing answers, what a Redis busy with `DEBUG SLEEP` or a long script looks like (DEBUG is
    disabled in Redis 7 by default). Always continued (SIGCONT) on the way out."""
    pid = redis.proc.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def warm(a, others, path):
    """A fetches path (MISS, v=1), each of others finds it in Redis."""
    r = get(a, "/r" + path)
    assert (r.status, r.isr, r.body) == (200, "MISS", (path + "|v=1").encode()), r
    for e in others:
        r = get(e, "/r" + path)
        assert (r.status, r.isr, r.body) == (200, "HIT", (path + "|v=1").encode()), (e.name, r)
        assert "detail=redis" in cache_status(r), (e.name, r)


# ---------------------------------------------------------------------------------- catch-up

class TestCatchUp:

    def test_971_01_catch_up_after_the_bus_was_cut(self, env_factory, redis, origin):
        """B's subscription is cut just before A's purge: B misses the message, reconnects on
        its own and reads the purge back from the stream."""
        isr_env.expect_log(isr_env.ISR_WARN_LOG)
        zone = "rv01"
        a, b = cluster(env_factory, redis, zone, 2, "catch")
        origin.set("/cu", header="Surrogate-Key:cu")
        warm(a, [b], "/cu")
        assert origin.count("/cu") == 1
        before = tier(b, zone)
        # Only B's: what a server that loses its subscription (a network blip, Redis's
        # client-output-buffer-limit for pubsub) sees; test_971_09 cuts every server's.
        killed = cut_bus(redis, b)
        assert killed >= 1, killed   # one bus per child of B
        st, z, ans = purge(a, zone, tag="cu")
        assert st == 200 and z is not None, ans
        seq = z.get("cluster_seq")
        assert isinstance(seq, int) and seq > 0, ans
        t = poll(lambda: tier(b, zone),
                 lambda t: t["applied_seq"] == seq and t["catch_ups"] > before["catch_ups"]
                 and t["connected"] is True, deadline=10, interval=0.2)
        assert t["applied_seq"] == seq, (seq, before, t)
        assert t["catch_ups"] > before["catch_ups"], (before, t)
        assert t["ops_applied"] > before["ops_applied"], (before, t)
        r = get(b, "/r/cu")
        assert r.status == 200 and r.body != b"/cu|v=1", r
        assert r.body == b"/cu|v=2", r
        assert origin.count("/cu") == 2

    def test_971_09_bug_lost_subscription_skips_the_purges_of_its_child(self, env_factory,
                                                                       redis, origin):
        """When a child's bus subscription drops, the bus thread calls went_down(), which
        makes every call of that child skip Redis for a second: a purge made on that server
        right then is "not sent" (and its misses fetch without the cluster lease), though
        Redis answers. Here every server's subscription is cut, as Redis does when a
        subscriber exceeds client-output-buffer-limit pubsub."""
        isr_env.expect_log(isr_env.ISR_WARN_LOG)
        zone = "rv09"
        a, b = cluster(env_factory, redis, zone, 2, "subcut", mpm_conf=ONE_CHILD)
        origin.set("/subcut", header="Surrogate-Key:subcut")
        warm(a, [b], "/subcut")
        killed = redis.command("CLIENT", "KILL", "TYPE", "pubsub")
        assert killed >= 2, killed
        time.sleep(0.1)   # the bus threads notice (poll every 250 ms at most)
        st, z, ans = purge(a, zone, tag="subcut")
        assert st == 200 and z is not None, ans
        assert isinstance(z.get("cluster_seq"), int), (
            "Redis answers, only the subscriptions were lost, yet A's purge was not sent: %r"
            % (ans,))

    def test_971_10_bug_catch_up_that_failed_is_never_retried(self, env_factory, redis,
                                                             origin):
        """B's bus is cut before A's purge, and Redis is slow for a moment while B reconnects:
        B's catch-up call times out and catch_up() gives up for good. Redis answers again,
        B's bus listens, yet B never applies the purge it missed (until some later operation
        happens to show a gap) and serves the purged answer."""
        isr_env.expect_log(isr_env.ISR_WARN_LOG)
        zone = "rv10"
        a, b = cluster(env_factory, redis, zone, 2, "retry", mpm_conf=ONE_CHILD)
        origin.set("/retry", header="Surrogate-Key:retry")
        warm(a, [b], "/retry")
        cut = time.monotonic()
        assert cut_bus(redis, b) >= 1
        st, z, ans = purge(a, zone, tag="retry")
        assert st == 200 and z is not None and isinstance(z.get("cluster_seq"), int), ans
        seq = z["cluster_seq"]
        # B reconnects about a second after it noticed; writes (scripts) wait meanwhile.
        time.sleep(max(0.0, 0.5 - (time.monotonic() - cut)))
        assert redis.command("CLIENT", "PAUSE", "2000", "WRITE") == b"OK"
        time.sleep(2.5)
        t = poll(lambda: tier(b, zone), lambda t: t["applied_seq"] >= seq, deadline=6,
                 interval=0.25)
        assert t["connected"] is True, t
        assert t["applied_seq"] >= seq, (
            "Redis answers and B listens again, but B never caught up operation %d: %r"
            % (seq, t))
        r = get(b, "/r/retry")
        assert r.status == 200 and r.body != b"/retry|v=1", r


# ---------------------------------------------------------------------------------- purges

class TestPurges:

    def test_971_02_bug_own_purge_undone_from_redis(self, env_factory, redis, origin):
        """A purge Redis did not take (here: writes paused for 600 ms, longer than
        redis_timeout) is "applied on this server only"; but the same server then takes the
        purged answer back from Redis, which still holds it, at its next miss."""
        isr_env.expect_log(isr_env.ISR_WARN_LOG)
        zone = "rv02"
        a, b = cluster(env_factory, redis, zone, 2, "undo", mpm_conf=ONE_CHILD)
        origin.set("/takedown", header="Surrogate-Key:takedown")
        warm(a, [b], "/takedown")
        assert redis.command("CLIENT", "PAUSE", "600", "WRITE") == b"OK"
        st, z, ans = purge(a, zone, tag="takedown")
        assert st == 200 and z is not None, ans
        assert z.get("cluster_seq") is None, ans   # told: not sent to the other servers
        time.sleep(2.0)   # the pause is over, and the second A skips Redis after a failure
        assert entry_keys(redis, zone, b"/takedown"), "precondition: Redis kept the entry"
        r = get(a, "/r/takedown")
        assert r.status == 200, r
        assert r.body != b"/takedown|v=1", (
            "the server that made the purge serves the purged answer again, taken back from "
            "Redis: %s (Cache-Status %s)" % (r, cache_status(r)))

    def test_971_03_bug_purge_lost_after_redis_closed_idle_connections(self, env_factory,
                                                                      redis, origin):
        """Redis closes idle clients (`timeout`, common in production). The next purge takes a
        pooled connection Redis has closed, fails, and is not sent to the other servers though
        Redis is up; the other server keeps serving the purged answer."""
        isr_env.expect_log(isr_env.ISR_WARN_LOG)
        zone = "rv03"
        a, b = cluster(env_factory, redis, zone, 2, "idle", mpm_conf=ONE_CHILD)
        origin.set("/idle", header="Surrogate-Key:idle")
        warm(a, [b], "/idle")
        redis.command("CONFIG", "SET", "timeout", "1")
        time.sleep(3.0)   # Redis closes the pooled (not the pub/sub) connections
        redis.command("CONFIG", "SET", "timeout", "0")
        st, z, ans = purge(a, zone, tag="idle")
        assert st == 200 and z is not None, ans
        assert isinstance(z.get("cluster_seq"), int), (
            "Redis is up, yet the purge was not sent to the cluster: %r" % (ans,))
        seq = z["cluster_seq"]
        t = poll(lambda: tier(b, zone), lambda t: t["applied_seq"] >= seq, deadline=3)
        assert t["applied_seq"] >= seq, t
        r = get(b, "/r/idle")
        assert r.status == 200 and r.body != b"/idle|v=1", r

    def test_971_04_bug_persisted_zone_misses_purges_made_while_stopped(self, env_factory,
                                                                       redis, origin):
        """A server with persist= is stopped; a purge is made on another server; the first
        one starts with its zone restored from the file. The purge is in the ops stream, yet
        the restarted server takes Redis's current sequence as "applied" on first contact and
        serves the purged answer from its restored zone."""
        zone = "rv04"

        def mkdir(e):
            d = os.path.join(e.root, "persist")
            os.makedirs(d, exist_ok=True)
            os.chmod(d, 0o777)

        a = make_server(env_factory, redis, zone, "persist-a",
                        zone_opts=" persist=@ROOT@/persist/rv04.zone", before=mkdir)
        isr_env.expect_log(r"ISR0058")   # no file yet at the first start (info, but declared)
        a.start()
        (b,) = cluster(env_factory, redis, zone, 1, "persist-b")
        wait_connected(a, zone)
        origin.set("/kept", header="Surrogate-Key:kept")
        warm(a, [b], "/kept")
        r = get(a, "/r/kept")
        assert (r.isr, r.body) == ("HIT", b"/kept|v=1"), r
        a.stop()
        assert os.path.isfile(os.path.join(a.root, "persist", "rv04.zone")), \
            "precondition: the zone was written at stop"
        st, z, ans = purge(b, zone, tag="kept")
        assert st == 200 and z is not None and isinstance(z.get("cluster_seq"), int), ans
        seq = z["cluster_seq"]
        # The restored zone is made stale at its first contact with Redis (it cannot know
        # what the cluster purged while it was down).
        isr_env.expect_log(r"ISR0075: zone rv04: restored from its persist= file")
        a.start()
        t = wait_connected(a, zone)
        t = poll(lambda: tier(a, zone), lambda t: t["applied_seq"] >= seq, deadline=5)
        assert t["applied_seq"] >= seq, t
        r = get(a, "/r/kept")
        assert r.status == 200, r
        assert not (r.isr == "HIT" and r.body == b"/kept|v=1"), (
            "purged by tag on B while A was stopped; A serves it from its restored zone: %s, "
            "status %r" % (r, t))

    def test_971_11_fetch_in_flight_during_a_purge_writes_nothing_back(self, env_factory,
                                                                      redis, origin):
        """B fetches a tagged key under the cluster lease (slow origin); A purges the tag
        meanwhile. B's answer goes to its own client, but neither Redis nor B's zone keeps
        it: C and B fetch anew."""
        zone = "rv11"
        a, b, c = cluster(env_factory, redis, zone, 3, "inflight")
        path = "/inflight"
        origin.set(path, header="Surrogate-Key:inflight", delay=1.5)
        before = tier(b, zone)
        out = {}

        def fetch():
            out["r"] = get(b, "/r" + path, timeout=20)

        t = threading.Thread(target=fetch, daemon=True)
        t.start()
        keys = poll(lambda: lease_keys(redis, zone, path.encode()), lambda k: len(k) > 0,
                    deadline=1.2, interval=0.05)
        assert keys, "B's lease not seen"
        st, z, ans = purge(a, zone, tag="inflight")
        assert st == 200 and z is not None and isinstance(z.get("cluster_seq"), int), ans
        t.join(20)
        r = out.get("r")
        assert r is not None and (r.status, r.body) == (200, (path + "|v=1").encode()), r
        after = poll(lambda: tier(b, zone), lambda x: x["put_refused"] > before["put_refused"],
                     deadline=3)
        assert after["put_refused"] == before["put_refused"] + 1, (before, after)
        assert not entry_keys(redis, zone, path.encode()), "the old answer went to Redis"
        origin.set(path, header="Surrogate-Key:inflight")
        r = get(c, "/r" + path)
        assert (r.status, r.body) == (200, (path + "|v=2").encode()), r
        r = get(b, "/r" + path)
        assert r.status == 200 and r.body != (path + "|v=1").encode(), r


# ---------------------------------------------------------------------------------- leases

class TestLeases:

    def test_971_05_bug_claim_timed_out_leaves_a_lease_others_wait_on(self, env_factory,
                                                                     redis, origin):
        """Redis stalls while A claims a cold key: A's call times out and A fetches alone, but
        Redis runs the claim once it answers again and keeps a lease nobody owns for the whole
        fetch time limit (10 s + margin). B's request for that key waits for it, then fetches."""
        isr_env.expect_log(isr_env.ISR_WARN_LOG)
        zone = "rv05"
        a, b = cluster(env_factory, redis, zone, 2, "orphan")
        path = "/orphan-k9"
        with redis_frozen(redis):
            r = get(a, "/r" + path, timeout=15)
            assert (r.status, r.body) == (200, (path + "|v=1").encode()), r
            assert r.elapsed < 5, r   # Redis stalled: A did not wait for it
        time.sleep(0.5)
        leases = lease_keys(redis, zone, path.encode())
        start = time.monotonic()
        r = get(b, "/r" + path, timeout=30)
        took = time.monotonic() - start
        assert r.status == 200 and r.body.startswith((path + "|v=").encode()), r
        assert took < 5, (
            "B waited %.1fs for a lease nobody holds (leases in Redis before B asked: %r)"
            % (took, leases))

    def test_971_06_frozen_redis_fails_no_request_and_waits_little(self, env_factory, redis,
                                                                  origin):
        """Redis does not answer for 2 s (stopped): hits, misses and a purge on both servers go
        on with right bodies, none waits on Redis for long; afterwards sharing comes back."""
        isr_env.expect_log(isr_env.ISR_WARN_LOG)
        zone = "rv06"
        a, b = cluster(env_factory, redis, zone, 2, "frozen")
        warm(a, [b], "/hot")
        out = []
        with redis_frozen(redis):
            t0 = time.monotonic()
            while time.monotonic() - t0 < 2.0 and len(out) < 200:
                for e in (a, b):
                    for p in ("/hot", "/cold-%d" % len(out)):
                        r = get(e, "/r" + p, timeout=10)
                        out.append((e.name, p, r))
            st, z, ans = purge(a, zone, key="nothing-here", timeout=10)
        assert out
        bad = [(n, p, r) for n, p, r in out
               if r.status != 200 or not r.body.startswith((p + "|v=").encode())
               or r.elapsed > 1.5]
        assert not bad, "\n".join("%s %s: %s" % x for x in bad[:20])
        hot = [r for n, p, r in out if p == "/hot"]
        assert all(r.isr == "HIT" and r.body == b"/hot|v=1" for r in hot), hot[:5]
        assert st in (200, 400, 404), ans
        # Back: a cold key is fetched once for both servers.
        time.sleep(1.5)
        origin.set("/after-freeze", delay=0.5)
        results = {}

        def one(e, i):
            results[(e.name, i)] = get(e, "/r/after-freeze", timeout=20)

        ths = [threading.Thread(target=one, args=(e, i), daemon=True)
               for e in (a, b) for i in range(3)]
        for t in ths:
            t.start()
        for t in ths:
            t.join(30)
        assert len(results) == 6 and all(
            r.status == 200 and r.body == b"/after-freeze|v=1" for r in results.values()), \
            results
        time.sleep(0.5)
        assert origin.count("/after-freeze") == 1, results


# ---------------------------------------------------------------------------------- garbage

REC_HEAD = 4 + 4 + 4 + 4 + 5 * 8 + 6 * 4


def junk_record(key_len, fetched_us):
    """Bytes that begin like a record (magic, version 1, a fetch time far ahead) and then
    do not parse (lengths that point past the end)."""
    b = bytearray(b"ISRT")
    b += struct.pack(">III", 1, 200, 0)
    b += struct.pack(">qqqqq", fetched_us, fetched_us + 10**12, fetched_us + 2 * 10**12, 0, 0)
    b += struct.pack(">IIIIII", key_len, 0xFFFFFF00, 5, 0, 0, 0)
    b += b"garbage"
    return bytes(b)


class TestGarbage:

    @pytest.mark.parametrize("kind", ["magic-junk", "random", "truncated", "other-key"])
    def test_971_07_garbage_entry_never_served(self, env_factory, redis, origin, kind):
        isr_env.expect_log(isr_env.ISR_WARN_LOG)
        zone = "rv07"
        a, b = cluster(env_factory, redis, zone, 2, "junk-" + kind)
        path = "/junk-" + kind
        r = get(a, "/r" + path)
        assert (r.status, r.isr) == (200, "MISS"), r
        keys = entry_keys(redis, zone, path.encode())
        assert len(keys) == 1, redis.scan("isr:*")
        k = keys[0]
        good = redis.command("GET", k)
        assert good.startswith(b"ISRT"), good[:16]
        ckey_len = len(k) - (k.index(b":e:") + 3)
        now_us = int(time.time() * 1e6)
        if kind == "magic-junk":
            bad = junk_record(ckey_len, now_us + 3600 * 10**6)
        elif kind == "random":
            bad = os.urandom(300)
        elif kind == "truncated":
            bad = good[:len(good) // 2]
        else:
            # A well-formed record of another key (the other key's bytes, same length).
            other = bytearray(good)
            other[REC_HEAD] ^= 0x01
            bad = bytes(other)
        assert redis.command("SET", k, bad) == b"OK"
        r = get(b, "/r" + path)
        assert r.status == 200 and r.body.startswith((path + "|v=").encode()), r
        assert "detail=redis" not in cache_status(r), r
        r2 = get(b, "/r" + path)
        assert r2.status == 200 and r2.body == r.body, (r, r2)

    def test_971_08_bug_garbage_entry_is_never_replaced(self, env_factory, redis, origin):
        """An entry in Redis that starts like a record but does not parse is skipped by every
        server, which then fetches alone and without the lease, so nobody writes a good one:
        the key is never shared again (one origin fetch per server), and each lookup logs a
        warning."""
        isr_env.expect_log(isr_env.ISR_WARN_LOG)
        zone = "rv08"
        a, b, c = cluster(env_factory, redis, zone, 3, "stuck")
        path = "/stuck-junk"
        r = get(a, "/r" + path)
        assert (r.status, r.isr) == (200, "MISS"), r
        (k,) = entry_keys(redis, zone, path.encode())
        ckey_len = len(k) - (k.index(b":e:") + 3)
        junk = junk_record(ckey_len, int(time.time() * 1e6) + 3600 * 10**6)
        assert redis.command("SET", k, junk) == b"OK"
        assert origin.count(path) == 1
        r = get(b, "/r" + path)
        assert r.status == 200 and r.body.startswith((path + "|v=").encode()), r
        assert origin.count(path) == 2
        time.sleep(0.3)
        r = get(c, "/r" + path)
        assert r.status == 200 and r.body.startswith((path + "|v=").encode()), r
        assert origin.count(path) == 2, (
            "the garbage entry stayed in Redis (%r...): C fetched again"
            % (redis.command("GET", k) or b"")[:8])
