"""README "What is stored": methods, statuses, hop-by-hop headers, uncacheable responses,
headers sent to the backend, Age."""

import time

import isr_env


def lower(d):
    return {k.lower(): v for k, v in (d or {}).items()}


class TestStored:
    FILES = {"htdocs/s/form.txt": "FORM-STATIC\n"}
    CONF = """
# These tests re-request right after a failure: without ISRErrorTTL's memory of it.
ISRErrorTTL 0
<Location /s/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 60s
</Location>
<Location /sa/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 1s
    ISRStaleTTL 1h
</Location>
"""

    # -- methods
    def test_130_01_other_methods_are_proxied_not_stored(self, env, origin):
        # (ISRApply response: other methods go to the backend, see tests/test_800_proxy.py)
        r = env.post("/s/form.txt")
        assert (r.status, r.isr, r.body) == (200, "PROXY", b"/form.txt|v=1"), r
        r = env.request("/s/form.txt", method="PUT", body=b"x")
        assert (r.status, r.isr, r.body) == (200, "PROXY", b"/form.txt|v=2"), r
        r = env.get("/s/form.txt")
        assert (r.isr, r.body) == ("MISS", b"/form.txt|v=3"), r

    def test_130_02_head_miss_fetches_with_get(self, env, origin):
        r = env.head("/s/h1")
        assert (r.status, r.isr, r.body) == (200, "MISS", b""), r
        last = origin.last("/h1")
        assert last and last["method"] == "GET", last
        r = env.get("/s/h1")
        assert (r.status, r.isr, r.body) == (200, "HIT", b"/h1|v=1"), r
        r = env.head("/s/h1")
        assert (r.status, r.isr, r.body) == (200, "HIT", b""), r
        assert origin.count("/h1") == 1

    # -- statuses
    def test_130_03_5xx_not_stored(self, env, origin):
        isr_env.expect_log(isr_env.ISR_WARN_LOG)
        origin.set("/e5", status=503)
        assert env.get("/s/e5").status == 502
        assert env.get("/s/e5").status == 502
        assert origin.count("/e5") == 2
        origin.set("/e5")
        r = env.get("/s/e5")
        assert (r.status, r.isr, r.body) == (200, "MISS", b"/e5|v=3"), r

    def test_130_04_404_stored(self, env, origin):
        origin.set("/nf", status=404)
        r = env.get("/s/nf")
        assert (r.status, r.isr, r.body) == (404, "MISS", b"/nf|v=1"), r
        r = env.get("/s/nf")
        assert (r.status, r.isr, r.body) == (404, "HIT", b"/nf|v=1"), r
        assert origin.count("/nf") == 1

    def test_130_05_redirect_stored_with_headers(self, env, origin):
        origin.set("/mv", status=301, header="Location:http://elsewhere.example/target")
        for want in ("MISS", "HIT"):
            r = env.get("/s/mv")
            assert (r.status, r.isr) == (301, want), r
            assert r.headers.get("Location") == "http://elsewhere.example/target", r
        assert origin.count("/mv") == 1

    # -- headers
    def test_130_06_hop_by_hop_dropped_end_to_end_kept(self, env, origin):
        origin.set("/hop", header=["X-E2E:kept", "Connection:X-Hop", "X-Hop:secret",
                                   "Keep-Alive:timeout=77", "Proxy-Foo:bar", "Trailer:X-T",
                                   "Upgrade:isr-test/1", "Content-Language:de"])
        for want in ("MISS", "HIT"):
            r = env.get("/s/hop")
            assert (r.status, r.isr, r.body) == (200, want, b"/hop|v=1"), r
            h = r.headers
            assert h.get("X-E2E") == "kept", r
            assert h.get("Content-Language") == "de", r
            assert "X-Hop" not in h, r
            assert "Proxy-Foo" not in h, r
            assert "Trailer" not in h, r
            assert "Upgrade" not in h, r
            assert "77" not in h.get("Keep-Alive", ""), r
            assert "x-hop" not in h.get("Connection", "").lower(), r

    def test_130_07_chunked_backend(self, env, origin):
        for want in ("MISS", "HIT"):
            r = env.get("/s/ch?chunked=1")
            assert (r.status, r.isr, r.body) == (200, want, b"/ch?chunked=1|v=1"), r

    # -- uncacheable responses
    def _uncacheable(self, env, origin, path, **knobs):
        origin.set(path, **knobs)
        r = env.get("/s" + path)
        assert (r.status, r.body) == (200, (path + "|v=1").encode()), r
        first = r
        for v in (2, 3):
            r = env.get("/s" + path)
            assert r.status == 200, r
            assert r.isr != "HIT", r
            assert r.body == (path + "|v=%d" % v).encode(), r
        assert origin.count(path) == 3
        return first

    def test_130_08_set_cookie_not_stored(self, env, origin):
        r = self._uncacheable(env, origin, "/ck", cookie=1)
        assert "isr_test=1" in r.headers.get("Set-Cookie", ""), r

    def test_130_09_cc_private_not_stored(self, env, origin):
        r = self._uncacheable(env, origin, "/ccp", cc="private, max-age=30")
        assert "private" in r.headers.get("Cache-Control", ""), r

    def test_130_10_cc_no_store_not_stored(self, env, origin):
        self._uncacheable(env, origin, "/ccn", cc="no-store")

    def test_130_11_cc_public_is_stored(self, env, origin):
        origin.set("/ccpub", cc="public, max-age=5")
        env.get("/s/ccpub")
        r = env.get("/s/ccpub")
        assert (r.isr, r.body) == ("HIT", b"/ccpub|v=1"), r

    def test_130_12_uncacheable_waiters_released_at_once(self, env, origin):
        origin.set("/ckw", cookie=1, delay=1)
        rs = env.concurrent_get(["/s/ckw"] * 8)
        assert all(r.status == 200 for r in rs), [str(r) for r in rs]
        assert all(r.body.startswith(b"/ckw|v=") for r in rs), [str(r) for r in rs]
        # one by one would take 8 x 1s
        assert max(r.elapsed for r in rs) < 3.5, [str(r) for r in rs]

    # -- request to the backend
    def test_130_13_forwarded_headers_no_credentials(self, env, origin):
        env.get("/s/fw", headers={"Host": "myhost.example", "Cookie": "session=secret",
                                  "Authorization": "Basic dXNlcjpwYXNz"})
        last = origin.last("/fw")
        assert last, "origin not contacted"
        h = lower(last["headers"])
        # Only what is in the key reaches the backend: no client address (one answer for
        # every client), the host and port as httpd resolved them.
        assert "x-forwarded-for" not in h, h
        assert h.get("x-forwarded-host") == "myhost.example:%d" % env.port, h
        assert h.get("x-forwarded-proto") == "http", h
        assert h.get("x-forwarded-server"), h
        assert h.get("host") == origin.hostport, h
        assert "cookie" not in h, h
        assert "authorization" not in h, h

    # -- Age
    def test_130_14_age_on_hit_and_stale(self, env, origin):
        r = env.get("/sa/age")
        assert r.isr == "MISS"
        r = env.get("/sa/age")
        assert r.isr == "HIT" and r.headers.get("Age", "").isdigit(), r
        time.sleep(1.2)
        r = env.get("/sa/age")
        assert r.isr == "STALE", r
        assert r.headers.get("Age", "").isdigit() and int(r.headers["Age"]) >= 1, r
        r = env.wait_status("/sa/age", "HIT", deadline=5)
        assert r.body == b"/age|v=2", r
        assert int(r.headers.get("Age", "99")) <= 1, r  # the refreshed entry is young again

    # -- sizes of keys and headers (nothing from the network is trusted for lengths)
    def test_130_15_long_key(self, env, origin):
        q = "/long?" + "a" * 6000
        for want in ("MISS", "HIT"):
            r = env.get("/s" + q)
            assert (r.status, r.isr, r.body) == (200, want, (q + "|v=1").encode()), r.isr
        # a key differing only in its last byte is another entry
        q2 = q[:-1] + "b"
        r = env.get("/s" + q2)
        assert (r.isr, r.body) == ("MISS", (q2 + "|v=1").encode()), r.isr

    def test_130_16_many_headers_replayed(self, env, origin):
        hdrs = ["X-H%02d:value-%02d" % (i, i) for i in range(40)]
        origin.set("/mh", header=hdrs)
        for want in ("MISS", "HIT"):
            r = env.get("/s/mh")
            assert (r.status, r.isr, r.body) == (200, want, b"/mh|v=1"), r
            for i in range(40):
                assert r.headers.get("X-H%02d" % i) == "value-%02d" % i, r

    def test_130_17_long_header_value(self, env, origin):
        val = "v" * 6000
        origin.set("/lh", header="X-Long:" + val)
        for want in ("MISS", "HIT"):
            r = env.get("/s/lh")
            assert (r.status, r.isr, r.body) == (200, want, b"/lh|v=1"), r.isr
            assert r.headers.get("X-Long") == val

    def test_130_18_binary_body(self, env, origin):
        want_body = b"/bin|v=1" + bytes(range(256))
        origin.set("/bin", binary=1)
        for want in ("MISS", "HIT"):
            r = env.get("/s/bin")
            assert (r.status, r.isr, r.body) == (200, want, want_body), r

    def test_130_19_204_stored(self, env, origin):
        origin.set("/nc", status=204)
        for want in ("MISS", "HIT"):
            r = env.get("/s/nc")
            assert (r.status, r.isr, r.body) == (204, want, b""), r
        assert origin.count("/nc") == 1

    def test_130_20_410_stored(self, env, origin):
        origin.set("/gone", status=410)
        for want in ("MISS", "HIT"):
            r = env.get("/s/gone")
            assert (r.status, r.isr, r.body) == (410, want, b"/gone|v=1"), r

    def test_130_21_encoded_path_forwarded_as_is(self, env, origin):
        for want in ("MISS", "HIT"):
            r = env.get("/s/a%20b?x=%41")  # (no %2F: core answers 404, AllowEncodedSlashes)
            assert (r.status, r.isr, r.body) == (200, want, b"/a%20b?x=%41|v=1"), r

    def test_130_22_truncated_body_is_a_failure(self, env, origin):
        # Content-Length announced, half the body sent, connection closed: never stored
        isr_env.expect_log(isr_env.ISR_WARN_LOG)
        origin.set("/trunc", truncate=1, size=4000)
        r = env.get("/s/trunc")
        assert r.status == 502, r
        origin.set("/trunc", size=4000)
        r = env.get("/s/trunc")
        assert (r.status, r.isr, len(r.body)) == (200, "MISS", 4000), r
        assert r.body.startswith(b"/trunc|v=2"), r

    def test_130_23_uncacheable_marker_expires_after_ttl(self, env, origin):
        origin.set("/ckt", cookie=1)
        assert env.get("/sa/ckt").status == 200
        origin.set("/ckt")            # cacheable from now on
        time.sleep(1.2)               # one ISRCacheTTL of going straight to the backend
        r = env.get("/sa/ckt")
        assert r.status == 200 and r.body.startswith(b"/ckt|v="), r
        r2 = env.get("/sa/ckt")
        assert (r2.isr, r2.body) == ("HIT", r.body), r2
