"""Issue 12, many servers, one cache: a zone with redis=URL shares Redis as its second tier.

Several httpd servers (each its own HttpdEnv: ServerRoot, port) whose zones name the same Redis
and the same zone NAME: a local miss looks in Redis before the origin, what one stores the others
find (HIT, Cache-Status detail=redis); a cold key or a stale key makes one origin fetch across
the cluster (a lease in Redis, waiters woken by pub/sub); purges made on one server reach every
server (status: applied_seq = the purge's cluster_seq); Redis killed fails no request and
sharing comes back when it does; a write under a lost lease is refused (fencing).

The servers stand for the members of a cluster behind one load balancer: they have the same
ServerName and are asked with the same Host (both are part of the cache key, as
X-Forwarded-Host and X-Forwarded-Server are told to the backend). One origin process serves
them all; its per-key counters say how many fetches the cluster made.
"""

import json
import threading
import time
import urllib.parse

import pytest

import isr_env
from isr_env import cache_status
from redis_env import RedisServer, redis_available

HOST = "cluster.example"
# What clients send through the load balancer: the port (the scheme's default) is left out
# of the key either way, whatever port each server listens on.
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

TIER_FIELDS = ("connected", "applied_seq", "gets", "found", "puts", "put_refused", "leases",
               "lease_busy", "waits", "errors", "ops_sent", "ops_applied", "catch_ups",
               "made_stale")


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
    """The module's redis-server, running (a test that killed it may have left it down)
    and empty."""
    if not redis_server.running():
        redis_server.start()
    redis_server.command("FLUSHALL")
    yield redis_server


# ---------------------------------------------------------------------------------- helpers

def cluster(env_factory, redis, zone, n, name, zone_opts="", connected=True):
    """n servers sharing zone `zone` through `redis`, started; with connected, wait (at most
    10 s) until each one's status says its tier is connected."""
    out = []
    for i in range(n):
        e = env_factory("%s-%d" % (name, i),
                        conf=CONF % {"host": HOST, "zone": zone, "port": redis.port,
                                     "zone_opts": zone_opts})
        e.start()
        out.append(e)
    if connected:
        for e in out:
            got = poll(lambda e=e: tier(e, zone), lambda t: t.get("connected") is True,
                       deadline=10)
            assert got.get("connected") is True, "%s: tier not connected: %r" % (e.name, got)
    return out


def get(e, path, **kw):
    """GET as a member of the cluster is asked (the load balancer's Host)."""
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


def purge(e, zone, op="purge", **params):
    """POST <admin>/op; (HTTP status, the answer's entry for zone (or None), whole answer)."""
    body = urllib.parse.urlencode(params, doseq=True).encode()
    r = e.post("/isr-admin/" + op, body=body)
    try:
        a = json.loads(r.body)
    except ValueError:
        return r.status, None, r.body
    zs = [z for z in a.get("zones", []) if z.get("zone") == zone]
    return r.status, (zs[0] if zs else None), a


def poll(fetch, cond, deadline=10.0, interval=0.1):
    """Call fetch() until cond(value) or deadline seconds passed; the last value."""
    end = time.monotonic() + deadline
    v = fetch()
    while not cond(v) and time.monotonic() < end:
        time.sleep(interval)
        v = fetch()
    return v


def at_once(reqs, timeout=20.0, total_deadline=60.0):
    """reqs: [(env, path)]; every GET started at the same moment (one barrier across all
    servers); the Responses in the order of reqs (None for a thread that did not finish)."""
    results = [None] * len(reqs)
    barrier = threading.Barrier(len(reqs))

    def run(i, e, p):
        try:
            barrier.wait(10)
        except threading.BrokenBarrierError:
            pass
        results[i] = get(e, p, timeout=timeout)

    threads = [threading.Thread(target=run, args=(i, e, p), daemon=True)
               for i, (e, p) in enumerate(reqs)]
    for t in threads:
        t.start()
    end = time.monotonic() + total_deadline
    for t in threads:
        t.join(max(0.0, end - time.monotonic()))
    return results


def show(rs):
    return "\n".join(str(r) for r in rs)


def lease_keys(redis, zone, needle):
    """The lease keys of zone whose cache key holds needle (bytes)."""
    prefix = ("isr:{%s}:l:" % zone).encode()
    return [k for k in redis.scan("isr:*") if k.startswith(prefix) and needle in k]


# ---------------------------------------------------------------------------------- config

BAD = [
    ("scheme-http", "redis=http://127.0.0.1:6379/0", "http://127.0.0.1:6379/0"),
    ("scheme-rediss", "redis=rediss://127.0.0.1:6379", "rediss://127.0.0.1:6379"),
    ("no-port", "redis=redis://127.0.0.1", "redis://127.0.0.1"),
    ("no-port-db", "redis=redis://127.0.0.1/0", "redis://127.0.0.1/0"),
    ("empty-port", "redis=redis://127.0.0.1:/0", "redis://127.0.0.1:/0"),
    ("port-0", "redis=redis://127.0.0.1:0", "redis://127.0.0.1:0"),
    ("port-65536", "redis=redis://127.0.0.1:65536", "redis://127.0.0.1:65536"),
    ("port-word", "redis=redis://127.0.0.1:abc", "redis://127.0.0.1:abc"),
    ("db-word", "redis=redis://127.0.0.1:6379/x", "redis://127.0.0.1:6379/x"),
    ("db-mixed", "redis=redis://127.0.0.1:6379/1x", "redis://127.0.0.1:6379/1x"),
    ("empty-url", "redis=", "redis"),   # the value is empty: the message says what is missing
    ("timeout-word", "redis=redis://127.0.0.1:6379 redis_timeout=soon", "redis_timeout=soon"),
    ("timeout-unit", "redis=redis://127.0.0.1:6379/0 redis_timeout=5parsecs",
     "redis_timeout=5parsecs"),
    ("timeout-negative", "redis=redis://127.0.0.1:6379/0 redis_timeout=-5ms",
     "redis_timeout=-5ms"),
    ("timeout-alone", "redis_timeout=100ms", "redis_timeout=100ms"),
]

GOOD = [
    ("plain", "redis=redis://127.0.0.1:%(port)d"),
    ("db", "redis=redis://127.0.0.1:%(port)d/0"),
    ("db-and-timeout", "redis=redis://127.0.0.1:%(port)d/3 redis_timeout=500ms"),
    ("password", "redis=redis://:s3cret@127.0.0.1:%(port)d/1 redis_timeout=2s"),
    ("hostname-port-65535", "redis=redis://localhost:65535/0"),
]


class TestConfig:

    @pytest.mark.parametrize("opts,value", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
    def test_970_01_bad_redis_options_refused(self, env_factory, origin, opts, value):
        e = env_factory("redis-conf-bad")
        rc, out = e.configtest("ISRCacheZone rzc 2M %s\n" % opts)
        assert rc != 0, "config accepted: %s\n%s" % (opts, out)
        assert "Syntax OK" not in out, out
        assert "ISRCacheZone" in out, out
        assert value in out, "the message does not name %r:\n%s" % (value, out)

    @pytest.mark.parametrize("opts", [g[1] for g in GOOD], ids=[g[0] for g in GOOD])
    def test_970_01_good_redis_options_accepted(self, env_factory, origin, opts):
        # Nothing listens on the port (a free one): -t does not need the Redis.
        e = env_factory("redis-conf-good")
        body = ("ISRCacheZone rzc 2M %s\n<Location /r/>\n    ISRBackend %s/\n"
                "    ISRCache rzc\n</Location>\n" % (opts % {"port": isr_env.free_port()},
                                                      origin.url))
        rc, out = e.configtest(body)
        assert rc == 0 and "Syntax OK" in out, "config refused: %s\n%s" % (opts, out)


# ---------------------------------------------------------------------------------- sharing

class TestSharing:

    def test_970_02_cold_herd_across_servers_one_fetch(self, env_factory, redis, origin):
        zone = "rz02"
        es = cluster(env_factory, redis, zone, 3, "herd")
        origin.set("/herd", delay=1)
        rs = at_once([(e, "/r/herd") for e in es for _ in range(5)])
        assert all(r is not None for r in rs), show(rs)
        for r in rs:
            assert (r.status, r.body) == (200, b"/herd|v=1"), show(rs)
            assert r.elapsed < 10, show(rs)   # woken, not left to a long timeout
        time.sleep(1.0)   # a second fetch, had one started, would be counted by now
        n = origin.count("/herd")
        assert n == 1, "%d origin fetches for one cold key on 3 servers:\n%s\n%s" % (
            n, show(rs), "\n".join("%s: %r" % (e.name, tier(e, zone)) for e in es))
        # Every server has it now: hits, no fetch.
        for e in es:
            r = get(e, "/r/herd")
            assert (r.status, r.isr, r.body) == (200, "HIT", b"/herd|v=1"), (e.name, r)
        assert origin.count("/herd") == 1

    def test_970_03_stale_key_one_refresh_across_servers(self, env_factory, redis, origin):
        zone = "rz03"
        es = cluster(env_factory, redis, zone, 3, "swr")
        a, b, c = es
        origin.set("/swr", cc="max-age=1, stale-while-revalidate=3600")
        r = get(a, "/r/swr")
        assert (r.status, r.isr, r.body) == (200, "MISS", b"/swr|v=1"), r
        for e in (b, c):
            r = get(e, "/r/swr")
            assert (r.status, r.isr, r.body) == (200, "HIT", b"/swr|v=1"), (e.name, r)
            assert "detail=redis" in cache_status(r), (e.name, r)
        assert origin.count("/swr") == 1
        time.sleep(1.6)   # stale everywhere now (one entry, one expiry)
        # The refreshed answer stays fresh, and takes a while to come.
        origin.set("/swr", cc="max-age=3600, stale-while-revalidate=3600", delay=1.5)
        rs = at_once([(e, "/r/swr") for e in es for _ in range(3)])
        assert all(r is not None for r in rs), show(rs)
        for r in rs:
            assert (r.status, r.isr, r.body) == (200, "STALE", b"/swr|v=1"), show(rs)
            assert r.elapsed < 1.2, show(rs)   # stale answers do not wait for the refresh
        for e in es:
            r = poll(lambda e=e: get(e, "/r/swr"), lambda x: x.body != b"/swr|v=1",
                     deadline=10, interval=0.2)
            assert (r.status, r.body) == (200, b"/swr|v=2"), (e.name, r)
        time.sleep(1.0)
        n = origin.count("/swr")
        assert n == 2, "%d origin fetches (1 + %d refreshes) for one expiry on 3 servers\n%s" % (
            n, n - 1, "\n".join("%s: %r" % (e.name, tier(e, zone)) for e in es))
        for e in es:
            r = get(e, "/r/swr")
            assert (r.status, r.isr, r.body) == (200, "HIT", b"/swr|v=2"), (e.name, r)
        assert origin.count("/swr") == 2

    def test_970_04_late_server_answers_from_redis(self, env_factory, redis, origin):
        zone = "rz04"
        (a,) = cluster(env_factory, redis, zone, 1, "early")
        r = get(a, "/r/late")
        assert (r.status, r.isr, r.body) == (200, "MISS", b"/late|v=1"), r
        # Started after the key was warmed: an empty first tier.
        (late,) = cluster(env_factory, redis, zone, 1, "late")
        before = tier(late, zone)
        assert set(TIER_FIELDS) <= set(before), before
        r = get(late, "/r/late")
        assert (r.status, r.isr, r.body) == (200, "HIT", b"/late|v=1"), r
        assert "detail=redis" in cache_status(r), r
        assert origin.count("/late") == 1
        # Backfilled into its own first tier.
        r = get(late, "/r/late")
        assert (r.status, r.isr, r.body) == (200, "HIT", b"/late|v=1"), r
        assert "detail=redis" not in cache_status(r), r
        assert origin.count("/late") == 1
        after = tier(late, zone)
        assert after["found"] == before["found"] + 1, (before, after)
        assert after["gets"] >= before["gets"] + 1, (before, after)
        assert tier(a, zone)["puts"] >= 1

    def test_970_05_purge_by_tag_reaches_every_server(self, env_factory, redis, origin):
        zone = "rz05"
        es = cluster(env_factory, redis, zone, 3, "purge")
        a, b, c = es
        origin.set("/blue", header="Surrogate-Key:blue")
        origin.set("/green", header="Surrogate-Key:green")
        for p in ("/blue", "/green"):
            r = get(a, "/r" + p)
            assert (r.isr, r.body) == ("MISS", (p + "|v=1").encode()), r
            for e in (b, c):
                r = get(e, "/r" + p)
                assert (r.isr, r.body) == ("HIT", (p + "|v=1").encode()), (e.name, r)
                assert "detail=redis" in cache_status(r), (e.name, r)
                assert get(e, "/r" + p).isr == "HIT"
        assert origin.count("/blue") == origin.count("/green") == 1
        st, z, ans = purge(a, zone, tag="blue")
        assert st == 200 and z is not None, ans
        seq = z.get("cluster_seq")
        assert isinstance(seq, int) and seq > 0, ans
        for e in es:
            t = poll(lambda e=e: tier(e, zone), lambda t: t["applied_seq"] == seq, deadline=3)
            assert t["applied_seq"] == seq, (e.name, seq, t)
        # B's copy is gone: it fetches; the new answer went to Redis, where C and A find it.
        r = get(b, "/r/blue")
        assert (r.status, r.isr, r.body) == (200, "MISS", b"/blue|v=2"), r
        assert origin.count("/blue") == 2
        time.sleep(0.3)
        for e in (c, a):
            r = get(e, "/r/blue")
            assert (r.status, r.body) == (200, b"/blue|v=2"), (e.name, r)
        assert origin.count("/blue") == 2
        # Untagged by blue: untouched everywhere.
        for e in es:
            r = get(e, "/r/green")
            assert (r.isr, r.body) == ("HIT", b"/green|v=1"), (e.name, r)
        assert origin.count("/green") == 1
        # The next operation, from another server, has the next cluster-wide number.
        st, z2, ans2 = purge(c, zone, prefix="/r/green")
        assert st == 200 and z2 is not None, ans2
        seq2 = z2.get("cluster_seq")
        assert isinstance(seq2, int) and seq2 > seq, (ans, ans2)
        for e in es:
            t = poll(lambda e=e: tier(e, zone), lambda t: t["applied_seq"] == seq2, deadline=3)
            assert t["applied_seq"] == seq2, (e.name, seq2, t)
        r = get(a, "/r/green")
        assert (r.status, r.body) == (200, b"/green|v=2"), r

    def test_970_08_revalidate_by_tag_reaches_every_server(self, env_factory, redis, origin):
        """A revalidation made on one server: every server serves the old answer as STALE
        at once, and the cluster makes one refresh for it."""
        zone = "rz08"
        es = cluster(env_factory, redis, zone, 3, "reval")
        a, b, c = es
        origin.set("/soft", header="Surrogate-Key:soft")
        r = get(a, "/r/soft")
        assert (r.isr, r.body) == ("MISS", b"/soft|v=1"), r
        for e in (b, c):
            r = get(e, "/r/soft")
            assert (r.isr, r.body) == ("HIT", b"/soft|v=1"), (e.name, r)
        st, z, ans = purge(b, zone, op="revalidate", tag="soft")
        assert st == 200 and z is not None, ans
        seq = z.get("cluster_seq")
        assert isinstance(seq, int) and seq > 0, ans
        for e in es:
            t = poll(lambda e=e: tier(e, zone), lambda t: t["applied_seq"] == seq, deadline=3)
            assert t["applied_seq"] == seq, (e.name, seq, t)
        origin.set("/soft", header="Surrogate-Key:soft", delay=1.5)
        rs = at_once([(e, "/r/soft") for e in es for _ in range(2)])
        assert all(r is not None for r in rs), show(rs)
        for r in rs:
            assert (r.status, r.isr, r.body) == (200, "STALE", b"/soft|v=1"), show(rs)
            assert r.elapsed < 1.2, show(rs)
        for e in es:
            r = poll(lambda e=e: get(e, "/r/soft"), lambda x: x.body != b"/soft|v=1",
                     deadline=10, interval=0.2)
            assert (r.status, r.body) == (200, b"/soft|v=2"), (e.name, r)
        time.sleep(1.0)
        n = origin.count("/soft")
        assert n == 2, "%d origin fetches: %d refreshes for one revalidation\n%s" % (
            n, n - 1, "\n".join("%s: %r" % (e.name, tier(e, zone)) for e in es))


# ---------------------------------------------------------------------------------- failures

class TestFailures:

    def test_970_06_redis_killed_then_restarted(self, env_factory, redis, origin):
        isr_env.expect_log(isr_env.ISR_WARN_LOG)
        zone = "rz06"
        es = cluster(env_factory, redis, zone, 2, "kill")
        a, b = es
        origin.set("/down-tag", header="Surrogate-Key:down")
        r = get(a, "/r/warm")
        assert (r.isr, r.body) == ("MISS", b"/warm|v=1"), r
        r = get(b, "/r/warm")
        assert (r.isr, r.body) == ("HIT", b"/warm|v=1"), r
        assert get(a, "/r/down-tag").status == 200
        marks = [e.log_mark() for e in es]

        results = []
        lock = threading.Lock()
        stop = threading.Event()

        def worker(e, wid):
            for n in range(300):
                if stop.is_set():
                    return
                path = "/r/warm" if n % 2 == 0 else "/r/cold-%d-%d" % (wid, n)
                r = get(e, path, timeout=10)
                with lock:
                    results.append((e.name, path, time.monotonic(), r))
                time.sleep(0.01)

        threads = [threading.Thread(target=worker, args=(e, i), daemon=True)
                   for i, e in enumerate([a, b, a, b])]
        for t in threads:
            t.start()
        time.sleep(1.0)
        redis.kill()
        killed = time.monotonic()
        time.sleep(1.0)
        # A purge while Redis is down: applied here, without a cluster sequence.
        st, z, ans = purge(a, zone, tag="down")
        assert st == 200 and z is not None, ans
        assert z.get("cluster_seq") is None, ans
        time.sleep(1.0)
        stop.set()
        for t in threads:
            t.join(30)
        assert not any(t.is_alive() for t in threads), "requests hang with Redis down"

        def wrong(name, path, r):
            want = path[len("/r"):] + "|v="
            return r.status != 200 or not r.text.startswith(want) or r.elapsed > 5

        bad = [x for x in results if wrong(x[0], x[1], x[3])]
        assert not bad, "\n".join("%s %s: %s" % (x[0], x[1], x[3]) for x in bad)
        after = [x for x in results if x[2] > killed]
        assert len(after) >= 20, "only %d requests ran while Redis was down" % len(after)
        assert {x[0] for x in after} == {a.name, b.name}
        assert [x for x in after if x[1].startswith("/r/cold-")], after
        r = get(a, "/r/down-tag")
        assert (r.status, r.isr, r.body) == (200, "MISS", b"/down-tag|v=2"), r
        # Said in the log (a tagged warning) and in the status.
        for e, m in zip(es, marks):
            assert e.wait_log(isr_env.ISR_WARN_LOG, since=m, deadline=5), \
                "%s: no warning about the lost Redis:\n%s" % (e.name, e.log_dump(m))
            t = poll(lambda e=e: tier(e, zone), lambda t: t["connected"] is False, deadline=5)
            assert t["connected"] is False, (e.name, t)
            assert t["errors"] >= 1, (e.name, t)
        # Single flight falls back to each server on its own.
        origin.set("/down-herd", delay=0.5)
        rs = at_once([(e, "/r/down-herd") for e in es for _ in range(3)])
        assert all(r is not None and r.status == 200 and r.body.startswith(b"/down-herd|v=")
                   for r in rs), show(rs)
        time.sleep(0.5)
        assert 1 <= origin.count("/down-herd") <= 2, show(rs)

        # Redis back on the same port: the servers find it on their own.
        redis.start()
        for e in es:
            t = poll(lambda e=e: tier(e, zone), lambda t: t["connected"] is True, deadline=10,
                     interval=0.25)
            assert t["connected"] is True, (e.name, t)
        origin.set("/after", delay=0.5)
        rs = at_once([(e, "/r/after") for e in es for _ in range(3)])
        assert all(r is not None for r in rs), show(rs)
        for r in rs:
            assert (r.status, r.body) == (200, b"/after|v=1"), show(rs)
        time.sleep(1.0)
        n = origin.count("/after")
        assert n == 1, "%d fetches for a cold key on 2 servers after Redis came back\n%s" % (
            n, show(rs))

    def test_970_07_write_under_a_lost_lease_is_refused(self, env_factory, redis, origin):
        zone = "rz07"
        a, b = cluster(env_factory, redis, zone, 2, "fence")
        path = "/fenced-xq7"
        origin.set(path, delay=2.5)
        before = tier(a, zone)
        out = {}

        def fetch():
            out["r"] = get(a, "/r" + path, timeout=20)

        t = threading.Thread(target=fetch, daemon=True)
        t.start()
        keys = poll(lambda: lease_keys(redis, zone, path.encode()), lambda k: len(k) > 0,
                    deadline=2.0, interval=0.05)
        assert len(keys) == 1, "lease key of %s not found (keys: %r)" % (
            path, redis.scan("isr:*"))
        lease = keys[0]
        token = redis.command("GET", lease)
        assert token is not None and token.isdigit(), (lease, token)
        # Someone else's lease now (what an expiry and another server's SET NX would leave).
        assert redis.command("DEL", lease) == 1
        other = str(int(token) + 1000003).encode()
        assert redis.command("SET", lease, other, "PX", 30000) == b"OK"
        t.join(20)
        r = out.get("r")
        assert r is not None, "the fetch on A did not finish"
        assert (r.status, r.body) == (200, (path + "|v=1").encode()), r
        after = poll(lambda: tier(a, zone), lambda x: x["put_refused"] > before["put_refused"],
                     deadline=3)
        assert after["put_refused"] == before["put_refused"] + 1, (before, after)
        # A leaves the lease it does not own alone.
        assert redis.command("GET", lease) == other
        # The other owner goes away without writing: B finds nothing in Redis, fetches.
        redis.command("DEL", lease)
        origin.set(path)
        r = get(b, "/r" + path)
        assert (r.status, r.isr, r.body) == (200, "MISS", (path + "|v=2").encode()), r
        assert "detail=redis" not in cache_status(r), r
        assert origin.count(path) == 2
