"""Issue 7, findings 1 and 2: whatever the backend is told is part of the cache key.

The backend gets exactly Host (the backend's), X-Forwarded-Host (the host[:port] httpd resolved
for the request), X-Forwarded-Proto, X-Forwarded-Server (the vhost's ServerName), User-Agent
mod_isr/..., and the client headers named by ISRForwardHeader; no X-Forwarded-For, no Cookie or
Authorization, no client X-Forwarded-*. A forged Host, an absolute-form target, a STALE request
with forged headers, another vhost, another Listen port, another Unix socket: none of them may
make a client get (or refresh into the cache) an answer built for other request data.
"""

import os
import re
import tempfile
import time

import pytest

import isr_env
from conftest import start_checked
from origin import Origin, echoed

ECHO = "X-Forwarded-Host,X-Forwarded-Server,X-Forwarded-Proto,X-Forwarded-For,Cookie"

# What mod_isr may send (curl's own "Accept: */*" is tolerated).
ALLOWED = {"host", "x-forwarded-host", "x-forwarded-proto", "x-forwarded-server", "user-agent",
           "accept"}

# Forged client headers that must never reach the backend.
FORGED = {
    "X-Forwarded-Host": "evil.example",
    "X-Forwarded-For": "203.0.113.66",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Server": "evil.example",
    "X-Real-IP": "203.0.113.66",
    "Forwarded": "for=203.0.113.66;host=evil.example;proto=https",
    "Cookie": "session=attacker",
    "Authorization": "Basic YXR0YWNrZXI6eA==",
    "Accept-Language": "xx",
    "X-Custom": "forged",
}


def host_is(value, host, port=None):
    """X-Forwarded-Host is host, or host:port (either is "the host[:port] httpd resolved")."""
    if value is None:
        return False
    ports = r"(?::%d)?" % port if port else r"(?::\d+)?"
    return re.fullmatch(re.escape(host) + ports, value) is not None


def lower(d):
    return {k.lower(): v for k, v in (d or {}).items()}


def split_body(body):
    """(path?query, version) of an origin body."""
    key, _, rest = body.decode("utf-8", "replace").partition("|v=")
    return key, int(re.match(r"\d+", rest).group(0)) if rest else None


def get_port(port, path, headers=None, timeout=15.0):
    """GET on another port of this machine (a second Listen), as HttpdEnv.request does."""
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    h = {"Connection": "close"}
    h.update(headers or {})
    t0 = time.monotonic()
    try:
        c.request("GET", path, headers=h)
        r = c.getresponse()
        return isr_env.Response(r.status, isr_env.CIDict(r.getheaders()), r.read(),
                                time.monotonic() - t0)
    finally:
        c.close()


class TestForwarding:
    CONF = """
<Location /app/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 60s
</Location>
<Location /st/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 1s
    ISRStaleTTL 1h
    ISRRefreshRetry 30s
</Location>
<Location /canon/>
    UseCanonicalName On
    ISRBackend @ORIGIN@/canon/
</Location>
"""

    def test_700_01_forged_host_gets_its_own_entry(self, env, origin):
        origin.set("/hp", echo=ECHO)
        evil = {"Host": "evil.example"}
        r = env.get("/app/hp", headers=evil)
        assert (r.status, r.isr) == (200, "MISS"), r
        assert host_is(echoed(r.body).get("x-forwarded-host"), "evil.example"), r
        # a normal client must not get the answer built for evil.example
        r = env.get("/app/hp")
        assert r.status == 200, r
        assert r.isr == "MISS", r
        assert b"evil" not in r.body, r
        assert host_is(echoed(r.body).get("x-forwarded-host"), "127.0.0.1", env.port), r
        assert split_body(r.body) == ("/hp", 2), r
        # each host then hits its own entry
        r = env.get("/app/hp", headers=evil)
        assert (r.isr, split_body(r.body)) == ("HIT", ("/hp", 1)), r
        r = env.get("/app/hp")
        assert (r.isr, split_body(r.body)) == ("HIT", ("/hp", 2)), r
        assert origin.count("/hp") == 2

    def test_700_02_absolute_form_target_gets_its_own_entry(self, env, origin):
        origin.set("/ab", echo=ECHO)
        # request line "GET http://evil.example/app/ab HTTP/1.1" with an honest Host header
        hdr = {"Host": "127.0.0.1:%d" % env.port}
        r = env.get("http://evil.example/app/ab", headers=hdr)
        assert (r.status, r.isr) == (200, "MISS"), r
        assert host_is(echoed(r.body).get("x-forwarded-host"), "evil.example"), r
        r = env.get("/app/ab")
        assert (r.status, r.isr) == (200, "MISS"), r
        assert b"evil" not in r.body, r
        assert split_body(r.body) == ("/ab", 2), r
        r = env.get("http://evil.example/app/ab", headers=hdr)
        assert (r.isr, split_body(r.body)) == ("HIT", ("/ab", 1)), r
        r = env.get("/app/ab")
        assert (r.isr, split_body(r.body)) == ("HIT", ("/ab", 2)), r

    def test_700_03_use_canonical_name_on_forwards_the_server_name(self, env, origin):
        origin.set("/canon/cn", echo=ECHO)
        r = env.get("/canon/cn", headers={"Host": "evil.example"})
        assert r.status == 200, r
        xfh = echoed(r.body).get("x-forwarded-host")
        assert host_is(xfh, "127.0.0.1", env.port), r
        r = env.get("/canon/cn")
        assert r.status == 200 and b"evil" not in r.body, r
        assert host_is(echoed(r.body).get("x-forwarded-host"), "127.0.0.1", env.port), r

    def test_700_04_refresh_sends_the_entrys_context_not_the_stale_client(self, env, origin):
        origin.set("/stl", echo=ECHO)
        r = env.get("/st/stl", headers={"Host": "isr.example"})
        assert (r.status, r.isr) == (200, "MISS"), r
        assert host_is(echoed(r.body).get("x-forwarded-host"), "isr.example"), r
        time.sleep(1.3)  # let the 1 s TTL pass
        forged = dict(FORGED, Host="ISR.Example")  # the same host, other casing
        r = env.get("/st/stl", headers=forged)
        assert (r.status, r.isr, split_body(r.body)) == (200, "STALE", ("/stl", 1)), r
        assert origin.wait_count("/stl", 2, timeout=8) == 2
        last = origin.last("/stl")
        h = lower(last["headers"])
        assert "x-forwarded-for" not in h, h
        assert "cookie" not in h and "authorization" not in h, h
        assert "x-real-ip" not in h and "forwarded" not in h and "x-custom" not in h, h
        assert "accept-language" not in h, h
        assert host_is(h.get("x-forwarded-host"), "isr.example"), h
        assert h.get("x-forwarded-proto") == "http", h
        assert h.get("x-forwarded-server") != "evil.example", h
        # the refreshed entry is the clean one
        r = env.wait_status("/st/stl", lambda x: x.isr == "HIT" and split_body(x.body)[1] == 2,
                            deadline=8, headers={"Host": "isr.example"})
        assert (r.isr, split_body(r.body)) == ("HIT", ("/stl", 2)), r
        e = echoed(r.body)
        assert host_is(e.get("x-forwarded-host"), "isr.example"), r
        assert e.get("x-forwarded-for") is None and e.get("cookie") is None, r
        assert e.get("x-forwarded-proto") == "http", r
        assert b"evil" not in r.body and b"203.0.113" not in r.body, r

    def test_700_05_exactly_the_documented_headers_reach_the_backend(self, env, origin):
        r = env.get("/app/exact", headers=FORGED)
        assert (r.status, r.isr) == (200, "MISS"), r
        last = origin.last("/exact")
        h = lower(last["headers"])
        assert set(h) <= ALLOWED, sorted(set(h) - ALLOWED)
        assert h.get("accept", "*/*") == "*/*", h
        assert "x-forwarded-for" not in h, h
        assert h.get("host") == origin.hostport, h
        assert host_is(h.get("x-forwarded-host"), "127.0.0.1", env.port), h
        assert h.get("x-forwarded-proto") == "http", h
        assert host_is(h.get("x-forwarded-server"), "127.0.0.1", env.port), h
        assert h.get("user-agent", "").startswith("mod_isr/"), h

    def test_700_06_client_x_forwarded_for_never_reaches_the_origin(self, env, origin):
        env.get("/app/xff", headers={"X-Forwarded-For": "10.9.8.7"})
        env.get("/app/xff2")
        for p in ("/xff", "/xff2"):
            hist = origin.history(p)
            assert hist, "origin not contacted for %s" % p
            for rec in hist:
                assert "x-forwarded-for" not in lower(rec["headers"]), rec


PORT2 = isr_env.free_port()


class TestVhosts:
    """Name-based vhosts on one port and a vhost on a second Listen port, all in front of the
    same backend URL (and the same ISRCacheKey template)."""
    CONF = """
<VirtualHost 127.0.0.1:@PORT@>
    ServerName a.test
    <Location /app/>
        ISRBackend @ORIGIN@/
    </Location>
    <Location /kv/>
        ISRBackend @ORIGIN@/one/
        ISRCacheKey "%%{REQUEST_URI}"
    </Location>
</VirtualHost>
<VirtualHost 127.0.0.1:@PORT@>
    ServerName b.test
    <Location /app/>
        ISRBackend @ORIGIN@/
    </Location>
    <Location /kv/>
        ISRBackend @ORIGIN@/two/
        ISRCacheKey "%%{REQUEST_URI}"
    </Location>
</VirtualHost>
Listen 127.0.0.1:%d
<VirtualHost 127.0.0.1:%d>
    ServerName p2.test
    <Location /app/>
        ISRBackend @ORIGIN@/
    </Location>
</VirtualHost>
""" % (PORT2, PORT2)

    def test_700_10_name_based_vhosts_do_not_share(self, env, origin):
        origin.set("/vh", echo=ECHO)
        a = env.get("/app/vh", headers={"Host": "a.test"})
        assert (a.status, a.isr, split_body(a.body)) == (200, "MISS", ("/vh", 1)), a
        assert host_is(echoed(a.body).get("x-forwarded-host"), "a.test"), a
        assert echoed(a.body).get("x-forwarded-server") == "a.test", a
        b = env.get("/app/vh", headers={"Host": "b.test"})
        assert b.status == 200, b
        assert b.isr == "MISS", b
        assert split_body(b.body) == ("/vh", 2), b
        assert host_is(echoed(b.body).get("x-forwarded-host"), "b.test"), b
        assert echoed(b.body).get("x-forwarded-server") == "b.test", b
        for host, v in (("a.test", 1), ("b.test", 2)):
            r = env.get("/app/vh", headers={"Host": host})
            assert (r.isr, split_body(r.body)) == ("HIT", ("/vh", v)), (host, r)
        assert origin.count("/vh") == 2

    def test_700_11_second_listen_port_does_not_share(self, env, origin):
        r = env.get("/app/lp", headers={"Host": "a.test"})
        assert (r.status, r.isr, split_body(r.body)) == (200, "MISS", ("/lp", 1)), r
        r = get_port(PORT2, "/app/lp")
        assert r.status == 200, r
        assert r.isr == "MISS", r
        assert split_body(r.body) == ("/lp", 2), r
        r = get_port(PORT2, "/app/lp")
        assert (r.isr, split_body(r.body)) == ("HIT", ("/lp", 2)), r
        r = env.get("/app/lp", headers={"Host": "a.test"})
        assert (r.isr, split_body(r.body)) == ("HIT", ("/lp", 1)), r

    def test_700_12_same_key_template_in_two_vhosts_does_not_collide(self, env, origin):
        a = env.get("/kv/page", headers={"Host": "a.test"})
        assert (a.status, a.isr, a.body) == (200, "MISS", b"/one/page|v=1"), a
        b = env.get("/kv/page", headers={"Host": "b.test"})
        assert b.status == 200, b
        assert b.body == b"/two/page|v=1", b
        assert b.isr == "MISS", b
        assert env.get("/kv/page", headers={"Host": "a.test"}).body == b"/one/page|v=1"
        assert env.get("/kv/page", headers={"Host": "b.test"}).body == b"/two/page|v=1"


class TestForwardHeader:
    CONF = """
<Location /fh/>
    ISRBackend @ORIGIN@/
    ISRForwardHeader Accept-Language
</Location>
"""

    def test_700_20_forwarded_header_reaches_the_origin_and_is_keyed(self, env, origin):
        origin.set("/lang", echo="Accept-Language")
        de, en = {"Accept-Language": "de"}, {"Accept-Language": "en"}
        r = env.get("/fh/lang", headers=de)
        assert (r.status, r.isr, r.body) == (200, "MISS", b"/lang|v=1|Accept-Language=de"), r
        assert lower(origin.last("/lang")["headers"]).get("accept-language") == "de"
        r = env.get("/fh/lang", headers=en)
        assert (r.status, r.isr, r.body) == (200, "MISS", b"/lang|v=2|Accept-Language=en"), r
        r = env.get("/fh/lang")
        assert (r.status, r.isr, r.body) == (200, "MISS", b"/lang|v=3|Accept-Language"), r
        assert "accept-language" not in lower(origin.last("/lang")["headers"])
        for h, body in ((de, b"/lang|v=1|Accept-Language=de"),
                        (en, b"/lang|v=2|Accept-Language=en"),
                        ({}, b"/lang|v=3|Accept-Language")):
            r = env.get("/fh/lang", headers=h)
            assert (r.isr, r.body) == ("HIT", body), (h, r)
        assert origin.count("/lang") == 3

    def test_700_21_oversized_forwarded_header_is_431_without_fetch(self, env, origin):
        isr_env.expect_log(isr_env.ISR_WARN_LOG)
        mark = env.log_mark()
        before = origin.total()
        r = env.get("/fh/big", headers={"Accept-Language": "x" * 5000})
        assert r.status == 431, r
        assert origin.total() == before, "the backend was contacted"
        assert origin.count("/big") == 0
        assert env.wait_log(r"ISR\d{4}: ", since=mark, deadline=5), env.log_dump(mark)
        # a value of 4096 bytes is still fine
        r = env.get("/fh/big", headers={"Accept-Language": "y" * 4096})
        assert (r.status, r.isr) == (200, "MISS"), r


@pytest.fixture(scope="module")
def two_unix_origins():
    d = tempfile.mkdtemp(prefix="isr-unix2-")
    os.chmod(d, 0o755)
    a = Origin(unix=os.path.join(d, "a.sock")).start()
    try:
        b = Origin(unix=os.path.join(d, "b.sock")).start()
    except BaseException:
        a.stop()
        raise
    yield a, b
    a.stop()
    b.stop()
    try:
        os.rmdir(d)
    except OSError:
        pass


def test_700_30_unix_sockets_do_not_share(env_factory, origin, two_unix_origins):
    a, b = two_unix_origins
    a.reset()
    b.reset()
    e = env_factory("unix2", conf="""
<Location /ua/>
    ISRBackend "unix:%s|http://localhost/"
</Location>
<Location /ub/>
    ISRBackend "unix:%s|http://localhost/"
</Location>
""" % (a.unix, b.unix))
    start_checked(e)
    a.set("/same", suffix="|from-a")
    b.set("/same", suffix="|from-b")
    r = e.get("/ua/same")
    assert (r.status, r.isr, r.body) == (200, "MISS", b"/same|v=1|from-a"), r
    r = e.get("/ub/same")
    assert r.status == 200, r
    assert r.body == b"/same|v=1|from-b", r
    assert r.isr == "MISS", r
    assert e.get("/ua/same").body == b"/same|v=1|from-a"
    assert e.get("/ub/same").body == b"/same|v=1|from-b"
    assert (a.count("/same"), b.count("/same")) == (1, 1)
    e.stop()
