"""Graceful restart: entries survive when the zone keeps name and size; still serves."""

import time

import isr_env


class TestGraceful:
    CONF = """
ISRCacheZone keep 4M
<Location /g/>
    ISRBackend @ORIGIN@/
    ISRCache keep
</Location>
<Location /gs/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 1s
    ISRStaleTTL 1h
</Location>
<Location /gd/>
    ISRBackend @ORIGIN@/
</Location>
"""

    def test_300_01_entries_survive(self, env, origin):
        assert env.get("/g/a").body == b"/a|v=1"
        assert env.get("/gd/b").body == b"/b|v=1"
        env.graceful()
        r = env.get("/g/a")
        assert (r.status, r.isr, r.body) == (200, "HIT", b"/a|v=1"), r
        r = env.get("/gd/b")
        assert (r.status, r.isr, r.body) == (200, "HIT", b"/b|v=1"), r
        assert origin.count("/a") == 1 and origin.count("/b") == 1

    def test_300_02_serves_new_keys_after_restart(self, env, origin):
        env.graceful()
        r = env.get("/g/c")
        assert (r.status, r.isr, r.body) == (200, "MISS", b"/c|v=1"), r
        r = env.get("/g/c")
        assert (r.status, r.isr, r.body) == (200, "HIT", b"/c|v=1"), r

    def test_300_03_two_restarts_in_a_row(self, env, origin):
        assert env.get("/g/d").body == b"/d|v=1"
        env.graceful()
        env.graceful()
        r = env.get("/g/d")
        assert (r.status, r.isr, r.body) == (200, "HIT", b"/d|v=1"), r

    def test_300_04_resized_zone_still_serves(self, env, origin):
        # the module may say that it dropped the old zone
        isr_env.expect_log(isr_env.ISR_WARN_LOG)
        assert env.get("/g/e").body == b"/e|v=1"
        env.write_config(env.body.replace("ISRCacheZone keep 4M", "ISRCacheZone keep 8M"))
        env.graceful(settle=True)
        r = env.get("/g/e")
        assert r.status == 200 and r.body in (b"/e|v=1", b"/e|v=2"), r
        r = env.get("/g/e")
        assert r.isr == "HIT", r

    def test_300_05_graceful_during_refresh(self, env, origin):
        assert env.get("/gs/f").body == b"/f|v=1"
        origin.set("/f", delay=4)
        time.sleep(1.2)
        r = env.get("/gs/f")
        assert (r.isr, r.body) == ("STALE", b"/f|v=1"), r
        assert origin.wait_count("/f", 2, timeout=3) == 2
        t0 = time.monotonic()
        env.graceful()
        assert time.monotonic() - t0 < 8
        r = env.get("/gs/f")
        assert r.status == 200 and r.elapsed < 1.5, r
        assert r.body in (b"/f|v=1", b"/f|v=2", b"/f|v=3"), r
        origin.set("/f")
        r = env.wait_status("/gs/f", lambda x: x.isr == "HIT" and x.body != b"/f|v=1",
                            deadline=12, interval=0.3)
        assert r.isr == "HIT" and r.body != b"/f|v=1", r

    def test_300_06_hard_restart_still_serves(self, env, origin):
        assert env.get("/g/k").body == b"/k|v=1"
        env.hard_restart()
        r = env.get("/g/k")
        assert r.status == 200 and r.body in (b"/k|v=1", b"/k|v=2"), r
        r2 = env.get("/g/k")
        assert (r2.isr, r2.body) == ("HIT", r.body), r2


def test_300_10_stop_during_refresh_is_prompt(env_factory, origin):
    """Stopping httpd while a refresh waits on a slow origin: bounded, no 'still did not exit'."""
    from conftest import start_checked
    e = env_factory("stop-refresh", conf="""
<Location /gs/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 1s
    ISRStaleTTL 1h
    ISRTimeout 20s
</Location>
""")
    start_checked(e)
    assert e.get("/gs/h").body == b"/h|v=1"
    origin.set("/h", delay=8)
    time.sleep(1.2)
    assert e.get("/gs/h").isr == "STALE"
    assert origin.wait_count("/h", 2, timeout=3) == 2
    t0 = time.monotonic()
    e.stop()
    assert time.monotonic() - t0 < 6, "stop took %.1fs" % (time.monotonic() - t0)
