"""ISRBackend: prefix mapping (with query), whole path outside <Location>, expr=, unix: sockets,
and the Host header sent to the backend."""


class TestBackend:
    FILES = {"htdocs/dir/page.html": "STATIC\n"}
    CONF = """
<Location /pfx/>
    ISRBackend @ORIGIN@/base/
</Location>
<Directory "@ROOT@/htdocs/dir">
    ISRBackend @ORIGIN@/whole
</Directory>
<Location /ex/>
    ISRBackend "expr=@ORIGIN@/render?path=%{REQUEST_URI}"
</Location>
<Location /ux/>
    ISRBackend "unix:@UNIX@|http://localhost/sock/"
</Location>
"""

    def test_020_01_prefix_replaced_query_kept(self, env, origin):
        r = env.get("/pfx/a/b?x=1&y=2")
        assert (r.status, r.isr, r.body) == (200, "MISS", b"/base/a/b?x=1&y=2|v=1"), r
        r = env.get("/pfx/a/b?x=1&y=2")
        assert (r.status, r.isr, r.body) == (200, "HIT", b"/base/a/b?x=1&y=2|v=1"), r
        assert origin.count("/base/a/b?x=1&y=2") == 1

    def test_020_02_query_is_part_of_default_key(self, env, origin):
        a = env.get("/pfx/q?x=1")
        b = env.get("/pfx/q?x=2")
        assert (a.isr, a.body) == ("MISS", b"/base/q?x=1|v=1"), a
        assert (b.isr, b.body) == ("MISS", b"/base/q?x=2|v=1"), b
        assert env.get("/pfx/q?x=1").body == b"/base/q?x=1|v=1"

    def test_020_03_host_names_the_backend(self, env, origin):
        env.get("/pfx/host", headers={"Host": "client.example"})
        last = origin.last("/base/host")
        assert last is not None
        hdrs = {k.lower(): v for k, v in last["headers"].items()}
        assert hdrs.get("host") == origin.hostport, last

    def test_020_04_whole_path_appended_outside_location(self, env, origin):
        r = env.get("/dir/page.html?q=1")
        assert (r.status, r.isr, r.body) == (200, "MISS", b"/whole/dir/page.html?q=1|v=1"), r
        r = env.get("/dir/page.html?q=1")
        assert (r.isr, r.body) == ("HIT", b"/whole/dir/page.html?q=1|v=1"), r

    def test_020_05_expr_backend(self, env, origin):
        r = env.get("/ex/foo")
        assert (r.status, r.isr, r.body) == (200, "MISS", b"/render?path=/ex/foo|v=1"), r
        r = env.get("/ex/bar")
        assert (r.status, r.isr, r.body) == (200, "MISS", b"/render?path=/ex/bar|v=1"), r
        r = env.get("/ex/foo")
        assert (r.isr, r.body) == ("HIT", b"/render?path=/ex/foo|v=1"), r
        assert origin.count("/render?path=/ex/foo") == 1

    def test_020_06_unix_socket_backend(self, env, origin, unix_origin):
        unix_origin.reset()
        r = env.get("/ux/hello?a=1")
        assert (r.status, r.isr, r.body) == (200, "MISS", b"/sock/hello?a=1|v=1"), r
        r = env.get("/ux/hello?a=1")
        assert (r.isr, r.body) == ("HIT", b"/sock/hello?a=1|v=1"), r
        assert unix_origin.count("/sock/hello?a=1") == 1
        assert origin.total() == 0
