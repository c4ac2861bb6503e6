"""ISRMaxObjectSize: larger responses are served complete but not stored."""


def padded(key, v, size):
    head = ("%s|v=%d" % (key, v)).encode()
    return head + b"x" * (size - len(head))


class TestMaxObject:
    CONF = """
<Location /mx/>
    ISRBackend @ORIGIN@/
    ISRMaxObjectSize 10K
</Location>
<Location /mb/>
    ISRBackend @ORIGIN@/
    ISRMaxObjectSize 5000
</Location>
<Location /md/>
    ISRBackend @ORIGIN@/
</Location>
"""

    def test_100_01_larger_served_not_stored(self, env, origin):
        k = "/big?size=20000"
        r = env.get("/mx" + k)
        assert r.status == 200, r
        assert r.body == padded(k, 1, 20000), r
        r = env.get("/mx" + k)
        assert r.status == 200, r
        assert r.isr != "HIT", r
        assert r.body == padded(k, 2, 20000), r
        assert origin.count(k) == 2

    def test_100_02_smaller_stored(self, env, origin):
        k = "/small?size=5000"
        assert env.get("/mx" + k).body == padded(k, 1, 5000)
        r = env.get("/mx" + k)
        assert (r.isr, r.body) == ("HIT", padded(k, 1, 5000)), r

    def test_100_03_larger_chunked_served_complete(self, env, origin):
        k = "/bigc?size=30000&chunked=1"
        for v in (1, 2):
            r = env.get("/mx" + k)
            assert r.status == 200, r
            assert r.body == padded(k, v, 30000), (len(r.body), r)
        assert origin.count(k) == 2

    def test_100_04_default_limit_1m(self, env, origin):
        k = "/huge?size=1100000"
        for v in (1, 2):
            r = env.get("/md" + k)
            assert r.status == 200 and r.body == padded(k, v, 1100000), (len(r.body), r.isr)
        k = "/fits?size=900000"
        assert env.get("/md" + k).body == padded(k, 1, 900000)
        r = env.get("/md" + k)
        assert (r.isr, r.body == padded(k, 1, 900000)) == ("HIT", True), r.isr

    def test_100_05_bare_size_is_bytes(self, env, origin):
        k = "/b6?size=6000"
        env.get("/mb" + k)
        r = env.get("/mb" + k)
        assert (r.isr, r.body) == ("MISS", padded(k, 2, 6000)), r.isr
        k = "/b4?size=4000"
        env.get("/mb" + k)
        r = env.get("/mb" + k)
        assert (r.isr, r.body) == ("HIT", padded(k, 1, 4000)), r.isr
