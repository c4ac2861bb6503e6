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


class TestRelay:
    """Bodies above ISRMaxObjectSize are relayed to the client as they arrive (not held in
    memory whole); one that breaks off reaches the client truncated, never complete-looking."""
    CONF = """
<Location /rl/>
    ISRBackend @ORIGIN@/
    ISRMaxObjectSize 8K
</Location>
"""

    def test_100_10_relayed_while_arriving(self, env, origin):
        # The origin sends the body in 10 parts over 2 s: the first bytes reach the client
        # long before the last ones leave the origin.
        import http.client
        import time
        origin.set("/slow", size=200000, trickle=2)
        c = http.client.HTTPConnection("127.0.0.1", env.port, timeout=20)
        t0 = time.monotonic()
        c.request("GET", "/rl/slow")
        r = c.getresponse()
        first = r.read(1000)
        t_first = time.monotonic() - t0
        rest = r.read()
        t_all = time.monotonic() - t0
        c.close()
        body = first + rest
        assert r.status == 200 and r.getheader("X-ISR-Status") == "MISS"
        assert len(body) == 200000 and body.startswith(b"/slow|v=1"), len(body)
        assert t_first < t_all - 0.5, (t_first, t_all)
        assert origin.count("/slow") == 1

    def test_100_11_broken_relay_is_truncated(self, env, origin):
        import isr_env
        isr_env.expect_log(isr_env.ISR_WARN_LOG)
        origin.set("/cut", size=100000, truncate=1)
        r = env.get("/rl/cut")
        # Either the status is 502 (nothing relayed yet) or the body is visibly incomplete.
        assert r.status in (0, 502), r
        origin.set("/cut", size=100000)
        r = env.get("/rl/cut")
        assert (r.status, len(r.body)) == (200, 100000), r
        assert r.body.startswith(b"/cut|v=2"), r


class TestRelayTimeouts:
    CONF = """
<Location /rt/>
    ISRBackend @ORIGIN@/
    ISRMaxObjectSize 8K
    ISRTimeout 2s
</Location>
"""

    def test_100_20_relay_longer_than_timeout_while_data_flows(self, env, origin):
        # 10 parts over 4 s: longer than ISRTimeout in total, never 2 s without data.
        origin.set("/flow", size=100000, trickle=4)
        r = env.get("/rt/flow", timeout=20)
        assert (r.status, len(r.body)) == (200, 100000), r
        assert r.body.startswith(b"/flow|v=1"), r

    def test_100_21_head_of_a_relayed_body(self, env, origin):
        origin.set("/hb", size=100000, trickle=4)
        r = env.head("/rt/hb", timeout=20)
        assert (r.status, r.isr, r.body) == (200, "MISS", b""), r
        assert r.elapsed < 3.5, r     # the whole body is not awaited
