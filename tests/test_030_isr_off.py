"""ISR Off in a nested <Location>: the request goes to its normal handler untouched."""


class TestIsrOff:
    FILES = {"htdocs/app/private/p.txt": "PRIVATE\n", "htdocs/app/pub.txt": "PUBLIC-STATIC\n"}
    CONF = """
<Location /app/>
    ISRBackend @ORIGIN@/
</Location>
<Location /app/private/>
    ISR Off
</Location>
"""

    def test_030_01_off_serves_static(self, env, origin):
        for _ in range(2):
            r = env.get("/app/private/p.txt")
            assert (r.status, r.body) == (200, b"PRIVATE\n"), r
            assert "X-ISR-Status" not in r.headers, r
        assert env.get("/app/private/none.txt").status == 404
        assert origin.total() == 0

    def test_030_02_parent_scope_still_on(self, env, origin):
        r = env.get("/app/pub.txt")
        assert (r.status, r.isr, r.body) == (200, "MISS", b"/pub.txt|v=1"), r
        assert origin.count("/pub.txt") == 1
