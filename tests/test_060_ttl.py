"""ISRCacheTTL and ISRStaleTTL (including 0: no stale serving)."""

import time


class TestTTL:
    CONF = """
<Location /t0/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 1s
    ISRStaleTTL 0
</Location>
<Location /t1/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 1500ms
    ISRStaleTTL 1s
</Location>
<Location /tdef/>
    ISRBackend @ORIGIN@/
</Location>
"""

    def test_060_01_fresh_within_ttl(self, env, origin):
        assert env.get("/t1/a").isr == "MISS"
        t0 = time.monotonic()
        while time.monotonic() - t0 < 0.8:
            r = env.get("/t1/a")
            assert (r.isr, r.body) == ("HIT", b"/a|v=1"), r
            time.sleep(0.1)
        assert origin.count("/a") == 1

    def test_060_02_expired_is_stale_within_window(self, env, origin):
        env.get("/t1/b")
        time.sleep(1.7)
        r = env.get("/t1/b")
        assert (r.isr, r.body) == ("STALE", b"/b|v=1"), r
        r = env.wait_status("/t1/b", lambda x: x.body == b"/b|v=2", deadline=5)
        assert r.body == b"/b|v=2", r

    def test_060_03_past_window_is_miss(self, env, origin):
        env.get("/t1/c")
        time.sleep(2.8)  # 1.5s TTL + 1s stale window
        r = env.get("/t1/c")
        assert (r.isr, r.body) == ("MISS", b"/c|v=2"), r

    def test_060_04_stale_ttl_zero(self, env, origin):
        assert env.get("/t0/d").body == b"/d|v=1"
        assert env.get("/t0/d").isr == "HIT"
        time.sleep(1.2)
        r = env.get("/t0/d")
        assert (r.status, r.isr, r.body) == (200, "MISS", b"/d|v=2"), r
        assert origin.count("/d") == 2

    def test_060_05_default_ttl_is_long(self, env, origin):
        env.get("/tdef/e")
        time.sleep(1.2)
        r = env.get("/tdef/e")
        assert (r.isr, r.body) == ("HIT", b"/e|v=1"), r
        assert int(r.headers.get("Age", "-1")) >= 1, r
