"""ISRCacheKey only adds to the key: it splits entries (a header in the key), never merges two
requests the backend is told apart (the backend URL, the forwarded context stay in the key)."""


class TestCacheKey:
    CONF = """
<Location /k/>
    ISRBackend @ORIGIN@/
    ISRCacheKey "%{REQUEST_URI}"
</Location>
<Location /d1/>
    ISRBackend @ORIGIN@/same/
</Location>
<Location /d2/>
    ISRBackend @ORIGIN@/same/
</Location>
<Location /kl/>
    ISRBackend @ORIGIN@/
    ISRCacheKey "%{REQUEST_URI}|%{HTTP:Accept-Language}"
</Location>
"""

    def test_040_01_key_template_never_merges(self, env, origin):
        # "%{REQUEST_URI}" leaves the query out, but the backend URL (query included) is
        # still in the key: ?x=2 must not get the answer to ?x=1.
        a = env.get("/k/a?x=1")
        assert (a.status, a.isr, a.body) == (200, "MISS", b"/a?x=1|v=1"), a
        b = env.get("/k/a?x=2")
        assert (b.status, b.isr, b.body) == (200, "MISS", b"/a?x=2|v=1"), b
        assert (env.get("/k/a?x=1").isr, env.get("/k/a?x=2").isr) == ("HIT", "HIT")
        assert origin.count("/a?x=2") == 1
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

    def test_040_03_default_key_is_backend_url(self, env, origin):
        # two Locations resolving to the same backend URL share the entry
        r = env.get("/d1/x?q=1")
        assert (r.isr, r.body) == ("MISS", b"/same/x?q=1|v=1"), r
        r = env.get("/d2/x?q=1")
        assert (r.isr, r.body) == ("HIT", b"/same/x?q=1|v=1"), r
        r = env.get("/d2/x?q=2")
        assert (r.isr, r.body) == ("MISS", b"/same/x?q=2|v=1"), r
