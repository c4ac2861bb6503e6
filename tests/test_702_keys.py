"""Issue 7, findings 4, 5 and 6: keys and backend URLs built from request data.

4. ISRQuickHandler On computes the same key as the normal path for the same resource, and
   different keys for different resources (/men%C3%BC is not /men%25C3%25BC).
5. ISRCacheKey only adds to the key: it can split entries, never merge requests that the
   backend would answer differently (other query, other backend, a missing header).
6. ISRBackend "expr=...": the client never chooses the host (refused at config time when the
   host is not literal; at run time the evaluated authority, userinfo included, must be the
   literal one); request data spliced into the URL is escaped (isr_urlencode, and a decoded
   space or '#' is percent-encoded), never a 500.
"""

import re
import urllib.parse

import isr_env


def key_of(body):
    """The path?query the origin saw, from its body."""
    return body.decode("utf-8", "replace").partition("|v=")[0]


def version(body):
    m = re.search(rb"\|v=(\d+)", body)
    return int(m.group(1)) if m else None


class TestQuickHandlerKeys:
    CONF = """
<Location /qk/>
    ISRBackend @ORIGIN@/
    ISRQuickHandler On
</Location>
"""

    def _both(self, env, origin, first, second):
        """Request first, second, first, second; each must get its own resource."""
        want = {p: urllib.parse.unquote(p[len("/qk"):]) for p in (first, second)}
        seen = {}
        for p in (first, second, first, second):
            r = env.get(p)
            assert r.status == 200, (p, r)
            got = urllib.parse.unquote(key_of(r.body))
            assert got == want[p], (p, r)
            if p in seen:
                assert (r.isr, r.body) == ("HIT", seen[p]), (p, r)
            else:
                assert r.isr == "MISS", (p, r)
                seen[p] = r.body
        assert seen[first] != seen[second]

    def test_702_01_encoded_and_double_encoded_differ(self, env, origin):
        # the double-encoded one first, then the UTF-8 one
        self._both(env, origin, "/qk/men%25C3%25BC", "/qk/men%C3%BC")

    def test_702_02_other_order(self, env, origin):
        self._both(env, origin, "/qk/caf%C3%A9", "/qk/caf%25C3%25A9")


class TestCacheKeyAdds:
    CONF = """
<Location /ks/>
    ISRBackend @ORIGIN@/
    ISRCacheKey "%{REQUEST_URI}"
</Location>
<Location /k1/>
    ISRBackend @ORIGIN@/one/
    ISRCacheKey "%{QUERY_STRING}"
</Location>
<Location /k2/>
    ISRBackend @ORIGIN@/two/
    ISRCacheKey "%{QUERY_STRING}"
</Location>
<Location /km/>
    ISRBackend @ORIGIN@/
    ISRCacheKey "%{HTTP:X-Missing}"
</Location>
"""

    def test_702_10_key_without_query_still_splits_by_query(self, env, origin):
        r = env.get("/ks/search?q=1")
        assert (r.status, r.isr, r.body) == (200, "MISS", b"/search?q=1|v=1"), r
        r = env.get("/ks/search?q=%3Cscript%3E")
        assert r.status == 200, r
        assert r.body == b"/search?q=%3Cscript%3E|v=1", r
        assert r.isr == "MISS", r
        assert env.get("/ks/search?q=1").body == b"/search?q=1|v=1"
        r = env.get("/ks/search?q=%3Cscript%3E")
        assert (r.isr, r.body) == ("HIT", b"/search?q=%3Cscript%3E|v=1"), r

    def test_702_11_same_template_other_backend_does_not_collide(self, env, origin):
        r = env.get("/k1/x?id=7")
        assert (r.status, r.isr, r.body) == (200, "MISS", b"/one/x?id=7|v=1"), r
        r = env.get("/k2/x?id=7")
        assert r.status == 200, r
        assert r.body == b"/two/x?id=7|v=1", r
        assert r.isr == "MISS", r
        assert env.get("/k1/x?id=7").body == b"/one/x?id=7|v=1"
        assert env.get("/k2/x?id=7").body == b"/two/x?id=7|v=1"

    def test_702_12_missing_header_does_not_merge_urls(self, env, origin):
        r = env.get("/km/a")
        assert (r.status, r.isr, r.body) == (200, "MISS", b"/a|v=1"), r
        r = env.get("/km/b")
        assert r.status == 200, r
        assert r.body == b"/b|v=1", r
        assert r.isr == "MISS", r
        r = env.get("/km/a")
        assert (r.isr, r.body) == ("HIT", b"/a|v=1"), r

    def test_702_13_header_in_key_still_splits(self, env, origin):
        # adding to the key still works as documented: one URL, two header values
        r1 = env.get("/km/c", headers={"X-Missing": "one"})
        r2 = env.get("/km/c", headers={"X-Missing": "two"})
        assert (r1.isr, r1.body) == ("MISS", b"/c|v=1"), r1
        assert (r2.isr, r2.body) == ("MISS", b"/c|v=2"), r2
        assert env.get("/km/c", headers={"X-Missing": "one"}).body == b"/c|v=1"


class TestExprBackend:
    CONF = """
<Location /ex/>
    ISRBackend "expr=@ORIGIN@/x?p=%{REQUEST_URI}"
</Location>
<Location /eh/>
    ISRBackend "expr=http://@ORIGIN_HOSTPORT@%{REQUEST_URI}"
</Location>
"""

    def test_702_20_decoded_space_and_hash_are_encoded(self, env, origin):
        for want in ("MISS", "HIT"):
            r = env.get("/ex/a%20b%23c")
            assert r.status == 200, r
            assert r.isr == want, r
            assert key_of(r.body).lower() == "/x?p=/ex/a%20b%23c", r
        assert origin.count("/x?p=/ex/a%20b%23c") == 1

    def test_702_21_literal_host_template_serves(self, env, origin):
        r = env.get("/eh/page?x=1")
        assert (r.status, r.isr, key_of(r.body)) == (200, "MISS", "/eh/page"), r
        # forged Host and absolute-form target do not move the fetch anywhere else
        r = env.get("/eh/page2", headers={"Host": "evil.example"})
        assert (r.status, key_of(r.body)) == (200, "/eh/page2"), r
        r = env.get("http://evil.example/eh/page3", headers={"Host": "evil.example"})
        assert (r.status, key_of(r.body)) == (200, "/eh/page3"), r


class TestExprAuthority:
    """A template whose literal part ends inside the authority: request data must not extend it
    (a userinfo, another host or port)."""
    CONF = """
<Location /eq/>
    ISRBackend "expr=http://@ORIGIN_HOSTPORT@%{QUERY_STRING}"
</Location>
"""

    def test_702_30_request_cannot_change_the_authority(self, env, origin):
        isr_env.expect_log(isr_env.ISR_WARN_LOG)
        r = env.get("/eq/?/fine")
        assert (r.status, r.body) == (200, b"/fine|v=1"), r
        mark = env.log_mark()
        # -> http://127.0.0.1:P@127.0.0.1:P/evil : same host, but a userinfo was injected
        r = env.get("/eq/?@%s/evil" % origin.hostport)
        assert r.status == 502, r
        assert origin.count("/evil") == 0
        assert env.wait_log(r"ISR\d{4}: ", since=mark, deadline=5), env.log_dump(mark)
        r = env.get("/eq/?@%s/evil" % origin.hostport)
        assert r.status == 502, r
        assert origin.count("/evil") == 0


class TestUrlencode:
    CONF = """
<Location /app/>
    ISRBackend "expr=@ORIGIN@/render?path=%{isr_urlencode:%{REQUEST_URI}}"
</Location>
"""

    def test_702_40_urlencoded_path_is_one_parameter(self, env, origin):
        r = env.get("/app/a%26b=c%23d")
        assert (r.status, r.isr) == (200, "MISS"), r
        k = key_of(r.body)
        path, _, query = k.partition("?")
        assert path == "/render", r
        assert urllib.parse.parse_qs(query) == {"path": ["/app/a&b=c#d"]}, k
        for esc in ("%26", "%3d", "%23"):
            assert esc in query.lower(), k
        r = env.get("/app/a%26b=c%23d")
        assert (r.isr, key_of(r.body)) == ("HIT", k), r

    def test_702_41_urlencode_keeps_unreserved_and_slash(self, env, origin):
        r = env.get("/app/A-z_0.9~/x%20y%C3%BC")
        assert r.status == 200, r
        k = key_of(r.body)
        assert k.startswith("/render?path=/app/A-z_0.9~/x"), k
        assert k[len("/render?path=/app/A-z_0.9~/x"):].lower() == "%20y%c3%bc", k
