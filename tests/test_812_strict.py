"""Issue 8: ISRCacheControl Strict, an RFC 9111 shared cache in front of an origin the operator
does not control: the client's end-to-end headers reach the origin and Vary decides who shares
what (one entry per variant, Accept-Encoding normalised, found through the URL's marker without a
scan); Authorization and Cookie per RFC 9111 3.5; the request's Cache-Control honoured; origin
5xx relayed as they are.
"""

import time

import pytest

import isr_env
from isr_env import cache_status, httpdate, wait_for  # noqa: F401
from origin import echoed



class TestStrict:
    CONF = """
<Location /s/>
    ISRBackend @ORIGIN@/
    ISRCacheControl Strict
    ISRTimeout 5s
</Location>
"""

    def test_812_01_vary_accept_language_one_entry_per_language(self, env, origin):
        origin.set("/lang", cc="max-age=60", header="Vary:Accept-Language",
                   echo="Accept-Language")
        seen = {}
        for lang in ("en", "fr", "en", "fr", "de", "en"):
            r = env.get("/s/lang", headers={"Accept-Language": lang})
            assert r.status == 200, r
            assert echoed(r.body)["accept-language"] == lang, r
            seen.setdefault(lang, r.body)
            assert r.body == seen[lang], r          # the same stored variant every time
        assert origin.count("/lang") == 3           # en, fr, de: one fetch each
        r = env.get("/s/lang")                      # no Accept-Language: its own variant
        assert echoed(r.body)["accept-language"] is None, r
        assert origin.count("/lang") == 4

    def test_812_02_accept_encoding_variants_normalised(self, env, origin):
        origin.set("/enc", cc="max-age=60", header="Vary:Accept-Encoding",
                   echo="Accept-Encoding")
        a = env.get("/s/enc", headers={"Accept-Encoding": "gzip, deflate, br"})
        b = env.get("/s/enc", headers={"Accept-Encoding": "br;q=0.9, gzip"})
        c = env.get("/s/enc", headers={"Accept-Encoding": "gzip"})
        d = env.get("/s/enc", headers={"Accept-Encoding": "gzip;q=1, deflate"})
        e = env.get("/s/enc", headers={"Accept-Encoding": "identity"})
        assert a.body == b.body and c.body == d.body, (a, b, c, d)
        assert echoed(a.body)["accept-encoding"] == "br,gzip"   # sent as it is keyed
        assert echoed(c.body)["accept-encoding"] == "gzip"
        assert echoed(e.body)["accept-encoding"] == "identity"
        assert origin.count("/enc") == 3

    def test_812_03_vary_star_not_stored(self, env, origin):
        origin.set("/star", cc="max-age=60", header="Vary:*")
        env.get("/s/star")
        r = env.get("/s/star")
        assert r.body == b"/star|v=2", r

    def test_812_04_client_headers_forwarded_hop_by_hop_not(self, env, origin):
        origin.set("/fw", cc="no-store")
        env.get("/s/fw", headers={"X-Custom": "a", "Connection": "X-Hop", "X-Hop": "1",
                                  "If-None-Match": '"x"', "Cache-Control": "max-age=5",
                                  "X-Forwarded-For": "6.6.6.6", "User-Agent": "t/1"})
        h = {k.lower(): v for k, v in origin.last("/fw")["headers"].items()}
        assert h.get("x-custom") == "a", h
        assert h.get("user-agent") == "t/1", h
        for gone in ("x-hop", "if-none-match", "cache-control"):
            assert gone not in h, h
        assert h.get("x-forwarded-for") != "6.6.6.6", h
        assert "x-forwarded-host" in h, h

    def test_812_05_authorization_stored_only_when_the_answer_says_so(self, env, origin):
        origin.set("/auth", cc="max-age=60")
        env.get("/s/auth", headers={"Authorization": "Basic YTpi"})
        r = env.get("/s/auth")
        assert r.body == b"/auth|v=2", r            # the authorized answer was not shared
        origin.set("/authp", cc="public, max-age=60")
        env.get("/s/authp", headers={"Authorization": "Basic YTpi"})
        r = env.get("/s/authp")
        assert r.body == b"/authp|v=1", r           # public: shared
        origin.set("/cookie", cc="max-age=60")
        env.get("/s/cookie", headers={"Cookie": "session=1"})
        r = env.get("/s/cookie")
        assert r.body == b"/cookie|v=2", r

    def test_812_06_request_cache_control(self, env, origin):
        origin.set("/rcc", cc="max-age=60", etag='"r1"')
        env.get("/s/rcc")
        assert env.get("/s/rcc").body == b"/rcc|v=1"
        r = env.get("/s/rcc", headers={"Cache-Control": "no-cache"})
        assert r.status == 200 and r.body == b"/rcc|v=1", r
        assert origin.count304("/rcc") == 1          # revalidated, renewed by a 304
        time.sleep(1.1)
        env.get("/s/rcc", headers={"Cache-Control": "max-age=0"})
        assert origin.count304("/rcc") == 2
        env.get("/s/rcc", headers={"Cache-Control": "min-fresh=3600"})
        assert origin.count304("/rcc") == 3
        env.get("/s/rcc", headers={"Pragma": "no-cache"})
        assert origin.count304("/rcc") == 4
        assert env.get("/s/rcc", headers={"Cache-Control": "max-age=3600"}).isr == "HIT"
        assert origin.count("/rcc") == 5

    def test_812_07_only_if_cached_and_no_store(self, env, origin):
        r = env.get("/s/oic", headers={"Cache-Control": "only-if-cached"})
        assert r.status == 504, r
        assert origin.count("/oic") == 0
        origin.set("/ns", cc="max-age=60")
        env.get("/s/ns", headers={"Cache-Control": "no-store"})
        r = env.get("/s/ns")
        assert r.body == b"/ns|v=2", r              # the no-store exchange was not stored
        r = env.get("/s/ns", headers={"Cache-Control": "only-if-cached"})
        assert (r.status, r.body) == (200, b"/ns|v=2"), r

    def test_812_08_origin_5xx_relayed_as_is(self, env, origin):
        origin.set("/five", status=503, header="Retry-After:7")
        r = env.get("/s/five")
        assert r.status == 503, r
        assert r.body == b"/five|v=1", r
        assert r.headers.get("Retry-After") == "7", r

    def test_812_09_variant_refresh_replays_the_variant(self, env, origin):
        origin.set("/vr", cc="max-age=1, stale-while-revalidate=30",
                   header="Vary:Accept-Language", echo="Accept-Language,X-Trigger")
        env.get("/s/vr", headers={"Accept-Language": "fr"})
        time.sleep(1.4)
        r = env.get("/s/vr", headers={"Accept-Language": "fr", "X-Trigger": "evil"})
        assert r.isr == "STALE", r
        assert origin.wait_count("/vr", 2)
        last = {k.lower(): v for k, v in origin.last("/vr")["headers"].items()}
        assert last.get("accept-language") == "fr", last
        assert "x-trigger" not in last, last       # the triggering client's own header: not sent
        r = env.get("/s/vr", headers={"Accept-Language": "fr"})
        assert echoed(r.body) == {"accept-language": "fr", "x-trigger": None}, r

    def test_812_10_invalidating_the_url_drops_every_variant(self, env, origin):
        origin.set("/inv", cc="max-age=60", header="Vary:Accept-Language")
        for lang in ("en", "fr"):
            env.get("/s/inv", headers={"Accept-Language": lang})
        assert origin.count("/inv") == 2
        origin.set("/inv", cc="max-age=60", header="Vary:Accept-Language", status=200)
        r = env.post("/s/inv")
        assert r.status == 200, r
        n = origin.count("/inv")
        for lang in ("en", "fr"):
            r = env.get("/s/inv", headers={"Accept-Language": lang})
            assert r.body == b"/inv|v=%d" % (n + 1), (lang, r)
            n += 1

    def test_812_11_a_changed_vary_converges(self, env, origin):
        origin.set("/chg", cc="max-age=60", header="Vary:Accept-Language", echo="X-Dev")
        env.get("/s/chg", headers={"Accept-Language": "en"})
        origin.set("/chg", cc="max-age=60", header="Vary:X-Dev", echo="X-Dev")
        for i in range(4):
            env.get("/s/chg", headers={"Accept-Language": "de", "X-Dev": "phone"})
            time.sleep(0.6)
        base = origin.count("/chg")
        a = env.get("/s/chg", headers={"X-Dev": "phone"})
        b = env.get("/s/chg", headers={"X-Dev": "tv"})
        c = env.get("/s/chg", headers={"X-Dev": "phone", "Accept-Language": "xx"})
        assert echoed(a.body)["x-dev"] == "phone" and echoed(b.body)["x-dev"] == "tv"
        assert a.body == c.body, (a, c)            # keyed by X-Dev now, not Accept-Language
        assert origin.count("/chg") <= base + 1

    def test_812_12_waiters_of_a_varied_miss(self, env, origin):
        origin.set("/herd", cc="max-age=60", header="Vary:Accept-Language", delay=0.5)
        rs = env.concurrent_get(["/s/herd"] * 6, headers={"Accept-Language": "en"})
        assert {r.status for r in rs} == {200}, rs
        assert len({r.body for r in rs}) == 1, rs
        assert origin.count("/herd") == 1
