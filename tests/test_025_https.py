"""https: backends, verified against the system CAs or ISRBackendCA."""

import isr_env


class TestHttps:
    CONF = """
<Location /tls/>
    ISRBackend @TLS@/
    ISRBackendCA @TLSCA@
</Location>
<Location /tlsnoca/>
    ISRBackend @TLS@/x/
</Location>
"""

    def test_025_01_https_backend_with_ca(self, env, tls_origin):
        tls_origin.reset()
        r = env.get("/tls/a?q=1")
        assert (r.status, r.isr, r.body) == (200, "MISS", b"/a?q=1|v=1"), r
        r = env.get("/tls/a?q=1")
        assert (r.status, r.isr, r.body) == (200, "HIT", b"/a?q=1|v=1"), r
        assert tls_origin.count("/a?q=1") == 1

    def test_025_02_unverifiable_backend_fails(self, env, tls_origin):
        # the self-signed certificate is not among the system's CAs: verification is always on
        isr_env.expect_log(isr_env.ISR_WARN_LOG)
        tls_origin.reset()
        r = env.get("/tlsnoca/a")
        assert r.status == 502, r
        assert tls_origin.count("/x/a") == 0
