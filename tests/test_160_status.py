"""mod_status shows a section per zone: answers by kind, stores, refreshes, evictions, and how
full the index and the ring are (?auto gives one "ISRZone NAME Counter: N" line each)."""

import re
import time



def status(env):
    r = env.get("/server-status?auto")
    assert r.status == 200, r
    out = {}
    for line in r.body.decode().splitlines():
        m = re.match(r"^ISRZone (\S+) (\w+): (\d+)$", line)
        if m:
            out[(m.group(1), m.group(2))] = int(m.group(3))
    return out


class TestStatus:
    CONF = """
LoadModule status_module /usr/lib/apache2/modules/mod_status.so
ISRCacheZone st 2M
<Location /server-status>
    SetHandler server-status
</Location>
<Location /st/>
    ISRBackend @ORIGIN@/
    ISRCache st
    ISRCacheTTL 1s
</Location>
<Location /dead/>
    ISRBackend http://127.0.0.1:9/
    ISRCache st
    ISRConnectTimeout 1s
</Location>
"""

    def test_160_01_counters(self, env, origin):
        import isr_env
        isr_env.expect_log(isr_env.ISR_WARN_LOG)
        before = status(env)
        assert before[("st", "Hits")] == 0 and before[("st", "Entries")] == 0, before
        assert ("default", "Hits") in before
        assert env.get("/st/a").isr == "MISS"
        assert env.get("/st/a").isr == "HIT"
        assert env.get("/st/a").isr == "HIT"
        time.sleep(1.2)
        assert env.get("/st/a").isr == "STALE"
        assert origin.wait_count("/a", 2, timeout=5) == 2
        assert env.get("/dead/x").status == 502
        end = time.monotonic() + 5
        while time.monotonic() < end:
            s = status(env)
            if s[("st", "Stores")] == 2:
                break
            time.sleep(0.05)
        assert (s[("st", "Misses")], s[("st", "Hits")], s[("st", "Stale")]) == (1, 2, 1), s
        assert (s[("st", "Refreshes")], s[("st", "Stores")], s[("st", "Errors")]) == (1, 2, 1), s
        assert s[("st", "Entries")] >= 1 and s[("st", "RingUsed")] > 0, s
        assert s[("st", "Slots")] >= s[("st", "Entries")], s
        assert s[("default", "Hits")] == 0, s

    def test_160_02_html(self, env, origin):
        r = env.get("/server-status")
        assert r.status == 200 and b"mod_isr zones" in r.body, r
        assert b"<td>st</td>" in r.body
