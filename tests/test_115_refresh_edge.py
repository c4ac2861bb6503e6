"""Refreshes that cannot be stored, and refreshes that wait in the queue past their lease, still
make one backend fetch per expiry (found in review)."""

import time

import isr_env


class TestRefreshNotStored:
    CONF = """
ISRCacheZone zsmall 1M
<Location /zs/>
    ISRBackend @ORIGIN@/
    ISRCache zsmall
    ISRCacheTTL 1s
    ISRStaleTTL 1h
    ISRRefreshRetry 30s
</Location>
"""

    def test_115_01_too_large_for_the_zone(self, env, origin):
        # The new version fits ISRMaxObjectSize (1M) but not the 1M zone's ring: the refresh
        # fetches it once, cannot store it, and drops the stale entry; from then on the key is
        # served like any answer too large to store (fetched per request, never the old
        # version for the rest of the stale window).
        isr_env.expect_log(isr_env.ISR_WARN_LOG)
        assert env.get("/zs/big").isr == "MISS"
        origin.set("/big", size=700000)
        time.sleep(1.2)
        r = env.get("/zs/big")
        assert (r.status, r.isr, r.body) == (200, "STALE", b"/big|v=1"), r
        assert origin.wait_count("/big", 2, timeout=5) >= 2
        end = time.monotonic() + 5
        while time.monotonic() < end and r.isr == "STALE":
            r = env.get("/zs/big")
            time.sleep(0.05)
        assert (r.status, r.isr, len(r.body)) == (200, "MISS", 700000), r
        before = origin.count("/big")
        for _ in range(5):
            r = env.get("/zs/big")
            assert (r.status, r.isr, len(r.body)) == (200, "MISS", 700000), r
        assert origin.count("/big") == before + 5


class TestRefreshQueue:
    MPM_CONF = {"StartServers": 1, "ServerLimit": 1, "MaxRequestWorkers": 25,
                "MinSpareThreads": 1, "MaxSpareThreads": 25, "ThreadsPerChild": 25}
    CONF = """
ISRRefreshThreads 1
<Location /rq/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 1s
    ISRStaleTTL 1h
    ISRTimeout 1s
</Location>
"""

    def test_115_02_queued_past_the_lease(self, env, origin):
        # One refresh thread, 8 stale keys whose refresh takes 0.9 s each: the last ones wait
        # in the queue longer than their lease (ISRTimeout + 2 s) and are claimed again; only
        # the holder of the lease may fetch.
        keys = ["/k%d" % i for i in range(8)]
        for k in keys:
            assert env.get("/rq" + k).isr == "MISS"
            origin.set(k, delay=0.9)
        time.sleep(1.2)
        done, end = set(), time.monotonic() + 20
        while time.monotonic() < end and len(done) < len(keys):
            for k in keys:
                if k not in done and env.get("/rq" + k).body != (k + "|v=1").encode():
                    done.add(k)
            time.sleep(0.3)
        assert len(done) == len(keys), done
        time.sleep(4)
        counts = [origin.count(k) for k in keys]
        assert counts == [2] * len(keys), counts
