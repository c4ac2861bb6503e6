"""ISRCacheZone + ISRCache: zones isolate entries; a full zone evicts, never fails."""


class TestZones:
    CONF = """
ISRCacheZone z1 2M
ISRCacheZone z2 2M
ISRCacheZone zsmall 1M
<Location /z1/>
    ISRBackend @ORIGIN@/
    ISRCache z1
    ISRCacheKey "shared-key"
</Location>
<Location /z1b/>
    ISRBackend @ORIGIN@/other/
    ISRCache z1
    ISRCacheKey "shared-key"
</Location>
<Location /z2/>
    ISRBackend @ORIGIN@/
    ISRCache z2
    ISRCacheKey "shared-key"
</Location>
<Location /dflt/>
    ISRBackend @ORIGIN@/
    ISRCacheKey "shared-key"
</Location>
<Location /zs/>
    ISRBackend @ORIGIN@/
    ISRCache zsmall
</Location>
"""

    def test_050_01_zones_isolate(self, env, origin):
        r = env.get("/z1/a")
        assert (r.isr, r.body) == ("MISS", b"/a|v=1"), r
        r = env.get("/z2/a")       # other zone, same backend request, same key template
        assert (r.isr, r.body) == ("MISS", b"/a|v=2"), r
        r = env.get("/dflt/a")     # the default zone
        assert (r.isr, r.body) == ("MISS", b"/a|v=3"), r
        assert env.get("/z2/a").body == b"/a|v=2"
        assert env.get("/z1/a").body == b"/a|v=1"
        assert env.get("/dflt/a").body == b"/a|v=3"
        assert origin.count("/a") == 3

    def test_050_01b_same_key_template_other_backend(self, env, origin):
        # One zone, one ISRCacheKey template, another backend: the template only adds to
        # the key, so the other backend's request is its own entry.
        r = env.get("/z1/b")
        assert (r.isr, r.body) == ("MISS", b"/b|v=1"), r
        r = env.get("/z1b/b")
        assert (r.isr, r.body) == ("MISS", b"/other/b|v=1"), r
        assert env.get("/z1/b").body == b"/b|v=1"
        assert env.get("/z1b/b").body == b"/other/b|v=1"

    def test_050_02_full_zone_evicts(self, env, origin):
        # 30 x 100 KB into a 1 MB zone: every answer complete and correct, newest entry cached
        for i in range(30):
            p = "/big%d?size=100000" % i
            r = env.get("/zs" + p)
            assert r.status == 200, r
            assert len(r.body) == 100000, r
            assert r.body.startswith(("%s|v=" % p).encode()), r
        r = env.get("/zs/big29?size=100000")
        assert r.isr == "HIT", r
        head = b"/big29?size=100000|v=1"
        assert r.body == head + b"x" * (100000 - len(head)), r
        for i in range(30):
            p = "/big%d?size=100000" % i
            r = env.get("/zs" + p)
            assert r.status == 200 and len(r.body) == 100000, r
            assert r.body.startswith(("%s|v=" % p).encode()), r

    def test_050_03_many_keys_overflow_buckets(self, env, origin):
        # far more small keys than a 1M zone has slots: every answer right, newest cached
        import threading
        bad = []

        def run(t):
            for i in range(t, 1600, 4):
                p = "/n%d" % i
                r = env.get("/zs" + p)
                if r.status != 200 or not r.body.startswith((p + "|v=").encode()) \
                        or not r.body[len(p) + 3:].isdigit():
                    bad.append((p, str(r)))
        ts = [threading.Thread(target=run, args=(t,), daemon=True) for t in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        assert not bad, bad[:10]
        r = env.get("/zs/n1599")
        assert (r.isr, r.body) == ("HIT", b"/n1599|v=1"), r
