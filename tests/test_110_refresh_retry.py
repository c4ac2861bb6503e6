"""A failed background refresh keeps the stale entry; the next try waits ISRRefreshRetry."""

import time

import isr_env


class TestRefreshRetry:
    CONF = """
<Location /rt/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 1s
    ISRStaleTTL 1h
    ISRTimeout 1s
    ISRRefreshRetry 3s
</Location>
<Location /rr/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 1s
    ISRStaleTTL 1h
    ISRRefreshRetry 3s
</Location>
"""

    def test_110_01_failed_refresh_keeps_stale(self, env, origin):
        isr_env.expect_log(isr_env.ISR_WARN_LOG)
        assert env.get("/rr/a").body == b"/a|v=1"
        origin.set("/a", status=500)
        time.sleep(1.2)
        # ~2s of requests inside the retry window: all STALE v=1, one refresh attempt
        t0 = time.monotonic()
        first_fail = None
        while time.monotonic() - t0 < 2.0:
            r = env.get("/rr/a")
            assert (r.status, r.isr, r.body) == (200, "STALE", b"/a|v=1"), r
            if first_fail is None and origin.count("/a") >= 2:
                first_fail = time.monotonic()
            time.sleep(0.1)
        assert origin.count("/a") == 2, "refresh tried %d times within the retry window" \
            % (origin.count("/a") - 1)
        # backend healthy again: the retry (not before 3s after the failure) lands v=3
        origin.set("/a")
        r = env.wait_status("/rr/a", lambda x: x.body == b"/a|v=3", deadline=8, interval=0.2)
        assert (r.status, r.body) == (200, b"/a|v=3"), r
        assert first_fail is not None
        assert time.monotonic() - first_fail >= 2.5
        r = env.get("/rr/a")
        assert (r.isr, r.body) == ("HIT", b"/a|v=3"), r
        assert origin.count("/a") == 3

    def test_110_02_refresh_getting_404_replaces_entry(self, env, origin):
        # 404 is a value, not a failure: a refresh that gets 404 replaces the entry
        assert env.get("/rr/b").body == b"/b|v=1"
        origin.set("/b", status=404)
        time.sleep(1.2)
        assert env.get("/rr/b").body == b"/b|v=1"
        r = env.wait_status("/rr/b", lambda x: x.status == 404, deadline=5)
        assert (r.status, r.body) == (404, b"/b|v=2"), r

    def test_110_03_refresh_timeout_keeps_stale(self, env, origin):
        isr_env.expect_log(isr_env.ISR_WARN_LOG)
        assert env.get("/rt/c").body == b"/c|v=1"
        origin.set("/c", delay=3)
        time.sleep(1.2)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2.0:
            r = env.get("/rt/c")
            assert (r.status, r.isr, r.body) == (200, "STALE", b"/c|v=1"), r
            assert r.elapsed < 0.8, r
            time.sleep(0.1)
        assert origin.count("/c") == 2
        origin.set("/c")
        r = env.wait_status("/rt/c", lambda x: x.body == b"/c|v=3", deadline=8, interval=0.2)
        assert (r.status, r.body) == (200, b"/c|v=3"), r
