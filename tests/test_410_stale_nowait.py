"""STALE is answered at once while one background refresh (across all children) talks to a
slow origin; the refresh does not hold the client connection."""

import time


class TestStaleNoWait:
    MPM = "prefork"
    MPM_CONF = {"StartServers": 8, "MinSpareServers": 8, "MaxSpareServers": 16}
    CONF = """
<Location /sw/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 1s
    ISRStaleTTL 1h
    ISRTimeout 10s
</Location>
"""

    def test_410_01_twenty_stale_one_refresh(self, env, origin):
        assert len(env.wait_children(4)) >= 2
        assert env.get("/sw/a").body == b"/a|v=1"
        origin.set("/a", delay=3)
        time.sleep(1.2)
        rs = env.concurrent_get(["/sw/a"] * 20, timeout=20)
        assert all(r.status == 200 for r in rs), [str(r) for r in rs]
        assert {(r.isr, r.body) for r in rs} == {("STALE", b"/a|v=1")}, [str(r) for r in rs]
        assert max(r.elapsed for r in rs) < 1.5, sorted(r.elapsed for r in rs)
        assert origin.wait_count("/a", 2, timeout=3) == 2
        r = env.wait_status("/sw/a", lambda x: x.body == b"/a|v=2", deadline=8, interval=0.2)
        assert (r.isr, r.body) == ("HIT", b"/a|v=2"), r
        assert origin.count("/a") == 2

    def test_410_02_keepalive_connection_not_held(self, env, origin):
        assert env.get("/sw/b").body == b"/b|v=1"
        origin.set("/b", delay=3)
        time.sleep(1.2)
        conn = env.connection()
        try:
            for _ in range(3):
                r = env.request("/sw/b", conn=conn)
                assert (r.isr, r.body) == ("STALE", b"/b|v=1"), r
                assert r.elapsed < 1.5, r
        finally:
            conn.close()
        r = env.wait_status("/sw/b", lambda x: x.body == b"/b|v=2", deadline=8, interval=0.2)
        assert r.body == b"/b|v=2", r
        assert origin.count("/b") == 2
