"""Issue 7, finding 3: which backend statuses are stored.

By default only what RFC 9111 lets a cache store without explicit freshness: 200, 203, 204, 300,
301, 308, 404, 405, 410, 414, 501. Any other status is passed to the client that fetched it but
not stored, unless the backend gave explicit freshness (Cache-Control max-age / s-maxage, or
Expires) or ISRCacheStatus lists it (the list then replaces the default). 5xx other than 501 stay
failures. A refresh that gets a status it may not store keeps the stale entry.
"""

import email.utils
import time

import pytest

import isr_env

STORED = [200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501]
NOT_STORED = [302, 303, 307, 400, 401, 403, 409, 429]


def body(path, v, status):
    return b"" if status == 204 else ("%s|v=%d" % (path, v)).encode()


class TestStatus:
    CONF = """
# These tests re-request right after a failure: without ISRErrorTTL's memory of it.
ISRErrorTTL 0
<Location /st/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 60s
</Location>
<Location /sr/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 1s
    ISRStaleTTL 1h
    ISRRefreshRetry 30s
</Location>
"""

    @pytest.mark.parametrize("status", STORED)
    def test_701_01_default_storable_statuses_are_stored(self, env, origin, status):
        p = "/ok%d" % status
        origin.set(p, status=status)
        for want in ("MISS", "HIT"):
            r = env.get("/st" + p)
            assert (r.status, r.isr, r.body) == (status, want, body(p, 1, status)), r
        assert origin.count(p) == 1

    @pytest.mark.parametrize("status", NOT_STORED)
    def test_701_02_other_statuses_are_passed_on_not_stored(self, env, origin, status):
        p = "/no%d" % status
        origin.set(p, status=status)
        for v in (1, 2, 3):
            r = env.get("/st" + p)
            assert r.status == status, r
            assert r.body == body(p, v, status), r
            assert r.isr != "HIT", r
        assert origin.count(p) == 3

    @pytest.mark.parametrize("status,knobs", [
        (302, {"cc": "max-age=60", "header": "Location:/elsewhere"}),
        (403, {"cc": "public, s-maxage=60"}),
        (429, {"header": "Expires:" + email.utils.formatdate(time.time() + 3600, usegmt=True)}),
        (400, {"cc": "max-age=30"}),
    ], ids=["302-max-age", "403-s-maxage", "429-expires", "400-max-age"])
    def test_701_03_explicit_freshness_makes_them_storable(self, env, origin, status, knobs):
        p = "/fr%d" % status
        origin.set(p, status=status, **knobs)
        for want in ("MISS", "HIT"):
            r = env.get("/st" + p)
            assert (r.status, r.isr, r.body) == (status, want, body(p, 1, status)), r
        assert origin.count(p) == 1

    @pytest.mark.parametrize("status", [500, 503])
    def test_701_04_5xx_stay_failures_even_with_freshness(self, env, origin, status):
        isr_env.expect_log(isr_env.ISR_WARN_LOG)
        p = "/x%d" % status
        origin.set(p, status=status, cc="max-age=60")
        assert env.get("/st" + p).status == 502
        assert env.get("/st" + p).status == 502
        assert origin.count(p) == 2

    def test_701_05_refresh_with_unstorable_status_keeps_stale(self, env, origin):
        isr_env.expect_log(isr_env.ISR_WARN_LOG)
        r = env.get("/sr/rf")
        assert (r.status, r.isr, r.body) == (200, "MISS", b"/rf|v=1"), r
        time.sleep(1.3)  # let the 1 s TTL pass
        origin.set("/rf", status=403)
        mark = env.log_mark()
        r = env.get("/sr/rf")
        assert (r.status, r.isr, r.body) == (200, "STALE", b"/rf|v=1"), r
        assert origin.wait_count("/rf", 2, timeout=8) == 2
        assert env.wait_log(isr_env.ISR_WARN_LOG, since=mark, deadline=8), env.log_dump(mark)
        for _ in range(3):
            r = env.get("/sr/rf")
            assert (r.status, r.isr, r.body) == (200, "STALE", b"/rf|v=1"), r
        assert origin.count("/rf") == 2   # backing off (ISRRefreshRetry), not per request


class TestCacheStatus:
    CONF = """
<Location /cs/>
    ISRBackend @ORIGIN@/
    ISRCacheStatus 200 302
</Location>
"""

    def test_701_10_listed_status_is_stored(self, env, origin):
        origin.set("/moved", status=302, header="Location:/there")
        for want in ("MISS", "HIT"):
            r = env.get("/cs/moved")
            assert (r.status, r.isr, r.body) == (302, want, b"/moved|v=1"), r
            assert r.headers.get("Location") == "/there", r
        assert env.get("/cs/plain").isr == "MISS"
        assert env.get("/cs/plain").isr == "HIT"

    def test_701_11_the_list_replaces_the_default(self, env, origin):
        origin.set("/nf", status=404)
        for v in (1, 2):
            r = env.get("/cs/nf")
            assert (r.status, r.body) == (404, ("/nf|v=%d" % v).encode()), r
            assert r.isr != "HIT", r
        assert origin.count("/nf") == 2
