"""Graceful restart: entries survive when the zone keeps name and size; still serves."""

import isr_env


class TestGraceful:
    CONF = """
ISRCacheZone keep 4M
<Location /g/>
    ISRBackend @ORIGIN@/
    ISRCache keep
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
        isr_env.expect_log(r"ISR\d{4}")  # the module may say it dropped the old zone
        assert env.get("/g/e").body == b"/e|v=1"
        env.write_config(env.body.replace("ISRCacheZone keep 4M", "ISRCacheZone keep 8M"))
        env.graceful()
        r = env.get("/g/e")
        assert r.status == 200 and r.body in (b"/e|v=1", b"/e|v=2"), r
        r = env.get("/g/e")
        assert r.isr == "HIT", r
