"""Scan resistance (issue 7, finding 7; DESIGN-NOTES invariant 8): a flood of one-hit keys
totalling several times the zone must not evict an entry that is being used. The store's
ring gives records that were hit a second chance (CLOCK) instead of dropping the oldest."""

ZONE = 8 * 1024 * 1024
SIZE = 400000                      # each flood object: ~0.4 MB
FLOOD = (3 * ZONE + SIZE - 1) // SIZE + 4   # a little over 3x the zone


class TestScan:
    CONF = """
ISRCacheZone scan 8M
<Location /sc/>
    ISRBackend @ORIGIN@/
    ISRCache scan
    ISRCacheTTL 300s
</Location>
<Location /st/>
    ISRBackend @ORIGIN@/
    ISRCache scan
    ISRCacheTTL 1s
    ISRStaleTTL 1h
</Location>
"""

    def test_710_01_hot_key_survives_flood(self, env, origin):
        hot = "/hot?k=1"
        r = env.get("/sc" + hot)
        assert (r.status, r.isr) == (200, "MISS"), r
        seen = []
        for i in range(FLOOD):
            k = "/flood/%d?size=%d" % (i, SIZE)
            f = env.get("/sc" + k)
            assert f.status == 200 and len(f.body) == SIZE, f
            assert f.isr == "MISS", (i, f)
            r = env.get("/sc" + hot)
            seen.append(r.isr)
            assert r.status == 200 and r.body == b"/hot?k=1|v=1", (i, r)
        assert set(seen) == {"HIT"}, "hot key not a HIT after flood request(s) %s" % [
            i for i, s in enumerate(seen) if s != "HIT"]
        assert env.get("/sc" + hot).isr == "HIT"
        assert origin.count(hot) == 1, origin.count(hot)
        # The flood did turn the zone over: its first key is long gone.
        first = "/flood/0?size=%d" % SIZE
        r = env.get("/sc" + first)
        assert (r.status, r.isr) == (200, "MISS"), r
        assert origin.count(first) == 2

    def test_710_02_stale_hot_key_survives_flood(self, env, origin):
        """Stale entries are served too (and refreshed in the background): they must survive
        the same flood. The key is never a MISS again, so the origin sees only refreshes."""
        hot = "/hot-stale?k=2"
        assert env.get("/st" + hot).isr == "MISS"
        assert env.get("/st" + hot).isr == "HIT"
        labels = []
        for i in range(FLOOD):
            f = env.get("/st/flood2/%d?size=%d" % (i, SIZE))
            assert f.status == 200 and len(f.body) == SIZE, f
            r = env.get("/st" + hot)
            assert r.status == 200 and r.body.startswith(b"/hot-stale?k=2|v="), (i, r)
            labels.append(r.isr)
        assert "MISS" not in labels, labels
        # Every origin fetch after the first was a background refresh of a STALE answer.
        assert origin.count(hot) <= 1 + labels.count("STALE"), (origin.count(hot), labels)
