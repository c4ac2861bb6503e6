"""ISRApply response | env=NAME | header=NAME. For env=/header= a static file is the normal
handler and mod_headers shows what the module put into the environment / request header."""

import isr_env


class TestApply:
    FILES = {
        "htdocs/ae/page.html": "STATIC-ENV\n",
        "htdocs/ah/page.html": "STATIC-HDR\n",
        "htdocs/ah/crlf.html": "STATIC-CRLF\n",
        "htdocs/ar/page.html": "STATIC-RESPONSE\n",
    }
    CONF = """
<Location /ae/>
    ISRBackend @ORIGIN@/e/
    ISRApply env=ISR_BODY
    Header set X-Got "%{ISR_BODY}e"
    Header set X-St "%{ISR_STATUS}e"
</Location>
<Location /ah/>
    ISRBackend @ORIGIN@/h/
    ISRApply header=X-Isr-Body
    Header set X-Got "expr=%{req:X-Isr-Body}"
    Header set X-St "%{ISR_STATUS}e"
</Location>
<Location /ar/>
    ISRBackend @ORIGIN@/r/
    ISRApply response
</Location>
"""

    def test_070_01_env(self, env, origin):
        r = env.get("/ae/page.html")
        assert (r.status, r.body) == (200, b"STATIC-ENV\n"), r
        assert r.headers.get("X-Got") == "/e/page.html|v=1", r
        assert r.headers.get("X-St") == "MISS", r
        r = env.get("/ae/page.html")
        assert (r.status, r.body) == (200, b"STATIC-ENV\n"), r
        assert r.headers.get("X-Got") == "/e/page.html|v=1", r
        assert r.headers.get("X-St") == "HIT", r
        assert origin.count("/e/page.html") == 1

    def test_070_02_env_request_continues_to_normal_handler(self, env, origin):
        r = env.get("/ae/missing.html")
        assert r.status == 404, r
        assert origin.count("/e/missing.html") == 1

    def test_070_03_header(self, env, origin):
        r = env.get("/ah/page.html")
        assert (r.status, r.body) == (200, b"STATIC-HDR\n"), r
        assert r.headers.get("X-Got") == "/h/page.html|v=1", r
        assert r.headers.get("X-St") == "MISS", r
        # a client cannot forge the value: the module sets the header
        r = env.get("/ah/page.html", headers={"X-Isr-Body": "forged"})
        assert (r.status, r.body) == (200, b"STATIC-HDR\n"), r
        assert r.headers.get("X-Got") == "/h/page.html|v=1", r
        assert r.headers.get("X-St") == "HIT", r
        assert origin.count("/h/page.html") == 1

    def test_070_04_header_crlf_become_spaces(self, env, origin):
        origin.set("/h/crlf.html", suffix="\r\nline2\nline3")
        r = env.get("/ah/crlf.html")
        assert (r.status, r.body) == (200, b"STATIC-CRLF\n"), r
        assert r.headers.get("X-Got") == "/h/crlf.html|v=1  line2 line3", r

    def test_070_05_response(self, env, origin):
        r = env.get("/ar/page.html")
        assert (r.status, r.isr, r.body) == (200, "MISS", b"/r/page.html|v=1"), r
        r = env.get("/ar/page.html")
        assert (r.status, r.isr, r.body) == (200, "HIT", b"/r/page.html|v=1"), r

    def test_070_06_env_on_fetch_error(self, env, origin):
        # default ISROnError 502 also applies in env= mode
        isr_env.expect_log(isr_env.ISR_WARN_LOG)
        origin.set("/e/page5.html", status=500)
        r = env.get("/ae/page5.html")
        assert r.status == 502, r
