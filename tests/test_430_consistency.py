"""Invariant 1 and 5 under load: readers never get a torn, mixed or wrong body while writers
replace entries (short TTL, constant refreshes) and a small zone evicts."""

import re
import threading
import time

DURATION = 3.0
THREADS = 8
MAX_REQUESTS = 20000


class TestConsistency:
    MPM = "event"
    CONF = """
ISRCacheZone tiny 1M
<Location /cs/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 200ms
    ISRStaleTTL 1h
</Location>
<Location /ev/>
    ISRBackend @ORIGIN@/
    ISRCache tiny
    ISRCacheTTL 200ms
    ISRStaleTTL 1h
</Location>
"""

    def _hammer(self, env, paths, size, during=None):
        errors = []
        counter = [0]
        lock = threading.Lock()
        end = time.monotonic() + DURATION

        def worker(tid):
            seen = {}
            i = tid
            while time.monotonic() < end:
                with lock:
                    if counter[0] >= MAX_REQUESTS:
                        return
                    counter[0] += 1
                p = paths[i % len(paths)]
                i += 1
                r = env.get(p, timeout=10)
                key = p[3:]
                m = re.fullmatch(re.escape(key).encode() + rb"\|v=(\d+)(x*)", r.body)
                if r.status != 200 or not m or len(r.body) != size:
                    errors.append("%s: %d %s len=%d %r" % (p, r.status, r.isr, len(r.body),
                                                           r.body[:80]))
                    continue
                if r.headers.get("Content-Length") not in (None, str(len(r.body))):
                    errors.append("%s: Content-Length %s != %d"
                                  % (p, r.headers.get("Content-Length"), len(r.body)))
                v = int(m.group(1))
                if v < seen.get(p, 0):
                    errors.append("%s: version went back from %d to %d" % (p, seen[p], v))
                seen[p] = v

        threads = [threading.Thread(target=worker, args=(t,), daemon=True)
                   for t in range(THREADS)]
        for t in threads:
            t.start()
        if during:
            during()
            assert any(t.is_alive() for t in threads), "the load ended before `during` did"
        for t in threads:
            t.join(DURATION + 20)
        assert not any(t.is_alive() for t in threads), "clients hang"
        return errors, counter[0]

    def test_430_01_replace_under_readers(self, env, origin):
        paths = ["/cs/c%d?size=40000" % i for i in range(4)]
        errors, n = self._hammer(env, paths, 40000)
        assert not errors, "%d bad of %d:\n%s" % (len(errors), n, "\n".join(errors[:20]))
        # refreshes happened (the test exercised writers) but not one per request
        fetches = sum(origin.count(p[3:]) for p in paths)
        assert 4 < fetches < n, (fetches, n)

    def test_430_02_evicting_zone(self, env, origin):
        paths = ["/ev/e%d?size=150000" % i for i in range(12)]
        errors, n = self._hammer(env, paths, 150000)
        assert not errors, "%d bad of %d:\n%s" % (len(errors), n, "\n".join(errors[:20]))

    def test_430_03_graceful_restarts_under_readers(self, env, origin):
        paths = ["/cs/g%d?size=30000" % i for i in range(4)]

        def restarts():
            time.sleep(0.3)
            env.graceful()
            time.sleep(0.3)
            env.graceful()

        errors, n = self._hammer(env, paths, 30000, during=restarts)
        assert not errors, "%d bad of %d:\n%s" % (len(errors), n, "\n".join(errors[:20]))
