"""Issue 11, refresh-ahead: ISRRefreshAhead N% starts the one background refresh on a hit in the
last N% of an entry's fresh time, so that a key under steady traffic never answers STALE."""

import time

import isr_env


class TestRefreshAhead:
    CONF = """
<Location /ahead/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 2s
    ISRStaleTTL 1h
    ISRRefreshAhead 50%
</Location>
<Location /plain/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 2s
    ISRStaleTTL 1h
</Location>
"""

    def steady(self, env, path, seconds=6.0, every=0.1):
        labels = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            r = env.get(path)
            assert r.status == 200, r
            labels.append(r.isr)
            time.sleep(every)
        return labels

    def test_955_01_hot_key_never_stale(self, env, origin):
        labels = self.steady(env, "/ahead/hot")
        assert labels[0] == "MISS", labels
        assert "STALE" not in labels, labels
        # Refreshed ahead, more than once in 6 s of a 2 s TTL (one refresh at a time).
        assert origin.count("/hot") >= 3, origin.count("/hot")
        assert set(labels[1:]) == {"HIT"}, labels

    def test_955_02_without_it_the_same_traffic_sees_stale(self, env, origin):
        # The control: the test above can fail.
        labels = self.steady(env, "/plain/cold")
        assert "STALE" in labels, labels

    def test_955_03_one_refresh_at_a_time(self, env, origin):
        origin.set("/slowahead", delay=1.5)
        assert env.get("/ahead/slowahead").isr == "MISS"
        origin.set("/slowahead", delay=1.5)
        time.sleep(1.1)                   # inside the last 50% of 2 s
        rs = env.concurrent_get(["/ahead/slowahead"] * 20)
        assert all(r.status == 200 and r.isr == "HIT" for r in rs), rs
        # Every hit answered at once (the refresh runs in the background), one refresh.
        assert max(r.elapsed for r in rs) < 1.0, [r.elapsed for r in rs]
        assert isr_env.wait_for(lambda: origin.count("/slowahead") == 2, deadline=5)
        time.sleep(0.3)
        assert origin.count("/slowahead") == 2
