"""ISROnError STATUS (ErrorDocument applies) and ISROnError pass."""

import isr_env

ANY_ISR_LOG = isr_env.ISR_WARN_LOG


class TestOnError:
    FILES = {"htdocs/op/page.html": "PASS-STATIC\n"}
    CONF = """
# These tests re-request right after a failure: without ISRErrorTTL's memory of it.
ISRErrorTTL 0
<Location /o502/>
    ISRBackend @ORIGIN@/
</Location>
<Location /o503/>
    ISRBackend @ORIGIN@/
    ISROnError 503
</Location>
<Location /oed/>
    ISRBackend @ORIGIN@/
    ISROnError 504
    ErrorDocument 504 "isr-custom-error-doc"
</Location>
<Location /op/>
    ISRBackend @ORIGIN@/
    ISROnError pass
</Location>
<Location /orf/>
    ISRBackend http://127.0.0.1:1/
    ISROnError 503
</Location>
"""

    def test_080_01_default_502(self, env, origin):
        isr_env.expect_log(ANY_ISR_LOG)
        origin.set("/e1", status=500)
        r = env.get("/o502/e1")
        assert r.status == 502, r
        assert origin.count("/e1") == 1

    def test_080_02_status(self, env, origin):
        isr_env.expect_log(ANY_ISR_LOG)
        origin.set("/e2", status=500)
        r = env.get("/o503/e2")
        assert r.status == 503, r

    def test_080_03_error_document_applies(self, env, origin):
        isr_env.expect_log(ANY_ISR_LOG)
        origin.set("/e3", status=502)
        r = env.get("/oed/e3")
        assert r.status == 504, r
        assert b"isr-custom-error-doc" in r.body, r

    def test_080_04_pass_lets_static_answer(self, env, origin):
        isr_env.expect_log(ANY_ISR_LOG)
        origin.set("/page.html", status=500)
        mark = env.log_mark()
        r = env.get("/op/page.html")
        assert (r.status, r.body) == (200, b"PASS-STATIC\n"), r
        assert origin.count("/page.html") == 1
        # "pass: log and let the request continue"
        assert env.wait_log(ANY_ISR_LOG, since=mark, deadline=3), env.log_dump(mark)

    def test_080_05_error_not_stored(self, env, origin):
        isr_env.expect_log(ANY_ISR_LOG)
        origin.set("/e5", status=500)
        assert env.get("/o502/e5").status == 502
        origin.set("/e5")
        r = env.get("/o502/e5")
        assert (r.status, r.isr, r.body) == (200, "MISS", b"/e5|v=2"), r

    def test_080_06_connect_error(self, env, origin):
        isr_env.expect_log(ANY_ISR_LOG)
        r = env.get("/orf/x")
        assert r.status == 503, r
