"""The behaviour table of README.md, row by row (event MPM)."""

import re
import time

import isr_env

ANY_ISR_LOG = isr_env.ISR_WARN_LOG


class TestBehaviour:
    CONF = """
<Location /app/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 1s
    ISRStaleTTL 1h
</Location>
<Location /short/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 1s
    ISRStaleTTL 1s
</Location>
<Location /down/>
    ISRBackend http://127.0.0.1:1/
    ISRConnectTimeout 1s
    ISRTimeout 2s
</Location>
"""

    def test_010_01_miss_then_hit(self, env, origin):
        r = env.get("/app/b01")
        assert r.status == 200, r
        assert r.isr == "MISS", r
        assert r.body == b"/b01|v=1"
        r = env.get("/app/b01")
        assert (r.status, r.isr, r.body) == (200, "HIT", b"/b01|v=1"), r
        assert origin.count("/b01") == 1

    def test_010_02_hit_has_age(self, env, origin):
        env.get("/app/b02")
        r = env.get("/app/b02")
        assert r.isr == "HIT", r
        assert "Age" in r.headers, r
        assert re.fullmatch(r"\d+", r.headers["Age"]), r
        assert 0 <= int(r.headers["Age"]) <= 2

    def test_010_03_stale_then_refreshed(self, env, origin):
        r = env.get("/app/b03")
        assert (r.isr, r.body) == ("MISS", b"/b03|v=1"), r
        time.sleep(1.2)  # let the 1s TTL pass
        r = env.get("/app/b03")
        assert (r.status, r.isr, r.body) == (200, "STALE", b"/b03|v=1"), r
        assert int(r.headers.get("Age", "-1")) >= 1, r
        # exactly one background refresh lands, then the new version is a HIT
        r = env.wait_status("/app/b03", lambda x: x.isr == "HIT" and x.body == b"/b03|v=2",
                            deadline=8)
        assert (r.isr, r.body) == ("HIT", b"/b03|v=2"), r
        assert origin.count("/b03") == 2

    def test_010_04_past_stale_window_is_miss(self, env, origin):
        assert env.get("/short/b04").body == b"/b04|v=1"
        time.sleep(2.4)  # TTL 1s + stale window 1s
        r = env.get("/short/b04")
        assert (r.status, r.isr, r.body) == (200, "MISS", b"/b04|v=2"), r
        assert origin.count("/b04") == 2

    def test_010_05_sync_fetch_5xx_is_error_and_not_stored(self, env, origin):
        isr_env.expect_log(ANY_ISR_LOG)
        origin.set("/b05", status=500)
        r = env.get("/app/b05")
        assert r.status == 502, r
        assert r.body != b"/b05|v=1", r
        origin.set("/b05")
        # The failure is remembered for ISRErrorTTL (1 s): within it, no new fetch.
        assert env.get("/app/b05").status == 502
        assert origin.count("/b05") == 1
        time.sleep(1.2)
        r = env.get("/app/b05")
        assert (r.status, r.isr, r.body) == (200, "MISS", b"/b05|v=2"), r

    def test_010_06_sync_fetch_connect_error(self, env, origin):
        isr_env.expect_log(ANY_ISR_LOG)
        r = env.get("/down/b06")
        assert r.status == 502, r
        assert r.elapsed < 5, r
        r = env.get("/down/b06")
        assert r.status == 502, r
        assert origin.total() == 0

    def test_010_07_isr_status_env_in_access_log(self, env, origin):
        isr_env.expect_log(ANY_ISR_LOG)
        env.get("/app/b07")
        env.get("/app/b07")
        origin.set("/b07e", status=503)
        env.get("/app/b07e")
        miss = env.wait_access(r'"GET /app/b07 HTTP/1.1" isr=MISS$')
        hit = env.wait_access(r'"GET /app/b07 HTTP/1.1" isr=HIT$')
        err = env.wait_access(r'"GET /app/b07e HTTP/1.1" isr=ERROR$')
        assert miss and hit and err, "\n".join(env.access_lines())
        time.sleep(1.2)
        env.get("/app/b07")
        stale = env.wait_access(r'"GET /app/b07 HTTP/1.1" isr=STALE$')
        assert stale, "\n".join(env.access_lines())
        env.wait_status("/app/b07", "HIT")  # let the refresh land before the next test

    def test_010_08_concurrent_miss_waits_for_one_fetch(self, env, origin):
        origin.set("/b08", delay=1)
        rs = env.concurrent_get(["/app/b08"] * 10)
        assert all(r is not None and r.status == 200 for r in rs), [str(r) for r in rs]
        assert {r.body for r in rs} == {b"/b08|v=1"}, [str(r) for r in rs]
        assert origin.count("/b08") == 1
