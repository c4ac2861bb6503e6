"""ISRRefreshThreads: one refresh thread per child still refreshes every stale key."""

import time


class TestRefreshThreads:
    CONF = """
ISRRefreshThreads 1
<Location /rt/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 2s
    ISRStaleTTL 1h
</Location>
"""

    def test_120_01_one_thread_refreshes_all(self, env, origin):
        # One thread refreshes the keys one after another (4 x 0.4 s), all within one TTL of
        # the first landing, so every new version is still fresh when it is checked.
        keys = ["/k%d" % i for i in range(4)]
        for k in keys:
            assert env.get("/rt" + k).body == (k + "|v=1").encode()
            origin.set(k, delay=0.4)
        time.sleep(2.2)
        for k in keys:
            r = env.get("/rt" + k)
            assert (r.isr, r.body) == ("STALE", (k + "|v=1").encode()), r
            assert r.elapsed < 0.6, r
        for k in keys:
            r = env.wait_status("/rt" + k, lambda x, k=k: x.body == (k + "|v=2").encode(),
                                deadline=10, interval=0.2)
            assert (r.isr, r.body) == ("HIT", (k + "|v=2").encode()), r
        assert [origin.count(k) for k in keys] == [2] * 4
