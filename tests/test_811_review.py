"""Review of issue 8 part 1 (9ffdf90, HTTP freshness): failing tests for the defects found.

Every test here fails on 9ffdf90 and should pass once the defect it names is fixed; nothing is
marked xfail. See the report that came with the commit for the lines responsible.
"""

import email.utils
import time

import isr_env
from isr_env import cache_status, httpdate, wait_for  # noqa: F401





class TestCollapsedRevalidation:
    """Requests that waited for a synchronous revalidation (or a miss) must be answered with
    its result: today each waiter finds the entry still stale and revalidates again, one
    after the other, so N clients make N serialized origin requests and the last ones give up
    (ISRTimeout + 2 s) with an error."""

    # lines of a test that failed before its own log check
    EXPECT_LOG_STOP = (isr_env.ISR_WARN_LOG, r"AH\d+")
    CONF = """
<Location /cr/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 60s
    ISRStaleTTL 0
    ISRTimeout 3s
</Location>
"""

    def test_811_01_no_cache_waiters_use_the_revalidation_they_waited_for(self, env, origin):
        isr_env.expect_log(isr_env.ISR_WARN_LOG, r"AH\d+")
        origin.set("/nc", cc="no-cache", etag='"n1"')
        r = env.get("/cr/nc")
        assert (r.status, r.body) == (200, b"/nc|v=1"), r
        # The origin now takes 1 s per answer; 8 clients arrive together.
        origin.set("/nc", cc="no-cache", etag='"n1"', delay=1.0)
        rs = env.concurrent_get(["/cr/nc"] * 8, timeout=30)
        statuses = [x.status for x in rs]
        assert statuses == [200] * 8, [str(x) for x in rs]
        # One revalidation served them all (allow a straggler or two).
        assert origin.count304("/nc") <= 3, origin.count304("/nc")

    def test_811_02_waiters_of_a_miss_born_stale_are_not_refetched_one_by_one(self, env,
                                                                              origin):
        # An answer that is already stale when it arrives (Age >= max-age, e.g. from an
        # upstream cache) but has a validator is stored; the clients that waited for the
        # miss must get it, not revalidate it again one after the other.
        isr_env.expect_log(isr_env.ISR_WARN_LOG, r"AH\d+")
        origin.set("/old", cc="max-age=10", header="Age:100", etag='"o1"', delay=1.0)
        rs = env.concurrent_get(["/cr/old"] * 8, timeout=30)
        statuses = [x.status for x in rs]
        assert statuses == [200] * 8, [str(x) for x in rs]
        assert origin.count("/old") <= 3, origin.count("/old")


class TestRefreshBackoffBlocksRevalidation:
    """A failed *background* refresh sets a backoff of ISRRefreshRetry on the slot's lease;
    isr_store_claim_stale reads any pid-0 lease as "the backend failed a moment ago", so once
    the entry is past its stale-while-revalidate window every request gets the error (no
    stale-if-error left) for ISRRefreshRetry, without the origin being asked, although the
    README promises the failure is remembered for ISRErrorTTL only. In Off mode this is a
    regression: before 9ffdf90 an entry past ISRStaleTTL was a miss and was fetched."""

    EXPECT_LOG_STOP = (isr_env.ISR_WARN_LOG, r"AH\d+")
    CONF = """
<Location /on/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 60s
    ISRStaleTTL 0
    ISRRefreshRetry 60s
    ISRErrorTTL 1s
</Location>
<Location /off/>
    ISRBackend @ORIGIN@/
    ISRCacheControl Off
    ISRCacheTTL 1s
    ISRStaleTTL 1s
    ISRRefreshRetry 60s
    ISRErrorTTL 1s
</Location>
"""

    def _run(self, env, origin, url, p, knobs):
        isr_env.expect_log(isr_env.ISR_WARN_LOG, r"AH\d+")
        origin.set(p, **knobs)
        t0 = time.time()
        r = env.get(url)
        assert (r.status, r.body) == (200, (p + "|v=1").encode()), r
        time.sleep(max(0.0, t0 + 1.4 - time.time()))
        origin.set(p, status=503, **knobs)
        r = env.get(url)            # inside the stale-while-revalidate window
        assert r.isr == "STALE", r
        assert origin.wait_count(p, 2)  # the background refresh got its 503
        origin.set(p, **knobs)      # the origin is well again
        # Past the stale window, and more than ISRErrorTTL after the failure.
        time.sleep(max(0.0, t0 + 4.0 - time.time()))
        r = env.get(url)
        assert r.status == 200, (r, origin.count(p))
        assert origin.count(p) == 3, origin.count(p)

    def test_811_03_on_mode(self, env, origin):
        self._run(env, origin, "/on/bo", "/bo",
                  dict(cc="max-age=1, stale-while-revalidate=1, stale-if-error=0",
                       etag='"b1"'))

    def test_811_04_off_mode_regression(self, env, origin):
        self._run(env, origin, "/off/bof", "/bof", dict(etag='"f1"'))


class TestNotModifiedTrust:
    """What a 304 may renew."""

    EXPECT_LOG_STOP = (isr_env.ISR_WARN_LOG, r"AH\d+")
    CONF = """
<Location /t/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 60s
    ISRStaleTTL 0
    ISRRefreshRetry 30s
</Location>
<Location /strict/>
    ISRBackend @ORIGIN@/
    ISRCacheControl Strict
</Location>
"""

    def test_811_05_304_with_another_strong_etag_does_not_renew(self, env, origin):
        # RFC 9111 4.3.4: a 304 whose strong validator matches no stored response MUST NOT
        # update any. Today the stored body of "a" goes out as REVALIDATED under ETag "b",
        # stored fresh; clients and later revalidations then treat body v=1 as "b".
        origin.set("/et", cc="max-age=1, must-revalidate", etag='"a"')
        assert env.get("/t/et").body == b"/et|v=1"
        time.sleep(1.5)
        origin.set("/et", cc="max-age=60", etag='"b"', status=304)
        r = env.get("/t/et")
        assert not (r.body == b"/et|v=1" and r.headers.get("ETag") == '"b"'), r
        origin.set("/et", cc="max-age=60", etag='"b"')
        r = env.get("/t/et")
        assert not (r.body == b"/et|v=1" and r.headers.get("ETag") == '"b"'), r

    def test_811_05b_304_with_another_strong_etag_to_a_refresh_does_not_renew(self, env,
                                                                              origin):
        # The same through a background refresh: refresh_not_modified compares the stored
        # validators with the ones it sent, never with the 304's own.
        isr_env.expect_log(r"ISR0022: refresh of .* failed \(a 304 that does not renew")
        origin.set("/etr", cc="max-age=1, stale-while-revalidate=60", etag='"a"')
        assert env.get("/t/etr").body == b"/etr|v=1"
        time.sleep(1.4)
        origin.set("/etr", cc="max-age=60", etag='"b"', status=304)
        assert env.get("/t/etr").isr == "STALE"
        assert wait_for(lambda: origin.count("/etr") == 2)
        time.sleep(0.3)
        r = env.get("/t/etr")
        assert not (r.body == b"/etr|v=1" and r.headers.get("ETag") == '"b"'), r

    def test_811_06_304_to_an_unconditional_refetch_does_not_renew(self, env, origin):
        # No validator stored, so the re-fetch past the stale-while-revalidate window is not
        # conditional: a 304 to it validates nothing (RFC 9111 4.3.3), yet today it renews the
        # old body as REVALIDATED and stores it fresh for the 304's max-age.
        origin.set("/uc", cc="max-age=1, stale-while-revalidate=0, stale-if-error=60")
        assert env.get("/t/uc").body == b"/uc|v=1"
        time.sleep(1.5)
        origin.set("/uc", cc="max-age=60", status=304)
        r = env.get("/t/uc")
        assert r.isr != "REVALIDATED", r
        assert "fwd-status=304" not in cache_status(r) or "stored" not in cache_status(r), r
        origin.set("/uc", cc="max-age=60")
        r = env.get("/t/uc")
        assert r.isr != "HIT", r    # nothing was validated: the old body is not fresh

    def test_811_07_304_without_age_is_not_as_old_as_the_first_answer(self, env, origin):
        # The first answer came through a cache upstream (Age: 30 > max-age=10): stored stale,
        # kept for its ETag. The 304 comes straight from the origin (current Date, no Age),
        # but the merged head keeps "Age: 30", so the entry is born stale again at every
        # renewal: every request revalidates synchronously, forever, and shows Age >= 30.
        origin.set("/ag", cc="max-age=10, must-revalidate", header="Age:30", etag='"g"')
        assert env.get("/t/ag").body == b"/ag|v=1"
        origin.set("/ag", cc="max-age=10, must-revalidate", etag='"g"')
        r = env.get("/t/ag")
        assert (r.body, r.isr) == (b"/ag|v=1", "REVALIDATED"), r
        r = env.get("/t/ag")
        assert r.isr == "HIT", (r, origin.count304("/ag"))
        assert int(r.headers.get("Age", "0")) < 10, r

    def test_811_08_unusable_304_to_a_refresh_does_not_loop(self, env, origin):
        # A 304 to a background refresh whose merged head may not be stored (the 304 carries
        # Set-Cookie) is handled like "the entry changed meanwhile": the lease is released with
        # no backoff and no pass, so every later request in the stale-while-revalidate window
        # starts another refresh while all clients keep getting the same stale entry.
        isr_env.expect_log(isr_env.ISR_WARN_LOG)
        knobs = dict(cc="max-age=1, stale-while-revalidate=60", etag='"k"')
        origin.set("/ck", **knobs)
        assert env.get("/t/ck").body == b"/ck|v=1"
        time.sleep(1.3)
        origin.set("/ck", cookie=1, **knobs)
        labels = []
        for i in range(10):
            labels.append(env.get("/t/ck").isr)
            time.sleep(0.3)
        n = origin.count304("/ck")
        # Fixed, either the key stops being served from this entry (pass / re-fetch) or the
        # refreshes back off (ISRRefreshRetry 30s): not one 304 per client request.
        assert n <= 3 or set(labels) != {"STALE"}, (n, labels)

    def test_811_09_s_maxage_with_swr_stale_in_on_mode_only(self, env, origin):
        # RFC 9111 4.2.4: an applicable s-maxage (which carries proxy-revalidate) prohibits
        # stale serving. Strict mode follows it; On mode honours an explicit
        # stale-while-revalidate next to s-maxage as CDNs do ("s-maxage=N,
        # stale-while-revalidate" is what Next.js sends for ISR pages).
        origin.set("/smw", cc="s-maxage=1, stale-while-revalidate=30")
        assert env.get("/strict/smw").body == b"/smw|v=1"
        time.sleep(1.5)
        r = env.get("/strict/smw")
        assert r.isr != "STALE", r
        assert r.body == b"/smw|v=2", r
        origin.set("/smw2", cc="s-maxage=1, stale-while-revalidate=30")
        assert env.get("/t/smw2").body == b"/smw2|v=1"
        time.sleep(1.5)
        r = env.get("/t/smw2")
        assert (r.isr, r.body) == ("STALE", b"/smw2|v=1"), r
