"""ISRQuickHandler On: hits are answered from the quick handler, before access control (as
mod_cache's CacheQuickHandler); misses still take the normal path, access control included."""

import time

import isr_env


class TestQuickHandler:
    CONF = """
<Location /q/>
    ISRBackend @ORIGIN@/
    ISRQuickHandler On
    ISRCacheTTL 1s
    ISRStaleTTL 1h
</Location>
<Location /q/deny/>
    Require all denied
</Location>
<Location /fill/>
    ISRBackend @ORIGIN@/
</Location>
<Location /n/>
    ISRBackend @ORIGIN@/
</Location>
<Location /n/deny/>
    Require all denied
</Location>
"""

    def test_140_01_hit_stale_from_quick_handler(self, env, origin):
        r = env.get("/q/a")
        assert (r.status, r.isr, r.body) == (200, "MISS", b"/a|v=1"), r
        r = env.get("/q/a")
        assert (r.status, r.isr, r.body) == (200, "HIT", b"/a|v=1"), r
        time.sleep(1.2)
        r = env.get("/q/a")
        assert (r.status, r.isr, r.body) == (200, "STALE", b"/a|v=1"), r
        assert origin.wait_count("/a", 2, timeout=5) == 2
        end = time.monotonic() + 5
        while time.monotonic() < end:
            r = env.get("/q/a")
            if r.body == b"/a|v=2":
                break
            time.sleep(0.05)
        assert (r.status, r.isr, r.body) == (200, "HIT", b"/a|v=2"), r

    def test_140_02_quick_hits_skip_access_control(self, env, origin):
        isr_env.expect_log("AH01630")
        # A miss under a denied location is denied even with the quick handler...
        r = env.get("/q/deny/y")
        assert r.status == 403, r
        assert origin.count("/deny/y") == 0
        # ...but once the key (the backend URL) is cached through an allowed location, the
        # quick handler answers it before access control, as documented.
        r = env.get("/fill/deny/y")
        assert (r.status, r.isr, r.body) == (200, "MISS", b"/deny/y|v=1"), r
        r = env.get("/q/deny/y")
        assert (r.status, r.isr, r.body) == (200, "HIT", b"/deny/y|v=1"), r

    def test_140_03_normal_handler_keeps_access_control_on_hits(self, env, origin):
        isr_env.expect_log("AH01630")
        # The key is cached (test 02); without the quick handler, Require all denied wins.
        r = env.get("/q/deny/y")
        assert (r.status, r.isr) == (200, "HIT"), r
        r = env.get("/n/deny/y")
        assert r.status == 403, r
