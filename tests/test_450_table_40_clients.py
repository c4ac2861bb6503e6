"""The whole behaviour table with 40 concurrent clients and several child processes (the
issue's "done when"): prefork with enough children that all 40 requests are inside httpd at
once (fewer would leave some queued in the listen backlog, arriving after the fetch landed)."""

import time

import isr_env

N = 40


def ok_all(rs):
    assert all(r is not None and r.status == 200 for r in rs), [str(r) for r in rs]


class TestTable40:
    MPM = "prefork"
    MPM_CONF = {"StartServers": 48, "MinSpareServers": 48, "MaxSpareServers": 64,
                "MaxRequestWorkers": 64}
    CONF = """
# These tests re-request right after a failure: without ISRErrorTTL's memory of it.
ISRErrorTTL 0
<Location /t/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 1s
    ISRStaleTTL 1h
    ISRTimeout 5s
    ISRRefreshRetry 30s
</Location>
<Location /t0/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 1s
    ISRStaleTTL 0
    ISRTimeout 5s
</Location>
"""

    def test_450_01_miss_then_hit(self, env, origin):
        assert len(env.wait_children(N + 4, deadline=30)) >= N
        origin.set("/m", delay=1)
        rs = env.concurrent_get(["/t/m"] * N, timeout=20)
        ok_all(rs)
        assert {r.body for r in rs} == {b"/m|v=1"} and origin.count("/m") == 1
        # (a client thread that starts after the fetch landed gets a HIT of the same body)
        assert "MISS" in {r.isr for r in rs} and {r.isr for r in rs} <= {"MISS", "HIT"}
        rs = env.concurrent_get(["/t/m"] * N, timeout=20)
        ok_all(rs)
        assert {(r.isr, r.body) for r in rs} == {("HIT", b"/m|v=1")}, [str(r) for r in rs]
        assert all("Age" in r.headers for r in rs)
        assert origin.count("/m") == 1

    def test_450_02_stale_one_refresh_no_wait(self, env, origin):
        assert env.get("/t/s").body == b"/s|v=1"
        origin.set("/s", delay=3)
        time.sleep(1.2)
        rs = env.concurrent_get(["/t/s"] * N, timeout=20)
        ok_all(rs)
        assert {(r.isr, r.body) for r in rs} == {("STALE", b"/s|v=1")}, [str(r) for r in rs]
        assert max(r.elapsed for r in rs) < 2.0, sorted(r.elapsed for r in rs)
        assert origin.wait_count("/s", 2, timeout=5) == 2
        r = env.wait_status("/t/s", lambda x: x.body == b"/s|v=2", deadline=8, interval=0.2)
        assert (r.isr, r.body) == ("HIT", b"/s|v=2"), r
        assert origin.count("/s") == 2

    def test_450_03_past_stale_window_is_a_coalesced_miss(self, env, origin):
        assert env.get("/t0/p").body == b"/p|v=1"
        origin.set("/p", delay=1)
        time.sleep(1.2)
        rs = env.concurrent_get(["/t0/p"] * N, timeout=20)
        ok_all(rs)
        assert {r.body for r in rs} == {b"/p|v=2"}, [str(r) for r in rs]
        assert "MISS" in {r.isr for r in rs} and {r.isr for r in rs} <= {"MISS", "HIT"}
        assert origin.count("/p") == 2

    def test_450_04_failed_miss_error_action_nothing_stored(self, env, origin):
        isr_env.expect_log(isr_env.ISR_WARN_LOG)
        origin.set("/f", delay=2, status=500)
        rs = env.concurrent_get(["/t/f"] * N, timeout=20)
        assert {r.status for r in rs} == {502}, [str(r) for r in rs]
        assert origin.count("/f") == 1
        origin.set("/f")
        r = env.get("/t/f")
        assert (r.status, r.isr, r.body) == (200, "MISS", b"/f|v=2"), r

    def test_450_05_failed_refresh_keeps_stale(self, env, origin):
        isr_env.expect_log(isr_env.ISR_WARN_LOG)
        assert env.get("/t/r").body == b"/r|v=1"
        origin.set("/r", status=500)
        time.sleep(1.2)
        for _ in range(3):
            rs = env.concurrent_get(["/t/r"] * N, timeout=20)
            ok_all(rs)
            assert {(r.isr, r.body) for r in rs} == {("STALE", b"/r|v=1")}, [str(r) for r in rs]
            time.sleep(0.2)
        # One refresh tried, then held off for ISRRefreshRetry: not one per request.
        assert origin.wait_count("/r", 2, timeout=5) == 2
        time.sleep(0.5)
        assert origin.count("/r") == 2
