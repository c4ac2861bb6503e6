"""Issue 8: the origin's freshness, stale windows and validators (ISRCacheControl Off|On|Strict).

On (the default): s-maxage, then max-age, then Expires - Date (minus Age) decide freshness;
stale-while-revalidate / stale-if-error set the stale windows (ISRStaleTTL where the origin says
nothing); no-cache, must-revalidate and proxy-revalidate mean no stale serving. ISR-Cache-Control
and CDN-Cache-Control take precedence and are not sent to clients. Refreshes and synchronous
re-fetches send the stored validators; a 304 renews the entry without a body. Off keeps ISRPlug's
TTLs. Strict has no default TTL. Cache-Status (RFC 9211) says how each answer came about.
"""

import email.utils
import time

import pytest

import isr_env
from isr_env import cache_status, httpdate, wait_for  # noqa: F401





class TestOnMode:
    CONF = """
<Location /on/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 60s
    ISRStaleTTL 30s
    ISRRefreshRetry 30s
</Location>
<Location /off/>
    ISRBackend @ORIGIN@/
    ISRCacheControl Off
    ISRCacheTTL 60s
    ISRStaleTTL 30s
</Location>
<Location /strict/>
    ISRBackend @ORIGIN@/
    ISRCacheControl Strict
    ISRCacheTTL 60s
    ISRStaleTTL 30s
</Location>
"""

    def test_810_01_max_age_shorter_than_ttl_wins(self, env, origin):
        # max-age=2 under ISRCacheTTL 60s: stale after ~2 s, not 60 s.
        origin.set("/ma2", cc="max-age=2")
        r = env.get("/on/ma2")
        assert (r.isr, r.body) == ("MISS", b"/ma2|v=1"), r
        r = env.get("/on/ma2")
        assert r.isr == "HIT", r
        time.sleep(2.6)
        r = env.get("/on/ma2")
        assert r.isr == "STALE", r
        assert r.body == b"/ma2|v=1"
        assert origin.wait_count("/ma2", 2)
        assert wait_for(lambda: env.get("/on/ma2").body == b"/ma2|v=2")

    def test_810_02_off_mode_keeps_its_own_ttl(self, env, origin):
        origin.set("/offma", cc="max-age=1")
        assert env.get("/off/offma").isr == "MISS"
        time.sleep(1.6)
        r = env.get("/off/offma")
        assert (r.isr, r.body) == ("HIT", b"/offma|v=1"), r
        assert origin.count("/offma") == 1

    def test_810_03_s_maxage_beats_max_age(self, env, origin):
        origin.set("/sm", cc="max-age=600, s-maxage=1")
        assert env.get("/on/sm").isr == "MISS"
        time.sleep(1.6)
        # s-maxage implies proxy-revalidate: no stale serving; revalidated synchronously
        r = env.get("/on/sm")
        assert r.isr == "MISS", r
        assert r.body == b"/sm|v=2"

    def test_810_04_expires_minus_date(self, env, origin):
        now = time.time()
        origin.set("/exp", header=["Expires:" + httpdate(now + 2)])
        assert env.get("/on/exp").isr == "MISS"
        assert env.get("/on/exp").isr == "HIT"
        time.sleep(3.1)
        assert env.get("/on/exp").isr == "STALE"

    def test_810_05_upstream_age_is_taken_off(self, env, origin):
        # max-age=100 but already 98 s old upstream: fresh for ~2 s only, Age counts from 98.
        origin.set("/age", cc="max-age=100", header="Age:98")
        r = env.get("/on/age")
        assert r.isr == "MISS"
        r = env.get("/on/age")
        assert r.isr == "HIT", r
        assert int(r.headers["Age"]) >= 98, r
        time.sleep(3.1)
        r = env.get("/on/age")
        assert r.isr == "STALE", r
        assert int(r.headers["Age"]) >= 101, r

    def test_810_06_stale_while_revalidate_bounds_the_stale_window(self, env, origin):
        # max-age=1, swr=1 (ISRStaleTTL 30s would allow more): stale served in (1, 2],
        # past 2 s the entry is revalidated before use.
        origin.set("/swr", cc="max-age=1, stale-while-revalidate=1", delay=0)
        assert env.get("/on/swr").isr == "MISS"
        time.sleep(1.3)
        r = env.get("/on/swr")
        assert r.isr == "STALE", r
        assert "stale-while-revalidate" in cache_status(r), r
        assert origin.wait_count("/swr", 2)
        time.sleep(2.5)
        origin.set("/swr", cc="max-age=1, stale-while-revalidate=1", delay=1.0)
        t0 = time.time()
        r = env.get("/on/swr")
        assert r.isr == "MISS", r
        assert r.body == b"/swr|v=3"
        assert time.time() - t0 >= 0.9  # it waited for the slow origin: no stale answer

    @pytest.mark.parametrize("cc", ["max-age=1, must-revalidate", "max-age=1, proxy-revalidate"])
    def test_810_07_must_revalidate_means_no_stale(self, env, origin, cc):
        p = "/mr-" + cc.split(", ")[1]
        origin.set(p, cc=cc)
        assert env.get("/on" + p).isr == "MISS"
        time.sleep(1.6)
        r = env.get("/on" + p)
        assert (r.isr, r.body) == ("MISS", (p + "|v=2").encode()), r

    def test_810_08_no_cache_revalidated_with_304_counted_at_origin(self, env, origin):
        origin.set("/nc", cc="no-cache", etag='"nc1"')
        r = env.get("/on/nc")
        assert (r.status, r.isr, r.body) == (200, "MISS", b"/nc|v=1"), r
        for i in range(3):
            r = env.get("/on/nc")
            assert r.status == 200, r
            assert r.body == b"/nc|v=1", r  # the stored body, renewed by a 304
            assert r.isr == "REVALIDATED", r
            assert "fwd-status=304" in cache_status(r), r
        assert origin.count("/nc") == 4
        assert origin.count304("/nc") == 3
        last = origin.last("/nc")["headers"]
        assert last.get("If-None-Match") == '"nc1"', last

    def test_810_09_background_refresh_answered_304_sends_no_body(self, env, origin):
        origin.set("/bg", cc="max-age=1", etag='"bg1"', size=20000,
                   header="X-Version:one")
        assert env.get("/on/bg").isr == "MISS"
        sent = origin.bytes_sent()
        time.sleep(1.4)
        origin.set("/bg", cc="max-age=60", etag='"bg1"', size=20000,
                   header="X-Version:two")
        r = env.get("/on/bg")
        assert r.isr == "STALE", r
        assert wait_for(lambda: origin.count304("/bg") == 1)
        assert origin.bytes_sent() == sent  # the 304 carried no body
        r = env.get("/on/bg")
        assert r.isr == "HIT", r
        assert r.body.startswith(b"/bg|v=1"), r.body[:40]
        assert r.headers.get("X-Version") == "two", r  # head updated from the 304
        assert "max-age=60" in r.headers.get("Cache-Control", ""), r
        assert origin.last("/bg")["headers"].get("If-None-Match") == '"bg1"'

    def test_810_10_last_modified_validator(self, env, origin):
        lm = httpdate(time.time() - 3600)
        origin.set("/lm", cc="max-age=1, must-revalidate", lastmod=lm)
        assert env.get("/on/lm").isr == "MISS"
        time.sleep(1.5)
        r = env.get("/on/lm")
        assert (r.isr, r.body) == ("REVALIDATED", b"/lm|v=1"), r
        assert origin.count304("/lm") == 1
        assert origin.last("/lm")["headers"].get("If-Modified-Since") == lm

    def test_810_11_stale_if_error_serves_stale_on_503(self, env, origin):
        isr_env.expect_log(isr_env.ISR_WARN_LOG)
        origin.set("/sie", cc="max-age=1, stale-while-revalidate=0, stale-if-error=60")
        assert env.get("/on/sie").isr == "MISS"
        time.sleep(1.5)
        origin.set("/sie", status=503)
        r = env.get("/on/sie")
        assert (r.status, r.isr, r.body) == (200, "STALE", b"/sie|v=1"), r
        cs = cache_status(r)
        assert "fwd=stale" in cs and "fwd-status=503" in cs and "stale-if-error" in cs, cs

    def test_810_12_no_stale_if_error_gives_the_error(self, env, origin):
        isr_env.expect_log(isr_env.ISR_WARN_LOG, r"AH\d+|ISR00\d\d")
        origin.set("/nosie", cc="max-age=1, must-revalidate")
        assert env.get("/on/nosie").isr == "MISS"
        time.sleep(1.5)
        origin.set("/nosie", status=503)
        r = env.get("/on/nosie")
        assert r.status == 502, r
        assert b"/nosie|v=1" not in r.body

    def test_810_13_targeted_fields_win_and_are_not_sent(self, env, origin):
        origin.set("/cdn", cc="no-store", header=["CDN-Cache-Control:max-age=60"])
        assert env.get("/on/cdn").isr == "MISS"
        r = env.get("/on/cdn")
        assert r.isr == "HIT", r
        assert "CDN-Cache-Control" not in r.headers, r
        assert r.headers.get("Cache-Control") == "no-store"
        origin.set("/isrcc", cc="max-age=60",
                   header=["CDN-Cache-Control:max-age=60", "ISR-Cache-Control:no-store"])
        env.get("/on/isrcc")
        r = env.get("/on/isrcc")
        assert r.isr == "MISS", r  # ISR-Cache-Control: no-store decides
        assert "ISR-Cache-Control" not in r.headers, r
        assert origin.count("/isrcc") == 2

    def test_810_14_no_store_private_set_cookie_never_stored_in_any_mode(self, env, origin):
        for mode in ("on", "off", "strict"):
            for i, knobs in enumerate(({"cc": "no-store"}, {"cc": "private, max-age=60"},
                                       {"cookie": 1, "cc": "max-age=60"})):
                p = "/ns%s%d" % (mode, i)
                origin.set(p, **knobs)
                env.get("/%s%s" % (mode, p))
                r = env.get("/%s%s" % (mode, p))
                assert r.isr == "MISS", (mode, knobs, r)
                assert origin.count(p) == 2

    def test_810_15_strict_has_no_default_ttl(self, env, origin):
        origin.set("/st1")            # no freshness, no validator: not stored
        env.get("/strict/st1")
        assert env.get("/strict/st1").isr == "MISS"
        assert origin.count("/st1") == 2
        origin.set("/st2", cc="max-age=60")
        env.get("/strict/st2")
        assert env.get("/strict/st2").isr == "HIT"
        # heuristic freshness from Last-Modified (10% of its age) in Strict mode
        origin.set("/st3", lastmod=httpdate(time.time() - 36000))
        env.get("/strict/st3")
        assert env.get("/strict/st3").isr == "HIT"

    def test_810_16_strict_stale_only_where_allowed(self, env, origin):
        origin.set("/sts", cc="max-age=1")
        env.get("/strict/sts")
        time.sleep(1.5)
        r = env.get("/strict/sts")
        assert (r.isr, r.body) == ("MISS", b"/sts|v=2"), r
        origin.set("/sts2", cc="max-age=1, stale-while-revalidate=30")
        env.get("/strict/sts2")
        time.sleep(1.5)
        assert env.get("/strict/sts2").isr == "STALE"

    def test_810_17_cache_status_on_hit_miss_and_stale(self, env, origin):
        origin.set("/cs", cc="max-age=40")
        r = env.get("/on/cs")
        cs = cache_status(r)
        assert cs.startswith("mod_isr; fwd=uri-miss"), cs
        assert "fwd-status=200" in cs and "stored" in cs, cs
        r = env.get("/on/cs")
        cs = cache_status(r)
        assert cs.startswith("mod_isr; hit"), cs
        ttl = int(cs.split("ttl=")[1].split(";")[0])
        assert 30 <= ttl <= 40, cs

    def test_810_18_conditional_client_requests_get_304_from_cache(self, env, origin):
        origin.set("/cond", cc="max-age=60", etag='"c1"')
        env.get("/on/cond")
        r = env.get("/on/cond", headers={"If-None-Match": '"c1"'})
        assert r.status == 304, r
        assert origin.count("/cond") == 1


class TestErrors:
    CONF = """
<Location /e/>
    ISRBackend @ORIGIN@/
    ISRErrorTTL 2s
    ISRTimeout 5s
</Location>
"""

    def test_810_20_failing_key_herd_one_origin_request_per_interval(self, env, origin):
        isr_env.expect_log(isr_env.ISR_WARN_LOG, r"ISR003\d")
        origin.set("/fail", status=503, delay=0.3)
        statuses = []
        t0 = time.time()
        for wave in range(3):
            rs = env.concurrent_get(["/e/fail"] * 8)
            statuses += [r.status for r in rs]
        elapsed = time.time() - t0
        assert set(statuses) == {502}, statuses
        # 3 waves within ~1-2 s (well inside one 2 s interval after the first failure) and
        # one request each interval: at most 2 origin requests, never one per client.
        n = origin.count("/fail")
        assert 1 <= n <= 1 + int(elapsed // 2), (n, elapsed)
        time.sleep(2.2)
        origin.set("/fail")
        r = env.get("/e/fail")
        assert (r.status, r.body) == (200, b"/fail|v=%d" % (n + 1)), r


class TestConfig:
    START = False
    CONF = ""
    LOC = """
<Location /app/>
    ISRBackend @ORIGIN@/
    %s
</Location>
"""

    @pytest.mark.parametrize("line,directive,value", [
        ("ISRCacheControl Sometimes", "ISRCacheControl", "Sometimes"),
        ("ISRCacheControl", "ISRCacheControl", None),
        ("ISRErrorTTL soon", "ISRErrorTTL", "soon"),
        ("ISRErrorTTL -1", "ISRErrorTTL", "-1"),
    ], ids=["mode-word", "mode-missing", "error-ttl-word", "error-ttl-negative"])
    def test_810_30_bad_values_refused(self, env, origin, line, directive, value):
        rc, out = env.configtest(self.LOC.replace("@ORIGIN@", origin.url) % line)
        assert rc != 0 and "Syntax OK" not in out, out
        assert "Invalid command" not in out, out
        assert directive in out, out
        if value:
            assert value in out, out

    @pytest.mark.parametrize("line", ["ISRCacheControl Off", "ISRCacheControl strict",
                                      "ISRCacheControl On", "ISRErrorTTL 0",
                                      "ISRErrorTTL 500ms"])
    def test_810_31_good_values(self, env, origin, line):
        rc, out = env.configtest(self.LOC.replace("@ORIGIN@", origin.url) % line)
        assert rc == 0 and "Syntax OK" in out, out
