"""Conditional requests are answered by mod_isr from a stored 200 (ETag / Last-Modified), with
304 and no body, and never reach the backend."""


class TestConditional:
    CONF = """
<Location /c/>
    ISRBackend @ORIGIN@/
</Location>
"""

    def test_135_01_if_none_match(self, env, origin):
        origin.set("/e", header='ETag:"abc"')
        r = env.get("/c/e")
        assert (r.status, r.isr, r.headers.get("ETag")) == (200, "MISS", '"abc"'), r
        r = env.get("/c/e", headers={"If-None-Match": '"abc"'})
        assert r.status == 304 and r.body == b"", r
        assert r.headers.get("ETag") == '"abc"', r
        r = env.get("/c/e", headers={"If-None-Match": '"other"'})
        assert (r.status, r.isr, r.body) == (200, "HIT", b"/e|v=1"), r
        assert origin.count("/e") == 1

    def test_135_02_if_modified_since(self, env, origin):
        lm = "Wed, 21 Oct 2015 07:28:00 GMT"
        origin.set("/m", header="Last-Modified:" + lm)
        assert env.get("/c/m").status == 200
        r = env.get("/c/m", headers={"If-Modified-Since": lm})
        assert r.status == 304, r
        r = env.get("/c/m", headers={"If-Modified-Since": "Tue, 20 Oct 2015 07:28:00 GMT"})
        assert (r.status, r.body) == (200, b"/m|v=1"), r
        assert origin.count("/m") == 1
