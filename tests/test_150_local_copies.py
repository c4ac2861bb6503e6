"""ISRLocalCopySize: large entries are sent from per-child shared copies (no copy per hit). Each
version of an entry must still be sent byte for byte, and a refreshed entry must replace the
copy; with 0 the same holds without copies."""

import hashlib
import re
import time

BODY = re.compile(rb"^(/[^|]*)\|v=(\d+)")


class _Base:
    def _exact(self, env, origin, path, size):
        r = env.get(path)
        assert r.status == 200 and len(r.body) == size, r
        m = BODY.match(r.body)
        assert m, r.body[:80]
        # The padding after the prefix is the origin's filler: all bytes but the prefix equal.
        assert r.body[len(m.group(0)):] == b"x" * (size - len(m.group(0))), r.body[:80]
        return int(m.group(2)), r

    def test_versions_byte_for_byte(self, env, origin):
        path, size = "/lc/big?size=65536", 65536
        v1, r = self._exact(env, origin, path, size)
        assert r.isr == "MISS"
        for _ in range(20):
            v, r = self._exact(env, origin, path, size)
            assert (v, r.isr) == (v1, "HIT"), r
        time.sleep(1.2)
        v, r = self._exact(env, origin, path, size)
        assert (v, r.isr) == (v1, "STALE"), r
        end = time.monotonic() + 5
        while time.monotonic() < end:
            v, r = self._exact(env, origin, path, size)
            if v > v1:
                break
            time.sleep(0.05)
        assert v == v1 + 1 and r.isr == "HIT", r
        # Every later hit sends the new version, not the child's old copy.
        for _ in range(20):
            v2, r = self._exact(env, origin, path, size)
            assert v2 == v1 + 1, r

    def test_small_and_large_side_by_side(self, env, origin):
        for size in (100, 8191, 8192, 8193, 300000):
            path = "/lc/s%d?size=%d" % (size, size)
            v, r = self._exact(env, origin, path, size)
            for _ in range(5):
                v2, r2 = self._exact(env, origin, path, size)
                assert v2 == v and r2.isr == "HIT", r2
            assert hashlib.sha1(r.body).digest() == hashlib.sha1(r2.body).digest()


class TestLocalCopies(_Base):
    CONF = """
ISRLocalCopySize 1M
<Location /lc/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 1s
</Location>
"""


class TestNoLocalCopies(_Base):
    CONF = """
ISRLocalCopySize 0
<Location /lc/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 1s
</Location>
"""
