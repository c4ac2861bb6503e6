"""Children killed at random instructions while readers, refreshes and misses run: no wrong
body is ever sent, and afterwards no key is stuck (DESIGN-NOTES invariants 1 and 2)."""

import os
import random
import re
import signal
import threading
import time

import isr_env

STORM = 3.0
KEYS = 6


class TestKillStorm:
    MPM = "prefork"
    MPM_CONF = {"StartServers": 6, "MinSpareServers": 6, "MaxSpareServers": 12}
    CONF = """
ISRCacheZone storm 2M
<Location /ks/>
    ISRBackend @ORIGIN@/
    ISRCache storm
    ISRCacheTTL 300ms
    ISRStaleTTL 1h
    ISRTimeout 2s
</Location>
"""

    def test_440_01_kill_storm(self, env, origin):
        isr_env.expect_log("exit signal Killed", isr_env.ISR_WARN_LOG)
        assert len(env.wait_children(4)) >= 4
        paths = ["/ks/s%d?size=%d" % (i, 20000 + 30000 * i) for i in range(KEYS)]
        bad, ok, resets = [], [0], [0]
        stop = time.monotonic() + STORM

        def check(p, r):
            key = p[3:]
            size = int(p.rsplit("=", 1)[1])
            m = re.fullmatch(re.escape(key).encode() + rb"\|v=(\d+)x*", r.body)
            if r.status != 200 or not m or len(r.body) != size:
                return "%s: %d %s len=%d %r" % (p, r.status, r.isr, len(r.body), r.body[:60])
            return None

        def client(t):
            i = t
            n = 0
            while time.monotonic() < stop and n < 2000:
                n += 1
                p = paths[i % KEYS]
                i += 1
                r = env.get(p, timeout=10)
                if r.status == 0:      # its child was killed under it
                    resets[0] += 1
                    continue
                err = check(p, r)
                if err:
                    bad.append(err)
                else:
                    ok[0] += 1

        threads = [threading.Thread(target=client, args=(t,), daemon=True) for t in range(6)]
        for t in threads:
            t.start()
        rnd = random.Random(4711)
        kills = 0
        while time.monotonic() < stop:
            time.sleep(rnd.uniform(0.1, 0.3))
            pids = env.child_pids()
            if pids:
                try:
                    os.kill(rnd.choice(pids), signal.SIGKILL)
                    kills += 1
                except OSError:
                    pass
        for t in threads:
            t.join(30)
        assert not any(t.is_alive() for t in threads), "clients hang"
        assert not bad, "%d wrong answers (ok %d):\n%s" % (len(bad), ok[0], "\n".join(bad[:20]))
        assert kills >= 5 and ok[0] > 50, (kills, ok[0], resets[0])
        # afterwards: every key answers in time and is refreshed again (nothing stuck)
        time.sleep(0.5)
        for p in paths:
            before = origin.count(p[3:])
            end = time.monotonic() + 2 + 6
            r = env.get(p, timeout=10)
            while time.monotonic() < end and origin.count(p[3:]) <= before:
                time.sleep(0.4)
                r = env.get(p, timeout=10)
                assert r.status == 200 and r.elapsed < 6, r
            assert origin.count(p[3:]) > before, "%s never refreshed after the storm" % p
            assert check(p, r) is None, check(p, r)
