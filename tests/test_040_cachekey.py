"""ISRCacheKey: URLs that map to one key share an entry; a header in the key splits it."""


class TestCacheKey:
    CONF = """
<Location /k/>
    ISRBackend @ORIGIN@/
    ISRCacheKey "%{REQUEST_URI}"
</Location>
<Location /kl/>
    ISRBackend @ORIGIN@/
    ISRCacheKey "%{REQUEST_URI}|%{HTTP:Accept-Language}"
</Location>
"""

    def test_040_01_two_urls_one_key(self, env, origin):
        a = env.get("/k/a?x=1")
        assert (a.status, a.isr, a.body) == (200, "MISS", b"/a?x=1|v=1"), a
        b = env.get("/k/a?x=2")
        assert (b.status, b.isr, b.body) == (200, "HIT", b"/a?x=1|v=1"), b
        assert origin.count("/a?x=2") == 0
        assert origin.count("/a?x=1") == 1

    def test_040_02_header_in_key(self, env, origin):
        de = {"Accept-Language": "de"}
        en = {"Accept-Language": "en"}
        r = env.get("/kl/b", headers=de)
        assert (r.isr, r.body) == ("MISS", b"/b|v=1"), r
        r = env.get("/kl/b", headers=en)
        assert (r.isr, r.body) == ("MISS", b"/b|v=2"), r
        r = env.get("/kl/b", headers=de)
        assert (r.isr, r.body) == ("HIT", b"/b|v=1"), r
        r = env.get("/kl/b", headers=en)
        assert (r.isr, r.body) == ("HIT", b"/b|v=2"), r
        assert origin.count("/b") == 2
